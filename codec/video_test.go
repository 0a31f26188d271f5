package codec_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
	"github.com/medley-go/medley/internal/ffmpeg"
	"github.com/medley-go/medley/pipeline"
)

// videoCodecs are the video codecs of the element round trips.
var videoCodecs = []struct {
	name, mime string
	opts       []codec.Option
}{
	{name: "vp8", mime: codec.MIMEVP8},
	{name: "vp9", mime: codec.MIMEVP9},
	{name: "h264", mime: codec.MIMEH264},
	{name: "av1", mime: codec.MIMEAV1},
}

// TestVideoRoundTrip: 60 frames of a moving 640x360 picture go through
// encoder → payloader → depayloader → decoder elements in a running
// pipeline, at 1 Mbit/s, and come back in order, at their size, with a
// mean luma PSNR of 30 dB or more.
func TestVideoRoundTrip(t *testing.T) {
	for _, vc := range videoCodecs {
		t.Run(vc.name, func(t *testing.T) {
			sample := sampleCaps(t, vc.mime)
			if _, ok := codec.EncoderInput(sample); !ok {
				t.Skipf("no %s encoder in this FFmpeg", vc.name)
			}
			rtp := rtpCaps(t, vc.mime)
			block := codec.WithQueue(128, element.Block)
			src := newVideoSource(t, "src")
			enc, err := codec.NewEncoder("enc", sample, append(vc.opts, codec.WithBitrate(1_000_000), block)...)
			require.NoError(t, err)
			pay, err := codec.NewPayloader("pay", rtp)
			require.NoError(t, err)
			depay, err := codec.NewDepayloader("depay", rtp)
			require.NoError(t, err)
			dec, err := codec.NewDecoder("dec", sample, block)
			require.NoError(t, err)
			sink := newVideoSink("sink", src, element.Caps{Kind: element.KindVideo, Format: element.FormatRaw})
			p := chainPipeline(t, src, enc, pay, depay, dec, sink)
			watchErrors(t, p, nil)

			const frames = 60
			for n := range frames {
				src.push(t, n)
			}
			require.NoError(t, src.EndOfStream())
			sink.wait(t, 30*time.Second)
			sink.check(t)

			got := sink.frames()
			require.Len(t, got, frames, "decoded frames")
			var psnr []float64
			for i, d := range got {
				require.Equal(t, i, d.n, "frame %d out of order", i)
				require.Equal(t, testVideo, d.size, "frame %d size", i)
				psnr = append(psnr, d.psnr)
			}
			st := enc.Stats()
			t.Logf("%s: mean PSNR %.1f dB (min %.1f), %d keyframes, bitrate %d, %d packets",
				vc.name, meanOf(psnr), minOf(psnr), st.Keyframes, st.Bitrate, pay.Stats().Packets)
			assert.GreaterOrEqual(t, meanOf(psnr), 30.0, "mean luma PSNR")
			assert.Equal(t, uint64(frames), dec.Stats().Frames)
			assert.Zero(t, depay.Stats().DroppedFrames)
		})
	}
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

// TestVideoLoss: with 5% of the RTP packets dropped at random between
// payloader and depayloader, no damaged frame is decoded (each has a luma
// PSNR of 25 dB or more against its source), the depayloader's keyframe
// requests reach the encoder, which answers them, and decoding resumes at
// each keyframe.
func TestVideoLoss(t *testing.T) {
	for i, vc := range videoCodecs[:3] {
		t.Run(vc.name, func(t *testing.T) {
			t.Parallel()
			sample, rtp := sampleCaps(t, vc.mime), rtpCaps(t, vc.mime)
			block := codec.WithQueue(256, element.Block)
			src := newVideoSource(t, "src")
			// A long keyframe interval: the keyframes after the first come
			// only from requests.
			enc, err := codec.NewEncoder("enc", sample, codec.WithBitrate(1_000_000), codec.WithKeyframeInterval(time.Minute), block)
			require.NoError(t, err)
			pay, err := codec.NewPayloader("pay", rtp)
			require.NoError(t, err)
			loss := newLossy("loss", rtp, 0.05, uint64(7+i))
			depay, err := codec.NewDepayloader("depay", rtp)
			require.NoError(t, err)
			dec, err := codec.NewDecoder("dec", sample, block)
			require.NoError(t, err)
			sink := newVideoSink("sink", src, element.Caps{Kind: element.KindVideo, Format: element.FormatRaw})
			keys := elementtest.NewSink("keys", element.CapsList{rtp})
			p := chainPipeline(t, src, enc, pay, loss, depay, dec, sink)
			require.NoError(t, p.Add(keys))
			require.NoError(t, p.ConnectPads(pay.SrcPad(), keys.SinkPad()))
			watchErrors(t, p, nil)

			// Paced: the payloader's src pad passes one keyframe request
			// per element.DefaultKeyframeInterval, and a keyframe of a dozen
			// packets is itself often hit. Go on past 150 frames until the
			// decoding has resumed twice after a loss (at most 600 frames).
			frames := 0
			for ; frames < 600 && (frames < 150 || recoveries(sink.frames()) < 2); frames++ {
				src.push(t, frames)
				time.Sleep(15 * time.Millisecond)
			}
			require.NoError(t, src.EndOfStream())
			sink.wait(t, 30*time.Second)
			sink.check(t)

			keyframe := map[int]bool{}
			for _, r := range keys.Received() {
				if r.Keyframe() {
					keyframe[frameIndex(r.PTS, testFPS)] = true
				}
			}
			got := sink.frames()
			require.NotEmpty(t, got)
			var resumed, afterLoss int
			var psnr []float64
			for j, d := range got {
				assert.Equal(t, testVideo, d.size)
				assert.GreaterOrEqual(t, d.psnr, 25.0, "frame %d is damaged", d.n)
				psnr = append(psnr, d.psnr)
				if j > 0 && d.n != got[j-1].n+1 {
					require.Greater(t, d.n, got[j-1].n, "frames out of order")
					assert.True(t, keyframe[d.n], "decoding resumed at frame %d, not a keyframe", d.n)
					resumed++
				}
				if resumed > 0 {
					afterLoss++
				}
			}
			es, ds := enc.Stats(), depay.Stats()
			t.Logf("%s: %d packets dropped, %d passed; %d of %d frames decoded (mean PSNR %.1f, min %.1f); "+
				"depayloader dropped %d frames, asked %d keyframes; encoder got %d requests, made %d keyframes; %d recoveries",
				vc.name, loss.dropped, loss.passed, len(got), frames, meanOf(psnr), minOf(psnr),
				ds.DroppedFrames, ds.KeyframeRequests, es.KeyframeRequests, es.Keyframes, resumed)
			require.Positive(t, loss.dropped)
			assert.Positive(t, ds.KeyframeRequests, "keyframe requests from the depayloader")
			assert.Positive(t, es.KeyframeRequests, "keyframe requests reaching the encoder")
			assert.Greater(t, es.Keyframes, uint64(1), "keyframes made on request")
			assert.Positive(t, afterLoss, "frames decoded after a loss")
			assert.GreaterOrEqual(t, resumed, 2, "recoveries")
		})
	}
}

// recoveries counts the gaps in a run of decoded frames.
func recoveries(got []decoded) int {
	n := 0
	for j := 1; j < len(got); j++ {
		if got[j].n != got[j-1].n+1 {
			n++
		}
	}
	return n
}

// TestDecoderFitsSink: a raw sink that asks a size behind a VP8 RTP source
// gets depayloader → decoder, and the decoder scales to the size asked;
// a sink asking rgba gets a scaler too.
func TestDecoderFitsSink(t *testing.T) {
	input := encodeRTP(t, codec.MIMEVP8, 10, testVideo)
	for _, tc := range []struct {
		name  string
		caps  element.Caps
		chain int
		want  ffmpeg.VideoFormat
	}{
		{"320x180", codec.RawVideoCaps(320, 180, codec.PixelFormatI420), 2,
			ffmpeg.VideoFormat{Width: 320, Height: 180, PixelFormat: astiav.PixelFormatYuv420P}},
		{"any size", codec.RawVideoCaps(0, 0, ""), 2, testVideo},
		{"rgba", codec.RawVideoCaps(0, 0, "rgba"), 3,
			ffmpeg.VideoFormat{Width: testWidth, Height: testHeight, PixelFormat: astiav.PixelFormatRgba}},
		{"rgba 160x90", codec.RawVideoCaps(160, 90, "rgba"), 3,
			ffmpeg.VideoFormat{Width: 160, Height: 90, PixelFormat: astiav.PixelFormatRgba}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := pipeline.New()
			require.NoError(t, err)
			sub := p.Subscribe(64)
			src := element.NewAppSource("src", element.CapsList{rtpCaps(t, codec.MIMEVP8)})
			sink := newVideoSink("sink", nil, tc.caps)
			require.NoError(t, p.Add(src, sink))
			require.NoError(t, p.Connect(src, sink, element.KindVideo))
			m := waitTranscoding(t, sub)
			require.Len(t, m.Chain, tc.chain, "chain %v", m.Chain)
			watchErrors(t, p, nil)
			require.NoError(t, p.Start(context.Background()))
			for _, pkts := range input {
				for _, b := range pkts {
					src.Push(b)
				}
				time.Sleep(5 * time.Millisecond)
			}
			require.NoError(t, src.EndOfStream())
			sink.wait(t, 10*time.Second)
			sink.check(t)
			got := sink.frames()
			require.Len(t, got, len(input))
			for _, d := range got {
				assert.Equal(t, tc.want, d.size)
			}
			c, ok := sink.SinkPad().Caps()
			require.True(t, ok)
			assert.Equal(t, tc.want.Width, c.Width, "caps announced: %v", c)
			require.NoError(t, p.Close())
		})
	}
}

// TestEncoderUpstreamEvents: a keyframe request from downstream makes the
// encoder's next sample a keyframe; a bitrate hint lowers its target (x264
// at once, libvpx at its next keyframe), and a hint of 0 restores it.
func TestEncoderUpstreamEvents(t *testing.T) {
	for _, vc := range videoCodecs[:3] {
		t.Run(vc.name, func(t *testing.T) {
			sample := sampleCaps(t, vc.mime)
			src := newVideoSource(t, "src")
			enc, err := codec.NewEncoder("enc", sample, codec.WithBitrate(1_000_000), codec.WithKeyframeInterval(time.Minute),
				codec.WithQueue(64, element.Block))
			require.NoError(t, err)
			sink := elementtest.NewSink("sink", element.CapsList{sample}, elementtest.WithQueue(256, element.Block))
			p := chainPipeline(t, src, enc, sink)
			watchErrors(t, p, nil)
			ctx := testCtx(t)
			n := 0
			pushWait := func(frames int) {
				for range frames {
					src.push(t, n)
					n++
				}
				require.NoError(t, sink.WaitCount(ctx, n))
			}
			pushWait(10)
			require.True(t, sink.RequestKeyframe())
			pushWait(1)
			got := sink.Received()
			assert.True(t, got[0].Keyframe(), "the first sample is a keyframe")
			for i := 1; i < 10; i++ {
				assert.False(t, got[i].Keyframe(), "sample %d", i)
			}
			assert.True(t, got[10].Keyframe(), "the sample after the request is a keyframe")
			assert.Equal(t, uint64(1), enc.Stats().KeyframeRequests)

			require.True(t, sink.SendBitrateHint(300_000))
			pushWait(1)
			assert.Equal(t, int64(300_000), enc.Stats().Bitrate, "target after the hint")
			require.True(t, sink.SendBitrateHint(5_000_000))
			pushWait(1)
			assert.Equal(t, int64(1_000_000), enc.Stats().Bitrate, "a hint above the target does not raise it")
			require.True(t, sink.SendBitrateHint(300_000))
			pushWait(30)
			small := sink.Received()[n-29:]
			require.True(t, sink.SendBitrateHint(0))
			pushWait(1)
			assert.Equal(t, int64(1_000_000), enc.Stats().Bitrate, "target after the hint is withdrawn")
			var bytes int
			for _, r := range small {
				bytes += r.Size
			}
			kbps := float64(bytes*8) / (float64(len(small)) / testFPS) / 1000
			t.Logf("%s: %.0f kbit/s under a 300 kbit/s hint; %+v", vc.name, kbps, enc.Stats())
			if vc.mime == codec.MIMEH264 {
				assert.Less(t, kbps, 600.0, "x264 follows the hint")
			}
		})
	}
}

// TestDecoderCorruptInput: samples that are not what they claim (random
// bytes, a keyframe cut short) make the decoder post one Error message,
// drop them and ask upstream for a keyframe; it never crashes, never
// passes a damaged picture, and decodes again from the next keyframe.
// (A frame cut at a packet boundary is another matter: VP8's last
// partition runs to the end of the frame, so no decoder can tell it is
// short; the depayloader never passes such a frame.)
func TestDecoderCorruptInput(t *testing.T) {
	for _, vc := range videoCodecs[:3] {
		t.Run(vc.name, func(t *testing.T) {
			sample := sampleCaps(t, vc.mime)
			input := encodeSamples(t, vc.mime, 20, testVideo, codec.WithKeyframeInterval(time.Second/3))
			var keyframes []int
			for i, s := range input {
				if s.key {
					keyframes = append(keyframes, i)
				}
			}
			require.GreaterOrEqual(t, len(keyframes), 2, "keyframes in the input")
			var requests atomic.Int32
			src := element.NewAppSource("src", element.CapsList{sample}, element.WithSourceKeyframeInterval(0),
				element.WithUpstream(func(ev element.Event) {
					if _, ok := ev.(element.KeyframeRequest); ok {
						requests.Add(1)
					}
				}))
			dec, err := codec.NewDecoder("dec", sample, codec.WithQueue(64, element.Block))
			require.NoError(t, err)
			ref := newVideoSource(t, "ref")
			for n := range input {
				f, err := ref.pool.GetVideo(testVideo)
				require.NoError(t, err)
				require.NoError(t, ffmpeg.DrawPattern(f, n))
				ref.sent[n] = f
			}
			sink := newVideoSink("sink", ref, element.Caps{Kind: element.KindVideo, Format: element.FormatRaw})
			p := chainPipeline(t, src, dec, sink)
			var mu sync.Mutex
			var errs []error
			watchErrors(t, p, func(err error) bool {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return true
			})
			r := randFor(3)
			push := func(i int, data []byte, key bool) {
				flags := element.Flags(0)
				if key {
					flags = element.FlagKeyframe
				}
				src.PushSample(data, framePTS(i, testFPS), time.Second/testFPS, flags)
			}
			second := keyframes[1]
			for i := range second {
				switch {
				case i < 4:
					push(i, input[i].data, input[i].key)
				case i == 4:
					push(i, randBytes(r, 3000), true) // garbage claiming to be a keyframe
				case i == 5:
					push(i, input[0].data[:20], true) // a keyframe cut short
				default:
					push(i, randBytes(r, 500), false)
				}
			}
			for i := second; i < len(input); i++ {
				push(i, input[i].data, input[i].key)
			}
			require.NoError(t, src.EndOfStream())
			sink.wait(t, 10*time.Second)
			sink.check(t)
			got := sink.frames()
			var indices []int
			for _, d := range got {
				indices = append(indices, d.n)
				assert.GreaterOrEqual(t, d.psnr, 25.0, "frame %d is damaged", d.n)
			}
			st := dec.Stats()
			mu.Lock()
			t.Logf("%s: decoded %v; %+v; %d requests upstream; errors %v", vc.name, indices, st, requests.Load(), errs)
			assert.NotEmpty(t, errs, "an Error message")
			assert.Len(t, errs, 1, "one Error message per episode")
			mu.Unlock()
			assert.Positive(t, requests.Load(), "keyframe requests upstream")
			assert.Contains(t, indices, 3)
			assert.Contains(t, indices, second, "decoding resumes at the next keyframe")
			assert.Contains(t, indices, len(input)-1)
		})
	}
}
