package codec_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
)

// benchFrames is a stream like 720p at about 1.5 Mbit/s, 30 fps: a 30 kB
// keyframe every 60 frames, 4 to 8 kB deltas, each several packets (for
// H.264 one slice per frame, so FU-A). The H.264 slices are random bytes
// of every value, with emulation prevention bytes as an encoder writes
// them, so that finding start codes costs what it costs on real streams.
func benchFrames(mime string) []sample {
	r := rand.New(rand.NewPCG(42, 42))
	out := make([]sample, benchN)
	for i := range out {
		key := i == 0
		size := 4000 + r.IntN(4000)
		if key {
			size = 30000
		}
		var data []byte
		switch mime {
		case codec.MIMEVP8:
			data = randBytes(r, size)
			if key {
				data[0] &^= 1
				copy(data[3:], []byte{0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02})
			} else {
				data[0] |= 1
			}
		case codec.MIMEH264:
			typ := byte(0x41)
			if key {
				typ = 0x65
			}
			slice := emulationPrevention(append([]byte{typ, 0x88}, randAny(r, size)...))
			if key {
				data = annexB(h264NAL(r, 7, 12, false), h264NAL(r, 8, 4, false), slice)
			} else {
				data = annexB(slice)
			}
		}
		out[i] = sample{data: data, key: key, pts: framePTS(i, 30)}
	}
	return out
}

// randAny returns n random bytes, the last not zero.
func randAny(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[n-1] |= 1
	return b
}

// emulationPrevention inserts 0x03 after every two zero bytes followed by a
// byte of at most 3 (H.264 section 7.4.1), so that no start code appears.
func emulationPrevention(rbsp []byte) []byte {
	out := make([]byte, 0, len(rbsp)+len(rbsp)/64)
	zeros := 0
	for _, c := range rbsp {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// BenchmarkRTPRoundTrip measures a payloader and a depayloader linked
// inline, samples in, samples out: one op is one RTP packet made and
// taken apart (ns/pkt says the same from the packet count).
func BenchmarkRTPRoundTrip(b *testing.B) {
	for _, bc := range []struct{ name, mime string }{{"vp8", codec.MIMEVP8}, {"h264", codec.MIMEH264}} {
		b.Run(bc.name, func(b *testing.B) {
			caps := rtpCaps(b, bc.mime)
			c, _ := codec.Lookup(bc.mime)
			pay, err := codec.NewPayloader("pay", caps)
			require.NoError(b, err)
			depay, err := codec.NewDepayloader("depay", caps)
			require.NoError(b, err)
			in := element.NewSrcPad("in", element.CapsList{c.Caps(element.FormatSample)})
			require.NoError(b, in.SetCaps(c.Caps(element.FormatSample)))
			require.NoError(b, in.Link(pay.SinkPad()))
			require.NoError(b, pay.SrcPad().Link(depay.SinkPad()))
			var frames, bytes int
			out := element.NewSinkPad("out", depay.SrcPad().Templates(), func(buf *element.Buffer) error {
				frames++
				bytes += len(buf.Data)
				return nil
			}, element.Inline())
			require.NoError(b, depay.SrcPad().Link(out))

			samples := benchFrames(bc.mime)
			bufs := make([]*element.Buffer, len(samples))
			for i, s := range samples {
				bufs[i] = s.buffer()
			}
			frame := 0
			push := func() int {
				i := frame % len(bufs)
				buf := bufs[i]
				buf.PTS = framePTS(frame, 30)
				before := pay.Stats().Packets
				in.Push(buf)
				frame++
				return int(pay.Stats().Packets - before)
			}
			for range 2 * len(bufs) { // warm the pools
				push()
			}
			frames = 0
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			packets := 0
			for packets < b.N {
				packets += push()
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(packets), "ns/pkt")
			b.ReportMetric(float64(packets)/float64(max(frames, 1)), "pkts/frame")
			st := depay.Stats()
			require.Zero(b, st.DroppedFrames)
			require.Equal(b, frames, int(st.Frames)-2*len(bufs))
		})
	}
}

// BenchmarkPionRTPRoundTrip does the same work with pion/rtp's codecs
// package alone (payload, then depacketize into one frame), for
// comparison: it has no elements, pads or pools, and allocates.
func BenchmarkPionRTPRoundTrip(b *testing.B) {
	b.Run("vp8", func(b *testing.B) {
		benchPionRoundTrip(b, codec.MIMEVP8, &codecs.VP8Payloader{EnablePictureID: true}, &codecs.VP8Packet{})
	})
	b.Run("h264", func(b *testing.B) {
		benchPionRoundTrip(b, codec.MIMEH264, &codecs.H264Payloader{}, &codecs.H264Packet{})
	})
}

// benchPionRoundTrip payloads and depacketizes the benchmark frames of
// mime with pion's own pair, reporting ns/pkt.
func benchPionRoundTrip(b *testing.B, mime string, pay rtp.Payloader, pkt rtp.Depacketizer) {
	samples := benchFrames(mime)
	frame := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	packets := 0
	for i := 0; packets < b.N; i++ {
		frame = frame[:0]
		for _, p := range pay.Payload(codec.DefaultMTU-12, samples[i%len(samples)].data) {
			data, err := pkt.Unmarshal(p)
			if err != nil {
				b.Fatal(err)
			}
			frame = append(frame, data...)
			packets++
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(packets), "ns/pkt")
}

var benchN = 60
