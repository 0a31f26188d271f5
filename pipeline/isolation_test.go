package pipeline_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
)

// graphEmitter drives a Manual elementtest.Source at a steady frame rate
// from its own goroutine, and records when each frame was handed to Push,
// so that tests can measure what each sink's delay is.
type graphEmitter struct {
	src  *elementtest.Source
	fps  int
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	sent []time.Time // by frame index
}

func startGraphEmitter(src *elementtest.Source, fps int) *graphEmitter {
	e := &graphEmitter{src: src, fps: fps, stop: make(chan struct{}), done: make(chan struct{})}
	go e.run()
	return e
}

func (e *graphEmitter) run() {
	defer close(e.done)
	t := time.NewTicker(time.Second / time.Duration(e.fps))
	defer t.Stop()
	for {
		e.mu.Lock()
		e.sent = append(e.sent, time.Now())
		e.mu.Unlock()
		e.src.Emit(1)
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
	}
}

// halt stops the emitter and waits for it.
func (e *graphEmitter) halt() {
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	<-e.done
}

func (e *graphEmitter) sentAt(frame uint32) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sent[frame]
}

// Must hold 3: with one of three sinks blocked for 2 s, the other two
// receive every packet in time; the blocked branch's queue stays bounded,
// drops until the next keyframe and sends one keyframe request upstream;
// after it unblocks it resumes from a keyframe, told of the gap by a
// DiscontEvent.
func TestIsolationBlockedSink(t *testing.T) {
	const (
		fps        = 30   // frames per second
		frameSize  = 3000 // three RTP packets of at most 1200 bytes a frame
		queueSize  = 64   // the blocked sink's queue
		blockFor   = 2 * time.Second
		maxLatency = 100 * time.Millisecond // generous for -race on a loaded 2-core machine
	)
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: vp8RTP, FrameSize: frameSize, Manual: true})
	fastA := elementtest.NewSink("fastA", element.CapsList{element.AnyVideo})
	fastB := elementtest.NewSink("fastB", element.CapsList{element.AnyVideo})
	slow := elementtest.NewSink("slow", element.CapsList{element.AnyVideo}, elementtest.WithQueue(queueSize, element.Live))
	p := graphPipeline(t, src, fastA, fastB, slow)
	for _, s := range []*elementtest.Sink{fastA, fastB, slow} {
		require.NoError(t, p.Connect(src, s, element.KindVideo))
	}
	ctx := graphStart(t, p, 15*time.Second)

	em := startGraphEmitter(src, fps)
	defer em.halt()
	require.NoError(t, slow.WaitCount(ctx, 3*10), "the slow sink first keeps up")

	// Block the slow sink and watch its queue while it is blocked.
	slow.Block()
	blockedAt := time.Now()
	var maxQueued int
	for time.Since(blockedAt) < blockFor {
		maxQueued = max(maxQueued, graphPadStats(t, p, "slow", "sink").Queued)
		time.Sleep(20 * time.Millisecond)
	}
	blocked := graphPadStats(t, p, "slow", "sink")
	requestsWhileBlocked := src.KeyframeRequests()
	countWhileBlocked := slow.Count()
	slow.Unblock()

	time.Sleep(700 * time.Millisecond)
	em.halt()
	total := src.Packets()
	t.Logf("%d frames, %d packets sent; slow sink: max queued %d, %d drops while blocked, %d recorded before unblocking",
		src.Frames(), total, maxQueued, blocked.Drops, countWhileBlocked)

	// The two others: every packet, in order, each soon after its send.
	for _, s := range []*elementtest.Sink{fastA, fastB} {
		require.NoError(t, s.WaitCount(ctx, total), s.Name())
		got := s.Received()
		require.Len(t, got, total)
		graphSeqRun(t, got, 0, s.Name())
		var worst time.Duration
		var late int
		for _, r := range got {
			d := r.At.Sub(em.sentAt(r.Frame))
			worst = max(worst, d)
			if d > maxLatency {
				late++
			}
		}
		t.Logf("%s: worst delay %v", s.Name(), worst)
		assert.Zero(t, late, "%s: %d of %d packets later than %v (worst %v)", s.Name(), late, total, maxLatency, worst)
		ps := graphPadStats(t, p, s.Name(), "sink")
		assert.Zero(t, ps.Drops, s.Name())
		assert.Zero(t, ps.KeyframeRequests, s.Name())
	}

	// The blocked one: bounded, dropping, one keyframe request.
	assert.LessOrEqual(t, maxQueued, queueSize, "the blocked sink's queue stays within its size")
	assert.LessOrEqual(t, blocked.Queued, queueSize)
	assert.Positive(t, blocked.Drops, "the blocked sink drops")
	assert.Equal(t, 1, requestsWhileBlocked, "one keyframe request reaches the source while the sink is blocked")
	assert.Equal(t, uint64(1), blocked.KeyframeRequests, "the blocked sink sent one keyframe request")

	// After unblocking: the backlog, then a gap, then a keyframe.
	require.Eventually(t, func() bool {
		return uint64(slow.Count())+graphPadStats(t, p, "slow", "sink").Drops == uint64(total)
	}, 5*time.Second, 10*time.Millisecond, "slow sink: every packet recorded or counted as dropped")
	got := slow.Received()
	var gaps []int
	for i := 1; i < len(got); i++ {
		if got[i].Seq != got[i-1].Seq+1 {
			gaps = append(gaps, i)
		}
	}
	require.Len(t, gaps, 1, "one gap, where the slow sink was blocked")
	g := gaps[0]
	assert.Greater(t, g, countWhileBlocked, "the queued backlog comes before the gap")
	assert.True(t, got[g].Keyframe(), "it resumes from a keyframe")
	assert.Zero(t, got[g].Packet, "at the first packet of the keyframe")
	lost := int(got[g].Seq - got[g-1].Seq - 1)
	drops := graphPadStats(t, p, "slow", "sink").Drops
	assert.Equal(t, uint64(lost), drops, "every dropped packet is counted")
	assert.Equal(t, []element.DiscontEvent{{Dropped: lost}}, graphEvents[element.DiscontEvent](slow.Events()),
		"a DiscontEvent with the drop count announces the gap")
	graphSeqRun(t, got[:g], 0, "slow sink before the gap")
	graphSeqRun(t, got[g:], got[g].Seq, "slow sink after the gap")
}

// After a stall shorter than the keyframe request interval, a blocked video
// branch must still recover: it resumes from a keyframe soon after it
// unblocks, however the keyframe requests were rate-limited upstream.
func TestIsolationShortStallRecovers(t *testing.T) {
	const (
		fps       = 30
		queueSize = 16 // about 5 frames of 3 packets
	)
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: vp8RTP, FrameSize: 3000, Manual: true})
	other := elementtest.NewSink("other", element.CapsList{element.AnyVideo})
	slow := elementtest.NewSink("slow", element.CapsList{element.AnyVideo}, elementtest.WithQueue(queueSize, element.Live))
	p := graphPipeline(t, src, other, slow)
	require.NoError(t, p.Connect(src, other, element.KindVideo))
	require.NoError(t, p.Connect(src, slow, element.KindVideo))
	ctx := graphStart(t, p, 10*time.Second)

	em := startGraphEmitter(src, fps)
	defer em.halt()
	require.NoError(t, slow.WaitCount(ctx, 3*5))

	// Stall until the queue overflows and the keyframe that answers the
	// request has been dropped too, then let go well within the source's
	// keyframe request interval.
	slow.Block()
	require.Eventually(t, func() bool { return src.KeyframeRequests() == 1 }, 2*time.Second, time.Millisecond)
	n := src.Frames()
	require.Eventually(t, func() bool { return src.Frames() >= n+2 }, 2*time.Second, time.Millisecond,
		"the keyframe answering the request is sent while the sink is still stalled")
	slow.Unblock()
	unblocked := time.Now()

	// The source sends keyframes only on request, so the branch recovers
	// only if a request gets through. Give it three keyframe request
	// intervals.
	resumed := func() bool {
		got := slow.Received()
		for i := 1; i < len(got); i++ {
			if got[i].Seq != got[i-1].Seq+1 {
				return true
			}
		}
		return false
	}
	ok := assert.Eventually(t, resumed, 3*element.DefaultKeyframeInterval, 10*time.Millisecond,
		"the stalled sink never resumed: it drops everything waiting for a keyframe that no request brings (counts below)")
	em.halt()
	t.Logf("after unblocking for %v: source got %d keyframe requests; slow sink sent %d, src pad merged %d, slow dropped %d",
		time.Since(unblocked).Round(time.Millisecond), src.KeyframeRequests(),
		graphPadStats(t, p, "slow", "sink").KeyframeRequests, graphPadStats(t, p, "src", "src").KeyframeRequestsMerged,
		graphPadStats(t, p, "slow", "sink").Drops)
	assert.Zero(t, graphPadStats(t, p, "other", "sink").Drops, "the other sink is untouched")
	if ok {
		got := slow.Received()
		for i := 1; i < len(got); i++ {
			if got[i].Seq != got[i-1].Seq+1 {
				assert.True(t, got[i].Keyframe(), "resumes from a keyframe")
				break
			}
		}
	}
}

// No queue is unbounded: a sink that never runs keeps at most its queue's
// size, however much is pushed at it, whatever its kind.
func TestIsolationQueuesBounded(t *testing.T) {
	const pushed = 100_000
	for _, tc := range []struct {
		name string
		caps element.Caps
		opts []elementtest.SinkOption
		size int
	}{
		{"video-default", graphVP8Sample, nil, element.DefaultQueueSize},
		{"video-64", vp8RTP, []elementtest.SinkOption{elementtest.WithQueue(64, element.Live)}, 64},
		{"audio-default", graphOpusRTP, nil, element.DefaultQueueSize},
		{"audio-10", graphOpusRTP, []elementtest.SinkOption{elementtest.WithQueue(10, element.Live)}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: tc.caps, FrameSize: 100, Manual: true, KeyframeEvery: 30})
			sink := elementtest.NewSink("sink", element.CapsList{{Kind: tc.caps.Kind}}, tc.opts...)
			p := graphPipeline(t, src, sink)
			require.NoError(t, p.Connect(src, sink, element.KindAll))
			// Never started: nothing drains the sink's queue.
			src.Emit(pushed)
			require.Equal(t, pushed, src.Packets())
			ps := graphPadStats(t, p, "sink", "sink")
			assert.Equal(t, tc.size, ps.Queued, "the queue holds its size, no more")
			assert.Equal(t, uint64(pushed-tc.size), ps.Drops)
			assert.Zero(t, ps.Packets, "nothing delivered")
		})
	}
}

// Buffers left in the queue of a sink that never ran are released when
// the pipeline closes (a pooled decoded frame must go back to its pool).
func TestIsolationQueuedBuffersReleasedOnClose(t *testing.T) {
	for _, started := range []bool{false, true} {
		t.Run(fmt.Sprintf("started=%v", started), func(t *testing.T) {
			src := element.NewAppSource("src", element.CapsList{vp8RTP})
			sink := elementtest.NewSink("sink", element.CapsList{element.AnyVideo}, elementtest.WithQueue(8, element.Live))
			p := graphPipeline(t, src, sink)
			require.NoError(t, p.Connect(src, sink, element.KindVideo))
			if started {
				// Started, with the sink stuck on its first buffer.
				graphStart(t, p, 5*time.Second)
				sink.Block()
				src.PushRTP(&rtp.Packet{Header: rtp.Header{Version: 2}}, true)
				require.Eventually(t, func() bool { return graphPadStats(t, p, "sink", "sink").Queued == 0 }, time.Second, time.Millisecond)
			}
			var released atomic.Int32
			for i := range 5 {
				b := element.NewBuffer(func(*element.Buffer) { released.Add(1) })
				b.RTP.SequenceNumber = uint16(i + 1)
				b.Flags = element.FlagKeyframe
				src.Push(b)
				b.Unref()
			}
			require.NoError(t, p.Close())
			assert.Equal(t, int32(5), released.Load(), "buffers still queued at Close are released")
		})
	}
}
