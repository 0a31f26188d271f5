package codec

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/internal/ffmpeg"
)

// Encoder encodes raw frames (element.FormatRaw, a *Frame in each buffer)
// into the samples of one codec (element.FormatSample) with FFmpeg:
// libvpx for VP8 and VP9, libx264 for H.264 (constrained baseline by
// default), libaom or SVT-AV1 for AV1, libopus, G.711 and G.722, all set up
// for real time (no lookahead, no B-frames).
//
// Video: any size of yuv420p; the encoder opens at the first frame's size
// and reopens, with a keyframe, when the size changes. Audio: the formats
// EncoderInput lists; frames of another length than the codec's frame size
// (libopus: 20 ms) are cut to it.
//
// A KeyframeRequest reaching its src pad makes the next frame a keyframe
// (the src pad merges requests to one per element.DefaultKeyframeInterval);
// keyframes come at least every WithKeyframeInterval too. A BitrateHint
// lowers the target bit rate to the hint, without restarting the stream
// (x264 follows at the next frame; libvpx, which FFmpeg 5.1 cannot
// reconfigure, reopens at its next keyframe); a hint of 0 restores
// WithBitrate's. Neither goes further upstream: the encoder answers them.
//
// Its sink pad has a queue of its own (DefaultFrameQueueSize for video,
// DefaultSampleQueueSize for audio, Live) unless WithQueue or WithInline
// say otherwise. The FFmpeg encoder opens on the first frame, on the sink
// pad's goroutine, and is freed by Close. An encoding error is posted as an
// element.Error once per episode; the stream goes on with the next frame.
type Encoder struct {
	element.Base
	codec     Codec
	sink, src *element.Pad
	cfg       config
	interval  time.Duration
	pool      *element.BufferPool
	emitFn    func(*ffmpeg.Packet) error
	encodeFn  func(*ffmpeg.Frame) error

	keyRequested atomic.Bool
	bitrate      atomic.Int64 // WithBitrate's or SetBitrate's; 0: DefaultBitrate
	hint         atomic.Int64
	target       atomic.Int64

	// Used only on the sink pad's goroutine, then by Close.
	enc      *ffmpeg.Encoder
	video    ffmpeg.VideoFormat
	audio    ffmpeg.AudioFormat
	recut    *ffmpeg.AudioConverter
	applied  int64 // the bit rate the encoder was last given
	rate     int   // the encoder's clock: 90000, or the sample rate
	lastPTS  int64
	started  bool
	lastKey  time.Duration
	keySeen  bool
	padding  int64
	duration time.Duration // of the frame being encoded
	failing  bool

	frames, packets, keyframes, kfRequests, errs atomic.Uint64
}

// EncoderStats are an Encoder's counters.
type EncoderStats struct {
	// Frames and Samples count the frames taken and the samples pushed.
	Frames, Samples uint64
	// Keyframes counts the keyframes made.
	Keyframes uint64
	// KeyframeRequests counts the keyframe requests that reached the
	// encoder (after its src pad merged them).
	KeyframeRequests uint64
	// Errors counts frames FFmpeg failed to encode.
	Errors uint64
	// Bitrate is the target bit rate now (0 before the first frame).
	Bitrate int64
}

// NewEncoder returns an encoder named name making the sample caps out
// (which name the codec). Its sink pad accepts EncoderInput(out); its src
// pad's caps are set to the codec's sample caps.
func NewEncoder(name string, out element.Caps, opts ...Option) (*Encoder, error) {
	c, ok := Lookup(out.Codec)
	if !ok || out.Kind != c.Kind {
		return nil, fmt.Errorf("%w: no encoder for %q", ErrUnknownCodec, out.Codec)
	}
	return newEncoder(name, c, opts...)
}

// EncoderInput returns the raw caps an Encoder of the codec that sample
// caps out name takes, most preferred first, and false when FFmpeg here has
// no encoder for it: yuv420p video of any size; Opus at 48, 24, 16, 12 or
// 8 kHz, stereo or mono, s16 or flt; G.711 at 8 kHz and G.722 at 16 kHz,
// mono s16.
func EncoderInput(out element.Caps) (element.CapsList, bool) {
	c, ok := Lookup(out.Codec)
	if !ok {
		return nil, false
	}
	return encoderInput(c)
}

func encoderInput(c Codec) (element.CapsList, bool) {
	if _, ok := ffmpeg.HasEncoder(c.Name); !ok {
		return nil, false
	}
	switch c.MIME {
	case MIMEVP8, MIMEVP9, MIMEH264, MIMEAV1:
		return element.CapsList{RawVideoCaps(0, 0, PixelFormatI420)}, true
	case MIMEOpus:
		// libopus takes these rates as they are: narrowband audio (G.711
		// at 8 kHz) is cheaper to encode than resampled to 48 kHz, and
		// sounds the same.
		var l element.CapsList
		for _, rate := range []int{48000, 24000, 16000, 12000, 8000} {
			for _, ch := range []int{2, 1} {
				l = append(l, RawAudioCaps(rate, ch, "s16"), RawAudioCaps(rate, ch, "flt"))
			}
		}
		return l, true
	case MIMEPCMU, MIMEPCMA:
		return element.CapsList{RawAudioCaps(8000, 1, "s16")}, true
	case MIMEG722:
		return element.CapsList{RawAudioCaps(16000, 1, "s16")}, true
	}
	return nil, false
}

// DefaultBitrate returns an encoder's target bit rate unless WithBitrate
// sets one: for video by frame size (300 kbit/s up to 320x240, 800 kbit/s
// up to 640x480, 2 Mbit/s up to 1280x720, else 4 Mbit/s), for Opus 32 kbit/s
// a channel. G.711 and G.722 run at their fixed 64 kbit/s.
func DefaultBitrate(c Codec, width, height, channels int) int64 {
	if c.Kind == element.KindAudio {
		if c.MIME == MIMEOpus {
			return 32000 * int64(max(channels, 1))
		}
		return 64000
	}
	switch px := width * height; {
	case px <= 320*240:
		return 300_000
	case px <= 640*480:
		return 800_000
	case px <= 1280*720:
		return 2_000_000
	}
	return 4_000_000
}

func newEncoder(name string, c Codec, opts ...Option) (*Encoder, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	in, ok := encoderInput(c)
	if !ok {
		return nil, fmt.Errorf("%w: FFmpeg here has no %s encoder", ErrUnknownCodec, c.Name)
	}
	e := &Encoder{
		Base:     element.NewBase(name),
		codec:    c,
		cfg:      cfg,
		interval: cfg.kfInterval,
	}
	e.bitrate.Store(cfg.bitrate)
	if e.interval == 0 {
		e.interval = DefaultKeyframeInterval
	}
	e.emitFn, e.encodeFn = e.emit, e.encodeCut
	size, queue := 2048, DefaultSampleQueueSize
	if c.Kind == element.KindVideo {
		size, queue = 16<<10, DefaultFrameQueueSize
	}
	e.pool = element.NewBufferPool(size)
	out := c.Caps(element.FormatSample)
	e.sink = element.NewSinkPad("sink", in, e.chain, cfg.heavySinkOptions(e.sinkEvent, queue)...)
	e.src = element.NewSrcPad("src", element.CapsList{out}, element.WithEventHandler(e.srcEvent))
	e.AddPad(e.sink, e.src)
	if err := e.src.SetCaps(out); err != nil {
		return nil, err
	}
	return e, nil
}

// Codec returns the codec the encoder makes.
func (e *Encoder) Codec() Codec { return e.codec }

// SinkPad returns the input pad (raw frames).
func (e *Encoder) SinkPad() *element.Pad { return e.sink }

// SrcPad returns the output pad (samples).
func (e *Encoder) SrcPad() *element.Pad { return e.src }

// RequestKeyframe makes the next frame a keyframe. It may be called from
// any goroutine.
func (e *Encoder) RequestKeyframe() {
	e.kfRequests.Add(1)
	e.keyRequested.Store(true)
}

// SetBitrate sets the target bit rate (bps > 0), as WithBitrate does,
// while the encoder runs; a bitrate hint from downstream still caps it. It
// may be called from any goroutine.
func (e *Encoder) SetBitrate(bps int64) {
	if bps > 0 {
		e.bitrate.Store(bps)
	}
}

// SetBitrateHint caps the target bit rate at bps (0: no cap), as a
// BitrateHint reaching the src pad does. It may be called from any
// goroutine.
func (e *Encoder) SetBitrateHint(bps int64) { e.hint.Store(max(bps, 0)) }

// Stats returns the encoder's counters.
func (e *Encoder) Stats() EncoderStats {
	return EncoderStats{
		Frames:           e.frames.Load(),
		Samples:          e.packets.Load(),
		Keyframes:        e.keyframes.Load(),
		KeyframeRequests: e.kfRequests.Load(),
		Errors:           e.errs.Load(),
		Bitrate:          e.target.Load(),
	}
}

// srcEvent answers the upstream events from the encoder's consumers.
func (e *Encoder) srcEvent(ev element.Event) {
	switch ev := ev.(type) {
	case element.KeyframeRequest:
		e.RequestKeyframe()
	case element.BitrateHint:
		e.SetBitrateHint(ev.BitsPerSecond)
	default:
		e.sink.SendUpstream(ev)
	}
}

func (e *Encoder) sinkEvent(ev element.Event) {
	switch ev.(type) {
	case element.CapsEvent, element.DiscontEvent:
		// The frames say their format; a gap in raw frames needs nothing.
	case element.EOSEvent:
		e.flush()
		_ = e.src.PushEvent(ev)
	default:
		_ = e.src.PushEvent(ev)
	}
}

// flush drains the encoder at the end of a stream.
func (e *Encoder) flush() {
	if e.enc == nil {
		return
	}
	if e.recut != nil {
		if err := e.recut.Flush(e.encodeFn); err != nil {
			e.postReport(err)
		}
	}
	if err := e.enc.Flush(e.emitFn); err != nil {
		e.postReport(err)
	}
}

// chain encodes one frame.
func (e *Encoder) chain(b *element.Buffer) error {
	f, err := bufferFrame(b)
	if err != nil {
		return e.report(err)
	}
	e.frames.Add(1)
	if err := e.prepare(f); err != nil {
		return e.report(err)
	}
	e.duration = b.Duration
	if e.codec.Kind == element.KindVideo {
		if e.keySeen && b.PTS-e.lastKey >= e.interval {
			e.keyRequested.Store(true)
		}
		if e.keyRequested.Swap(false) {
			e.enc.RequestKeyframe()
		}
		err = e.enc.EncodeAt(f, e.nextPTS(b.PTS), e.emitFn)
	} else {
		pts := e.nextPTS(b.PTS)
		// Once cutting, always: the converter holds samples back.
		if n := e.enc.FrameSize(); e.recut != nil || n > 0 && f.Samples() != n {
			err = e.cutAudio(f, pts, n)
		} else {
			err = e.enc.EncodeAt(f, pts, e.emitFn)
		}
	}
	if err != nil {
		return e.report(err)
	}
	e.failing = false
	return nil
}

// nextPTS converts a buffer's PTS to the encoder's clock, kept increasing.
func (e *Encoder) nextPTS(pts time.Duration) int64 {
	t := durationToTicks(pts, uint32(e.rate))
	if e.started && t <= e.lastPTS {
		t = e.lastPTS + 1
	}
	e.started, e.lastPTS = true, t
	return t
}

// cutAudio re-cuts frames to the encoder's frame size.
func (e *Encoder) cutAudio(f *ffmpeg.Frame, pts int64, size int) error {
	if e.recut == nil {
		c, err := ffmpeg.NewAudioConverter(e.audio, size, nil)
		if err != nil {
			return err
		}
		e.recut = c
	}
	return e.recut.ConvertAt(f, pts, e.encodeFn)
}

func (e *Encoder) encodeCut(g *ffmpeg.Frame) error {
	return e.enc.EncodeAt(g, g.PTS(), e.emitFn)
}

// prepare opens the encoder for f's format, or reopens it when the format
// changed, and applies bit rate changes.
func (e *Encoder) prepare(f *ffmpeg.Frame) error {
	v, a := f.Video(), f.Audio()
	if e.enc != nil && v == e.video && a == e.audio {
		e.applyBitrate()
		return nil
	}
	if e.enc != nil {
		// A new size or format: finish the old stream, start a new one
		// (with a keyframe).
		e.flush()
		e.closeCodec()
	}
	cfg := ffmpeg.EncoderConfig{
		Codec:   e.codec.Name,
		Threads: e.cfg.threads,
		Options: e.cfg.codecOpts,
	}
	if e.codec.Kind == element.KindVideo {
		if v.PixelFormat != astiav.PixelFormatYuv420P {
			return fmt.Errorf("codec: encoder %s takes yuv420p, got %v", e.Name(), v)
		}
		cfg.Width, cfg.Height = v.Width, v.Height
		cfg.Preset, cfg.Speed = e.cfg.preset, e.cfg.speed
		// Keyframes come by time (chain); the frame count is a backstop
		// for streams faster than 60 fps.
		cfg.KeyframeInterval = max(1, int(e.interval.Seconds()*60))
		if e.codec.MIME == MIMEH264 {
			cfg.Profile = e.cfg.profile
			if cfg.Profile == "" {
				cfg.Profile = "constrained_baseline"
			}
		}
		e.rate = 90000
	} else {
		if a.SampleRate == 0 {
			return fmt.Errorf("codec: encoder %s takes audio, got %v", e.Name(), v)
		}
		if _, ok := e.sink.Templates().Accepts(audioCaps(a)); !ok {
			return fmt.Errorf("codec: encoder %s does not take %v (see EncoderInput)", e.Name(), a)
		}
		cfg.SampleRate, cfg.Channels, cfg.SampleFormat = a.SampleRate, a.Channels, a.SampleFormat.Name()
		e.rate = a.SampleRate
	}
	if e.codec.MIME != MIMEPCMU && e.codec.MIME != MIMEPCMA && e.codec.MIME != MIMEG722 {
		cfg.BitRate = e.currentTarget(v.Width, v.Height, a.Channels)
	}
	enc, err := ffmpeg.NewEncoder(cfg)
	if err != nil {
		return err
	}
	e.enc, e.video, e.audio = enc, v, a
	e.applied = cfg.BitRate
	e.target.Store(cfg.BitRate)
	e.padding = int64(enc.InitialPadding())
	e.keyRequested.Store(false) // a new stream starts with a keyframe
	return nil
}

// currentTarget is the bit rate to aim at: WithBitrate's (or the default
// for the size) capped by the downstream hint.
func (e *Encoder) currentTarget(w, h, channels int) int64 {
	t := e.bitrate.Load()
	if t == 0 {
		t = DefaultBitrate(e.codec, w, h, channels)
	}
	if hint := e.hint.Load(); hint > 0 && hint < t {
		t = hint
	}
	return t
}

func (e *Encoder) applyBitrate() {
	if e.applied == 0 {
		return // fixed-rate codec
	}
	t := e.currentTarget(e.video.Width, e.video.Height, e.audio.Channels)
	if t != e.applied {
		e.enc.SetBitrate(t)
		e.applied = t
		e.target.Store(t)
	}
}

// emit pushes one packet as a sample.
func (e *Encoder) emit(p *ffmpeg.Packet) error {
	s := e.pool.Get()
	s.Data = append(s.Data, p.Data...)
	pts := p.PTS
	if e.codec.Kind == element.KindAudio {
		// The priming samples (Opus' pre-skip) are not counted: the first
		// packet has the first frame's time.
		pts += e.padding
	}
	s.PTS = ticksToDuration(pts, e.rate)
	if p.Duration > 0 {
		s.Duration = ticksToDuration(p.Duration, e.rate)
	} else if e.codec.Kind == element.KindVideo {
		s.Duration = e.duration
	}
	if p.Keyframe || e.codec.Kind == element.KindAudio {
		s.Flags |= element.FlagKeyframe
	}
	if p.Keyframe && e.codec.Kind == element.KindVideo {
		e.keyframes.Add(1)
		e.lastKey, e.keySeen = s.PTS, true
	}
	e.packets.Add(1)
	e.src.Push(s)
	s.Unref()
	return nil
}

// report counts an error and returns it to post, once per episode.
func (e *Encoder) report(err error) error {
	e.errs.Add(1)
	if e.failing {
		return nil
	}
	e.failing = true
	return fmt.Errorf("codec: encoder %s: %w", e.Name(), err)
}

// postReport is report for errors outside the ChainFunc (events).
func (e *Encoder) postReport(err error) {
	if err := e.report(err); err != nil {
		e.PostError(err)
	}
}

func (e *Encoder) closeCodec() {
	if e.enc != nil {
		e.enc.Close()
		e.enc = nil
	}
	if e.recut != nil {
		e.recut.Close()
		e.recut = nil
	}
	e.started = false
}

// Close frees the FFmpeg encoder.
func (e *Encoder) Close() error {
	e.closeCodec()
	return nil
}
