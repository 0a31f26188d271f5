package codec_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/internal/ffmpeg"
	"github.com/medley-go/medley/pipeline"
)

// The synthetic video of the FFmpeg tests: 640x360 at 30 fps.
const (
	testWidth  = 640
	testHeight = 360
	testFPS    = 30
)

var testVideo = ffmpeg.VideoFormat{Width: testWidth, Height: testHeight, PixelFormat: astiav.PixelFormatYuv420P}

func sampleCaps(tb testing.TB, mime string) element.Caps {
	tb.Helper()
	c, ok := codec.Lookup(mime)
	require.True(tb, ok, mime)
	return c.Caps(element.FormatSample)
}

// checkFFmpegObjects registers a check, run after the test's other
// cleanups (the pipeline's Close among them), that the FFmpeg objects the
// test made were freed. Tests that use it must not run in parallel.
func checkFFmpegObjects(t *testing.T) {
	t.Helper()
	before := ffmpeg.LiveObjects()
	t.Cleanup(func() {
		assert.Equal(t, before, ffmpeg.LiveObjects(), "FFmpeg objects alive after the test")
	})
}

// newPipeline returns a pipeline closed when the test ends.
func newPipeline(t *testing.T) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.New()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

var allSampleFormats = []astiav.SampleFormat{
	astiav.SampleFormatS16, astiav.SampleFormatS16P, astiav.SampleFormatFlt, astiav.SampleFormatFltp,
}

// chainPipeline adds els to a new pipeline, connects each to the next and
// starts it; the pipeline closes when the test ends.
func chainPipeline(t *testing.T, els ...element.Element) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.New()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	require.NoError(t, p.Add(els...))
	for i := 0; i+1 < len(els); i++ {
		require.NoError(t, p.Connect(els[i], els[i+1], element.KindAll), "connect %s to %s", els[i].Name(), els[i+1].Name())
	}
	require.NoError(t, p.Start(context.Background()))
	return p
}

// watchErrors fails the test on any Error message the pipeline posts,
// unless allow says it is expected.
func watchErrors(t *testing.T, p *pipeline.Pipeline, allow func(error) bool) {
	t.Helper()
	sub := p.Subscribe(256)
	var wg sync.WaitGroup
	wg.Go(func() {
		for m := range sub.C() {
			if e, ok := m.(*element.Error); ok && (allow == nil || !allow(e.Err)) {
				t.Errorf("error from %s: %v", e.Element, e.Err)
			}
		}
	})
	t.Cleanup(func() {
		p.Close() // ends the subscription
		wg.Wait()
	})
}

// videoSource keeps the frames it pushes, by index, to compare what comes
// back with.
type videoSource struct {
	*element.AppSource
	pool *ffmpeg.FramePool
	mu   sync.Mutex
	sent map[int]*ffmpeg.Frame
}

func newVideoSource(t *testing.T, name string) *videoSource {
	t.Helper()
	s := &videoSource{
		AppSource: element.NewAppSource(name, element.CapsList{codec.RawVideoCaps(testWidth, testHeight, codec.PixelFormatI420)}),
		pool:      ffmpeg.NewFramePool(),
		sent:      map[int]*ffmpeg.Frame{},
	}
	t.Cleanup(func() {
		s.mu.Lock()
		for _, f := range s.sent {
			f.Unref()
		}
		s.sent = nil
		s.mu.Unlock()
		s.pool.Close()
	})
	return s
}

// push draws frame n of the pattern and pushes it, timed at testFPS.
func (s *videoSource) push(t *testing.T, n int) {
	f, err := s.pool.GetVideo(testVideo)
	require.NoError(t, err)
	require.NoError(t, ffmpeg.DrawPattern(f, n))
	s.mu.Lock()
	s.sent[n] = f
	s.mu.Unlock()
	s.PushFrame(f, framePTS(n, testFPS), time.Second/testFPS, element.FlagKeyframe)
}

// frame returns the frame pushed as number n, or nil.
func (s *videoSource) frame(n int) *ffmpeg.Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent[n]
}

// frameIndex is the number of the frame at pts, at fps.
func frameIndex(pts time.Duration, fps int) int {
	return int(math.Round(pts.Seconds() * float64(fps)))
}

// decoded is what a videoSink saw of one frame.
type decoded struct {
	n    int
	psnr float64
	size ffmpeg.VideoFormat
}

// videoSink compares each raw frame it gets with the one sent at its time.
type videoSink struct {
	*element.AppSink
	mu     sync.Mutex
	got    []decoded
	eos    chan struct{}
	errors []error
}

func newVideoSink(name string, src *videoSource, caps element.Caps) *videoSink {
	s := &videoSink{eos: make(chan struct{})}
	var once sync.Once
	s.AppSink = element.NewAppSink(name, element.CapsList{caps},
		element.WithSinkQueue(512, element.Block),
		element.WithEventFunc(func(ev element.Event) {
			if _, ok := ev.(element.EOSEvent); ok {
				once.Do(func() { close(s.eos) })
			}
		}),
		element.WithBufferFunc(func(b *element.Buffer) {
			f, ok := b.Frame.(*codec.Frame)
			d := decoded{n: frameIndex(b.PTS, testFPS), psnr: -1}
			var err error
			switch {
			case !ok:
				err = fmt.Errorf("buffer at %v carries %T", b.PTS, b.Frame)
			case src == nil:
				d.size = f.Video()
			default:
				d.size = f.Video()
				if ref := src.frame(d.n); ref != nil && d.size == testVideo {
					d.psnr, err = ffmpeg.PSNR(ref, f, 0)
				}
			}
			s.mu.Lock()
			s.got = append(s.got, d)
			if err != nil {
				s.errors = append(s.errors, err)
			}
			s.mu.Unlock()
		}))
	return s
}

func (s *videoSink) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-s.eos:
	case <-time.After(d):
		t.Fatalf("sink %s: no end of stream after %v (%d frames)", s.Name(), d, len(s.frames()))
	}
}

func (s *videoSink) frames() []decoded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]decoded(nil), s.got...)
}

// check fails the test if a frame could not be looked at.
func (s *videoSink) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	assert.Empty(t, s.errors)
}

// lossy drops a share of the RTP packets crossing it, at random, and
// passes everything else on, upstream events too.
type lossy struct {
	element.Base
	sink, src *element.Pad
	r         *rand.Rand
	share     float64
	passed    int
	dropped   int
}

func newLossy(name string, caps element.Caps, share float64, seed uint64) *lossy {
	l := &lossy{Base: element.NewBase(name), r: rand.New(rand.NewPCG(seed, seed)), share: share}
	l.src = element.NewSrcPad("src", element.CapsList{caps}, element.WithKeyframeInterval(0),
		element.WithEventHandler(func(ev element.Event) { l.sink.SendUpstream(ev) }))
	l.sink = element.NewSinkPad("sink", element.CapsList{caps}, func(b *element.Buffer) error {
		if l.r.Float64() < l.share {
			l.dropped++
			return nil
		}
		l.passed++
		l.src.Push(b)
		return nil
	}, element.Inline(), element.WithEventHandler(func(ev element.Event) { _ = l.src.PushEvent(ev) }))
	l.AddPad(l.sink, l.src)
	_ = l.src.SetCaps(caps)
	return l
}

// meanOf returns the mean of v.
func meanOf(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(max(len(v), 1))
}
