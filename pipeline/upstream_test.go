package pipeline_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
	"github.com/medley-go/medley/pipeline"
)

// graphSinks makes n sinks named prefix0, prefix1, ..., adds them to p and
// connects src to each.
func graphSinks(t *testing.T, p *pipeline.Pipeline, src element.Element, prefix string, n int) []*elementtest.Sink {
	t.Helper()
	sinks := make([]*elementtest.Sink, n)
	for i := range sinks {
		sinks[i] = elementtest.NewSink(fmt.Sprintf("%s%d", prefix, i), element.CapsList{element.AnyVideo})
		require.NoError(t, p.Add(sinks[i]))
		require.NoError(t, p.Connect(src, sinks[i], element.KindVideo))
	}
	return sinks
}

// Must hold 4: keyframe requests from 50 sinks within 100 ms reach the
// source as one; after the interval (the default, or the one configured) a
// new request passes again.
func TestUpstreamKeyframeRequestsMerged(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      time.Duration // SourceConfig.KeyframeRequestInterval
		interval time.Duration // in effect
	}{
		{"default", 0, element.DefaultKeyframeInterval},
		{"configured", 300 * time.Millisecond, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 50
			src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: vp8RTP, FrameSize: 100, Manual: true, KeyframeRequestInterval: tc.cfg})
			p := graphPipeline(t, src)
			sinks := graphSinks(t, p, src, "sink", n)
			ctx := graphStart(t, p, 10*time.Second)
			src.Emit(1) // frame 0, a keyframe
			for _, s := range sinks {
				require.NoError(t, s.WaitCount(ctx, 1))
			}

			// The burst: each sink asks once, spread over 100 ms.
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				returned []time.Time
				gate     = make(chan struct{})
			)
			for i, s := range sinks {
				wg.Go(func() {
					<-gate
					time.Sleep(time.Duration(i) * 2 * time.Millisecond)
					assert.True(t, s.RequestKeyframe())
					now := time.Now()
					mu.Lock()
					returned = append(returned, now)
					mu.Unlock()
				})
			}
			burstStart := time.Now()
			close(gate)
			wg.Wait()
			first, last := returned[0], returned[0]
			for _, r := range returned {
				first, last = graphMinTime(first, r), graphMaxTime(last, r)
			}
			t.Logf("burst of %d requests over %v", n, last.Sub(burstStart).Round(time.Millisecond))
			require.Less(t, last.Sub(burstStart), tc.interval, "the burst must fit in one interval for this test to mean anything")

			assert.Equal(t, 1, src.KeyframeRequests(), "50 requests reach the source as one")
			srcPad := graphPadStats(t, p, "src", "src")
			assert.Equal(t, uint64(1), srcPad.KeyframeRequests, "src pad: passed")
			assert.Equal(t, uint64(n-1), srcPad.KeyframeRequestsMerged, "src pad: merged")
			for _, s := range sinks {
				assert.Equal(t, uint64(1), graphPadStats(t, p, s.Name(), "sink").KeyframeRequests, s.Name())
			}

			// One keyframe answers them all.
			src.Emit(2)
			for _, s := range sinks {
				require.NoError(t, s.WaitCount(ctx, 3))
				got := s.Received()
				assert.True(t, got[1].Keyframe(), "%s: the requested keyframe", s.Name())
				assert.False(t, got[2].Keyframe(), "%s: then deltas", s.Name())
			}

			// Two thirds into the interval a request is still merged. The
			// request that passed did so at or after burstStart, so this
			// check holds whenever the request returns within the interval
			// from burstStart.
			time.Sleep(time.Until(burstStart.Add(tc.interval * 2 / 3)))
			sinks[7].RequestKeyframe()
			if since := time.Since(burstStart); since < tc.interval {
				assert.Equal(t, 1, src.KeyframeRequests(), "a request %v after the one passed is merged", since.Round(time.Millisecond))
			} else {
				t.Logf("machine too slow to check the merge at 2/3 of the interval (%v)", since)
			}

			// The passed request did so before any request of the burst
			// returned: one interval after the first return, a request
			// passes again.
			time.Sleep(time.Until(first.Add(tc.interval + 20*time.Millisecond)))
			require.True(t, sinks[3].RequestKeyframe())
			assert.Equal(t, 2, src.KeyframeRequests(), "after the interval a new request passes")
			src.Emit(1)
			for _, s := range sinks {
				require.NoError(t, s.WaitCount(ctx, 4))
				assert.True(t, s.Received()[3].Keyframe(), s.Name())
			}
		})
	}
}

func graphMinTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func graphMaxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Keyframe requests cross an element in between (a PassThrough) and are
// merged again at the source.
func TestUpstreamKeyframeRequestsThroughFilter(t *testing.T) {
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: vp8RTP, FrameSize: 100, Manual: true})
	pass := element.NewPassThrough("pass", element.AnyVideo)
	p := graphPipeline(t, src, pass)
	require.NoError(t, p.Connect(src, pass, element.KindVideo))
	sinks := graphSinks(t, p, pass, "sink", 20)
	graphStart(t, p, 5*time.Second)

	var wg sync.WaitGroup
	for _, s := range sinks {
		wg.Go(func() { assert.True(t, s.RequestKeyframe()) })
	}
	wg.Wait()
	assert.Equal(t, 1, src.KeyframeRequests())
	assert.Equal(t, uint64(19), graphPadStats(t, p, "pass", "src").KeyframeRequestsMerged)
}

// Must hold 4: bitrate hints reach the source as the minimum over the
// sinks that sent one; when the sink holding the minimum leaves, the source
// gets the new minimum.
func TestUpstreamBitrateHintMinimum(t *testing.T) {
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: vp8RTP, Manual: true})
	p := graphPipeline(t, src)
	s := graphSinks(t, p, src, "sink", 5)
	graphStart(t, p, 5*time.Second)
	last := func() int64 {
		h := src.BitrateHints()
		if len(h) == 0 {
			return 0
		}
		return h[len(h)-1]
	}

	require.True(t, s[0].SendBitrateHint(1_000_000))
	require.True(t, s[1].SendBitrateHint(500_000))
	require.True(t, s[2].SendBitrateHint(800_000))
	assert.Equal(t, []int64{1_000_000, 500_000}, src.BitrateHints(), "only a new minimum reaches the source")

	require.True(t, s[1].SendBitrateHint(300_000))
	assert.Equal(t, int64(300_000), last(), "the minimum sinks further")
	require.True(t, s[1].SendBitrateHint(500_000))
	assert.Equal(t, int64(500_000), last(), "and rises when its holder allows more")

	// The sink holding the minimum disconnects: the next lowest.
	require.NoError(t, p.Disconnect(src, s[1], element.KindVideo))
	assert.Equal(t, int64(800_000), last())
	assert.False(t, s[1].SendBitrateHint(10_000), "a disconnected sink has nobody to tell")
	assert.Equal(t, int64(800_000), last())

	// A sink that never sent a hint leaving changes nothing.
	n := len(src.BitrateHints())
	require.NoError(t, p.Disconnect(src, s[3], element.KindVideo))
	assert.Len(t, src.BitrateHints(), n)

	// Removed from the pipeline: same as disconnected.
	require.NoError(t, p.Remove(s[2]))
	assert.Equal(t, int64(1_000_000), last())

	// Reconnected, a sink starts afresh.
	require.NoError(t, p.Connect(src, s[1], element.KindVideo))
	assert.Equal(t, int64(1_000_000), last(), "its old hint went with its old link")
	require.True(t, s[1].SendBitrateHint(200_000))
	assert.Equal(t, int64(200_000), last())
}

// Concurrent hints from many sinks: when they stop, the last hint the
// source got is the minimum of every sink's latest one.
func TestUpstreamBitrateHintConcurrent(t *testing.T) {
	const (
		n      = 8
		rounds = 200
	)
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: vp8RTP, Manual: true})
	p := graphPipeline(t, src)
	sinks := graphSinks(t, p, src, "sink", n)
	graphStart(t, p, 10*time.Second)

	latest := make([]int64, n)
	var stale int
	for r := range rounds {
		var wg sync.WaitGroup
		for i, s := range sinks {
			bps := int64(100_000 + (r*7919+i*104729)%900_000)
			latest[i] = bps
			wg.Go(func() { s.SendBitrateHint(bps) })
		}
		wg.Wait()
		want := latest[0]
		for _, v := range latest {
			want = min(want, v)
		}
		h := src.BitrateHints()
		if len(h) == 0 || h[len(h)-1] != want {
			stale++
		}
	}
	assert.Zero(t, stale, "rounds out of %d after which the source was left with a stale minimum", rounds)
}
