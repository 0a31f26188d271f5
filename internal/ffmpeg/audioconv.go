package ffmpeg

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"
)

// AudioConverter converts audio to one sample rate, sample format and
// channel count, and cuts it into frames of a fixed size for an encoder
// (960 samples for Opus at 48 kHz). go-astiav v0.16.0 has no swresample, so
// this is an FFmpeg filter graph:
//
//	abuffer → aresample → aformat → asetnsamples → abuffersink
//
// The input format is learned from the frames; when it changes the graph is
// rebuilt (what the old graph held is flushed out first). Input timestamps
// are in 1/input-rate units, output ones in 1/output-rate. An
// AudioConverter is not safe for concurrent use.
type AudioConverter struct {
	out       AudioFormat
	frameSize int
	pool      *FramePool
	owned     bool

	in    AudioFormat // what the graph was built for
	graph *astiav.FilterGraph
	src   *astiav.FilterContext
	sink  *astiav.FilterContext
	ended bool // the graph got EOF
	// scratch carries the reference given to the graph.
	scratch *astiav.Frame
}

// NewAudioConverter returns a converter to out whose frames have frameSize
// samples per channel (0: whatever the resampler produces). Frames come
// from pool, or from a pool of the converter's own if pool is nil.
func NewAudioConverter(out AudioFormat, frameSize int, pool *FramePool) (*AudioConverter, error) {
	if !out.valid() || frameSize < 0 {
		return nil, wrap("", "audio converter", "new", fmt.Errorf("%w: %v, frame size %d", ErrFormat, out, frameSize))
	}
	c := &AudioConverter{out: out, frameSize: frameSize, pool: pool}
	if c.pool == nil {
		c.pool, c.owned = NewFramePool(), true
	}
	return c, nil
}

// Format returns the output format.
func (c *AudioConverter) Format() AudioFormat { return c.out }

func (c *AudioConverter) fail(op string, err error) error {
	return wrap("", "audio converter", op, err)
}

// Convert feeds f (not modified, not retained) and calls emit with each
// output frame completed. emit may use the frame only until it returns,
// unless it calls Ref. An error from emit is returned as is.
func (c *AudioConverter) Convert(f *Frame, emit func(*Frame) error) error {
	return c.convert(f, f.av.Pts(), emit)
}

// ConvertAt is Convert with f's presentation timestamp given as pts (in
// 1/input-rate units) instead of read from f, which is not modified.
func (c *AudioConverter) ConvertAt(f *Frame, pts int64, emit func(*Frame) error) error {
	return c.convert(f, pts, emit)
}

func (c *AudioConverter) convert(f *Frame, pts int64, emit func(*Frame) error) error {
	if c.pool == nil {
		return c.fail("convert", ErrClosed)
	}
	in := f.Audio()
	if !in.valid() {
		return c.fail("convert", fmt.Errorf("%w: not an audio frame", ErrFormat))
	}
	if c.graph != nil && (in != c.in || c.ended) {
		if !c.ended {
			if err := c.Flush(emit); err != nil {
				return err
			}
		}
		c.freeGraph()
	}
	if c.graph == nil {
		if err := c.build(in); err != nil {
			return err
		}
	}
	// The graph takes a reference of its own, made here so that its
	// timestamp can be set without touching f, which stays the caller's.
	if c.scratch == nil {
		if c.scratch = astiav.AllocFrame(); c.scratch == nil {
			return c.fail("alloc frame", astiav.ErrUnknown)
		}
		live.frames.Add(1)
	}
	if err := frameRef(c.scratch, f.av); err != nil {
		return c.fail("ref frame", err)
	}
	c.scratch.SetPts(pts)
	// Without KEEP_REF the graph moves the reference out of scratch.
	if err := c.src.BuffersrcAddFrame(c.scratch, astiav.NewBuffersrcFlags()); err != nil {
		frameUnref(c.scratch)
		return c.fail("add frame", err)
	}
	return c.drain(emit)
}

// Flush pushes out what the graph holds (a last frame shorter than the
// frame size, resampler delay) at the end of a stream. A later Convert
// starts a new graph.
func (c *AudioConverter) Flush(emit func(*Frame) error) error {
	if c.pool == nil {
		return c.fail("flush", ErrClosed)
	}
	if c.graph == nil || c.ended {
		return nil
	}
	c.ended = true
	if err := c.src.BuffersrcAddFrame(nil, astiav.NewBuffersrcFlags()); err != nil {
		return c.fail("flush", err)
	}
	return c.drain(emit)
}

func (c *AudioConverter) drain(emit func(*Frame) error) error {
	for {
		f, err := c.pool.empty()
		if err != nil {
			return c.fail("get frame", err)
		}
		// BuffersinkGetFrame moves a reference into f, which holds none.
		err = c.sink.BuffersinkGetFrame(f.av, astiav.NewBuffersinkFlags())
		if err != nil {
			f.Unref()
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			return c.fail("get frame", err)
		}
		if err := emitFrame(emit, f); err != nil {
			return err
		}
	}
}

func (c *AudioConverter) build(in AudioFormat) (err error) {
	g := astiav.AllocFilterGraph()
	if g == nil {
		return c.fail("alloc graph", astiav.ErrUnknown)
	}
	live.graphs.Add(1)
	c.graph, c.in, c.ended = g, in, false
	defer func() {
		if err != nil {
			c.freeGraph()
		}
	}()
	g.SetThreadCount(1)
	abuffer, abuffersink := astiav.FindFilterByName("abuffer"), astiav.FindFilterByName("abuffersink")
	if abuffer == nil || abuffersink == nil {
		return c.fail("build", astiav.ErrFilterNotFound)
	}
	args := astiav.FilterArgs{
		"time_base":      "1/" + strconv.Itoa(in.SampleRate),
		"sample_rate":    strconv.Itoa(in.SampleRate),
		"sample_fmt":     in.SampleFormat.Name(),
		"channel_layout": layoutName(in.Channels),
	}
	if c.src, err = g.NewFilterContext(abuffer, "in", args); err != nil {
		return c.fail("abuffer", err)
	}
	if c.sink, err = g.NewFilterContext(abuffersink, "out", nil); err != nil {
		return c.fail("abuffersink", err)
	}
	desc := fmt.Sprintf("aresample=%d,aformat=sample_fmts=%s:sample_rates=%d:channel_layouts=%s",
		c.out.SampleRate, c.out.SampleFormat.Name(), c.out.SampleRate, layoutName(c.out.Channels))
	if c.frameSize > 0 {
		desc += fmt.Sprintf(",asetnsamples=n=%d:p=0", c.frameSize)
	}
	// Parse links the open ends of desc to these lists and consumes
	// them: only their heads are freed.
	outputs, inputs := astiav.AllocFilterInOut(), astiav.AllocFilterInOut()
	defer outputs.Free()
	defer inputs.Free()
	outputs.SetName("in")
	outputs.SetFilterContext(c.src)
	outputs.SetPadIdx(0)
	outputs.SetNext(nil)
	inputs.SetName("out")
	inputs.SetFilterContext(c.sink)
	inputs.SetPadIdx(0)
	inputs.SetNext(nil)
	if err := g.Parse(desc, inputs, outputs); err != nil {
		return c.fail("parse "+desc, err)
	}
	if err := g.Configure(); err != nil {
		return c.fail("configure "+desc, err)
	}
	return nil
}

func (c *AudioConverter) freeGraph() {
	if c.graph == nil {
		return
	}
	// FilterGraph.Free leaves the contexts go-astiav made in its global
	// map: free them first (avfilter_free takes them out of the graph).
	if c.src != nil {
		c.src.Free()
		c.src = nil
	}
	if c.sink != nil {
		c.sink.Free()
		c.sink = nil
	}
	c.graph.Free()
	c.graph = nil
	live.graphs.Add(-1)
}

// Close frees the converter without flushing. Frames it emitted and still
// referenced stay valid. Close is idempotent.
func (c *AudioConverter) Close() error {
	c.freeGraph()
	if c.scratch != nil {
		c.scratch.Free()
		c.scratch = nil
		live.frames.Add(-1)
	}
	if c.owned && c.pool != nil {
		c.pool.Close()
	}
	c.pool = nil
	return nil
}
