package codec_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/internal/ffmpeg"
)

// encodedSample is one access unit an encoder made.
type encodedSample struct {
	data []byte
	key  bool
}

// encodeSamples encodes frames of the test pattern of format v with an
// encoder element run inline and returns the samples.
// pushPattern pushes frames frames of the moving test pattern in format v
// from in, at testFPS, then end of stream. The frames come from a pool of
// their own, closed before it returns (frames still held are freed when
// their holders let go).
func pushPattern(tb testing.TB, in *element.Pad, v ffmpeg.VideoFormat, frames int) {
	tb.Helper()
	pool := ffmpeg.NewFramePool()
	defer pool.Close()
	for n := range frames {
		f, err := pool.GetVideo(v)
		require.NoError(tb, err)
		require.NoError(tb, ffmpeg.DrawPattern(f, n))
		b := codec.NewFrameBuffer(f, framePTS(n, testFPS), time.Second/testFPS, element.FlagKeyframe)
		in.Push(b)
		b.Unref()
	}
	require.NoError(tb, in.PushEvent(element.EOSEvent{}))
}

func encodeSamples(tb testing.TB, mime string, frames int, v ffmpeg.VideoFormat, opts ...codec.Option) []encodedSample {
	tb.Helper()
	enc, err := codec.NewEncoder("enc", sampleCaps(tb, mime), append(opts, codec.WithInline())...)
	require.NoError(tb, err)
	raw := codec.RawVideoCaps(v.Width, v.Height, codec.PixelFormatI420)
	in := element.NewSrcPad("in", element.CapsList{raw})
	require.NoError(tb, in.SetCaps(raw))
	require.NoError(tb, in.Link(enc.SinkPad()))
	var out []encodedSample
	collect := element.NewSinkPad("out", enc.SrcPad().Templates(), func(b *element.Buffer) error {
		out = append(out, encodedSample{data: append([]byte(nil), b.Data...), key: b.Keyframe()})
		return nil
	}, element.Inline())
	require.NoError(tb, enc.SrcPad().Link(collect))
	pushPattern(tb, in, v, frames)
	require.NoError(tb, enc.Close())
	require.Len(tb, out, frames)
	return out
}

// TestSteadyStateElements runs 10,000 frames through decoder → scaler →
// encoder elements in a running pipeline and checks that the Go heap and
// the FFmpeg objects stay flat after warm-up, and that closing the
// pipeline frees every FFmpeg object.
func TestSteadyStateElements(t *testing.T) {
	checkFFmpegObjects(t)
	const (
		total  = 10_000
		warmup = 2_000
		gop    = 30
	)
	src := ffmpeg.VideoFormat{Width: 320, Height: 180, PixelFormat: astiav.PixelFormatYuv420P}
	input := encodeSamples(t, codec.MIMEVP8, gop, src, codec.WithBitrate(300_000))
	require.True(t, input[0].key)

	block := codec.WithQueue(16, element.Block)
	vp8, h264 := sampleCaps(t, codec.MIMEVP8), sampleCaps(t, codec.MIMEH264)
	app := element.NewAppSource("src", element.CapsList{vp8})
	dec, err := codec.NewDecoder("dec", vp8, block)
	require.NoError(t, err)
	scale, err := codec.NewScaler("scale", codec.RawVideoCaps(160, 90, codec.PixelFormatI420), block)
	require.NoError(t, err)
	enc, err := codec.NewEncoder("enc", h264, block, codec.WithPreset("ultrafast"), codec.WithBitrate(100_000),
		codec.WithKeyframeInterval(time.Second))
	require.NoError(t, err)
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	var samples, bytes int
	sink := element.NewAppSink("sink", element.CapsList{h264}, element.WithSinkQueue(16, element.Block),
		element.WithBufferFunc(func(b *element.Buffer) {
			mu.Lock()
			samples++
			bytes += len(b.Data)
			cond.Broadcast()
			mu.Unlock()
		}))
	p := newPipeline(t)
	require.NoError(t, p.Add(app, dec, scale, enc, sink))
	for _, pair := range [][2]element.Element{{app, dec}, {dec, scale}, {scale, enc}, {enc, sink}} {
		require.NoError(t, p.Connect(pair[0], pair[1], element.KindVideo))
	}
	watchErrors(t, p, nil)
	require.NoError(t, p.Start(context.Background()))

	waitSamples := func(n int) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		stop := context.AfterFunc(ctx, func() { mu.Lock(); cond.Broadcast(); mu.Unlock() })
		defer stop()
		mu.Lock()
		defer mu.Unlock()
		for samples < n && ctx.Err() == nil {
			cond.Wait()
		}
		require.GreaterOrEqual(t, samples, n, "samples out of the encoder")
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	push := func(from, to int) {
		for i := from; i < to; i++ {
			s := input[i%gop]
			flags := element.Flags(0)
			if s.key {
				flags = element.FlagKeyframe
			}
			app.PushSample(s.data, framePTS(i, testFPS), time.Second/testFPS, flags)
		}
	}
	push(0, warmup)
	waitSamples(warmup)
	heapWarm, objsWarm := heap(), ffmpeg.LiveObjects()
	push(warmup, total)
	waitSamples(total)
	heapEnd, objsEnd := heap(), ffmpeg.LiveObjects()
	t.Logf("%d frames → %d samples (%d bytes); heap %d → %d bytes; objects %+v → %+v; encoder %+v",
		total, samples, bytes, heapWarm, heapEnd, objsWarm, objsEnd, enc.Stats())
	assert.Equal(t, objsWarm, objsEnd, "FFmpeg objects after warm-up")
	assert.Less(t, int64(heapEnd)-int64(heapWarm), int64(256<<10), "Go heap growth after warm-up")
	assert.Equal(t, uint64(total), dec.Stats().Frames)
	assert.Equal(t, uint64(total), scale.Stats().Scaled)
	require.NoError(t, p.Close())
}
