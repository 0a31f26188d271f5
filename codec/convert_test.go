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
	"github.com/medley-go/medley/pipeline"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitTranscoding returns the first TranscodingStateChanged message on sub.
func waitTranscoding(t *testing.T, sub *pipeline.Subscription) *element.TranscodingStateChanged {
	t.Helper()
	ctx := testCtx(t)
	for {
		select {
		case m, ok := <-sub.C():
			require.True(t, ok, "bus closed")
			if tc, ok := m.(*element.TranscodingStateChanged); ok {
				return tc
			}
		case <-ctx.Done():
			t.Fatal("no TranscodingStateChanged message")
		}
	}
}

// TestConnectInsertsConverters: importing codec registers converters, so
// that Connect between pads whose formats differ inserts a depayloader or
// a payloader, announced on the bus.
func TestConnectInsertsConverters(t *testing.T) {
	sampleOf := func(mime string) element.Caps {
		c, _ := codec.Lookup(mime)
		return c.Caps(element.FormatSample)
	}
	h264Mode0 := rtpCaps(t, codec.MIMEH264)
	h264Mode0.Fmtp = "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"
	cases := []struct {
		name      string
		src       element.Caps
		sink      element.Caps
		converter string
		to        element.Caps
	}{
		{"vp8 rtp to samples", rtpCaps(t, codec.MIMEVP8),
			element.Caps{Kind: element.KindVideo, Format: element.FormatSample, Codec: "video/vp8"}, "vp8-depay", sampleOf(codec.MIMEVP8)},
		{"h264 rtp to samples", rtpCaps(t, codec.MIMEH264),
			element.Caps{Kind: element.KindVideo, Format: element.FormatSample}, "h264-depay", sampleOf(codec.MIMEH264)},
		{"opus rtp to samples", rtpCaps(t, codec.MIMEOpus),
			element.Caps{Kind: element.KindAudio, Format: element.FormatSample, Codec: codec.MIMEOpus}, "opus-depay", sampleOf(codec.MIMEOpus)},
		{"vp8 samples to rtp", sampleOf(codec.MIMEVP8),
			element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: codec.MIMEVP8}, "vp8-pay", rtpCaps(t, codec.MIMEVP8)},
		{"h264 samples to rtp mode 0", sampleOf(codec.MIMEH264), h264Mode0, "h264-pay", h264Mode0},
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
			require.NoError(t, p.Connect(src, sink, element.KindAll))
			m := waitTranscoding(t, sub)
			assert.Equal(t, element.Transcoding, m.State)
			assert.Equal(t, tc.src, m.From)
			assert.Equal(t, tc.to, m.To)
			require.Len(t, m.Chain, 1)
			assert.True(t, strings.Contains(m.Chain[0], tc.converter), "chain %v", m.Chain)
			conv := p.Element(m.Chain[0])
			require.NotNil(t, conv)
			switch strings.HasSuffix(tc.converter, "-depay") {
			case true:
				assert.IsType(t, &codec.Depayloader{}, conv)
			default:
				assert.IsType(t, &codec.Payloader{}, conv)
			}
		})
	}
}

// TestConnectIncompatible: a VP8 stream cannot reach a sink of a codec
// medley has no encoder for (TestTranscodeOff has more).
func TestConnectIncompatible(t *testing.T) {
	p, err := pipeline.New()
	require.NoError(t, err)
	defer p.Close()
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: rtpCaps(t, codec.MIMEVP8), Manual: true})
	sink := elementtest.NewSink("sink", element.CapsList{{Kind: element.KindVideo, Format: element.FormatSample, Codec: "video/x-unknown"}})
	require.NoError(t, p.Add(src, sink))
	assert.ErrorIs(t, p.Connect(src, sink, element.KindVideo), element.ErrIncompatibleCaps)
}

// TestPipelineDepayloads: VP8 RTP from a source reaches a sample sink
// through the inserted depayloader as the original frames.
func TestPipelineDepayloads(t *testing.T) {
	caps := rtpCaps(t, codec.MIMEVP8)
	samples := videoStream(vp8Frame)(randFor(4), 20, 10)
	pkts := payloadAll(t, caps, samples, payOpts(codec.DefaultMTU)...)

	p, err := pipeline.New()
	require.NoError(t, err)
	src := element.NewAppSource("src", element.CapsList{caps})
	sink := elementtest.NewSink("sink", element.CapsList{{Kind: element.KindVideo, Format: element.FormatSample, Codec: codec.MIMEVP8}}, elementtest.WithKeep())
	require.NoError(t, p.Add(src, sink))
	require.NoError(t, p.Connect(src, sink, element.KindVideo))
	ctx := testCtx(t)
	require.NoError(t, p.Start(ctx))
	for _, b := range pkts {
		src.Push(b)
	}
	require.NoError(t, sink.WaitCount(ctx, len(samples)))
	bufs := sink.Buffers()
	require.Len(t, bufs, len(samples))
	for i, b := range bufs {
		assert.Equal(t, samples[i].data, b.Data, "frame %d", i)
		assert.Equal(t, samples[i].key, b.Keyframe(), "frame %d", i)
	}
	require.NoError(t, p.Close())
}

// TestConverters: every codec with RTP has a depayloader and a payloader
// converter in the default registry, whose outputs are fixed caps and
// whose elements have one sink and one src pad with those caps set.
func TestConverters(t *testing.T) {
	byName := map[string]pipeline.Converter{}
	for _, c := range pipeline.DefaultRegistry.Converters() {
		byName[c.Name()] = c
	}
	for _, c := range codec.Codecs() {
		if !c.RTP {
			continue
		}
		for _, dir := range []struct {
			suffix string
			in     element.Caps
			n      int
		}{
			{"-depay", c.Caps(element.FormatRTP), 1},
			{"-pay", c.Caps(element.FormatSample), len(c.FmtpVariants)},
		} {
			conv := byName[c.Name+dir.suffix]
			require.NotNil(t, conv, c.Name+dir.suffix)
			outs := conv.Outputs(dir.in)
			require.Len(t, outs, dir.n, conv.Name())
			for _, out := range outs {
				assert.True(t, out.IsFixed(), "%s: %v", conv.Name(), out)
				el, err := conv.New("x", dir.in, out)
				require.NoError(t, err)
				var sinks, srcs int
				for _, pad := range el.Pads() {
					if pad.Direction() == element.Sink {
						sinks++
						_, ok := pad.Templates().Accepts(dir.in)
						assert.True(t, ok, "%s sink accepts %v", conv.Name(), dir.in)
					} else {
						srcs++
						got, ok := pad.Caps()
						assert.True(t, ok)
						assert.Equal(t, out, got)
					}
				}
				assert.Equal(t, 1, sinks)
				assert.Equal(t, 1, srcs)
			}
			// Not its codec, not its format: nothing.
			other := dir.in
			other.Codec = "video/x-other"
			assert.Empty(t, conv.Outputs(other))
			_, err := conv.New("x", other, dir.in)
			assert.Error(t, err)
		}
	}
}
