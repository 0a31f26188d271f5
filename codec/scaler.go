package codec

import (
	"fmt"
	"sync/atomic"

	"github.com/asticode/go-astiav"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/internal/ffmpeg"
)

// Scaler converts raw video (element.FormatRaw) to another size or pixel
// format with FFmpeg's swscale (bilinear). Its output caps name the pixel
// format and, optionally, the size: with a size, every frame is scaled to
// it; with 0 by 0, frames keep their size unless the sink the scaler feeds
// asks for one (its template names a size), which they are then scaled to.
// A frame that already has the format wanted passes through untouched.
//
// Upstream events reaching its src pad go on upstream. Its sink pad has a
// queue of its own (DefaultFrameQueueSize, Live) unless WithQueue or
// WithInline say otherwise; the swscale context is made on the sink pad's
// goroutine and freed by Close.
type Scaler struct {
	element.Base
	sink, src *element.Pad
	out       element.Caps
	outPix    astiav.PixelFormat
	pool      *ffmpeg.FramePool

	// Used only on the sink pad's goroutine, then by Close.
	sc        *ffmpeg.Scaler
	announced element.Caps

	scaled, passed atomic.Uint64
}

// ScalerStats are a Scaler's counters.
type ScalerStats struct {
	// Scaled counts the frames converted, Passed those passed on as they
	// came.
	Scaled, Passed uint64
}

// NewScaler returns a scaler named name making raw video caps out (a
// pixel format, yuv420p if empty, and a size or 0 by 0). Its sink pad takes
// raw video of any size and pixel format.
func NewScaler(name string, out element.Caps, opts ...Option) (*Scaler, error) {
	if out.Kind != element.KindVideo || out.Format != element.FormatRaw {
		return nil, fmt.Errorf("codec: scaler %s: caps %v are not raw video", name, out)
	}
	if (out.Width == 0) != (out.Height == 0) || out.Width < 0 || out.Height < 0 {
		return nil, fmt.Errorf("codec: scaler %s: size %dx%d", name, out.Width, out.Height)
	}
	if out.PixelFormat == "" {
		out.PixelFormat = PixelFormatI420
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &Scaler{Base: element.NewBase(name), out: out, pool: ffmpeg.NewFramePool()}
	if s.outPix, err = pixelFormat(out.PixelFormat); err != nil {
		return nil, err
	}
	in := element.Caps{Kind: element.KindVideo, Format: element.FormatRaw}
	s.sink = element.NewSinkPad("sink", element.CapsList{in}, s.chain, cfg.heavySinkOptions(s.sinkEvent, DefaultFrameQueueSize)...)
	s.src = element.NewSrcPad("src", element.CapsList{out}, element.WithEventHandler(func(ev element.Event) {
		s.sink.SendUpstream(ev)
	}))
	s.AddPad(s.sink, s.src)
	if err := s.src.SetCaps(out); err != nil {
		return nil, err
	}
	s.announced = out
	return s, nil
}

// SinkPad returns the input pad.
func (s *Scaler) SinkPad() *element.Pad { return s.sink }

// SrcPad returns the output pad.
func (s *Scaler) SrcPad() *element.Pad { return s.src }

// Stats returns the scaler's counters.
func (s *Scaler) Stats() ScalerStats {
	return ScalerStats{Scaled: s.scaled.Load(), Passed: s.passed.Load()}
}

func (s *Scaler) sinkEvent(ev element.Event) {
	if _, ok := ev.(element.CapsEvent); ok {
		return // frames say their format
	}
	_ = s.src.PushEvent(ev)
}

func (s *Scaler) chain(b *element.Buffer) error {
	f, err := bufferFrame(b)
	if err != nil {
		return fmt.Errorf("codec: scaler %s: %w", s.Name(), err)
	}
	have := f.Video()
	if have.Width <= 0 {
		return fmt.Errorf("codec: scaler %s: not a video frame", s.Name())
	}
	want := fitVideo(s.src, s.out, s.outPix, have)
	if err := s.announce(want); err != nil {
		return err
	}
	if want == have {
		s.passed.Add(1)
		s.src.Push(b)
		return nil
	}
	if s.sc == nil || s.sc.Format() != want {
		if s.sc != nil {
			s.sc.Close()
			s.sc = nil
		}
		sc, err := ffmpeg.NewScaler(want, s.pool)
		if err != nil {
			return fmt.Errorf("codec: scaler %s: %w", s.Name(), err)
		}
		s.sc = sc
	}
	g, err := s.sc.Scale(f)
	if err != nil {
		return fmt.Errorf("codec: scaler %s: %w", s.Name(), err)
	}
	s.scaled.Add(1)
	out := NewFrameBuffer(g, b.PTS, b.Duration, b.Flags|element.FlagKeyframe)
	s.src.Push(out)
	out.Unref()
	return nil
}

// announce sets the src pad's caps to the size made, when it changes.
func (s *Scaler) announce(v ffmpeg.VideoFormat) error {
	c := RawVideoCaps(v.Width, v.Height, s.out.PixelFormat)
	if c == s.announced {
		return nil
	}
	if err := s.src.SetCaps(c); err != nil {
		return err
	}
	s.announced = c
	return nil
}

// Close frees the swscale context.
func (s *Scaler) Close() error {
	if s.sc != nil {
		s.sc.Close()
		s.sc = nil
	}
	s.pool.Close()
	return nil
}
