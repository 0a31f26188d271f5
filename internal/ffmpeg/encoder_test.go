package ffmpeg

import (
	"errors"
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRequestKeyframe: with a long keyframe interval, keyframes come at the
// start and where requested only, although every frame sent is marked as
// an I picture, as frames out of a decoder are (trap 1).
func TestRequestKeyframe(t *testing.T) {
	for _, c := range []string{"vp8", "vp9", "h264", "av1"} {
		t.Run(c, func(t *testing.T) {
			if _, ok := HasEncoder(c); !ok {
				t.Skipf("no %s encoder", c)
			}
			checkNoLiveObjects(t)
			pool := NewFramePool()
			t.Cleanup(pool.Close)
			v := VideoFormat{Width: 320, Height: 180, PixelFormat: astiav.PixelFormatYuv420P}
			enc, err := NewEncoder(EncoderConfig{Codec: c, Width: v.Width, Height: v.Height,
				BitRate: 300_000, KeyframeInterval: 1000})
			require.NoError(t, err)
			t.Cleanup(func() { enc.Close() })
			var pkts []encodedPacket
			for n := range 20 {
				if n == 7 || n == 13 {
					enc.RequestKeyframe()
				}
				f := patternFrame(t, pool, v, n)
				f.AV().SetPictureType(astiav.PictureTypeI)
				f.AV().SetKeyFrame(true)
				err := enc.Encode(f, collect(&pkts))
				assert.Equal(t, astiav.PictureTypeI, f.AV().PictureType(), "Encode modified the caller's frame")
				f.Unref()
				require.NoError(t, err)
			}
			require.NoError(t, enc.Flush(collect(&pkts)))
			var keys []int64
			for _, p := range pkts {
				if p.key {
					keys = append(keys, p.pts/frameTicks)
				}
			}
			assert.Equal(t, []int64{0, 7, 13}, keys, "frames encoded as keyframes")
		})
	}
}

// encodeBytes encodes frames [from, to) and returns the bytes per frame
// and the frames that came out as keyframes.
func encodeBytes(t *testing.T, enc *Encoder, pool *FramePool, v VideoFormat, from, to int) ([]int, []int) {
	t.Helper()
	sizes := make([]int, to)
	var keys []int
	for n := from; n < to; n++ {
		f := patternFrame(t, pool, v, n)
		err := enc.Encode(f, func(p *Packet) error {
			i := int(p.PTS / frameTicks)
			sizes[i] += len(p.Data)
			if p.Keyframe {
				keys = append(keys, i)
			}
			return nil
		})
		f.Unref()
		require.NoError(t, err)
	}
	return sizes, keys
}

func sum(v []int) (s int) {
	for _, x := range v {
		s += x
	}
	return s
}

// TestSetBitrate: lowering the target mid-stream lowers the output bit
// rate, without a stream restart for x264 and with the reopen of VP8 (and
// VP9) falling on the keyframe the interval asks for anyway.
func TestSetBitrate(t *testing.T) {
	for _, c := range []string{"h264", "vp8", "vp9"} {
		t.Run(c, func(t *testing.T) {
			checkNoLiveObjects(t)
			pool := NewFramePool()
			t.Cleanup(pool.Close)
			v := VideoFormat{Width: 640, Height: 360, PixelFormat: astiav.PixelFormatYuv420P}
			enc, err := NewEncoder(EncoderConfig{Codec: c, Width: v.Width, Height: v.Height,
				BitRate: 1_500_000, KeyframeInterval: 30})
			require.NoError(t, err)
			t.Cleanup(func() { enc.Close() })
			before, keys1 := encodeBytes(t, enc, pool, v, 0, 90)
			enc.SetBitrate(300_000)
			after, keys2 := encodeBytes(t, enc, pool, v, 90, 180)
			require.NoError(t, enc.Flush(nil))

			// Equal windows, each with two keyframes.
			kbps := func(s []int) float64 { return float64(sum(s)*8) / 2 / 1000 }
			hi, lo := kbps(before[30:90]), kbps(after[120:180])
			t.Logf("%s: %.0f kbit/s at 1500, %.0f kbit/s at 300; keyframes %v %v", enc.Name(), hi, lo, keys1, keys2)
			assert.Less(t, lo, 0.5*hi, "bit rate after SetBitrate")
			assert.Equal(t, []int{0, 30, 60}, keys1)
			assert.Equal(t, []int{90, 120, 150}, keys2, "a reopen must not add keyframes")
			assert.Equal(t, int64(300_000), enc.BitRate())
		})
	}
}

func TestEncoderErrors(t *testing.T) {
	checkNoLiveObjects(t)

	_, err := NewEncoder(EncoderConfig{Codec: "no-such-codec"})
	assert.ErrorIs(t, err, ErrUnknownCodec)
	assert.EqualError(t, err, "ffmpeg: no-such-codec encoder: find: ffmpeg: unknown codec")

	_, err = NewEncoder(EncoderConfig{Codec: "vp8", Width: 320, Height: 180,
		Options: map[string]string{"cpu-used": "4", "no-such-option": "1"}})
	assert.ErrorIs(t, err, ErrUnknownOption)
	assert.ErrorContains(t, err, "ffmpeg: libvpx encoder: open:")
	assert.ErrorContains(t, err, "no-such-option")
	assert.NotContains(t, err.Error(), "cpu-used")

	_, err = NewDecoder(DecoderConfig{Codec: "h264", Options: map[string]string{"deadline": "realtime"}}, nil)
	assert.ErrorIs(t, err, ErrUnknownOption)

	// An FFmpeg error names the codec and the operation and unwraps to
	// the astiav error.
	_, err = NewEncoder(EncoderConfig{Codec: "h264", Width: 320, Height: 180, Profile: "no-such-profile"})
	require.Error(t, err)
	var fe *Error
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, "libx264", fe.Component)
	assert.Equal(t, "open", fe.Op)
	var ae astiav.Error
	assert.True(t, errors.As(err, &ae), "unwraps to astiav.Error: %v", err)

	enc, err := NewEncoder(EncoderConfig{Codec: "opus"})
	require.NoError(t, err)
	defer enc.Close()
	pool := NewFramePool()
	defer pool.Close()
	f, err := pool.GetAudio(enc.AudioFormat(), 2000) // libopus takes 960
	require.NoError(t, err)
	defer f.Unref()
	err = enc.Encode(f, nil)
	assert.ErrorIs(t, err, astiav.Error(-22)) // EINVAL
	assert.ErrorContains(t, err, "ffmpeg: libopus encoder: send frame: ")

	g, err := pool.GetAudio(AudioFormat{SampleRate: 8000, SampleFormat: astiav.SampleFormatS16, Channels: 1}, 960)
	require.NoError(t, err)
	defer g.Unref()
	assert.ErrorIs(t, enc.Encode(g, nil), ErrFormat)

	require.NoError(t, enc.Close())
	assert.ErrorIs(t, enc.Encode(f, nil), ErrClosed)
	assert.NoError(t, enc.Close(), "Close is idempotent")
}

func TestDecoderErrors(t *testing.T) {
	checkNoLiveObjects(t)
	dec, err := NewDecoder(DecoderConfig{Codec: "h264"}, nil)
	require.NoError(t, err)
	defer dec.Close()
	// A NAL unit of a reserved type with a broken header.
	err = dec.Decode([]byte{0, 0, 0, 1, 0x80, 0xff, 0xff, 0xff, 0xff}, 0, true, nil)
	if err != nil {
		assert.ErrorContains(t, err, "ffmpeg: h264 decoder: ")
		var ae astiav.Error
		assert.True(t, errors.As(err, &ae))
	}
	assert.NoError(t, dec.Decode(nil, 0, false, nil), "an empty packet does nothing")
	require.NoError(t, dec.Close())
	assert.ErrorIs(t, dec.Decode([]byte{1}, 0, true, nil), ErrClosed)

	_, err = NewDecoder(DecoderConfig{Codec: "no-such-codec"}, nil)
	assert.ErrorIs(t, err, ErrUnknownCodec)

	byID, err := NewDecoder(DecoderConfig{CodecID: astiav.CodecIDVp8}, nil)
	require.NoError(t, err)
	assert.Equal(t, "vp8", byID.Name())
	require.NoError(t, byID.Close())
}

func TestErrorWrapping(t *testing.T) {
	err := wrap("libx264", "encoder", "send frame", astiav.ErrEagain)
	assert.EqualError(t, err, "ffmpeg: libx264 encoder: send frame: "+astiav.ErrEagain.Error())
	assert.ErrorIs(t, err, astiav.ErrEagain)
	assert.ErrorIs(t, err, ErrAgain)
	assert.NotErrorIs(t, err, astiav.ErrEof)
	assert.Nil(t, wrap("x", "y", "z", nil))
}

// TestSetBitrateAudio: libopus is reopened at the next frame.
func TestSetBitrateAudio(t *testing.T) {
	checkNoLiveObjects(t)
	pool := NewFramePool()
	t.Cleanup(pool.Close)
	enc, err := NewEncoder(EncoderConfig{Codec: "opus", Channels: 1, BitRate: 64000})
	require.NoError(t, err)
	t.Cleanup(func() { enc.Close() })
	assert.Equal(t, 312, enc.InitialPadding())
	a := enc.AudioFormat()
	var bytes [2]int
	phase := 0
	emit := func(p *Packet) error { bytes[phase] += len(p.Data); return nil }
	for n := range 200 { // 4 s of 20 ms frames
		if n == 100 {
			enc.SetBitrate(16000)
			phase = 1
		}
		f, err := pool.GetAudio(a, 960)
		require.NoError(t, err)
		require.NoError(t, FillTone(f, 1000, 0.5, int64(n*960)))
		f.SetPTS(int64(n * 960))
		err = enc.Encode(f, emit)
		f.Unref()
		require.NoError(t, err)
	}
	require.NoError(t, enc.Flush(emit))
	t.Logf("libopus: %d bytes in 2 s at 64 kbit/s, %d at 16 kbit/s", bytes[0], bytes[1])
	assert.Less(t, float64(bytes[1]), 0.5*float64(bytes[0]))
	assert.Equal(t, int64(16000), enc.BitRate())
}
