package ffmpeg

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/asticode/go-astiav"
)

// VideoFormat is the shape of raw video frames.
type VideoFormat struct {
	Width, Height int
	PixelFormat   astiav.PixelFormat
}

func (v VideoFormat) String() string {
	return strconv.Itoa(v.Width) + "x" + strconv.Itoa(v.Height) + " " + v.PixelFormat.Name()
}

func (v VideoFormat) valid() bool { return v.Width > 0 && v.Height > 0 && v.PixelFormat >= 0 }

// AudioFormat is the shape of raw audio samples.
type AudioFormat struct {
	SampleRate   int
	SampleFormat astiav.SampleFormat
	// Channels is the channel count; the layout is FFmpeg's default for it
	// (mono, stereo, 2.1, ...).
	Channels int
}

func (a AudioFormat) String() string {
	return strconv.Itoa(a.SampleRate) + "Hz " + a.SampleFormat.Name() + " " + layoutName(a.Channels)
}

func (a AudioFormat) valid() bool {
	return a.SampleRate > 0 && a.Channels > 0 && a.SampleFormat >= 0 && a.SampleFormat < astiav.SampleFormatNb
}

// poolKey names a free list of a FramePool. The zero key holds frames
// without buffers, which decoders and filter graphs fill with their own.
type poolKey struct {
	video   VideoFormat
	audio   AudioFormat
	samples int
}

// Frame is a reference-counted raw video or audio frame, wrapping an
// *astiav.Frame that comes from a FramePool.
//
// Ownership: whoever gets a frame (from FramePool.Get*, Scaler.Scale, or a
// callback that says so) holds one reference and drops it with Unref; Ref
// adds one, for another holder. The last Unref returns the frame to its pool
// (or frees it if the pool is closed); the frame must not be touched after
// that, since the pool hands the same *Frame out again. A frame shared by
// several holders is read-only; only a sole holder writes into it, after
// MakeWritable. The AVFrame is freed exactly once, by the pool.
//
// A frame's methods may be called from any goroutine, but not concurrently
// with writes to the same frame.
type Frame struct {
	av   *astiav.Frame
	pool *FramePool
	key  poolKey
	refs atomic.Int32
}

// AV returns the wrapped FFmpeg frame, for properties this type does not
// expose. The caller must not Free or Unref it, nor keep it past its own
// reference to f.
func (f *Frame) AV() *astiav.Frame { return f.av }

// Ref adds a reference and returns f.
func (f *Frame) Ref() *Frame {
	if f.refs.Add(1) <= 1 {
		panic("ffmpeg: Frame.Ref of a released frame")
	}
	return f
}

// Unref drops a reference; the last one returns the frame to its pool.
func (f *Frame) Unref() {
	switch n := f.refs.Add(-1); {
	case n == 0:
		f.pool.put(f)
	case n < 0:
		panic("ffmpeg: Frame.Unref of a released frame")
	}
}

// Video returns the frame's size and pixel format (zero for audio).
func (f *Frame) Video() VideoFormat {
	if f.av.Width() <= 0 {
		return VideoFormat{}
	}
	return VideoFormat{Width: f.av.Width(), Height: f.av.Height(), PixelFormat: f.av.PixelFormat()}
}

// Audio returns the frame's sample rate, sample format and channel count
// (zero for video).
func (f *Frame) Audio() AudioFormat {
	if f.av.Width() > 0 || f.av.NbSamples() <= 0 {
		return AudioFormat{}
	}
	return AudioFormat{SampleRate: f.av.SampleRate(), SampleFormat: f.av.SampleFormat(), Channels: frameChannels(f.av)}
}

// Samples returns the number of audio samples per channel (0 for video).
func (f *Frame) Samples() int {
	if f.av.Width() > 0 {
		return 0
	}
	return f.av.NbSamples()
}

// PTS returns the presentation timestamp in the time base of whoever made
// the frame (see Decoder, Scaler, AudioConverter); astiav.NoPtsValue if
// unknown.
func (f *Frame) PTS() int64 { return f.av.Pts() }

// SetPTS sets the presentation timestamp.
func (f *Frame) SetPTS(pts int64) { f.av.SetPts(pts) }

// Keyframe reports whether a decoder marked the frame as a keyframe.
func (f *Frame) Keyframe() bool { return f.av.KeyFrame() }

// Corrupt reports whether a decoder flagged the frame as damaged (errors
// concealed, references missing): decode_error_flags or AV_FRAME_FLAG_CORRUPT.
func (f *Frame) Corrupt() bool { return frameCorrupt(f.av) }

// Planes returns the number of data planes (3 for yuv420p, 1 for packed
// audio, one per channel for planar audio).
func (f *Frame) Planes() int {
	var p planes
	if framePlanes(f.av, &p) != nil {
		return 0
	}
	return p.n
}

// Plane returns plane i's memory, Linesize(i) bytes per row for video, or
// the samples for audio. The slice aliases the frame: it is valid while the
// caller holds a reference, and writable only by a sole holder after
// MakeWritable.
func (f *Frame) Plane(i int) []byte {
	var p planes
	if framePlanes(f.av, &p) != nil {
		return nil
	}
	return p.bytes(i)
}

// Linesize returns the distance in bytes between rows of video plane i.
func (f *Frame) Linesize(i int) int {
	if i < 0 || i >= int(astiav.NumDataPointers) {
		return 0
	}
	return f.av.Linesize()[i]
}

// RowBytes returns the number of pixel bytes in one row of video plane i
// (Linesize less padding).
func (f *Frame) RowBytes(i int) int { return frameRowBytes(f.av, i) }

// MakeWritable makes the frame's buffers writable, copying them if FFmpeg
// (an encoder or a filter) still holds a reference to them.
func (f *Frame) MakeWritable() error {
	return wrap("", "frame", "make writable", frameMakeWritable(f.av))
}

// CopyPlane copies src into plane i: row by row for video, where srcStride
// is the distance between src's rows (the copied width is the smaller of
// the two rows), and as bytes for audio, where srcStride is ignored. It
// returns ErrFormat if src is too short.
func (f *Frame) CopyPlane(i int, src []byte, srcStride int) error {
	dst := f.Plane(i)
	if dst == nil {
		return fmt.Errorf("%w: frame has no plane %d", ErrFormat, i)
	}
	if f.av.Width() <= 0 {
		if len(src) < len(dst) {
			return fmt.Errorf("%w: %d bytes for an audio plane of %d", ErrFormat, len(src), len(dst))
		}
		copy(dst, src)
		return nil
	}
	ls, row := f.Linesize(i), f.RowBytes(i)
	rows := len(dst) / ls
	n := min(row, srcStride)
	if srcStride <= 0 || len(src) < (rows-1)*srcStride+n {
		return fmt.Errorf("%w: %d bytes at stride %d for %d rows", ErrFormat, len(src), srcStride, rows)
	}
	for y := range rows {
		copy(dst[y*ls:y*ls+n], src[y*srcStride:y*srcStride+n])
	}
	return nil
}

// FramePool recycles frames by format, so that a steady stream allocates
// neither Go nor FFmpeg memory per frame. It is safe for concurrent use.
type FramePool struct {
	mu      sync.Mutex
	idle    map[poolKey][]*Frame
	closed  bool
	maxIdle int
	out     atomic.Int64
}

// DefaultMaxIdle is how many idle frames of one format a pool keeps; more
// are freed when returned.
const DefaultMaxIdle = 16

// NewFramePool returns an empty pool.
func NewFramePool() *FramePool {
	return &FramePool{idle: make(map[poolKey][]*Frame), maxIdle: DefaultMaxIdle}
}

// GetVideo returns a frame of format v with writable buffers, holding one
// reference. Its pixels are whatever a previous use left.
func (p *FramePool) GetVideo(v VideoFormat) (*Frame, error) {
	if !v.valid() {
		return nil, fmt.Errorf("%w: video %v", ErrFormat, v)
	}
	return p.get(poolKey{video: v})
}

// GetAudio returns a frame for samples samples per channel of format a,
// with writable buffers, holding one reference.
func (p *FramePool) GetAudio(a AudioFormat, samples int) (*Frame, error) {
	if !a.valid() || samples <= 0 {
		return nil, fmt.Errorf("%w: audio %v, %d samples", ErrFormat, a, samples)
	}
	return p.get(poolKey{audio: a, samples: samples})
}

// Outstanding returns the number of frames handed out and not yet returned.
func (p *FramePool) Outstanding() int { return int(p.out.Load()) }

// Close frees the idle frames. Frames still held are freed when their last
// reference is dropped; the pool must not be used to get frames afterwards.
func (p *FramePool) Close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, l := range idle {
		for _, f := range l {
			freeFrame(f)
		}
	}
}

func (p *FramePool) pop(k poolKey) (*Frame, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	l := p.idle[k]
	if len(l) == 0 {
		return nil, nil
	}
	f := l[len(l)-1]
	l[len(l)-1] = nil
	p.idle[k] = l[:len(l)-1]
	return f, nil
}

// empty returns a frame without buffers, for a decoder or buffersink to
// fill.
func (p *FramePool) empty() (*Frame, error) { return p.get(poolKey{}) }

func (p *FramePool) get(k poolKey) (*Frame, error) {
	f, err := p.pop(k)
	if err != nil {
		return nil, err
	}
	switch {
	case f == nil:
		av := astiav.AllocFrame()
		if av == nil {
			return nil, &Error{Role: "frame pool", Op: "alloc frame", Err: astiav.ErrUnknown}
		}
		live.frames.Add(1)
		f = &Frame{av: av, pool: p, key: k}
	case k == poolKey{} || frameIsWritable(f.av):
		// Reuse as is: no buffers, or buffers nobody else references.
		frameResetProps(f.av)
		f.refs.Store(1)
		p.out.Add(1)
		return f, nil
	default:
		// An encoder or filter still references the old buffers (they
		// go when it lets them go): take new ones.
		frameUnref(f.av)
	}
	if k != (poolKey{}) {
		if err := allocBuffers(f.av, k); err != nil {
			freeFrame(f)
			return nil, err
		}
	}
	frameResetProps(f.av)
	f.refs.Store(1)
	p.out.Add(1)
	return f, nil
}

func allocBuffers(av *astiav.Frame, k poolKey) error {
	if k.video.valid() {
		av.SetWidth(k.video.Width)
		av.SetHeight(k.video.Height)
		av.SetPixelFormat(k.video.PixelFormat)
	} else {
		av.SetSampleRate(k.audio.SampleRate)
		av.SetSampleFormat(k.audio.SampleFormat)
		av.SetNbSamples(k.samples)
		if err := frameSetChannels(av, k.audio.Channels); err != nil {
			return wrap("", "frame pool", "set channel layout", err)
		}
	}
	return wrap("", "frame pool", "get buffer", av.AllocBuffer(0))
}

// matches reports whether f still has the format of its free list.
func (f *Frame) matches() bool {
	switch {
	case f.key == poolKey{}:
		return true
	case f.key.video.valid():
		return f.Video() == f.key.video
	default:
		return f.Audio() == f.key.audio && f.av.NbSamples() == f.key.samples
	}
}

func (p *FramePool) put(f *Frame) {
	p.out.Add(-1)
	if f.key == (poolKey{}) || !f.matches() {
		frameUnref(f.av)
		f.key = poolKey{}
	}
	p.mu.Lock()
	if p.closed || len(p.idle[f.key]) >= p.maxIdle {
		p.mu.Unlock()
		freeFrame(f)
		return
	}
	p.idle[f.key] = append(p.idle[f.key], f)
	p.mu.Unlock()
}

func freeFrame(f *Frame) {
	f.av.Free()
	f.av = nil
	live.frames.Add(-1)
}
