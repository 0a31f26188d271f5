// Package codec holds medley's codecs: a registry of the codecs medley
// knows, RTP payloader and depayloader elements, and the converters the
// pipeline chains when caps differ. Importing it registers those
// converters with pipeline.DefaultRegistry (RegisterConverters does it for
// a registry of your own), as importing image/png registers PNG with
// package image, so that connecting an RTP src pad to a sink that takes
// samples inserts a depayloader by itself.
//
// # Registry
//
// Lookup("video/H264") returns a Codec: a plain struct with the MIME type,
// clock rate, channels, default fmtp and its variants (H.264 constrained
// baseline and high, packetization-mode 1 and 0), the payload type a
// payloader writes by default (the static ones of RFC 3551 for PCMU, PCMA
// and G.722) and the RTP rules: whether frames depend on keyframes, and
// whether the marker bit ends a frame. Codec.Caps builds the fixed caps of
// a codec in a format. VP8Keyframe, VP9Keyframe, H264Keyframe and
// AV1Keyframe find keyframes in RTP payloads. Known codecs: VP8, VP9,
// H.264, AV1, Opus, PCMU, PCMA, G.722 and AAC (AAC for files; no RTP).
//
// # Payloaders and depayloaders
//
// A Depayloader turns RTP packets (element.FormatRTP) into samples
// (element.FormatSample): one access unit per buffer, PTS from the RTP
// timestamp counted from the first packet, Duration for audio,
// FlagKeyframe on keyframes, FlagDiscont on the first sample after a loss.
// It never emits a frame one of whose packets is missing: a sequence gap
// drops the frame it damages and, for video, every frame until the next
// keyframe, which it asks for with a KeyframeRequest upstream. It waits for
// a keyframe at the start of a stream too. A Payloader does the reverse,
// cutting samples into packets within an MTU (WithMTU), with a sequence
// number, SSRC and payload type of its own, the marker bit on a video
// frame's last packet, FlagKeyframe on a keyframe's first. Both have an
// inline sink pad (no goroutine, no queue) unless WithQueue, take their
// buffers from pools and allocate nothing per packet in steady state.
//
// Sample formats: VP8 and VP9 frames as their encoders write them; H.264
// access units in Annex B (a depayloader writes 4-byte start codes; a
// payloader drops access unit delimiters and filler data); AV1 temporal
// units in the low overhead format, a temporal delimiter first and every
// OBU with obu_size; Opus packets; G.711 and G.722 bytes. Format
// parameters (fmtp) are RTP caps' business: sample caps carry none, and a
// payloader converter offers each of its codec's fmtp variants.
//
// pion/rtp's codecs package is used where it serves; the payloaders and
// the H.264, VP9 and AV1 depacketizers are medley's own because pion's
// allocate per packet (or, for VP9, grow without bound when reused), and
// the VP8 descriptor parser because it measured twice as fast on the hot
// path. BenchmarkRTPRoundTrip and BenchmarkPionRTPRoundTrip compare them.
//
// Not implemented yet (issue 3, second part): the FFmpeg (go-astiav)
// Decoder, Encoder, Scaler and Resampler elements, so that Connect cannot
// yet transcode between codecs, only depayload and payload. VP9 spatial
// layers are concatenated, not assembled into superframes; H.264
// packetization-mode 2 (interleaved) is not supported.
package codec
