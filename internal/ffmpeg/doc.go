// Package ffmpeg is medley's layer over go-astiav v0.16.0 (FFmpeg 5.1): the
// decoders, encoders, scalers and audio converters that codec's elements
// wrap, and the muxers and demuxers under endpoint's Recorder and Player, as plain Go types that fix go-astiav's traps once (see
// shared/notes/ffmpeg.md) so that no caller meets them again.
//
// # Types
//
//   - Frame: a reference-counted raw video or audio frame (Ref, Unref) from
//     a FramePool, recycled by format; its planes are Go slices over FFmpeg
//     memory. Every AVFrame is freed exactly once, by its pool.
//   - Decoder: packet bytes with a timestamp in, frames out through a
//     callback. Input gets FFmpeg's 64-byte padding.
//   - Encoder: frames in, packets out through a callback, with real-time
//     defaults (x264 tune=zerolatency, libvpx deadline=realtime cpu-used=8,
//     no lookahead), RequestKeyframe and SetBitrate.
//   - Scaler: swscale to one size and pixel format, into pooled frames.
//   - AudioConverter: sample rate, sample format and channel conversion and
//     fixed-size frames through an FFmpeg filter graph (go-astiav v0.16.0
//     has no swresample).
//   - Muxer, Demuxer: containers (WebM, Matroska, MP4, fragmented MP4 out;
//     whatever FFmpeg demuxes in) over files, URLs or Go readers and
//     writers, through custom IO and an atomic interrupt flag of our own
//     (format.c: no handle left in go-astiav's global map, Close unblocks a
//     read stuck on the network); H.264 and AV1 codec headers are built from
//     the first keyframe, video before it is dropped; the trailer is written
//     and the context freed exactly once. ReadPacket copies a packet into
//     Go memory; ReadPacketRef reads into a reusable DemuxedPacket whose
//     Data stays in FFmpeg's memory until the next read into it or its
//     Free (one C call per read, no copy): what the Player sends.
//   - For tests: SynthesizeVideo and SynthesizeAudio make media, Probe and
//     DecodeErrors ask ffprobe and ffmpeg about a file.
//
// # What is fixed here
//
//   - Ownership: frames from decoders and filter graphs are received into
//     empty pooled frames and unreferenced when their holders let go;
//     frames sent to an encoder stay the caller's (the encoder sends its own
//     reference) and a pool hands out fresh buffers while FFmpeg still holds
//     old ones; filter contexts are taken out of go-astiav's global map
//     before their graph is freed; Parse's in/out lists are freed by their
//     heads only.
//   - Keyframes: the picture type of frames out of a decoder is reset
//     before encoding, so only the keyframe interval and RequestKeyframe
//     make keyframes.
//   - Options: private options go through the dictionary given to Open,
//     and a key left unused fails with ErrUnknownOption instead of being
//     ignored.
//   - Bit rate: x264 is opened with VBV maxrate and bufsize and follows
//     SetBitrate at the next frame; libvpx (which ignores changes in FFmpeg
//     5.1) is reopened at its next keyframe.
//   - Errors: *Error names the component and the operation ("ffmpeg:
//     libx264 encoder: send frame: ...") and unwraps to go-astiav's error,
//     so errors.Is(err, astiav.ErrEagain) holds; sentinels ErrUnknownCodec,
//     ErrUnknownOption, ErrFormat, ErrClosed.
//   - Logs: FFmpeg's logger stays at error level on stderr unless the host
//     opts in with SetLogger, which routes it to log/slog through a cgo
//     shim of our own (bounded vsnprintf; safe on FFmpeg's threads; a
//     panicking handler is recovered). astiav.SetLogCallback is never used:
//     it overflows a stack buffer on long lines.
//   - Accounting: LiveObjects counts the FFmpeg objects the wrappers hold
//     (frames, packets, codec, filter, scale and format contexts),
//     so tests can show them flat in steady state and zero after Close.
//
// # Threads
//
// Decoder, Encoder, Scaler and AudioConverter belong to one goroutine each
// (FFmpeg contexts are not goroutine-safe); Encoder's RequestKeyframe and
// SetBitrate, FramePool and Frame's Ref/Unref may be used from any. FFmpeg
// threads default to 1 per codec and split slices, not frames: with many
// sessions on few cores, more threads than cores only add latency.
//
// # cgo and go-astiav
//
// shim.c adds what go-astiav v0.16.0 lacks: frame planes as slices,
// av_frame_make_writable, padded packet input, rate-control and channel
// layout fields, and the log bridge. For packets and codec contexts it reads
// the C pointer go-astiav keeps in its first field (checked at compile time
// by struct size and at the first Open by value, failing with ErrBinding);
// a move to a newer go-astiav revisits cgo.go.
package ffmpeg
