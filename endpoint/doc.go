// Package endpoint will move media in and out of the process: WebRTC
// (pion/webrtc v4 with pion/interceptor) and WHIP/WHEP, plain RTP with SDP,
// a Player (files, HTTP, RTSP through FFmpeg), a Recorder (WebM, MKV, MP4,
// fragmented MP4) and Devices (pion/mediadevices: camera, microphone,
// screen). Each endpoint is an element with pads, connected like any other.
//
// Not implemented yet in this release: the package is empty. The WebRTC and
// RTP endpoints are issue 4, the Player and Recorder issue 5. Until then, Go
// code moves media in and out of a pipeline with element.AppSource and
// element.AppSink.
package endpoint
