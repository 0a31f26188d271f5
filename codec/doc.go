// Package codec holds medley's codecs: a registry of the codecs medley
// knows, RTP payloader and depayloader elements, FFmpeg decoder, encoder,
// scaler and resampler elements, and the converters the pipeline chains
// when caps differ. Importing it registers those converters with
// pipeline.DefaultRegistry (RegisterConverters does it for a registry of
// your own), as importing image/png registers PNG with package image, so
// that connecting a VP8 RTP src pad to a sink that takes H.264 RTP inserts
// depayloader → decoder → encoder → payloader by itself.
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
// # Raw media
//
// Decoded media travels as element.FormatRaw: each buffer's Frame is a
// *Frame (a reference-counted FFmpeg frame; FramePool makes them) and the
// buffer holds one reference to it, dropped when the buffer's last
// reference goes (NewFrameBuffer makes such buffers). The frame is
// read-only once pushed, like the buffer. Buffer.PTS is the frame's time;
// the Frame's own timestamp is its maker's business. Every raw buffer
// carries FlagKeyframe: a raw frame stands alone, so a full raw queue
// drops only until the next one.
//
// Raw video caps: RawVideoCaps(width, height, pixel format), the pixel
// format in FFmpeg's words (PixelFormatI420, "yuv420p", is what decoders
// make and encoders take). A size of 0 by 0 means any size: frames carry
// theirs. An element whose output caps leave the size open (a Decoder, a
// Scaler) announces the size it makes with SetCaps at the first frame and
// whenever it changes; and when the sink it feeds asks for a size (its
// template names one) that is not the stream's, it scales to that size,
// so that a sink asking 320x180 behind an RTP source gets 320x180 frames.
//
// Raw audio caps: RawAudioCaps(sample rate, channels, sample format), all
// three always set; ClockRate is the sample rate (G.722 decodes to 16 kHz
// although its RTP clock is 8 kHz) and the sample format is FFmpeg's name
// ("s16", "flt", "fltp"). Decoders make their codec's native format (Opus
// 48 kHz fltp, G.711 8 kHz s16, G.722 16 kHz s16); a Resampler makes
// frames of ResamplerFrame (20 ms); an Encoder cuts whatever it gets to
// its codec's frame size.
//
// # Decoders, encoders, scalers, resamplers
//
// Decoder, Encoder, Scaler and Resampler wrap FFmpeg (go-astiav, FFmpeg
// 5.1) through internal/ffmpeg. They are heavy: each has a sink pad with a
// queue and goroutine of its own (WithQueue sets its size and policy;
// WithInline runs it on the feeder's goroutine instead). Each FFmpeg
// context has one owner, that goroutine: it is opened at the first buffer
// and freed by Close, which the pipeline calls once the goroutine has
// ended. Errors (a corrupt sample, an encoder that cannot open) become
// element.Error messages, one per episode, never a crash; the stream goes
// on. A video decoder drops what it cannot decode and frames FFmpeg flags
// as damaged, and asks upstream for a keyframe; keyframe requests and
// bitrate hints from its raw consumers stop at it. An encoder answers
// them: a KeyframeRequest makes the next frame a keyframe, a BitrateHint
// lowers its target (see Encoder). Encoders are set up for real time:
// libx264 veryfast with zerolatency, constrained baseline, VBV; libvpx
// realtime cpu-used 8; libopus; one thread each unless WithThreads.
//
// # Automatic transcoding
//
// Besides a depayloader and a payloader per codec, RegisterConverters adds
// a decoder ("vp8-dec") for every RTP codec FFmpeg decodes here, an
// encoder ("h264-enc") for every one it encodes (VP8, VP9, H.264, AV1,
// Opus, PCMU, PCMA, G.722), a scaler ("scale") and a resampler
// ("resample"). Their outputs are fixed caps from short lists, so that the
// pipeline's breadth-first search stays small: decoders and encoders one
// each; the scaler yuv420p of any size (fitted to the sink, see above)
// and five other pixel formats; the resampler 48, 16 and 8 kHz, mono and
// stereo, s16, flt and fltp. So Connect builds, among others:
//
//	VP8 RTP  → H.264 RTP   vp8-depay → vp8-dec → h264-enc → h264-pay
//	Opus RTP → PCMU RTP    opus-depay → opus-dec → resample → pcmu-enc → pcmu-pay
//	PCMU RTP → Opus RTP    pcmu-depay → pcmu-dec → opus-enc → opus-pay (libopus takes 8 kHz)
//	VP8 RTP  → raw video   vp8-depay → vp8-dec
//	raw 720p → raw 360p    scale
//
// announced by element.TranscodingStateChanged and drawn by DOT.
// pipeline.WithoutTranscoding turns all of it off. Inserted converters
// have Live queues (real time: they drop rather than block) and default
// settings: the encoder's bit rate is DefaultBitrate's for the frame size,
// lowered by the bitrate hints of the sink. AAC has no converters (no RTP
// payloader, and its decoder needs the stream's global header).
//
// # Limits
//
// VP9 spatial layers are concatenated, not assembled into superframes;
// H.264 packetization-mode 2 (interleaved) is not supported, and an H.264
// encoder feeding a packetization-mode 0 payloader must be told to keep
// its NAL units under the MTU (WithCodecOption("slice-max-size", ...)),
// which inserted encoders are not. libvpx (VP8, VP9) follows a bitrate
// change only at its next keyframe (FFmpeg 5.1 cannot reconfigure it).
package codec
