package element

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Helpers of this file are prefixed with q to keep clear of the other test
// files of the package.

func qKey() *Buffer   { return &Buffer{Flags: FlagKeyframe} }
func qDelta() *Buffer { return &Buffer{} }

// qCounted returns a reference-counted buffer that adds one to released
// when its last reference goes.
func qCounted(released *atomic.Int32, flags Flags) *Buffer {
	b := NewBuffer(func(*Buffer) { released.Add(1) })
	b.Flags = flags
	return b
}

// qEvent returns the event an item carries, or nil. (Item internals change
// with optimisations: this is the one place the tests read them.)
func qEvent(it item) Event {
	if it.x == nil {
		return nil
	}
	return it.x.ev
}

func qPop(t *testing.T, q *queue) ([]item, bool) {
	t.Helper()
	done := make(chan struct{})
	var items []item
	var ask bool
	go func() {
		defer close(done)
		items, ask = q.popAll(make([]item, 0, 64))
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		q.close()
		<-done
		t.Fatal("popAll blocked on a queue expected to hold items")
	}
	return items, ask
}

// qPushN pushes n buffers made by mk and returns the outcomes.
func qPushN(q *queue, n int, mk func() *Buffer) []pushOutcome {
	out := make([]pushOutcome, n)
	for i := range out {
		out[i] = q.push(mk(), nil)
	}
	return out
}

func TestQueueLiveVideoDropsUntilKeyframe(t *testing.T) {
	q := newQueue(4, Live, true)
	require.Equal(t, accepted, q.push(qKey(), nil))
	for range 3 {
		require.Equal(t, accepted, q.push(qDelta(), nil))
	}
	require.Equal(t, 4, q.length())

	// Full: the first drop asks upstream for a keyframe, the next ones do
	// not, and a keyframe that finds no room is dropped too.
	assert.Equal(t, droppedAskKeyframe, q.push(qDelta(), nil))
	assert.Equal(t, dropped, q.push(qDelta(), nil))
	assert.Equal(t, dropped, q.push(qKey(), nil), "a keyframe finding the queue full is dropped")
	assert.Equal(t, dropped, q.push(qDelta(), nil))
	assert.Equal(t, uint64(4), q.drops.Load())
	assert.Equal(t, 4, q.length(), "the queue never grows past its size")

	items, ask := qPop(t, q)
	require.Len(t, items, 4)
	assert.True(t, ask, "a keyframe was missed for want of room: ask again once there is room")
	for i, it := range items {
		assert.Zero(t, it.dropped(), "item %d", i)
	}

	// Room now, but the stream is broken until a keyframe.
	assert.Equal(t, dropped, q.push(qDelta(), nil), "deltas are dropped until a keyframe")
	assert.Equal(t, 0, q.length())
	assert.Equal(t, accepted, q.push(qKey(), nil))
	assert.Equal(t, accepted, q.push(qDelta(), nil), "after the keyframe deltas pass again")
	assert.Equal(t, uint64(5), q.drops.Load())

	items, ask = qPop(t, q)
	require.Len(t, items, 2)
	assert.False(t, ask)
	assert.True(t, items[0].b.Keyframe())
	assert.Equal(t, 5, items[0].dropped(), "the keyframe carries the count of buffers lost before it")
	assert.Zero(t, items[1].dropped())
}

func TestQueueLiveVideoOneRequestPerEpisode(t *testing.T) {
	q := newQueue(8, Live, true)
	qPushN(q, 1, qKey)
	qPushN(q, 7, qDelta)

	for episode := range 3 {
		outs := qPushN(q, 50, qDelta)
		var asks int
		for _, o := range outs {
			switch o {
			case droppedAskKeyframe:
				asks++
			case dropped:
			default:
				t.Fatalf("episode %d: push into a full queue: outcome %d", episode, o)
			}
		}
		assert.Equal(t, 1, asks, "episode %d: one keyframe request per drop episode", episode)
		assert.Equal(t, droppedAskKeyframe, outs[0], "episode %d: the first drop asks", episode)

		items, ask := qPop(t, q)
		require.Len(t, items, 8)
		assert.False(t, ask, "episode %d: no keyframe was missed, the request already out covers it", episode)

		// The keyframe answering the request ends the episode; refill.
		require.Equal(t, accepted, q.push(qKey(), nil))
		qPushN(q, 7, qDelta)
	}
	assert.Equal(t, uint64(150), q.drops.Load())
}

func TestQueueLiveVideoMissedKeyframeAsksOnce(t *testing.T) {
	q := newQueue(2, Live, true)
	qPushN(q, 1, qKey)
	qPushN(q, 1, qDelta)
	require.Equal(t, droppedAskKeyframe, q.push(qDelta(), nil))
	require.Equal(t, dropped, q.push(qKey(), nil))

	_, ask := qPop(t, q)
	require.True(t, ask)

	// Another pop with the keyframe still missing does not ask again by
	// itself: only a new missed keyframe does.
	require.True(t, q.pushEvent(EOSEvent{}, nil))
	_, ask = qPop(t, q)
	assert.False(t, ask)

	// Fill the queue with keyframes, then miss another one: ask again.
	qPushN(q, 2, qKey)
	assert.Equal(t, droppedAskKeyframe, q.push(qKey(), nil), "a new episode asks again")
	_, ask = qPop(t, q)
	assert.True(t, ask)
}

// Audio and data queues (video false) drop the newest buffer when full.
func TestQueueLiveAudioTailDrop(t *testing.T) {
	q := newQueue(3, Live, false)
	first := []*Buffer{qDelta(), qDelta(), qDelta()}
	for _, b := range first {
		require.Equal(t, accepted, q.push(b, nil))
	}
	// Full: the newest buffer is dropped, never with a keyframe request,
	// whatever its flags.
	assert.Equal(t, dropped, q.push(qDelta(), nil))
	assert.Equal(t, dropped, q.push(qKey(), nil))
	assert.Equal(t, dropped, q.push(qDelta(), nil))
	assert.Equal(t, uint64(3), q.drops.Load())
	assert.Equal(t, 3, q.length())

	items, ask := qPop(t, q)
	assert.False(t, ask)
	require.Len(t, items, 3)
	for i := range items {
		assert.Same(t, first[i], items[i].b, "tail drop keeps the oldest buffers")
	}

	// No keyframe needed: the next buffer passes, carrying the count of
	// those lost.
	next := qDelta()
	require.Equal(t, accepted, q.push(next, nil))
	items, _ = qPop(t, q)
	require.Len(t, items, 1)
	assert.Same(t, next, items[0].b)
	assert.Equal(t, 3, items[0].dropped())
}

func TestQueueBlockWaitsForRoom(t *testing.T) {
	q := newQueue(2, Block, true)
	qPushN(q, 1, qKey)
	qPushN(q, 1, qDelta)

	third := qDelta()
	res := make(chan pushOutcome, 1)
	go func() { res <- q.push(third, nil) }()
	select {
	case o := <-res:
		t.Fatalf("push into a full Block queue returned %d at once", o)
	case <-time.After(50 * time.Millisecond):
	}

	items, _ := qPop(t, q)
	require.Len(t, items, 2)
	select {
	case o := <-res:
		assert.Equal(t, accepted, o)
	case <-time.After(2 * time.Second):
		t.Fatal("push not woken when room was made")
	}
	items, _ = qPop(t, q)
	require.Len(t, items, 1)
	assert.Same(t, third, items[0].b)
	assert.Zero(t, q.drops.Load(), "a Block queue never drops")
}

func TestQueueBlockWakesOnClose(t *testing.T) {
	q := newQueue(1, Block, false)
	var released atomic.Int32
	require.Equal(t, accepted, q.push(qCounted(&released, 0), nil))

	var wg sync.WaitGroup
	res := make(chan pushOutcome, 3)
	for range 3 {
		wg.Go(func() { res <- q.push(qDelta(), nil) })
	}
	time.Sleep(20 * time.Millisecond)
	q.close()
	wg.Wait()
	close(res)
	for o := range res {
		assert.Equal(t, closedQueue, o, "close wakes blocked pushers with closedQueue")
	}
	assert.Equal(t, int32(1), released.Load(), "close releases what was queued")
	assert.Equal(t, 0, q.length())
}

func TestQueuePopWakesOnClose(t *testing.T) {
	q := newQueue(4, Live, true)
	done := make(chan []item, 1)
	go func() {
		items, _ := q.popAll(make([]item, 0, 8))
		done <- items
	}()
	time.Sleep(20 * time.Millisecond)
	q.close()
	select {
	case items := <-done:
		assert.Empty(t, items)
	case <-time.After(2 * time.Second):
		t.Fatal("popAll not woken by close")
	}
}

func TestQueueCloseReleasesAndRefuses(t *testing.T) {
	q := newQueue(8, Live, true)
	var released atomic.Int32
	require.Equal(t, accepted, q.push(qCounted(&released, FlagKeyframe), nil))
	require.Equal(t, accepted, q.push(qCounted(&released, 0), nil))
	require.True(t, q.pushEvent(EOSEvent{}, nil))
	require.Equal(t, accepted, q.push(qCounted(&released, 0), nil))

	q.close()
	assert.Equal(t, int32(3), released.Load())
	assert.Equal(t, 0, q.length())
	q.close() // idempotent
	assert.Equal(t, int32(3), released.Load())

	assert.Equal(t, closedQueue, q.push(qKey(), nil))
	assert.False(t, q.pushEvent(EOSEvent{}, nil))
	items, _ := q.popAll(make([]item, 0, 4))
	assert.Empty(t, items)
}

func TestQueueEventSlack(t *testing.T) {
	const size = 4
	q := newQueue(size, Live, true)
	var released atomic.Int32
	first := qCounted(&released, FlagKeyframe)
	require.Equal(t, accepted, q.push(first, nil))
	rest := []*Buffer{qDelta(), qDelta(), qDelta()}
	for _, b := range rest {
		require.Equal(t, accepted, q.push(b, nil))
	}

	// A queue full of buffers still takes eventSlack events, dropping
	// nothing.
	for i := range eventSlack {
		require.True(t, q.pushEvent(DiscontEvent{Dropped: -1 - i}, nil), "event %d", i)
	}
	assert.Equal(t, size+eventSlack, q.length())
	assert.Zero(t, q.drops.Load())

	// Past the slack the oldest buffer makes way for the event; its loss
	// rides on the item after it.
	require.True(t, q.pushEvent(EOSEvent{}, nil))
	assert.Equal(t, size+eventSlack, q.length(), "events never grow the queue past size+eventSlack")
	assert.Equal(t, uint64(1), q.drops.Load())
	assert.Equal(t, int32(1), released.Load(), "the buffer making way is released")

	items, _ := qPop(t, q)
	require.Len(t, items, size+eventSlack)
	assert.Same(t, rest[0], items[0].b)
	assert.Equal(t, 1, items[0].dropped())
	for i := range eventSlack {
		assert.Equal(t, DiscontEvent{Dropped: -1 - i}, qEvent(items[3+i]), "events keep their order")
	}
	assert.Equal(t, EOSEvent{}, qEvent(items[len(items)-1]))
}

func TestQueueEventsOnlyStayBounded(t *testing.T) {
	const size = 2
	q := newQueue(size, Live, false)
	for i := range size + eventSlack {
		require.True(t, q.pushEvent(EOSEvent{}, nil), "event %d", i)
	}
	// A ring of events only: the sink has stopped reading, and nothing can
	// make way.
	assert.False(t, q.pushEvent(EOSEvent{}, nil))
	assert.Equal(t, size+eventSlack, q.length())
}

// An event must not be refused while the queue holds a buffer that could
// make way for it (the pushEvent contract), even when the oldest item
// happens to be an event.
func TestQueueEventSlackDropsBufferBehindOldestEvent(t *testing.T) {
	const size = 4
	q := newQueue(size, Live, false)
	require.True(t, q.pushEvent(CapsEvent{}, nil))
	for range size - 1 {
		require.Equal(t, accepted, q.push(qDelta(), nil))
	}
	for range eventSlack {
		require.True(t, q.pushEvent(DiscontEvent{}, nil))
	}
	require.Equal(t, size+eventSlack, q.length())

	assert.True(t, q.pushEvent(EOSEvent{}, nil),
		"the queue holds %d buffers that could make way, yet the event was refused because the oldest item is an event", size-1)
	assert.Equal(t, uint64(1), q.drops.Load())
	assert.Equal(t, size+eventSlack, q.length())

	// The oldest buffer made way; the events keep their order and the loss
	// rides on the item after the lost buffer.
	items, _ := qPop(t, q)
	require.Len(t, items, size+eventSlack)
	assert.Equal(t, CapsEvent{}, qEvent(items[0]))
	assert.NotNil(t, items[1].b)
	assert.Equal(t, 1, items[1].dropped())
	assert.NotNil(t, items[2].b)
	assert.Zero(t, items[2].dropped())
	assert.Equal(t, EOSEvent{}, qEvent(items[len(items)-1]))
}

// A video queue that waits for a keyframe with room for it asks again once
// per DefaultKeyframeInterval: the request may have been merged away
// upstream, or its keyframe lost.
func TestQueueLiveVideoReasksEachInterval(t *testing.T) {
	q := newQueue(2, Live, true)
	qPushN(q, 1, qKey)
	qPushN(q, 1, qDelta)
	require.Equal(t, droppedAskKeyframe, q.push(qDelta(), nil))
	_, ask := qPop(t, q)
	require.False(t, ask)

	asked := time.Now()
	assert.Equal(t, dropped, q.push(qDelta(), nil), "within the interval: no new request")
	time.Sleep(time.Until(asked.Add(DefaultKeyframeInterval + 10*time.Millisecond)))
	assert.Equal(t, droppedAskKeyframe, q.push(qDelta(), nil), "after the interval, still waiting: ask again")
	if time.Since(asked) < 2*DefaultKeyframeInterval {
		assert.Equal(t, dropped, q.push(qDelta(), nil), "then wait another interval")
	}
	require.Equal(t, accepted, q.push(qKey(), nil))
	assert.Equal(t, accepted, q.push(qDelta(), nil))
}

// qSrcSink links a src pad whose element counts keyframe requests to a
// video sink pad with a small Live queue that is not running yet.
type qSrcSink struct {
	src, sink *Pad
	kfReqs    atomic.Int32

	mu     sync.Mutex
	got    []*Buffer
	events []Event
}

func newQSrcSink(t *testing.T, queue int, kfInterval time.Duration) *qSrcSink {
	vp8 := Caps{Kind: KindVideo, Format: FormatRTP, Codec: "video/VP8", ClockRate: 90000}
	x := &qSrcSink{}
	x.src = NewSrcPad("src", CapsList{vp8}, WithKeyframeInterval(kfInterval), WithEventHandler(func(ev Event) {
		if _, ok := ev.(KeyframeRequest); ok {
			x.kfReqs.Add(1)
		}
	}))
	x.sink = NewSinkPad("sink", CapsList{AnyVideo}, func(b *Buffer) error {
		x.mu.Lock()
		x.got = append(x.got, b)
		x.mu.Unlock()
		return nil
	}, WithQueue(queue, Live), WithEventHandler(func(ev Event) {
		x.mu.Lock()
		x.events = append(x.events, ev)
		x.mu.Unlock()
	}))
	require.NoError(t, x.src.SetCaps(vp8))
	require.NoError(t, x.src.Link(x.sink))
	return x
}

func (x *qSrcSink) received() ([]*Buffer, []Event) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]*Buffer(nil), x.got...), append([]Event(nil), x.events...)
}

// Through a pad: a stalled video sink drops until a keyframe, sends one
// request per episode, asks again after missing the keyframe, and announces
// the gap with a DiscontEvent right before the keyframe it resumes from.
func TestPadLiveVideoQueueRecovers(t *testing.T) {
	const size = 4
	// Interval 0: every request passes the src pad, so this test sees the
	// queue's own requests.
	x := newQSrcSink(t, size, 0)
	var seq uint16
	push := func(key bool) {
		b := &Buffer{}
		b.RTP.SequenceNumber = seq
		seq++
		if key {
			b.Flags = FlagKeyframe
		}
		x.src.Push(b)
	}
	push(true)
	for range size - 1 {
		push(false)
	}
	for range 20 {
		push(false)
	}
	assert.Equal(t, int32(1), x.kfReqs.Load(), "one request for the drop episode")
	push(true) // the answer, missed: no room
	for range 5 {
		push(false)
	}
	assert.Equal(t, int32(1), x.kfReqs.Load())
	st := x.sink.Stats()
	assert.Equal(t, size, st.Queued)
	assert.Equal(t, uint64(26), st.Drops)
	assert.Equal(t, uint64(1), st.KeyframeRequests)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		x.sink.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	require.Eventually(t, func() bool { got, _ := x.received(); return len(got) == size }, 2*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return x.kfReqs.Load() >= 2 }, 2*time.Second, time.Millisecond,
		"after draining, the sink asks again for the keyframe it missed")

	push(false) // still dropped: waiting for the keyframe
	push(true)
	push(false)
	require.Eventually(t, func() bool { got, _ := x.received(); return len(got) == size+2 }, 2*time.Second, time.Millisecond)
	got, events := x.received()
	for i := range size {
		assert.Equal(t, uint16(i), got[i].RTP.SequenceNumber)
	}
	assert.True(t, got[size].Keyframe(), "resumes from a keyframe")
	assert.Equal(t, uint16(size+26+1), got[size].RTP.SequenceNumber)
	assert.Equal(t, uint16(size+26+2), got[size+1].RTP.SequenceNumber)
	var discont []DiscontEvent
	for _, ev := range events {
		if d, ok := ev.(DiscontEvent); ok {
			discont = append(discont, d)
		}
	}
	assert.Equal(t, []DiscontEvent{{Dropped: 27}}, discont)
	assert.Equal(t, uint64(27), x.sink.Stats().Drops)
	// Two requests: the episode's and the one after the missed keyframe
	// (a third only if this test took longer than a keyframe interval).
	assert.GreaterOrEqual(t, x.sink.Stats().KeyframeRequests, uint64(2))
}
