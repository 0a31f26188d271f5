package pipeline

import (
	"github.com/medley-go/medley/element"
)

// Stats is a snapshot of the pipeline's counters.
type Stats struct {
	Elements []ElementStats
}

// ElementStats are one element's counters: per pad, and summed.
type ElementStats struct {
	Name string
	// Converter is true for elements the pipeline inserted to convert caps.
	Converter bool
	Pads      []element.PadStats
	// PacketsIn and BytesIn sum the sink pads; PacketsOut and BytesOut the
	// src pads.
	PacketsIn, BytesIn, PacketsOut, BytesOut uint64
	// Drops sums the sink pads' queue drops.
	Drops uint64
	// KeyframeRequests sums the keyframe requests the sink pads sent and
	// the src pads passed on.
	KeyframeRequests uint64
}

// Stats returns the counters of every element and pad.
func (p *Pipeline) Stats() Stats {
	p.mu.Lock()
	els := append([]*elemState(nil), p.elements...)
	p.mu.Unlock()
	var s Stats
	for _, es := range els {
		e := ElementStats{Name: es.el.Name(), Converter: es.auto}
		for _, pad := range es.el.Pads() {
			ps := pad.Stats()
			e.Pads = append(e.Pads, ps)
			if ps.Direction == element.Sink {
				e.PacketsIn += ps.Packets
				e.BytesIn += ps.Bytes
			} else {
				e.PacketsOut += ps.Packets
				e.BytesOut += ps.Bytes
			}
			e.Drops += ps.Drops
			e.KeyframeRequests += ps.KeyframeRequests
		}
		s.Elements = append(s.Elements, e)
	}
	return s
}

// Element returns the stats of the element of that name, and false if there
// is none.
func (s Stats) Element(name string) (ElementStats, bool) {
	for _, e := range s.Elements {
		if e.Name == name {
			return e, true
		}
	}
	return ElementStats{}, false
}

// Pad returns the stats of the pad of that name, and false if there is
// none.
func (e ElementStats) Pad(name string) (element.PadStats, bool) {
	for _, ps := range e.Pads {
		if ps.Pad == e.Name+"."+name {
			return ps, true
		}
	}
	return element.PadStats{}, false
}
