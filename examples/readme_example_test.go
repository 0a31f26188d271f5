package examples_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"sync/atomic"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
	"github.com/medley-go/medley/pipeline"
)

// Example is the README's example, kept here so that the tests compile and
// run it: a synthetic VP8 source fanned out to two sinks. Keep the two in
// agreement: the README shows this function's body.
func Example() {
	ctx := context.Background()
	check := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	p, err := pipeline.New()
	check(err)
	defer p.Close()
	bus := p.Subscribe(0) // before Connect, to see the ElementConnected messages too

	// 30 frames of synthetic VP8 in 3 RTP packets each, as fast as possible, then end of stream.
	vp8 := element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/VP8", ClockRate: 90000}
	camera := elementtest.NewSource("camera", elementtest.SourceConfig{Caps: vp8, Rate: -1, Frames: 30})
	var got atomic.Int64
	eos := make(chan struct{}, 2)
	count := element.WithBufferFunc(func(*element.Buffer) { got.Add(1) }) // runs on the sink's goroutine
	onEOS := element.WithEventFunc(func(ev element.Event) {
		if _, ok := ev.(element.EOSEvent); ok {
			eos <- struct{}{}
		}
	})
	viewer1 := element.NewAppSink("viewer1", element.CapsList{element.AnyVideo}, count, onEOS)
	viewer2 := element.NewAppSink("viewer2", element.CapsList{element.AnyVideo}, count, onEOS)

	check(p.Add(camera, viewer1, viewer2))
	check(p.Connect(camera, viewer1, element.KindVideo)) // fan-out: one src pad feeds both
	check(p.Connect(camera, viewer2, element.KindVideo))
	check(p.Start(ctx))
	<-eos
	<-eos

	st, _ := p.Stats().Element("camera")
	fmt.Println("camera sent", st.PacketsOut, "packets; the viewers got", got.Load())
	fmt.Println(strings.Count(p.DOT(), " -> "), "links in the graph") // p.DOT() is Graphviz: dot -Tsvg
	check(p.Close())
	for m := range bus.Messages(ctx) { // the channel closes after the last message
		switch m := m.(type) {
		case *element.ElementConnected:
			fmt.Println("connected", m.Source, "->", m.Sink)
		case *element.EndOfStream:
			fmt.Println("end of stream from", m.Pad)
		}
	}
	// Output:
	// camera sent 90 packets; the viewers got 180
	// 2 links in the graph
	// connected camera.src -> viewer1.sink
	// connected camera.src -> viewer2.sink
	// end of stream from camera.src
}
