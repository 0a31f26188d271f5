package codec_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
	"github.com/medley-go/medley/internal/ffmpeg"
	"github.com/medley-go/medley/pipeline"
)

// TestTranscodeChains: Connect between pads whose codecs or raw formats
// differ inserts the shortest converter chain, announced by a
// TranscodingStateChanged message and drawn in the DOT graph.
func TestTranscodeChains(t *testing.T) {
	rawVideo := element.Caps{Kind: element.KindVideo, Format: element.FormatRaw}
	cases := []struct {
		name  string
		src   element.Caps
		sink  element.Caps
		chain []string
		types []any
		to    element.Caps
	}{
		{"vp8 rtp to h264 rtp", rtpCaps(t, codec.MIMEVP8), rtpCaps(t, codec.MIMEH264),
			[]string{"vp8-depay", "vp8-dec", "h264-enc", "h264-pay"},
			[]any{&codec.Depayloader{}, &codec.Decoder{}, &codec.Encoder{}, &codec.Payloader{}}, rtpCaps(t, codec.MIMEH264)},
		{"h264 rtp to vp8 rtp", rtpCaps(t, codec.MIMEH264), rtpCaps(t, codec.MIMEVP8),
			[]string{"h264-depay", "h264-dec", "vp8-enc", "vp8-pay"}, nil, rtpCaps(t, codec.MIMEVP8)},
		{"vp8 rtp to h264 samples", rtpCaps(t, codec.MIMEVP8), sampleCaps(t, codec.MIMEH264),
			[]string{"vp8-depay", "vp8-dec", "h264-enc"}, nil, sampleCaps(t, codec.MIMEH264)},
		{"opus rtp to pcmu rtp", rtpCaps(t, codec.MIMEOpus), rtpCaps(t, codec.MIMEPCMU),
			[]string{"opus-depay", "opus-dec", "resample", "pcmu-enc", "pcmu-pay"},
			[]any{&codec.Depayloader{}, &codec.Decoder{}, &codec.Resampler{}, &codec.Encoder{}, &codec.Payloader{}}, rtpCaps(t, codec.MIMEPCMU)},
		// libopus takes 8 and 16 kHz as they are: no resampler.
		{"pcmu rtp to opus rtp", rtpCaps(t, codec.MIMEPCMU), rtpCaps(t, codec.MIMEOpus),
			[]string{"pcmu-depay", "pcmu-dec", "opus-enc", "opus-pay"}, nil, rtpCaps(t, codec.MIMEOpus)},
		{"pcmu rtp to pcma rtp", rtpCaps(t, codec.MIMEPCMU), rtpCaps(t, codec.MIMEPCMA),
			[]string{"pcmu-depay", "pcmu-dec", "pcma-enc", "pcma-pay"}, nil, rtpCaps(t, codec.MIMEPCMA)},
		{"g722 rtp to opus rtp", rtpCaps(t, codec.MIMEG722), rtpCaps(t, codec.MIMEOpus),
			[]string{"g722-depay", "g722-dec", "opus-enc", "opus-pay"}, nil, rtpCaps(t, codec.MIMEOpus)},
		{"pcmu rtp to g722 rtp", rtpCaps(t, codec.MIMEPCMU), rtpCaps(t, codec.MIMEG722),
			[]string{"pcmu-depay", "pcmu-dec", "resample", "g722-enc", "g722-pay"}, nil, rtpCaps(t, codec.MIMEG722)},
		{"vp8 rtp to raw", rtpCaps(t, codec.MIMEVP8), rawVideo,
			[]string{"vp8-depay", "vp8-dec"}, []any{&codec.Depayloader{}, &codec.Decoder{}},
			codec.RawVideoCaps(0, 0, codec.PixelFormatI420)},
		{"opus rtp to raw 16 kHz mono", rtpCaps(t, codec.MIMEOpus), codec.RawAudioCaps(16000, 1, "s16"),
			[]string{"opus-depay", "opus-dec", "resample"}, nil, codec.RawAudioCaps(16000, 1, "s16")},
		{"raw 1280x720 to raw 640x360", codec.RawVideoCaps(1280, 720, codec.PixelFormatI420), codec.RawVideoCaps(640, 360, codec.PixelFormatI420),
			[]string{"scale"}, []any{&codec.Scaler{}}, codec.RawVideoCaps(0, 0, codec.PixelFormatI420)},
		{"raw yuv420p to rgba", codec.RawVideoCaps(0, 0, codec.PixelFormatI420), codec.RawVideoCaps(0, 0, "rgba"),
			[]string{"scale"}, nil, codec.RawVideoCaps(0, 0, "rgba")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := pipeline.New()
			require.NoError(t, err)
			defer p.Close()
			sub := p.Subscribe(64)
			src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: tc.src, Manual: true})
			sink := elementtest.NewSink("sink", element.CapsList{tc.sink})
			require.NoError(t, p.Add(src, sink))
			start := time.Now()
			require.NoError(t, p.Connect(src, sink, element.KindAll))
			elapsed := time.Since(start)
			m := waitTranscoding(t, sub)
			assert.Equal(t, element.Transcoding, m.State)
			assert.Equal(t, tc.src, m.From)
			assert.Equal(t, tc.to, m.To)
			require.Len(t, m.Chain, len(tc.chain), "chain %v", m.Chain)
			dot := p.DOT()
			for i, name := range m.Chain {
				assert.True(t, strings.Contains(name, "-"+tc.chain[i]+"-"), "step %d: %s, want %s", i, name, tc.chain[i])
				assert.Contains(t, dot, name)
				if tc.types != nil {
					assert.IsType(t, tc.types[i], p.Element(name))
				}
			}
			assert.Less(t, elapsed, 100*time.Millisecond, "the chain search is slow")
		})
	}
}

// TestTranscodeOff: WithoutTranscoding refuses what would need a
// transcoder, and so does a chain that cannot exist (audio into video is
// refused by kind; Opus into AAC has no AAC encoder converter).
func TestTranscodeOff(t *testing.T) {
	p, err := pipeline.New(pipeline.WithoutTranscoding())
	require.NoError(t, err)
	defer p.Close()
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: rtpCaps(t, codec.MIMEVP8), Manual: true})
	sink := elementtest.NewSink("sink", element.CapsList{rtpCaps(t, codec.MIMEH264)})
	require.NoError(t, p.Add(src, sink))
	assert.ErrorIs(t, p.Connect(src, sink, element.KindVideo), element.ErrIncompatibleCaps)

	q, err := pipeline.New()
	require.NoError(t, err)
	defer q.Close()
	asrc := elementtest.NewSource("src", elementtest.SourceConfig{Caps: rtpCaps(t, codec.MIMEOpus), Manual: true})
	aac := elementtest.NewSink("sink", element.CapsList{sampleCaps(t, codec.MIMEAAC)})
	require.NoError(t, q.Add(asrc, aac))
	start := time.Now()
	assert.ErrorIs(t, q.Connect(asrc, aac, element.KindAudio), element.ErrIncompatibleCaps)
	assert.Less(t, time.Since(start), 200*time.Millisecond, "a failed chain search is slow")
}

// encodeRTP encodes frames of the test pattern with the encoder and
// payloader elements, run inline, and returns the RTP packets (held until
// the test ends) grouped by frame.
func encodeRTP(tb testing.TB, mime string, frames int, v ffmpeg.VideoFormat, opts ...codec.Option) [][]*element.Buffer {
	tb.Helper()
	enc, err := codec.NewEncoder("enc", sampleCaps(tb, mime), append(opts, codec.WithInline())...)
	require.NoError(tb, err)
	pay, err := codec.NewPayloader("pay", rtpCaps(tb, mime))
	require.NoError(tb, err)
	raw := codec.RawVideoCaps(v.Width, v.Height, codec.PixelFormatI420)
	in := element.NewSrcPad("in", element.CapsList{raw})
	require.NoError(tb, in.SetCaps(raw))
	require.NoError(tb, in.Link(enc.SinkPad()))
	require.NoError(tb, enc.SrcPad().Link(pay.SinkPad()))
	var out [][]*element.Buffer
	var frame []*element.Buffer
	collect := element.NewSinkPad("out", pay.SrcPad().Templates(), func(b *element.Buffer) error {
		frame = append(frame, b.Ref())
		if b.Flags&element.FlagEndOfFrame != 0 {
			out = append(out, frame)
			frame = nil
		}
		return nil
	}, element.Inline())
	require.NoError(tb, pay.SrcPad().Link(collect))
	pushPattern(tb, in, v, frames)
	require.NoError(tb, enc.Close())
	tb.Cleanup(func() {
		for _, f := range out {
			for _, b := range f {
				b.Unref()
			}
		}
	})
	require.Len(tb, out, frames)
	return out
}

// TestTranscodeVP8ToH264: a VP8 RTP source connected to an H.264
// depayloader gets vp8-depay → vp8-dec → h264-enc → h264-pay inserted,
// and the H.264 that comes out decodes into the pictures sent.
func TestTranscodeVP8ToH264(t *testing.T) {
	checkFFmpegObjects(t)
	const frames = 60
	input := encodeRTP(t, codec.MIMEVP8, frames, testVideo, codec.WithBitrate(1_500_000))

	ref := newVideoSource(t, "ref") // the reference pictures, never pushed
	for n := range frames {
		f, err := ref.pool.GetVideo(testVideo)
		require.NoError(t, err)
		require.NoError(t, ffmpeg.DrawPattern(f, n))
		ref.sent[n] = f
	}
	p, err := pipeline.New()
	require.NoError(t, err)
	sub := p.Subscribe(64)
	src := element.NewAppSource("src", element.CapsList{rtpCaps(t, codec.MIMEVP8)})
	h264 := rtpCaps(t, codec.MIMEH264)
	depay, err := codec.NewDepayloader("h264-depay", h264)
	require.NoError(t, err)
	dec, err := codec.NewDecoder("h264-dec", sampleCaps(t, codec.MIMEH264))
	require.NoError(t, err)
	sink := newVideoSink("sink", ref, element.Caps{Kind: element.KindVideo, Format: element.FormatRaw})
	require.NoError(t, p.Add(src, depay, dec, sink))
	require.NoError(t, p.Connect(src, depay, element.KindVideo))
	m := waitTranscoding(t, sub)
	require.Len(t, m.Chain, 4, "chain %v", m.Chain)
	require.NoError(t, p.Connect(depay, dec, element.KindVideo))
	require.NoError(t, p.Connect(dec, sink, element.KindVideo))
	watchErrors(t, p, nil)
	require.NoError(t, p.Start(context.Background()))

	// Faster than real time, but never more than a few frames ahead of
	// the sink: converters have Live queues, which drop when full, and
	// under -race on a loaded machine the chain may run slower than any
	// fixed pace. A frame that does not come out within half a second
	// (dropped after all) lets the next one go.
	const ahead = 8
	for n, pkts := range input {
		for _, b := range pkts {
			src.Push(b)
		}
		deadline := time.Now().Add(500 * time.Millisecond)
		for len(sink.frames()) < n+1-ahead && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
	}
	require.NoError(t, src.EndOfStream())
	sink.wait(t, 20*time.Second)
	sink.check(t)
	got := sink.frames()
	var psnr []float64
	for i, d := range got {
		require.Equal(t, testVideo, d.size)
		if i > 0 {
			require.Greater(t, d.n, got[i-1].n, "frames out of order")
		}
		psnr = append(psnr, d.psnr)
	}
	enc := p.Element(m.Chain[2]).(*codec.Encoder)
	t.Logf("VP8 → H.264: %d of %d frames, mean PSNR %.1f dB (min %.1f), H.264 at %d bit/s; chain %v",
		len(got), frames, meanOf(psnr), minOf(psnr), enc.Stats().Bitrate, m.Chain)
	assert.GreaterOrEqual(t, len(got), frames*9/10, "frames through the transcoder")
	assert.GreaterOrEqual(t, meanOf(psnr), 30.0, "mean luma PSNR after two encodings")
	require.NoError(t, p.Close())
}

// TestTranscodeConverters: the FFmpeg converters of the default registry
// propose fixed caps, and make elements with one sink pad taking the input
// and one src pad set to the output.
func TestTranscodeConverters(t *testing.T) {
	byName := map[string]pipeline.Converter{}
	for _, c := range pipeline.DefaultRegistry.Converters() {
		byName[c.Name()] = c
	}
	inputs := map[string]element.Caps{
		"scale":    codec.RawVideoCaps(1280, 720, codec.PixelFormatI420),
		"resample": codec.RawAudioCaps(48000, 2, "fltp"),
	}
	for _, c := range codec.Codecs() {
		if !c.RTP {
			continue
		}
		inputs[c.Name+"-dec"] = c.Caps(element.FormatSample)
		if c.Kind == element.KindVideo {
			inputs[c.Name+"-enc"] = codec.RawVideoCaps(0, 0, codec.PixelFormatI420)
		} else if l, ok := codec.EncoderInput(c.Caps(element.FormatSample)); ok {
			inputs[c.Name+"-enc"] = l[0]
		}
	}
	for name, in := range inputs {
		conv := byName[name]
		if conv == nil {
			if strings.HasSuffix(name, "-enc") || strings.HasSuffix(name, "-dec") {
				t.Logf("%s: not in this FFmpeg", name)
				continue
			}
			t.Fatalf("no converter %s", name)
		}
		outs := conv.Outputs(in)
		require.NotEmpty(t, outs, name)
		for _, out := range outs {
			assert.True(t, out.IsFixed(), "%s: %v", name, out)
			assert.Equal(t, in.Kind, out.Kind)
			el, err := conv.New("x", in, out)
			require.NoError(t, err, "%s: %v → %v", name, in, out)
			var sinks, srcs int
			for _, pad := range el.Pads() {
				if pad.Direction() == element.Sink {
					sinks++
					_, ok := pad.Templates().Accepts(in)
					assert.True(t, ok, "%s sink takes %v", name, in)
				} else {
					srcs++
					got, ok := pad.Caps()
					assert.True(t, ok)
					assert.Equal(t, out, got)
				}
			}
			assert.Equal(t, 1, sinks)
			assert.Equal(t, 1, srcs)
			require.NoError(t, el.(element.Closer).Close())
		}
		_, err := conv.New("x", in, element.Caps{Kind: in.Kind, Format: element.FormatRTP, Codec: "x/none"})
		assert.Error(t, err, name)
	}
}
