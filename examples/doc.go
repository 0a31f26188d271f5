// Package examples holds medley's runnable programs, one directory each,
// each with an ASCII picture of its graph at the top of its main.go and a
// test that runs it.
//
// In this release there are two. fanout (`go run ./examples/fanout`): a
// synthetic video source fanned out to several sinks, one of which stalls,
// to show the pipeline's isolation, bus, stats and DOT output. loopback
// (`make demo`, or `go run ./examples/loopback`), Kurento's hello world: a
// web page sends the browser's camera and microphone to a WebRTC endpoint
// connected to itself and shows what comes back; its test drives the page
// in headless Chromium. The web examples speak one signalling, WHIP's:
// POST the complete offer (application/sdp, or JSON {"type":"offer",...}),
// get the complete answer with 201 Created and a Location that DELETE ends
// (endpoint.HTTPHandler); each takes -addr and -ice-loopback. The other
// examples with web pages (recorder, player, one-to-many broadcast, group
// call, magic mirror, transcoding, RTP bridge) are not implemented yet.
//
// This package has no code of its own; its tests compile the README's
// example.
package examples
