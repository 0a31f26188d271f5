package ffmpeg

import (
	"fmt"

	"github.com/asticode/go-astiav"
)

// Scaler converts video frames to one size and pixel format with swscale,
// into frames from a pool. It is not safe for concurrent use.
type Scaler struct {
	dst   VideoFormat
	src   VideoFormat // what ssc was made for
	flags astiav.SoftwareScaleContextFlags
	ssc   *astiav.SoftwareScaleContext
	pool  *FramePool
	owned bool
}

// NewScaler returns a scaler to dst. Frames come from pool, or from a pool
// of the scaler's own if pool is nil. The source format is learned from the
// frames and may change between them. Scaling is bilinear.
func NewScaler(dst VideoFormat, pool *FramePool) (*Scaler, error) {
	if !dst.valid() {
		return nil, wrap("swscale", "scaler", "new", fmt.Errorf("%w: %v", ErrFormat, dst))
	}
	s := &Scaler{dst: dst, pool: pool, flags: astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBilinear)}
	if s.pool == nil {
		s.pool, s.owned = NewFramePool(), true
	}
	return s, nil
}

// Format returns the format frames are scaled to.
func (s *Scaler) Format() VideoFormat { return s.dst }

// Scale returns src in the scaler's format, with src's timestamp: a new
// frame holding one reference, which the caller drops with Unref. When src
// already has that format Scale returns src itself, with a reference added.
func (s *Scaler) Scale(src *Frame) (*Frame, error) {
	if s.pool == nil {
		return nil, wrap("swscale", "scaler", "scale", ErrClosed)
	}
	in := src.Video()
	if in == s.dst {
		return src.Ref(), nil
	}
	if !in.valid() {
		return nil, wrap("swscale", "scaler", "scale", fmt.Errorf("%w: not a video frame", ErrFormat))
	}
	if s.ssc == nil || in != s.src {
		s.free()
		ssc, err := astiav.CreateSoftwareScaleContext(in.Width, in.Height, in.PixelFormat,
			s.dst.Width, s.dst.Height, s.dst.PixelFormat, s.flags)
		if err != nil {
			return nil, wrap("swscale", "scaler", fmt.Sprintf("new %v → %v", in, s.dst), err)
		}
		live.scalers.Add(1)
		s.ssc, s.src = ssc, in
	}
	out, err := s.pool.GetVideo(s.dst)
	if err != nil {
		return nil, wrap("swscale", "scaler", "get frame", err)
	}
	if err := s.ssc.ScaleFrame(src.av, out.av); err != nil {
		out.Unref()
		return nil, wrap("swscale", "scaler", "scale", err)
	}
	out.av.SetPts(src.av.Pts())
	return out, nil
}

func (s *Scaler) free() {
	if s.ssc != nil {
		s.ssc.Free()
		s.ssc = nil
		live.scalers.Add(-1)
	}
}

// Close frees the scaler. Frames it returned stay valid. Close is
// idempotent.
func (s *Scaler) Close() error {
	s.free()
	if s.owned && s.pool != nil {
		s.pool.Close()
	}
	s.pool = nil
	return nil
}
