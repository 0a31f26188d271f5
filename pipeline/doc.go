// Package pipeline runs graphs of medley elements in-process: what a
// Kurento MediaPipeline is, as a Go value.
//
//	p, _ := pipeline.New()
//	p.Add(src, sink)
//	p.Connect(src, sink, element.KindAll) // or ConnectPads for one pad pair
//	p.Start(ctx)
//	sub := p.Subscribe(0)                 // typed messages: sub.C()
//	fmt.Println(p.Stats(), p.DOT())
//	p.Close()
//
// # Connecting and negotiation
//
// Connect links src pads to sink pads by media kind; a src pad may feed any
// number of sinks, and a sink pad has one source at a time (connecting
// another replaces it). Connect and Disconnect work while the pipeline runs.
// When the src pad's caps are fixed, the link is negotiated at once: caps
// the sink accepts link directly; different ones get the shortest chain of
// converters found in a Registry (package codec fills DefaultRegistry with
// depayloaders, decoders, encoders and payloaders when imported), announced
// by an element.TranscodingStateChanged message and drawn in DOT. Caps that
// cannot meet fail with an *element.LinkError matching
// element.ErrIncompatibleCaps. When the caps are not known yet (a WebRTC
// endpoint before SDP negotiation), Connect succeeds and negotiation happens
// on SetCaps; a failure then is an element.Error message naming the link.
// WithoutTranscoding turns converter insertion off.
//
// # Running
//
// Start runs every element's Run and every queued sink pad's goroutine;
// elements added later start at once. Cancelling Start's context closes the
// pipeline. Close ends every goroutine, closes every element, then the bus;
// it is idempotent. A panic or error in an element becomes an element.Error
// message and the rest of the pipeline runs on.
//
// # Observing
//
// The Bus delivers element.Message values (ElementConnected,
// MediaFlowInStateChanged, TranscodingStateChanged, Error, EndOfStream, ...)
// to subscribers; a subscriber that does not keep up loses messages (counted)
// and never slows the media. Stats returns per-element and per-pad counters;
// DOT renders the live graph for Graphviz.
package pipeline
