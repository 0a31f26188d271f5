package pipeline

import (
	"context"
	"time"

	"github.com/medley-go/medley/element"
)

// flow is the monitor's view of one pad.
type flow struct {
	packets uint64
	last    time.Time // when packets last changed
	state   element.FlowState
}

// monitorFlow watches every pad's packet count and posts
// MediaFlowIn/OutStateChanged when a pad starts seeing buffers, or has seen
// none for the flow timeout. It reads counters only, so the media path pays
// nothing for it.
func (p *Pipeline) monitorFlow(ctx context.Context) {
	tick := p.cfg.flowTimeout / 4
	t := time.NewTicker(tick)
	defer t.Stop()
	flows := make(map[*element.Pad]*flow)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			seen := make(map[*element.Pad]bool, len(flows))
			for _, el := range p.Elements() {
				for _, pad := range el.Pads() {
					seen[pad] = true
					p.checkFlow(flows, pad, now)
				}
			}
			for pad := range flows {
				if !seen[pad] {
					delete(flows, pad)
				}
			}
		}
	}
}

func (p *Pipeline) checkFlow(flows map[*element.Pad]*flow, pad *element.Pad, now time.Time) {
	f := flows[pad]
	if f == nil {
		f = &flow{last: now}
		flows[pad] = f
	}
	n := pad.Stats().Packets
	state := f.state
	switch {
	case n != f.packets:
		f.packets, f.last = n, now
		state = element.Flowing
	case now.Sub(f.last) >= p.cfg.flowTimeout:
		state = element.NotFlowing
	}
	if state == f.state {
		return
	}
	f.state = state
	h := element.Header(pad.Element())
	if pad.Direction() == element.Sink {
		p.Post(&element.MediaFlowInStateChanged{MessageHeader: h, Pad: pad.FullName(), Kind: pad.Kind(), State: state})
	} else {
		p.Post(&element.MediaFlowOutStateChanged{MessageHeader: h, Pad: pad.FullName(), Kind: pad.Kind(), State: state})
	}
}
