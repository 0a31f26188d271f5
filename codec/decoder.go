package codec

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/internal/ffmpeg"
)

// Decoder decodes the samples of one codec (element.FormatSample) into raw
// frames (element.FormatRaw) with FFmpeg: VP8, VP9, H.264 and AV1 into
// yuv420p video, Opus into 48 kHz planar float, G.711 and G.722 into s16
// (see the package documentation for raw caps). Each output buffer carries
// a *Frame and holds a reference to it, dropped when the buffer's last
// reference goes.
//
// Video waits for a keyframe: at the start, and after a decoding error or a
// frame FFmpeg flags as damaged, which it drops, asking upstream for a
// keyframe (a KeyframeRequest from its sink pad). An error is posted as an
// element.Error once per episode, never more often; the stream goes on.
// Keyframe requests and bitrate hints that reach its src pad from raw
// consumers stop here: every raw frame stands alone.
//
// Its sink pad has a queue of its own (DefaultSampleQueueSize, Live) unless
// WithQueue or WithInline say otherwise. The FFmpeg decoder opens on the
// first sample, on the sink pad's goroutine, and is freed by Close.
type Decoder struct {
	element.Base
	codec     Codec
	sink, src *element.Pad
	out       element.Caps // the src pad's template
	outPix    astiav.PixelFormat
	outAudio  ffmpeg.AudioFormat
	rate      int // clock of the decoder's timestamps: 90000, or the sample rate
	cfg       config
	pool      *ffmpeg.FramePool
	emitFn    func(*ffmpeg.Frame) error

	// Used only on the sink pad's goroutine, then by Close.
	dec       *ffmpeg.Decoder
	openErr   error
	scaler    *ffmpeg.Scaler
	resampler *ffmpeg.AudioConverter
	announced element.Caps
	waitKey   bool // video: drop samples until a keyframe
	failing   bool // an error was posted for the current episode
	discont   bool // flag the next frame FlagDiscont
	sample    *element.Buffer

	frames, dropped, errs, kfRequests atomic.Uint64
}

// DecoderStats are a Decoder's counters.
type DecoderStats struct {
	// Frames counts the frames pushed.
	Frames uint64
	// DroppedSamples counts samples not decoded while waiting for a
	// keyframe, and frames FFmpeg flagged as damaged.
	DroppedSamples uint64
	// Errors counts samples FFmpeg failed to decode.
	Errors uint64
	// KeyframeRequests counts the keyframe requests sent upstream.
	KeyframeRequests uint64
}

// NewDecoder returns a decoder named name for the sample caps in (which
// name the codec and, for audio, the channels). Its src pad produces the
// raw caps DecoderOutput gives, already set.
func NewDecoder(name string, in element.Caps, opts ...Option) (*Decoder, error) {
	c, ok := Lookup(in.Codec)
	if !ok {
		return nil, fmt.Errorf("%w: no decoder for %q", ErrUnknownCodec, in.Codec)
	}
	out, ok := DecoderOutput(in)
	if !ok {
		return nil, fmt.Errorf("%w: no decoder for %v", ErrUnknownCodec, in)
	}
	return newDecoder(name, c, out, opts...)
}

// DecoderOutput returns the raw caps a Decoder makes from sample caps in:
// for video yuv420p of in's size (0 by 0 when in, like most, names none);
// for audio the codec's decoding rate, in's channels (or the codec's) and
// the decoder's native sample format. It reports false when FFmpeg here
// has no decoder for in's codec.
func DecoderOutput(in element.Caps) (element.Caps, bool) {
	c, ok := Lookup(in.Codec)
	if !ok || in.Kind != c.Kind {
		return element.Caps{}, false
	}
	if _, ok := ffmpeg.HasDecoder(c.Name); !ok {
		return element.Caps{}, false
	}
	if c.Kind == element.KindVideo {
		return RawVideoCaps(in.Width, in.Height, PixelFormatI420), true
	}
	rate, ch, sf := decodedAudio(c)
	if in.Channels != 0 && c.MIME != MIMEOpus {
		ch = int(in.Channels)
	}
	return RawAudioCaps(rate, ch, sf), true
}

// decodedAudio is what FFmpeg's decoder of an audio codec makes: its
// sample rate (G.722 samples at 16 kHz on an 8 kHz RTP clock), channels
// and native sample format.
func decodedAudio(c Codec) (rate, channels int, sf string) {
	switch c.MIME {
	case MIMEOpus:
		return 48000, 2, "fltp"
	case MIMEG722:
		return 16000, 1, "s16"
	case MIMEAAC:
		return 48000, 2, "fltp"
	}
	return int(c.ClockRate), max(int(c.Channels), 1), "s16"
}

func newDecoder(name string, c Codec, out element.Caps, opts ...Option) (*Decoder, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	d := &Decoder{
		Base:    element.NewBase(name),
		codec:   c,
		out:     out,
		cfg:     cfg,
		pool:    ffmpeg.NewFramePool(),
		waitKey: c.Keyframes,
	}
	d.emitFn = d.emit
	if c.Kind == element.KindVideo {
		if d.outPix, err = pixelFormat(out.PixelFormat); err != nil {
			return nil, err
		}
		d.rate = 90000
	} else {
		if d.outAudio, err = audioFormat(out); err != nil {
			return nil, err
		}
		d.rate = d.outAudio.SampleRate
	}
	in := element.Caps{Kind: c.Kind, Format: element.FormatSample, Codec: c.MIME}
	d.sink = element.NewSinkPad("sink", element.CapsList{in}, d.chain, cfg.heavySinkOptions(d.sinkEvent, DefaultSampleQueueSize)...)
	d.src = element.NewSrcPad("src", element.CapsList{out}, element.WithEventHandler(d.srcEvent))
	d.AddPad(d.sink, d.src)
	if err := d.src.SetCaps(out); err != nil {
		return nil, err
	}
	d.announced = out
	return d, nil
}

// Codec returns the codec the decoder reads.
func (d *Decoder) Codec() Codec { return d.codec }

// SinkPad returns the input pad (samples).
func (d *Decoder) SinkPad() *element.Pad { return d.sink }

// SrcPad returns the output pad (raw frames).
func (d *Decoder) SrcPad() *element.Pad { return d.src }

// Stats returns the decoder's counters.
func (d *Decoder) Stats() DecoderStats {
	return DecoderStats{
		Frames:           d.frames.Load(),
		DroppedSamples:   d.dropped.Load(),
		Errors:           d.errs.Load(),
		KeyframeRequests: d.kfRequests.Load(),
	}
}

// srcEvent takes the upstream events from raw consumers: keyframe requests
// and bitrate hints mean nothing for raw frames and stop here; others go
// on upstream.
func (d *Decoder) srcEvent(ev element.Event) {
	switch ev.(type) {
	case element.KeyframeRequest, element.BitrateHint:
	default:
		d.sink.SendUpstream(ev)
	}
}

func (d *Decoder) sinkEvent(ev element.Event) {
	switch ev.(type) {
	case element.CapsEvent:
		// The src pad's caps are fixed; the pipeline renegotiates when the
		// codec changes.
	case element.DiscontEvent:
		// A queue dropped samples; for video it passes nothing but a
		// keyframe next.
		d.discont = true
		if d.codec.Keyframes {
			d.waitKey = true
		}
	case element.EOSEvent:
		if d.dec != nil {
			if err := d.dec.Flush(d.emitFn); err != nil {
				if err := d.fail(err); err != nil {
					d.PostError(err)
				}
			}
			// A stream after this one starts afresh, from a keyframe.
			d.waitKey = d.codec.Keyframes
		}
		_ = d.src.PushEvent(ev)
	default:
		_ = d.src.PushEvent(ev)
	}
}

// chain decodes one sample.
func (d *Decoder) chain(b *element.Buffer) error {
	if b.Flags&element.FlagDiscont != 0 {
		d.discont = true
	}
	if d.waitKey && !b.Keyframe() {
		d.dropped.Add(1)
		d.requestKeyframe()
		return nil
	}
	if d.dec == nil {
		if d.openErr != nil {
			d.dropped.Add(1)
			return nil
		}
		if err := d.open(); err != nil {
			d.openErr = err
			return err
		}
	}
	d.waitKey = false
	d.sample = b
	err := d.dec.Decode(b.Data, durationToTicks(b.PTS, uint32(d.rate)), b.Keyframe(), d.emitFn)
	d.sample = nil
	if err != nil {
		return d.fail(err)
	}
	return nil
}

// fail records a decoding error: video waits for a keyframe and asks for
// one. It returns the error to post, or nil if this episode posted one.
func (d *Decoder) fail(err error) error {
	d.errs.Add(1)
	d.discont = true
	if d.codec.Keyframes {
		d.waitKey = true
		d.requestKeyframe()
	}
	if d.failing {
		return nil
	}
	d.failing = true
	return fmt.Errorf("codec: decoder %s: %w", d.Name(), err)
}

func (d *Decoder) requestKeyframe() {
	if d.codec.Keyframes {
		d.kfRequests.Add(1)
		d.sink.RequestKeyframe()
	}
}

func (d *Decoder) open() error {
	cfg := ffmpeg.DecoderConfig{Codec: d.codec.Name, Threads: d.cfg.threads, Options: d.cfg.codecOpts}
	if d.codec.Kind == element.KindAudio {
		rate, ch, _ := decodedAudio(d.codec)
		cfg.SampleRate, cfg.Channels = rate, ch
		if d.codec.MIME != MIMEOpus {
			cfg.Channels = d.outAudio.Channels
		}
		cfg.TimeBase = astiav.NewRational(1, d.rate)
	}
	dec, err := ffmpeg.NewDecoder(cfg, d.pool)
	if err != nil {
		return fmt.Errorf("codec: decoder %s: %w", d.Name(), err)
	}
	d.dec = dec
	return nil
}

// emit takes one decoded frame (the decoder's reference, valid until emit
// returns), brings it to the caps downstream takes and pushes it.
func (d *Decoder) emit(f *ffmpeg.Frame) error {
	if f.Corrupt() {
		// Concealed errors or missing references: never pass a damaged
		// picture on.
		d.dropped.Add(1)
		d.discont = true
		if d.codec.Keyframes {
			d.waitKey = true
			d.requestKeyframe()
		}
		return nil
	}
	var pts time.Duration
	if p := f.PTS(); p != astiav.NoPtsValue {
		pts = ticksToDuration(p, d.rate)
	} else if d.sample != nil {
		pts = d.sample.PTS
	}
	if d.codec.Kind == element.KindVideo {
		return d.emitVideo(f, pts)
	}
	if f.Audio() == d.outAudio {
		return d.push(f.Ref(), pts)
	}
	if d.resampler == nil {
		r, err := ffmpeg.NewAudioConverter(d.outAudio, 0, d.pool)
		if err != nil {
			return err
		}
		d.resampler = r
	}
	return d.resampler.Convert(f, func(g *ffmpeg.Frame) error {
		return d.push(g.Ref(), ticksToDuration(g.PTS(), d.outAudio.SampleRate))
	})
}

func (d *Decoder) emitVideo(f *ffmpeg.Frame, pts time.Duration) error {
	have := f.Video()
	want := fitVideo(d.src, d.out, d.outPix, have)
	if want == have {
		return d.push(f.Ref(), pts)
	}
	if d.scaler == nil || d.scaler.Format() != want {
		if d.scaler != nil {
			d.scaler.Close()
		}
		s, err := ffmpeg.NewScaler(want, d.pool)
		if err != nil {
			d.scaler = nil
			return err
		}
		d.scaler = s
	}
	g, err := d.scaler.Scale(f)
	if err != nil {
		return err
	}
	return d.push(g, pts)
}

// push sends frame f, whose reference it takes over, downstream.
func (d *Decoder) push(f *ffmpeg.Frame, pts time.Duration) error {
	// Every raw frame stands alone: a full raw queue downstream drops only
	// until the next one.
	flags := element.FlagKeyframe
	caps := d.out
	if v := f.Video(); v.Width > 0 {
		caps = RawVideoCaps(v.Width, v.Height, d.out.PixelFormat)
	}
	if caps != d.announced {
		if err := d.src.SetCaps(caps); err != nil {
			f.Unref()
			return err
		}
		d.announced = caps
	}
	if d.discont {
		flags |= element.FlagDiscont
		d.discont = false
	}
	var dur time.Duration
	if n := f.Samples(); n > 0 {
		dur = ticksToDuration(int64(n), d.outAudio.SampleRate)
	} else if d.sample != nil {
		dur = d.sample.Duration
	}
	d.failing = false
	d.frames.Add(1)
	b := NewFrameBuffer(f, pts, dur, flags)
	d.src.Push(b)
	b.Unref()
	return nil
}

// Close frees the FFmpeg decoder and what it holds. Frames already pushed
// stay valid until their buffers are released.
func (d *Decoder) Close() error {
	if d.dec != nil {
		d.dec.Close()
		d.dec = nil
	}
	if d.scaler != nil {
		d.scaler.Close()
		d.scaler = nil
	}
	if d.resampler != nil {
		d.resampler.Close()
		d.resampler = nil
	}
	d.pool.Close()
	return nil
}
