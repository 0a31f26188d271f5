package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/medley-go/medley/element"
)

// route is one connection the host asked for, from a src pad to a sink pad,
// and how it is realised: a direct link or a chain of converters.
type route struct {
	src, sink *element.Pad
	// negotiated is the src caps the route was built for; nil while the
	// src caps are unknown.
	negotiated *element.Caps
	// conv are the converter elements inserted, upstream first, and out the
	// caps the last one makes.
	conv []element.Element
	out  element.Caps
	// links are the pad links made for the route, in order.
	links [][2]*element.Pad
}

func (r *route) transcoding() bool { return len(r.conv) > 0 }

// Connect links src's output to sink's input for each media kind in kind
// (element.KindAudio, KindVideo, KindData, or KindAll): for each kind, the
// first src pad of that kind to the first sink pad of that kind. With
// KindAll, kinds one side lacks are skipped, but at least one kind must
// link. See ConnectPads for what one link does.
func (p *Pipeline) Connect(src, sink element.Element, kind element.Kind) error {
	var linked int
	for _, k := range element.Kinds {
		if !kind.Has(k) {
			continue
		}
		sp, kp := firstPad(src, element.Src, k), firstPad(sink, element.Sink, k)
		if sp == nil || kp == nil {
			if kind != element.KindAll {
				return kindMissing(src, sink, k)
			}
			continue
		}
		if err := p.ConnectPads(sp, kp); err != nil {
			return err
		}
		linked++
	}
	if linked == 0 {
		return kindMissing(src, sink, kind)
	}
	return nil
}

func firstPad(el element.Element, dir element.Direction, k element.Kind) *element.Pad {
	for _, pad := range el.Pads() {
		if pad.Direction() == dir && pad.Kind() == k {
			return pad
		}
	}
	return nil
}

// kindMissing is the error for Connect when src and sink share no pad of
// the kinds asked for: it names every pad of both, with its caps.
func kindMissing(src, sink element.Element, k element.Kind) error {
	e := &element.LinkError{Reason: element.ErrIncompatibleCaps}
	e.Src, e.SrcCaps = padsOf(src, element.Src)
	e.Sink, e.SinkCaps = padsOf(sink, element.Sink)
	return fmt.Errorf("pipeline: connect %s: %w", k, e)
}

func padsOf(el element.Element, dir element.Direction) (string, element.CapsList) {
	var names []string
	var caps element.CapsList
	for _, pad := range el.Pads() {
		if pad.Direction() == dir {
			names = append(names, pad.FullName())
			caps = append(caps, pad.Templates()...)
		}
	}
	if len(names) == 0 {
		return el.Name() + ".<no " + dir.String() + " pad>", nil
	}
	return strings.Join(names, ","), caps
}

// ConnectPads links a src pad to a sink pad of elements in the pipeline.
//
// When the src pad's caps are fixed, the link is negotiated at once: caps
// the sink accepts link directly; otherwise the registry's shortest
// converter chain is inserted (announced by a TranscodingStateChanged
// message); when there is none (or transcoding is off) ConnectPads fails
// with a *element.LinkError matching element.ErrIncompatibleCaps. When the
// src caps are not known yet, ConnectPads checks only that the pads could
// ever meet, and negotiates when the src pad calls SetCaps; a failure then is
// an element.Error message naming the link.
//
// A sink pad has one source at a time: connecting another replaces the
// first. Connecting pads already connected does nothing.
func (p *Pipeline) ConnectPads(src, sink *element.Pad) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("pipeline: connect: %w", element.ErrClosed)
	}
	lerr := &element.LinkError{Src: src.FullName(), Sink: sink.FullName(), SrcCaps: src.Templates(), SinkCaps: sink.Templates()}
	if src.Direction() != element.Src || sink.Direction() != element.Sink {
		lerr.Reason = element.ErrWrongDirection
		return lerr
	}
	if err := p.ownsLocked(src); err != nil {
		return err
	}
	if err := p.ownsLocked(sink); err != nil {
		return err
	}
	if src.Kind() != sink.Kind() {
		lerr.Reason = element.ErrIncompatibleCaps
		return lerr
	}
	if old := p.routes[sink]; old != nil {
		if old.src == src {
			return nil
		}
	}
	r := &route{src: src, sink: sink}
	if c, ok := src.Caps(); ok {
		if err := p.buildLocked(r, c); err != nil {
			return err
		}
	} else {
		if !src.Templates().Intersects(sink.Templates()) && !p.cfg.transcode {
			lerr.Reason = element.ErrIncompatibleCaps
			return lerr
		}
	}
	if old := p.routes[sink]; old != nil {
		p.removeRouteLocked(old)
	}
	if r.negotiated == nil && src.Templates().Intersects(sink.Templates()) {
		// Caps unknown yet: link directly, so buffers pushed before caps
		// flow; SetCaps renegotiates.
		r.links = append(r.links, [2]*element.Pad{src, sink})
	}
	if err := p.commitLocked(r); err != nil {
		return err
	}
	p.routes[sink] = r
	p.Post(&element.ElementConnected{MessageHeader: element.Header(src.Element()), Source: src.FullName(), Sink: sink.FullName(), SinkElement: sink.Element(), Kind: src.Kind()})
	if r.transcoding() {
		p.postTranscoding(r)
	}
	return nil
}

func (p *Pipeline) ownsLocked(pad *element.Pad) error {
	es := p.byName[pad.Element()]
	if es != nil {
		for _, q := range es.el.Pads() {
			if q == pad {
				return nil
			}
		}
	}
	return fmt.Errorf("pipeline: pad %s: %w", pad.FullName(), ErrNotInPipeline)
}

// buildLocked plans r for src caps c: a direct link or a converter chain.
// It creates the converters (not yet added) and records the links to make;
// commitLocked makes them. On failure the converters it made are closed.
func (p *Pipeline) buildLocked(r *route, c element.Caps) (err error) {
	defer func() {
		if err != nil {
			for _, el := range r.conv {
				if cl, ok := el.(element.Closer); ok {
					_ = safeClose(cl)
				}
			}
			r.conv, r.links = nil, nil
		}
	}()
	r.negotiated = &c
	if _, ok := r.sink.Templates().Accepts(c); ok {
		r.links = append(r.links, [2]*element.Pad{r.src, r.sink})
		return nil
	}
	lerr := &element.LinkError{Src: r.src.FullName(), Sink: r.sink.FullName(), SrcCaps: element.CapsList{c}, SinkCaps: r.sink.Templates(), Reason: element.ErrIncompatibleCaps}
	if !p.cfg.transcode {
		return lerr
	}
	steps, ok := p.cfg.registry.Chain(c, r.sink.Templates())
	if !ok {
		return lerr
	}
	prev := r.src
	for _, st := range steps {
		p.seq++
		name := fmt.Sprintf("%s-%s-%d", r.src.Element(), st.Converter.Name(), p.seq)
		el, err := st.Converter.New(name, st.In, st.Out)
		if err != nil {
			return fmt.Errorf("pipeline: converter %s for %s: %w", st.Converter.Name(), lerr, err)
		}
		r.conv = append(r.conv, el)
		in, out, err := converterPads(el, st)
		if err != nil {
			return err
		}
		if err := out.SetCaps(st.Out); err != nil {
			return fmt.Errorf("pipeline: converter %s: %w", el.Name(), err)
		}
		r.out = st.Out
		r.links = append(r.links, [2]*element.Pad{prev, in})
		prev = out
	}
	r.links = append(r.links, [2]*element.Pad{prev, r.sink})
	return nil
}

func converterPads(el element.Element, st Step) (in, out *element.Pad, err error) {
	for _, pad := range el.Pads() {
		switch pad.Direction() {
		case element.Sink:
			if in != nil {
				in = nil
				break
			}
			in = pad
		case element.Src:
			if out != nil {
				out = nil
				break
			}
			out = pad
		}
	}
	if in == nil || out == nil || len(el.Pads()) != 2 {
		return nil, nil, fmt.Errorf("pipeline: converter %s made element %s without exactly one sink and one src pad", st.Converter.Name(), el.Name())
	}
	return in, out, nil
}

// linkLocked makes one pad link.
func (p *Pipeline) linkLocked(src, sink *element.Pad) error {
	if err := src.Link(sink); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	return nil
}

// commitLocked adds r's converters to the pipeline and makes its planned
// links (those after the ones already made).
func (p *Pipeline) commitLocked(r *route) error {
	for _, el := range r.conv {
		if _, dup := p.byName[el.Name()]; !dup {
			p.addLocked(el, true)
		}
	}
	for _, l := range r.links {
		if l[1].Peer() == l[0] {
			continue
		}
		if err := p.linkLocked(l[0], l[1]); err != nil {
			p.unlinkRouteLocked(r, nil)
			return err
		}
	}
	return nil
}

// unlinkRouteLocked undoes r's links, but those keep lists (links the route
// replacing r makes too), and removes its converters.
func (p *Pipeline) unlinkRouteLocked(r *route, keep [][2]*element.Pad) {
	for _, l := range r.links {
		if !slices.Contains(keep, l) {
			_ = l[0].Unlink(l[1])
		}
	}
	for _, el := range r.conv {
		if es := p.byName[el.Name()]; es != nil && es.el == el {
			p.removeLocked(es)
		}
	}
	r.links, r.conv = nil, nil
}

func (p *Pipeline) removeRouteLocked(r *route) {
	p.unlinkRouteLocked(r, nil)
	if p.routes[r.sink] == r {
		delete(p.routes, r.sink)
	}
	p.Post(&element.ElementDisconnected{MessageHeader: element.Header(r.src.Element()), Source: r.src.FullName(), Sink: r.sink.FullName(), SinkElement: r.sink.Element(), Kind: r.src.Kind()})
}

// routesOfLocked returns the routes that start or end at pad.
func (p *Pipeline) routesOfLocked(pad *element.Pad) []*route {
	var rs []*route
	for _, r := range p.routes {
		if r.src == pad || r.sink == pad {
			rs = append(rs, r)
		}
	}
	return rs
}

func (p *Pipeline) postTranscoding(r *route) {
	m := &element.TranscodingStateChanged{MessageHeader: element.Header(r.src.Element()), Source: r.src.FullName(), Sink: r.sink.FullName()}
	if r.negotiated != nil {
		m.From, m.To = *r.negotiated, *r.negotiated
	}
	if r.transcoding() {
		m.State, m.To = element.Transcoding, r.out
		for _, el := range r.conv {
			m.Chain = append(m.Chain, el.Name())
		}
	}
	p.Post(m)
}

// Disconnect undoes Connect for each kind in kind.
func (p *Pipeline) Disconnect(src, sink element.Element, kind element.Kind) error {
	var n int
	for _, k := range element.Kinds {
		if !kind.Has(k) {
			continue
		}
		for _, sp := range src.Pads() {
			if sp.Direction() != element.Src || sp.Kind() != k {
				continue
			}
			for _, kp := range sink.Pads() {
				if kp.Direction() != element.Sink || kp.Kind() != k {
					continue
				}
				if err := p.DisconnectPads(sp, kp); err == nil {
					n++
				} else if !errors.Is(err, element.ErrNotLinked) {
					return err
				}
			}
		}
	}
	if n == 0 {
		return fmt.Errorf("pipeline: disconnect %s from %s (%s): %w", src.Name(), sink.Name(), kind, element.ErrNotLinked)
	}
	return nil
}

// DisconnectPads undoes ConnectPads: the link, and any converters it
// inserted, go away. Buffers already queued at the sink are still
// delivered.
func (p *Pipeline) DisconnectPads(src, sink *element.Pad) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("pipeline: disconnect %s from %s: %w", src.FullName(), sink.FullName(), element.ErrClosed)
	}
	r := p.routes[sink]
	if r == nil || r.src != src {
		return &element.LinkError{Src: src.FullName(), Sink: sink.FullName(), SrcCaps: src.Templates(), SinkCaps: sink.Templates(), Reason: element.ErrNotLinked}
	}
	p.removeRouteLocked(r)
	return nil
}

// CapsChanged implements the host side of element.Pad.SetCaps: it
// renegotiates every connection from the src pad. A connection that cannot
// be negotiated is unlinked and reported as an element.Error naming it.
func (p *Pipeline) CapsChanged(src *element.Pad) {
	c, ok := src.Caps()
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	for _, r := range p.routes {
		if r.src != src || (r.negotiated != nil && *r.negotiated == c) {
			continue
		}
		p.renegotiateLocked(r, c)
	}
}

// TemplatesChanged implements the host side of element.Pad.SetTemplates:
// the connection into a sink pad whose templates changed is negotiated
// again, for the caps its source has.
func (p *Pipeline) TemplatesChanged(pad *element.Pad) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || pad.Direction() != element.Sink {
		return
	}
	if r := p.routes[pad]; r != nil {
		if c, ok := r.src.Caps(); ok {
			p.renegotiateLocked(r, c)
		}
	}
}

// renegotiateLocked rebuilds r for src caps c: direct, through converters,
// or, when neither works, unlinked with an element.Error naming it.
func (p *Pipeline) renegotiateLocked(r *route, c element.Caps) {
	wasTranscoding := r.transcoding()
	nr := &route{src: r.src, sink: r.sink}
	err := p.buildLocked(nr, c)
	if err == nil {
		p.unlinkRouteLocked(r, nr.links)
		err = p.commitLocked(nr)
	} else {
		p.unlinkRouteLocked(r, nil)
		nr = &route{src: r.src, sink: r.sink, negotiated: &c}
	}
	p.routes[r.sink] = nr
	if err != nil {
		p.Post(&element.Error{MessageHeader: element.Header(r.src.Element()), Pad: r.src.FullName(), Err: fmt.Errorf("pipeline: negotiate: %w", err)})
		return
	}
	if nr.transcoding() || wasTranscoding {
		p.postTranscoding(nr)
	}
}
