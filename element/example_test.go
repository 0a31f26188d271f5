package element_test

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/pion/rtp"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/pipeline"
)

// KeyframeCounter is a user-written filter: it passes buffers and events
// through unchanged, in both directions, and counts the keyframes it sees.
type KeyframeCounter struct {
	element.Base
	sink, src *element.Pad
	keyframes atomic.Int64
}

func NewKeyframeCounter(name string) *KeyframeCounter {
	f := &KeyframeCounter{Base: element.NewBase(name)}
	caps := element.CapsList{element.AnyVideo}
	// Downstream: buffers and events (caps, EOS, ...) go on to the src pad.
	// The sink pad is inline: the filter is cheap, so it runs on the
	// pusher's goroutine without a queue of its own.
	f.sink = element.NewSinkPad("sink", caps, func(b *element.Buffer) error {
		if b.Keyframe() {
			f.keyframes.Add(1)
		}
		f.src.Push(b) // read-only and shared: no copy
		return nil
	}, element.Inline(), element.WithEventHandler(func(ev element.Event) {
		_ = f.src.PushEvent(ev)
	}))
	// Upstream: keyframe requests and bitrate hints go back the way the
	// media came.
	f.src = element.NewSrcPad("src", caps, element.WithEventHandler(func(ev element.Event) {
		f.sink.SendUpstream(ev)
	}))
	f.AddPad(f.sink, f.src)
	return f
}

// A pass-through filter written against the element contract, placed
// between an AppSource and an AppSink.
func Example_passThroughFilter() {
	vp8 := element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/VP8", ClockRate: 90000}
	camera := element.NewAppSource("camera", element.CapsList{vp8},
		element.WithUpstream(func(ev element.Event) { fmt.Println("camera got", ev.EventName()) }))
	counter := NewKeyframeCounter("counter")
	eos := make(chan struct{})
	viewer := element.NewAppSink("viewer", element.CapsList{element.AnyVideo},
		element.WithBufferFunc(func(b *element.Buffer) {
			fmt.Printf("viewer got seq %d keyframe=%v\n", b.RTP.SequenceNumber, b.Keyframe())
		}),
		element.WithEventFunc(func(ev element.Event) {
			fmt.Println("viewer got", ev.EventName())
			if _, ok := ev.(element.EOSEvent); ok {
				close(eos)
			}
		}))

	p, _ := pipeline.New()
	defer p.Close()
	_ = p.Add(camera, counter, viewer)
	_ = p.Connect(camera, counter, element.KindVideo)
	_ = p.Connect(counter, viewer, element.KindVideo)
	_ = p.Start(context.Background())

	for seq := range uint16(3) {
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Marker: true}, Payload: []byte{0x10}}
		camera.PushRTP(pkt, seq == 0)
	}
	_ = camera.EndOfStream()
	<-eos
	viewer.RequestKeyframe()
	fmt.Println("keyframes counted:", counter.keyframes.Load())

	// Output:
	// viewer got caps
	// viewer got seq 0 keyframe=true
	// viewer got seq 1 keyframe=false
	// viewer got seq 2 keyframe=false
	// viewer got eos
	// camera got keyframe-request
	// keyframes counted: 1
}
