// Package endpoint moves media in and out of the process. Each endpoint is
// an element with pads, connected like any other.
//
// In this release it holds the WebRTC endpoint (issue 4): WebRTC, on
// pion/webrtc v4 and pion/interceptor, what Kurento's WebRtcEndpoint is,
// and the HTTP signalling handlers that make one per client: WHIP
// (publish), WHEP (play) and the same exchange for clients that do both;
// the RTP endpoint, Kurento's RtpEndpoint for plain RTP peers; and the
// Recorder and Player (issue 5) on FFmpeg through internal/ffmpeg. Devices
// are not implemented yet.
//
// # WebRTC
//
// The host does the signalling, as with Kurento:
//
//	ep, _ := endpoint.NewWebRTC("alice", endpoint.WithDataChannel("chat"))
//	p.Add(ep)
//	p.Connect(ep, ep, element.KindAll) // loopback: what alice sends comes back
//	sub := p.Subscribe(0)              // IceCandidateFound, ConnectionStateChanged, ...
//	p.Start(ctx)
//	answer, err := ep.ProcessOffer(ctx, offerFromBrowser)
//	// send answer to the browser; for each candidate it trickles:
//	ep.AddIceCandidate(candidateJSON)
//
// or GenerateOffer then ProcessAnswer when the endpoint offers. Candidates
// the endpoint finds come as IceCandidateFound messages; with
// WithCompleteSDP the SDP returned already holds them all, for peers that
// do not trickle.
//
// Pads are declared before negotiation, one set per transceiver (WithAudio,
// WithVideo; one of each, send and receive, by default) and per data channel
// (WithDataChannel), so that the host connects them first, as DESIGN.md
// says:
//
//	audio_N, video_N           src: RTP the peer sends; caps fixed when its track arrives
//	audio_sink_N, video_sink_N sink: RTP to send, in any codec the endpoint offers
//	data_N, data_sink_N        src and sink: data channel messages
//
// A second track of a declared kind (a simulcast layer, a screen beside a
// camera) gets a src pad of its own while running (PadAdded): the layers of
// a simulcast track are named after its transceiver's pad and their rids
// (video_0_h, video_0_l). A SimulcastSelector makes one stream of them for
// a viewer: it forwards one layer, switching where the new layer starts a
// keyframe, by hand (Select) or following the viewer's bandwidth estimate
// (WithAutoSelect). Sections of
// the offer of kinds not declared, or with no codec in common, are
// rejected and reported as element.Warning; an offer with nothing in common
// fails with a *NoCommonCodecError naming the codecs on both sides.
//
// # Media path
//
// Received packets are read into pooled buffers (element.BufferPool,
// Buffer.SetRTPHeader), flagged FlagKeyframe on the first packet of a
// keyframe (codec.Lookup(mime).IsKeyframe) and FlagEndOfFrame on the marker
// bit of video, and pushed without allocation in steady state. A PTS is the
// track's arrival on the endpoint's clock plus its RTP timestamps' progress;
// each RTCP sender report of a track becomes an element.SenderClockEvent
// on its pad (the PTS of the report's instant on the sender's wall clock),
// which the Recorder uses to line up audio and video.
//
// A sink pad is the webrtc.TrackLocal of its transceiver: pion's Bind gives
// it the negotiated codecs and SSRC, and each packet is written with the
// binding's SSRC and the payload type the peer gave the packet's codec, on
// a header of the sink's own: the shared buffer is never modified, and the
// incoming header extensions (numbered for another link) are dropped. When
// the source feeding the sink changes, the sequence numbers and timestamps
// go on from where they were and video waits for a keyframe, which it asks
// for.
//
// A sink pad's templates are every codec the endpoint offers until a
// negotiation settles what the peer accepts for its transceiver; then the
// endpoint narrows them to the peer's codecs (element.Pad.SetTemplates) and
// the pipeline negotiates the connection into the pad again: a source in an
// accepted codec stays linked directly, one in another codec gets a
// transcoder chain from the pipeline's converter registry, and, where the
// registry has none, the link is undone and an element.Error from the
// pipeline names both caps. Packets that still reach a sink in a codec the
// peer did not accept (before negotiation ends) are dropped, counted in
// WebRTCStats.SinkDrops, and reported once.
//
// # RTCP
//
// The interceptors are pion's NACK generator and responder, sender and
// receiver reports, stats and TWCC feedback, and medley's own send-side
// bandwidth estimator (Google congestion control, delay and loss based, on
// the transport-cc feedback about the video packets it numbers; no pacer,
// no goroutine, about 100 ns a packet; WithSendBitrate,
// WithoutBandwidthEstimation, which also stops the numbering). PLI and FIR
// from the peer become element.KeyframeRequest sent upstream from the sink
// pad; keyframe requests reaching a src pad (merged per
// WithKeyframeRequestInterval) become PLI to the peer, and so does a video
// track that resumes after a gap NACK cannot fill (a jump of more than 256
// sequence numbers, or loss after half a second of silence). The bandwidth estimate, shared among the video
// sinks, and the peer's REMB become element.BitrateHint upstream; bitrate
// hints reaching a src pad become REMB to the peer.
//
// # Lifecycle and observation
//
// ConnectionStateChanged, IceComponentStateChanged, IceCandidateFound,
// IceGatheringDone and NewCandidatePairSelected go on the pipeline's bus;
// MediaFlowIn/OutStateChanged come from the pipeline. RTCStats returns
// pion's W3C statistics, Stats the endpoint's counters. A connection that
// fails (or that the peer closes) is closed: the src pads send end of
// stream, the endpoint's goroutines end and Done is closed; the host
// removes the element when it likes. Close, which the pipeline calls, does
// the same.
//
// Bad input is an error value: SDP that is malformed, truncated or larger
// than MaxSDPSize fails with ErrInvalidSDP, and every offer is first tried
// on a throwaway peer connection, because pion cannot roll back a remote
// description it refused halfway.
//
// Tests and single-machine demos use WithICELoopback: loopback candidates
// only, no STUN, no mDNS.
//
// # WHIP and WHEP
//
// HTTPHandler serves the signalling of WHIP (RFC 9725) and WHEP: a client
// POSTs its offer, the handler makes an endpoint (WithCompleteSDP), hands
// it to the host's JoinFunc, which adds it to the pipeline and connects its
// pads, and answers 201 Created with the complete answer and a Location;
// DELETE on the Location ends the session, PATCH with
// application/trickle-ice-sdpfrag adds late candidates. A session also
// ends when its peer goes away; the handler then calls the leave function
// JoinFunc returned and closes the endpoint:
//
//	whip, _ := endpoint.NewWHIPHandler(func(ep *endpoint.WebRTC) (func(), error) {
//		if err := p.Add(ep); err != nil {
//			return nil, err
//		}
//		publisher.Store(ep) // WHEP viewers connect to it
//		return func() { p.Remove(ep) }, nil
//	})
//	whep, _ := endpoint.NewWHEPHandler(func(ep *endpoint.WebRTC) (func(), error) {
//		if err := p.Add(ep); err != nil {
//			return nil, err
//		}
//		return func() { p.Remove(ep) }, p.Connect(publisher.Load(), ep, element.KindAudio|element.KindVideo)
//	})
//	mux.Handle("/whip", whip)
//	mux.Handle("/whip/", whip)
//	mux.Handle("/whep", whep)
//	mux.Handle("/whep/", whep)
//
// A JSON body {"type":"offer","sdp":"..."} is taken too and answered in
// JSON, so that the examples' pages and any WebRTC client can use the same
// handler (NewHTTPHandler, for endpoints that send and receive).
//
// # RTP
//
// NewRTP(name, opts...) is a plain RTP/AVP endpoint over UDP (127.0.0.1
// unless WithRTPBindAddress): ProcessOffer, or GenerateOffer and
// ProcessAnswer, for one audio and one video m-line, RTCP on port+1 or
// muxed (WithRTCPMux), SDES-SRTP with WithSDES (AES_CM_128_HMAC_SHA1_80 and
// _32; an RTP/SAVP offer is always answered with it). Its "audio" and
// "video" src pads get caps from the negotiated payload type; its
// "audio_sink" and "video_sink" pads send with the negotiated payload type
// and the endpoint's own SSRC. PLI and FIR cross as keyframe requests both
// ways. Each section sends RTCP reports about every second
// (WithRTCPInterval): an SR while it sends, an RR otherwise, with a
// reception block per source heard and an SDES CNAME; the peer's reports
// feed Stats (loss, jitter, round trip) and RemoteSenderReport (the
// NTP/RTP timestamp mapping of what the peer sends), and each sender report
// becomes an element.SenderClockEvent on its src pad. NACK is to come.
//
// # Recorder
//
// NewRecorder(name, path, opts...) writes what reaches its "audio" and
// "video" sink pads to a file: WebM (VP8/VP9/AV1 + Opus), Matroska (any of
// medley's codecs), MP4 and fragmented MP4 (H.264/AV1 + AAC or Opus), and
// audio-only or video-only variants, chosen by WithMediaProfile or the file
// extension. Its pads take encoded samples in the codecs the container
// accepts, so the pipeline inserts depayloaders (and, where it must,
// transcoders) by itself. Recording starts on a keyframe, which it asks
// for; a track that sends nothing for WithTrackWait (2 s) is left out and
// named in an element.Warning, so a silent track never leaves an empty file.
// Pause, Resume, Stop(ctx) (returns when the file is complete), limits on
// duration and size, and the Recording, Paused and Stopped messages follow
// Kurento's RecorderEndpoint. WithBaseDir confines every path to a
// directory (os.Root: "../" and symlink escapes are refused). Fragmented
// MP4, WebM and Matroska are written in fragments or clusters of
// WithFragmentDuration (1 s), so a process killed mid-recording leaves a
// file that plays up to its last fragment. Audio and video are placed by
// their PTS, which must come from one clock (a receiving endpoint stamps
// both on its own), then lined up by the element.SenderClockEvents the
// receiving endpoints make of RTCP sender reports: the recorder waits for
// them up to WithSyncWait (1.5 s) before the file starts, and shifts audio
// against video once, so that what the sender captured at one instant
// plays at one instant.
//
// # Player
//
// NewPlayer(name, url, opts...) plays a file or URL (whatever FFmpeg 5.1
// demuxes) into its "audio" and "video" src pads as encoded samples,
// undecoded (Kurento's useEncodedMedia): H.264 from MP4 is turned into
// Annex B with its parameter sets before each keyframe. It is paced in real
// time unless WithoutPacing, loops with WithLoop, sends end of stream at
// the end, and reports a missing, corrupt or broken input as an
// element.Error, never a crash. Pause, Resume and Seek (which lands on the
// keyframe at or before the target and flags the next samples
// FlagDiscont) control it; Position and Duration tell where it is.
// Connected to raw sinks, its pads get decoders from the pipeline.
//
// Network inputs open with light probing (the jitter buffer's length) and a
// 5 s I/O timeout; a live one (of unknown duration: RTSP cameras, live
// HTTP) is paced by a jitter buffer (WithJitterBuffer, 200 ms by default)
// rather than by its timestamps, so a probing burst or a stall is caught
// up rather than kept as delay. WithRTSPTransport picks TCP, UDP or HTTP
// tunnelling. WithReconnect reopens a network input that cannot be opened
// or a live one that breaks, with exponential backoff
// (PlayerReconnecting, PlayerReconnected); the first sample after it is a
// keyframe flagged FlagDiscont and timestamps go on forward. Keyframe
// requests from downstream are counted but cannot be honoured without
// re-encoding: connect through a transcoder, or use inputs with a short
// GOP, where a receiver must recover from loss quickly.
package endpoint
