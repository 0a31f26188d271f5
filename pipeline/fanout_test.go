package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
	"github.com/medley-go/medley/pipeline"
)

// Helpers shared by fanout_test.go, isolation_test.go, upstream_test.go and
// dynamic_test.go.

var (
	graphVP8Sample = element.Caps{Kind: element.KindVideo, Format: element.FormatSample, Codec: "video/VP8"}
	graphOpusRTP   = element.Caps{Kind: element.KindAudio, Format: element.FormatRTP, Codec: "audio/opus", ClockRate: 48000, Channels: 2}
)

// graphPipeline returns a pipeline holding els, closed when the test
// ends.
func graphPipeline(t *testing.T, els ...element.Element) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	require.NoError(t, p.Add(els...))
	return p
}

// graphStart starts p under a context that ends after timeout (and
// when the test ends), and returns that context.
func graphStart(t *testing.T, p *pipeline.Pipeline, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	require.NoError(t, p.Start(ctx))
	return ctx
}

// graphPadStats returns the stats of one pad of the pipeline.
func graphPadStats(t *testing.T, p *pipeline.Pipeline, el, pad string) element.PadStats {
	t.Helper()
	es, ok := p.Stats().Element(el)
	require.True(t, ok, "no element %s", el)
	ps, ok := es.Pad(pad)
	require.True(t, ok, "no pad %s.%s", el, pad)
	return ps
}

// graphSeqRun checks that got holds RTP sequence numbers first, first+1, ...
// with no gap, duplicate or reordering.
func graphSeqRun(t *testing.T, got []elementtest.Received, first uint16, what string) {
	t.Helper()
	for i, r := range got {
		if r.Seq != first+uint16(i) {
			require.Failf(t, "sequence broken", "%s: buffer %d has seq %d, want %d", what, i, r.Seq, first+uint16(i))
		}
	}
}

// graphEvents returns the events of type E among evs.
func graphEvents[E element.Event](evs []element.Event) []E {
	var out []E
	for _, ev := range evs {
		if e, ok := ev.(E); ok {
			out = append(out, e)
		}
	}
	return out
}

func TestFanoutEveryBufferInOrder(t *testing.T) {
	modes := []struct {
		name string
		caps element.Caps
		// rate and frames of the source; a negative rate is as fast as
		// possible.
		rate   float64
		frames int
		opts   []elementtest.SinkOption
	}{
		// Real time, default Live queues: fewer packets than a queue holds,
		// so even a starved sink goroutine cannot lose one.
		{name: "rtp-live", caps: vp8RTP, rate: 200, frames: 60},
		{name: "audio-live", caps: graphOpusRTP, rate: 500, frames: 100},
		// As fast as possible into small queues that block when full.
		{name: "rtp-block", caps: vp8RTP, rate: -1, frames: 300, opts: []elementtest.SinkOption{elementtest.WithQueue(32, element.Block)}},
		// Encoded samples to inline sinks, on the source's goroutine.
		{name: "sample-inline", caps: graphVP8Sample, rate: -1, frames: 300, opts: []elementtest.SinkOption{elementtest.WithInline()}},
	}
	for _, n := range []int{1, 3, 20} {
		for _, m := range modes {
			t.Run(fmt.Sprintf("sinks=%d/%s", n, m.name), func(t *testing.T) {
				src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: m.caps, Rate: m.rate, Frames: m.frames})
				p := graphPipeline(t, src)
				sinks := make([]*elementtest.Sink, n)
				for i := range sinks {
					sinks[i] = elementtest.NewSink(fmt.Sprintf("sink%d", i), element.CapsList{{Kind: m.caps.Kind}}, m.opts...)
					require.NoError(t, p.Add(sinks[i]))
					require.NoError(t, p.Connect(src, sinks[i], element.KindAll))
				}
				ctx := graphStart(t, p, 10*time.Second)
				for _, s := range sinks {
					_, err := s.WaitEvent(ctx, func(ev element.Event) bool { _, ok := ev.(element.EOSEvent); return ok })
					require.NoError(t, err)
				}

				total := src.Packets()
				per := total / m.frames
				require.Equal(t, m.frames*per, total)
				for _, s := range sinks {
					got := s.Received()
					require.Len(t, got, total, "%s received every buffer", s.Name())
					if m.caps.Format == element.FormatRTP {
						graphSeqRun(t, got, 0, s.Name())
					}
					for i, r := range got {
						if r.Frame != uint32(i/per) || r.Packet != uint16(i%per) || r.Packets != uint16(per) {
							require.Failf(t, "out of order", "%s: buffer %d is frame %d packet %d/%d, want frame %d packet %d/%d",
								s.Name(), i, r.Frame, r.Packet, r.Packets, i/per, i%per, per)
						}
					}
					assert.True(t, got[0].Keyframe(), "%s: the stream starts with a keyframe", s.Name())

					evs := s.Events()
					require.NotEmpty(t, evs)
					assert.Equal(t, element.CapsEvent{Caps: m.caps}, evs[0], "%s: caps first", s.Name())
					assert.Equal(t, element.EOSEvent{}, evs[len(evs)-1], "%s: EOS last", s.Name())
					assert.Empty(t, graphEvents[element.DiscontEvent](evs), "%s: no discontinuity", s.Name())

					ps := graphPadStats(t, p, s.Name(), "sink")
					assert.Equal(t, uint64(total), ps.Packets, "%s", s.Name())
					assert.Zero(t, ps.Drops, "%s", s.Name())
				}
				assert.Equal(t, uint64(total), graphPadStats(t, p, "src", "src").Packets)
			})
		}
	}
}

// A sink connected while the source is pushing gets the caps first and
// then an unbroken run of buffers from the moment it joined.
func TestFanoutLateJoiner(t *testing.T) {
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: vp8RTP, FrameSize: 100, Manual: true})
	early := elementtest.NewSink("early", element.CapsList{element.AnyVideo})
	late := elementtest.NewSink("late", element.CapsList{element.AnyVideo})
	p := graphPipeline(t, src, early, late)
	require.NoError(t, p.Connect(src, early, element.KindVideo))
	ctx := graphStart(t, p, 5*time.Second)

	src.Emit(10)
	require.NoError(t, p.Connect(src, late, element.KindVideo))
	src.Emit(10)
	require.NoError(t, early.WaitCount(ctx, 20))
	require.NoError(t, late.WaitCount(ctx, 10))
	graphSeqRun(t, early.Received(), 0, "early")
	graphSeqRun(t, late.Received(), 10, "late")
	evs := late.Events()
	require.NotEmpty(t, evs)
	assert.Equal(t, element.CapsEvent{Caps: vp8RTP}, evs[0], "a late joiner gets the caps before its first buffer")
}
