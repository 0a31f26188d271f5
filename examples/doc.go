// Package examples holds medley's runnable programs, one directory each,
// each with an ASCII picture of its graph at the top of its main.go and a
// test that runs it.
//
// In this release there is one: fanout (run it with `make demo` or
// `go run ./examples/fanout`), a synthetic video source fanned out to
// several sinks, one of which stalls, to show the pipeline's isolation,
// bus, stats and DOT output. The examples with web pages (loopback,
// recorder, player, one-to-many broadcast, group call, magic mirror,
// transcoding, RTP bridge) are not implemented yet: they come with the
// endpoints of issues 4 and 5 and later work.
//
// This package has no code of its own; its tests compile the README's
// example.
package examples
