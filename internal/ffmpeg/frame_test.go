package ffmpeg

import (
	"image"
	"math"
	"testing"
	"unsafe"

	"github.com/asticode/go-astiav"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBinding(t *testing.T) {
	checkNoLiveObjects(t)
	require.NoError(t, bindingOK())

	// Packets get FFmpeg's zeroed input padding (trap 8).
	p := astiav.AllocPacket()
	defer p.Free()
	data := []byte{1, 2, 3, 4, 5}
	require.NoError(t, packetFill(p, data))
	assert.Equal(t, data, packetBytes(p))
	c := cPacket(p)
	padded := unsafe.Slice((*byte)(unsafe.Pointer(c.data)), len(data)+64)
	assert.Equal(t, make([]byte, 64), padded[len(data):])
	assert.Equal(t, "mono", layoutName(1))
	assert.Equal(t, "stereo", layoutName(2))
}

func TestFramePool(t *testing.T) {
	checkNoLiveObjects(t)
	pool := NewFramePool()
	v := VideoFormat{Width: 64, Height: 36, PixelFormat: astiav.PixelFormatYuv420P}

	f, err := pool.GetVideo(v)
	require.NoError(t, err)
	assert.Equal(t, v, f.Video())
	assert.Equal(t, 3, f.Planes())
	assert.GreaterOrEqual(t, f.Linesize(0), 64)
	assert.Equal(t, 64, f.RowBytes(0))
	assert.Equal(t, 32, f.RowBytes(1))
	assert.Len(t, f.Plane(1), f.Linesize(1)*18)
	assert.Equal(t, 1, pool.Outstanding())
	assert.Equal(t, int64(1), LiveObjects().Frames)

	// Ref and Unref: the last Unref returns the frame, which comes back.
	f.Ref()
	f.Unref()
	assert.Equal(t, 1, pool.Outstanding())
	first := &f.Plane(0)[0]
	f.Unref()
	assert.Equal(t, 0, pool.Outstanding())
	assert.Panics(t, func() { f.Unref() }, "Unref of a released frame")
	g, err := pool.GetVideo(v)
	require.NoError(t, err)
	assert.Same(t, f, g, "the pool reuses frames")
	assert.Same(t, first, &g.Plane(0)[0], "and their buffers")
	assert.Equal(t, int64(1), LiveObjects().Frames)

	// While FFmpeg (here a stand-in, as an encoder would) keeps a
	// reference to the buffers, the pool hands out new ones (trap 7).
	held := astiav.AllocFrame()
	require.NoError(t, frameRef(held, g.av))
	g.Unref()
	h, err := pool.GetVideo(v)
	require.NoError(t, err)
	assert.NotSame(t, first, &h.Plane(0)[0], "buffers still referenced elsewhere are not reused")
	assert.True(t, frameIsWritable(h.av))
	held.Free()

	// Audio frames.
	a := AudioFormat{SampleRate: 48000, SampleFormat: astiav.SampleFormatFltp, Channels: 2}
	s, err := pool.GetAudio(a, 960)
	require.NoError(t, err)
	assert.Equal(t, a, s.Audio())
	assert.Equal(t, 960, s.Samples())
	assert.Equal(t, 2, s.Planes())
	assert.Len(t, s.Plane(1), 960*4)
	require.NoError(t, FillTone(s, 1000, 0.5, 0))
	got, err := s.AppendSamples(nil, 1)
	require.NoError(t, err)
	assert.InDelta(t, 0.5*math.Sin(2*math.Pi*1000*10/48000), got[10], 1e-6)

	_, err = pool.GetVideo(VideoFormat{})
	assert.ErrorIs(t, err, ErrFormat)
	_, err = pool.GetAudio(a, 0)
	assert.ErrorIs(t, err, ErrFormat)

	// Close frees the idle frames now and the held ones when released.
	pool.Close()
	assert.Equal(t, int64(2), LiveObjects().Frames)
	_, err = pool.GetVideo(v)
	assert.ErrorIs(t, err, ErrClosed)
	h.Unref()
	s.Unref()
	assert.Zero(t, LiveObjects().Frames)
}

func TestImageAndPSNR(t *testing.T) {
	checkNoLiveObjects(t)
	pool := NewFramePool()
	defer pool.Close()
	v := VideoFormat{Width: 64, Height: 36, PixelFormat: astiav.PixelFormatYuv420P}
	img := image.NewYCbCr(image.Rect(0, 0, 64, 36), image.YCbCrSubsampleRatio420)
	for i := range img.Y {
		img.Y[i] = byte(i)
	}
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = byte(3*i), byte(5*i)
	}
	a, err := pool.GetVideo(v)
	require.NoError(t, err)
	defer a.Unref()
	require.NoError(t, a.FromImage(img))
	back, err := a.YCbCr()
	require.NoError(t, err)
	assert.Equal(t, img.Y, back.Y)
	assert.Equal(t, img.Cb, back.Cb)
	assert.Equal(t, img.Cr, back.Cr)

	b, err := pool.GetVideo(v)
	require.NoError(t, err)
	defer b.Unref()
	require.NoError(t, b.FromImage(img))
	p, err := PSNR(a, b, 0)
	require.NoError(t, err)
	assert.True(t, math.IsInf(p, 1))
	b.Plane(0)[0] ^= 0x10 // one pixel off by 16: MSE 256/2304
	p, err = PSNR(a, b, 0)
	require.NoError(t, err)
	assert.InDelta(t, 10*math.Log10(255*255/(256.0/(64*36))), p, 1e-9)

	assert.ErrorIs(t, a.FromImage(image.NewGray(image.Rect(0, 0, 64, 36))), ErrFormat)
	assert.ErrorIs(t, a.FromImage(image.NewYCbCr(image.Rect(0, 0, 32, 36), image.YCbCrSubsampleRatio420)), ErrFormat)
}

func TestScaler(t *testing.T) {
	checkNoLiveObjects(t)
	pool := NewFramePool()
	t.Cleanup(pool.Close)
	src := VideoFormat{Width: 640, Height: 360, PixelFormat: astiav.PixelFormatYuv420P}
	f := patternFrame(t, pool, src, 5)
	defer f.Unref()

	small, err := NewScaler(VideoFormat{Width: 160, Height: 90, PixelFormat: astiav.PixelFormatYuv420P}, pool)
	require.NoError(t, err)
	defer small.Close()
	g, err := small.Scale(f)
	require.NoError(t, err)
	assert.Equal(t, small.Format(), g.Video())
	assert.Equal(t, f.PTS(), g.PTS())
	g.Unref()

	// Same format: the frame itself.
	same, err := NewScaler(src, pool)
	require.NoError(t, err)
	defer same.Close()
	g, err = same.Scale(f)
	require.NoError(t, err)
	assert.Same(t, f, g)
	g.Unref()

	// To RGBA and back at the same size loses little.
	rgba, err := NewScaler(VideoFormat{Width: 640, Height: 360, PixelFormat: astiav.PixelFormatRgba}, pool)
	require.NoError(t, err)
	defer rgba.Close()
	r, err := rgba.Scale(f)
	require.NoError(t, err)
	defer r.Unref()
	assert.Equal(t, 1, r.Planes())
	back, err := same.Scale(r)
	require.NoError(t, err)
	defer back.Unref()
	p, err := PSNR(f, back, 0)
	require.NoError(t, err)
	assert.Greater(t, p, 35.0)
	assert.Equal(t, int64(3), LiveObjects().ScaleContexts) // small, same (from RGBA), rgba
}
