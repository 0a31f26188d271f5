package codec

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/internal/ffmpeg"
)

// ResamplerFrame is the length of the frames a Resampler makes: 20 ms,
// what libopus takes (960 samples at 48 kHz) and what RTP usually carries
// of G.711 and G.722.
const ResamplerFrame = 20 * time.Millisecond

// Resampler converts raw audio (element.FormatRaw) to another sample rate,
// channel count or sample format, and cuts it into frames of
// ResamplerFrame, through an FFmpeg filter graph (aresample, aformat,
// asetnsamples). The input format is learned from the frames and may
// change; a frame that already has the format and length wanted passes
// through untouched. Output times follow the input's: the first sample
// out has the time of the first sample in.
//
// Upstream events reaching its src pad go on upstream. Its sink pad has a
// queue of its own (DefaultSampleQueueSize, Live) unless WithQueue or
// WithInline say otherwise; the filter graph is built on the sink pad's
// goroutine and freed by Close. At the end of a stream the samples still
// held come out in a last, shorter frame.
type Resampler struct {
	element.Base
	sink, src *element.Pad
	out       element.Caps
	format    ffmpeg.AudioFormat
	frameSize int
	pool      *ffmpeg.FramePool
	emitFn    func(*ffmpeg.Frame) error

	// Used only on the sink pad's goroutine, then by Close.
	conv    *ffmpeg.AudioConverter
	flags   element.Flags
	frames  atomic.Uint64
	samples atomic.Uint64
}

// NewResampler returns a resampler named name making raw audio caps out,
// which must name the rate, the channels and the sample format. Its sink
// pad takes raw audio of any format.
func NewResampler(name string, out element.Caps, opts ...Option) (*Resampler, error) {
	if out.Kind != element.KindAudio || out.Format != element.FormatRaw {
		return nil, fmt.Errorf("codec: resampler %s: caps %v are not raw audio", name, out)
	}
	format, err := audioFormat(out)
	if err != nil {
		return nil, fmt.Errorf("codec: resampler %s: %w", name, err)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	r := &Resampler{
		Base:      element.NewBase(name),
		out:       out,
		format:    format,
		frameSize: int(time.Duration(format.SampleRate) * ResamplerFrame / time.Second),
		pool:      ffmpeg.NewFramePool(),
	}
	r.emitFn = r.emit
	in := element.Caps{Kind: element.KindAudio, Format: element.FormatRaw}
	r.sink = element.NewSinkPad("sink", element.CapsList{in}, r.chain, cfg.heavySinkOptions(r.sinkEvent, DefaultSampleQueueSize)...)
	r.src = element.NewSrcPad("src", element.CapsList{out}, element.WithEventHandler(func(ev element.Event) {
		r.sink.SendUpstream(ev)
	}))
	r.AddPad(r.sink, r.src)
	if err := r.src.SetCaps(out); err != nil {
		return nil, err
	}
	return r, nil
}

// SinkPad returns the input pad.
func (r *Resampler) SinkPad() *element.Pad { return r.sink }

// SrcPad returns the output pad.
func (r *Resampler) SrcPad() *element.Pad { return r.src }

// FrameSize returns the number of samples per channel in each frame made.
func (r *Resampler) FrameSize() int { return r.frameSize }

func (r *Resampler) sinkEvent(ev element.Event) {
	switch ev.(type) {
	case element.CapsEvent:
		return // frames say their format
	case element.EOSEvent:
		if r.conv != nil {
			if err := r.conv.Flush(r.emitFn); err != nil {
				r.PostError(fmt.Errorf("codec: resampler %s: %w", r.Name(), err))
			}
		}
	case element.DiscontEvent:
		r.flags |= element.FlagDiscont
	}
	_ = r.src.PushEvent(ev)
}

func (r *Resampler) chain(b *element.Buffer) error {
	f, err := bufferFrame(b)
	if err != nil {
		return fmt.Errorf("codec: resampler %s: %w", r.Name(), err)
	}
	a := f.Audio()
	if a.SampleRate <= 0 {
		return fmt.Errorf("codec: resampler %s: not an audio frame", r.Name())
	}
	r.flags |= b.Flags & element.FlagDiscont
	if a == r.format && f.Samples() == r.frameSize && r.conv == nil {
		r.frames.Add(1)
		r.samples.Add(uint64(r.frameSize))
		r.src.Push(b)
		return nil
	}
	if r.conv == nil {
		c, err := ffmpeg.NewAudioConverter(r.format, r.frameSize, r.pool)
		if err != nil {
			return fmt.Errorf("codec: resampler %s: %w", r.Name(), err)
		}
		r.conv = c
	}
	if err := r.conv.ConvertAt(f, durationToTicks(b.PTS, uint32(a.SampleRate)), r.emitFn); err != nil {
		return fmt.Errorf("codec: resampler %s: %w", r.Name(), err)
	}
	return nil
}

// emit pushes one converted frame (the converter's reference, valid until
// emit returns).
func (r *Resampler) emit(g *ffmpeg.Frame) error {
	n := g.Samples()
	flags := element.FlagKeyframe | r.flags
	r.flags = 0
	b := NewFrameBuffer(g.Ref(), ticksToDuration(g.PTS(), r.format.SampleRate), ticksToDuration(int64(n), r.format.SampleRate), flags)
	r.frames.Add(1)
	r.samples.Add(uint64(n))
	r.src.Push(b)
	b.Unref()
	return nil
}

// Close frees the filter graph.
func (r *Resampler) Close() error {
	if r.conv != nil {
		r.conv.Close()
		r.conv = nil
	}
	r.pool.Close()
	return nil
}
