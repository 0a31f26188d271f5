package ffmpeg

import (
	"runtime"
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSteadyState runs 10,000 frames through decode → scale → encode and
// checks that the Go heap and the FFmpeg objects stay flat after warm-up,
// and that Close frees everything.
func TestSteadyState(t *testing.T) {
	checkNoLiveObjects(t)
	const (
		total  = 10_000
		warmup = 2_000
		gop    = 30
	)
	pool := NewFramePool()
	src := VideoFormat{Width: 320, Height: 180, PixelFormat: astiav.PixelFormatYuv420P}

	// A second of VP8 starting with a keyframe, played in a loop.
	var input []encodedPacket
	pre, err := NewEncoder(EncoderConfig{Codec: "vp8", Width: src.Width, Height: src.Height,
		BitRate: 300_000, KeyframeInterval: gop})
	require.NoError(t, err)
	for n := range gop {
		f := patternFrame(t, pool, src, n)
		require.NoError(t, pre.Encode(f, collect(&input)))
		f.Unref()
	}
	require.NoError(t, pre.Flush(collect(&input)))
	require.NoError(t, pre.Close())
	require.Len(t, input, gop)
	require.True(t, input[0].key)

	dec, err := NewDecoder(DecoderConfig{Codec: "vp8"}, pool)
	require.NoError(t, err)
	scaler, err := NewScaler(VideoFormat{Width: 160, Height: 90, PixelFormat: astiav.PixelFormatYuv420P}, pool)
	require.NoError(t, err)
	enc, err := NewEncoder(EncoderConfig{Codec: "h264", Width: 160, Height: 90, BitRate: 100_000,
		Preset: "ultrafast", KeyframeInterval: gop})
	require.NoError(t, err)

	var packets, bytes int
	onPacket := func(p *Packet) error {
		packets++
		bytes += len(p.Data)
		return nil
	}
	onFrame := func(f *Frame) error {
		s, err := scaler.Scale(f)
		if err != nil {
			return err
		}
		defer s.Unref()
		return enc.Encode(s, onPacket)
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var heapWarm uint64
	var objsWarm Objects
	for i := range total {
		if i == warmup {
			heapWarm, objsWarm = heap(), LiveObjects()
		}
		p := input[i%gop]
		require.NoError(t, dec.Decode(p.data, int64(i)*frameTicks, p.key, onFrame))
	}
	require.NoError(t, dec.Flush(onFrame))
	require.NoError(t, enc.Flush(onPacket))
	heapEnd, objsEnd := heap(), LiveObjects()
	t.Logf("%d frames → %d packets (%d bytes); heap %d → %d bytes; objects %+v → %+v",
		total, packets, bytes, heapWarm, heapEnd, objsWarm, objsEnd)
	assert.Equal(t, total, packets)
	assert.Zero(t, pool.Outstanding())
	assert.Equal(t, objsWarm, objsEnd, "FFmpeg objects after warm-up")
	assert.Less(t, int64(heapEnd)-int64(heapWarm), int64(256<<10), "Go heap growth after warm-up")

	require.NoError(t, enc.Close())
	require.NoError(t, scaler.Close())
	require.NoError(t, dec.Close())
	pool.Close()
	assert.True(t, LiveObjects().Zero(), "after Close: %+v", LiveObjects())
}
