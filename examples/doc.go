// Package examples holds medley's runnable programs, one directory each,
// each with an ASCII picture of its graph at the top of its main.go and a
// test that runs it.
//
// In this release there are four:
//
//   - fanout (`go run ./examples/fanout`): a synthetic video source fanned
//     out to several sinks, one of which stalls, to show the pipeline's
//     isolation, bus, stats and DOT output.
//   - loopback (`make demo`, or `go run ./examples/loopback`), Kurento's
//     hello world: a web page sends the browser's camera and microphone to a
//     WebRTC endpoint connected to itself and shows what comes back.
//   - recorder (`go run ./examples/recorder -dir DIR`): the page sends the
//     camera and microphone to a Recorder (POST /record?profile=webm; webm,
//     mkv, mp4, fmp4 and their -audio-only and -video-only variants), which
//     DELETE of the session, or the browser going away, stops with the file
//     complete; GET /recordings lists the files as JSON, and POST
//     /recordings/{name}/play plays one back to the page through a Player.
//   - player (`go run ./examples/player FILE|URL|rtsp://...`): a Player of
//     the input named on the command line plays to the page (POST /play),
//     its encoded samples payloaded by the pipeline, transcoded only where
//     the browser takes none of its codecs (-codecs narrows them).
//
// The web examples' tests drive their pages in headless Chromium and read
// what a page decoded from getStats. They speak one signalling, WHIP's and
// WHEP's: POST the complete offer (application/sdp, or JSON
// {"type":"offer","sdp":...}), get the complete answer with 201 Created and
// a Location that DELETE ends (endpoint.HTTPHandler); each takes -addr
// (127.0.0.1:8080) and -ice-loopback, and embeds its page, which works
// offline. examples/internal holds what they share: serving and bus
// printing (demo), and the test harness (browsertest). The other examples
// with web pages (one-to-many broadcast, group call, magic mirror,
// transcoding, RTP bridge) are not implemented yet.
//
// This package has no code of its own; its tests compile the README's
// example.
package examples
