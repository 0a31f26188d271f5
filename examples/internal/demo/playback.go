package demo

import (
	"fmt"
	"sync"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/pipeline"
)

// Playback is a Player waiting for its WebRTC endpoint to connect, then
// playing into it. It waits because a browser decodes nothing before the
// input's first keyframe, which a Player started earlier would send before
// the connection is up (a browser's recording has only one, at its start).
type Playback struct {
	p  *pipeline.Pipeline
	ep *endpoint.WebRTC
	pl *endpoint.Player

	mu            sync.Mutex
	started, left bool
}

// NewPlayback returns the playback of pl into ep, both for pipeline p; ep
// is added to p by the caller, pl by Start.
func NewPlayback(p *pipeline.Pipeline, ep *endpoint.WebRTC, pl *endpoint.Player) *Playback {
	return &Playback{p: p, ep: ep, pl: pl}
}

// Start puts the player in the pipeline, connected to the endpoint: it
// opens the input and plays it from its start. Call it when the endpoint
// connects; it does nothing after the first time or after Leave. A
// failure goes on the pipeline's bus as an element.Error.
func (b *Playback) Start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started || b.left {
		return
	}
	b.started = true
	err := b.p.Add(b.pl)
	if err == nil {
		err = b.p.Connect(b.pl, b.ep, element.KindAudio|element.KindVideo)
	}
	if err != nil {
		b.p.Post(&element.Error{MessageHeader: element.Header(b.pl.Name()), Err: fmt.Errorf("start playing %s: %w", b.pl.URL(), err)})
	}
}

// Leave takes the player (if it started) and the endpoint out of the
// pipeline.
func (b *Playback) Leave() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.left = true
	if b.started {
		_ = b.p.Remove(b.pl)
	}
	_ = b.p.Remove(b.ep)
}
