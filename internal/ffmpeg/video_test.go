package ffmpeg

import (
	"fmt"
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A 30 fps stream in the default 1/90000 time base.
const frameTicks = 3000

type encodedPacket struct {
	data []byte
	pts  int64
	key  bool
}

// collect returns an emit callback that copies packets into *out.
func collect(out *[]encodedPacket) func(*Packet) error {
	return func(p *Packet) error {
		*out = append(*out, encodedPacket{data: append([]byte(nil), p.Data...), pts: p.PTS, key: p.Keyframe})
		return nil
	}
}

// patternFrame returns frame n of the synthetic picture.
func patternFrame(t testing.TB, pool *FramePool, v VideoFormat, n int) *Frame {
	t.Helper()
	f, err := pool.GetVideo(v)
	require.NoError(t, err)
	require.NoError(t, DrawPattern(f, n))
	f.SetPTS(int64(n) * frameTicks)
	return f
}

var videoCodecs = []struct {
	name, encoder, decoder string
	profile                string
	decThreads             int
	frameThreads           bool
}{
	{name: "vp8", encoder: "vp8", decoder: "vp8"},
	{name: "vp9", encoder: "vp9", decoder: "vp9"},
	{name: "h264-baseline", encoder: "h264", decoder: "h264", profile: "constrained_baseline"},
	{name: "h264-high", encoder: "h264", decoder: "h264", profile: "high", decThreads: 2, frameThreads: true},
	{name: "av1", encoder: "av1", decoder: "av1"},
}

// TestVideoRoundTrip: 60 frames of a moving 640x360 picture at 1 Mbit/s
// come back in order, at their size, with a mean luma PSNR of 30 dB or more.
func TestVideoRoundTrip(t *testing.T) {
	for _, c := range videoCodecs {
		t.Run(c.name, func(t *testing.T) {
			if _, ok := HasEncoder(c.encoder); !ok {
				t.Skipf("no %s encoder in this FFmpeg", c.encoder)
			}
			checkNoLiveObjects(t)
			pool := NewFramePool()
			t.Cleanup(pool.Close)
			v := VideoFormat{Width: 640, Height: 360, PixelFormat: astiav.PixelFormatYuv420P}
			enc, err := NewEncoder(EncoderConfig{Codec: c.encoder, Width: v.Width, Height: v.Height,
				BitRate: 1_000_000, Profile: c.profile})
			require.NoError(t, err)
			t.Cleanup(func() { enc.Close() })
			dec, err := NewDecoder(DecoderConfig{Codec: c.decoder, Threads: c.decThreads, FrameThreads: c.frameThreads}, pool)
			require.NoError(t, err)
			t.Cleanup(func() { dec.Close() })

			const frames = 60
			sources := map[int64]*Frame{}
			var pts []int64
			var psnrY, psnrC []float64
			var bytes int
			onFrame := func(f *Frame) error {
				if f.Video() != v {
					return fmt.Errorf("decoded %v, want %v", f.Video(), v)
				}
				src := sources[f.PTS()]
				if src == nil {
					return fmt.Errorf("decoded a frame with unknown pts %d", f.PTS())
				}
				delete(sources, f.PTS())
				defer src.Unref()
				pts = append(pts, f.PTS())
				y, err := PSNR(src, f, 0)
				if err != nil {
					return err
				}
				u, err := PSNR(src, f, 1)
				if err != nil {
					return err
				}
				psnrY, psnrC = append(psnrY, y), append(psnrC, u)
				return nil
			}
			var sps []byte
			onPacket := func(p *Packet) error {
				if sps == nil && c.encoder == "h264" {
					// p.Data is the encoder's memory: copy what we keep.
					sps = append([]byte(nil), findSPS(p.Data)...)
				}
				bytes += len(p.Data)
				return dec.Decode(p.Data, p.PTS, p.Keyframe, onFrame)
			}
			for n := range frames {
				f := patternFrame(t, pool, v, n)
				sources[f.PTS()] = f
				require.NoError(t, enc.Encode(f, onPacket))
			}
			require.NoError(t, enc.Flush(onPacket))
			require.NoError(t, dec.Flush(onFrame))
			for _, f := range sources {
				f.Unref()
			}

			require.Len(t, pts, frames, "decoded frames")
			for i, p := range pts {
				require.Equal(t, int64(i)*frameTicks, p, "frame %d out of order", i)
			}
			switch c.profile {
			case "constrained_baseline":
				require.GreaterOrEqual(t, len(sps), 3)
				assert.Equal(t, byte(66), sps[1], "profile_idc baseline")
				assert.NotZero(t, sps[2]&0x40, "constraint_set1_flag (constrained baseline)")
			case "high":
				require.GreaterOrEqual(t, len(sps), 3)
				assert.Equal(t, byte(100), sps[1], "profile_idc high")
			}
			meanY, meanC := mean(psnrY), mean(psnrC)
			kbps := float64(bytes*8) / (frames / 30.0) / 1000
			t.Logf("%s → %s: mean PSNR Y %.1f dB, Cb %.1f dB, min Y %.1f dB, %.0f kbit/s",
				enc.Name(), dec.Name(), meanY, meanC, minOf(psnrY), kbps)
			assert.GreaterOrEqual(t, meanY, 30.0, "mean luma PSNR")
			assert.Zero(t, pool.Outstanding(), "frames not returned to the pool")
		})
	}
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

// findSPS returns the first sequence parameter set NAL unit of an Annex B
// access unit, or nil.
func findSPS(au []byte) []byte {
	for i := 0; i+3 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 && au[i+3]&0x1f == 7 {
			return au[i+3:]
		}
	}
	return nil
}
