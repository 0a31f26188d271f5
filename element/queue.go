package element

import (
	"sync"
	"sync/atomic"
)

// QueuePolicy says what a sink pad's queue does when it is full.
type QueuePolicy uint8

// The queue policies.
const (
	// Live drops, so that nothing blocks a real-time source: a full video
	// queue drops buffers until the next keyframe and asks upstream for one;
	// a full audio or data queue drops the newest buffer. Drops are counted
	// and announced to the sink by a DiscontEvent.
	Live QueuePolicy = iota
	// Block makes the pushing goroutine wait for room: for batch work (a file
	// transcoded as fast as possible) where nothing may be lost and nothing is
	// real time.
	Block
)

func (p QueuePolicy) String() string {
	if p == Block {
		return "block"
	}
	return "live"
}

// DefaultQueueSize is the capacity, in buffers, of a sink pad's queue when
// neither the pad nor the pipeline sets one: about a second of 2 Mbit/s
// video in RTP packets, a few seconds of audio.
const DefaultQueueSize = 256

// eventSlack is the room a queue keeps beyond its capacity for events, so
// that caps, EOS and discontinuities are not dropped with the buffers around
// them. Past it, the oldest buffer makes way.
const eventSlack = 16

// item is one queue entry: a buffer or an event, with the caps its src pad
// had when it was pushed. The rare parts (an event, a count of buffers
// dropped just before the item) hang off x, so that the common item, a
// buffer, is three words.
type item struct {
	b    *Buffer
	caps *Caps
	x    *itemExtra
}

type itemExtra struct {
	ev      Event
	dropped int
}

func (it *item) dropped() int {
	if it.x == nil {
		return 0
	}
	return it.x.dropped
}

func (it *item) addDropped(n int) {
	if n == 0 {
		return
	}
	if it.x == nil {
		it.x = &itemExtra{}
	}
	it.x.dropped += n
}

// queue is the bounded ring in front of a sink pad. One goroutine (the
// pad's Run) pops; any number push.
type queue struct {
	mu       sync.Mutex
	notEmpty sync.Cond
	notFull  sync.Cond
	ring     []item
	head, n  int
	mask     int // len(ring)-1; len(ring) is a power of two
	size     int // capacity for buffers; events may use eventSlack more
	policy   QueuePolicy
	video    bool
	closed   bool

	popWaiting, pushWaiting int

	// dropped counts buffers lost since the last accepted one; it rides on
	// the next item as a DiscontEvent.
	dropped int
	// needKeyframe: video drops until a keyframe; requested: the keyframe
	// request for this episode has gone out; missedKeyframe: a keyframe came
	// while the queue was full, so ask again when there is room.
	needKeyframe, requested, missedKeyframe bool
	// lastAsk is when this queue last asked for a keyframe (nanotime), and
	// askInterval how long it waits before asking again (nil: the default).
	lastAsk     int64
	askInterval func() int64

	// released is closed once close has released what was queued.
	released chan struct{}

	// drops counts every buffer this queue ever dropped (for stats).
	drops atomic.Uint64
}

func newQueue(size int, policy QueuePolicy, video bool) *queue {
	if size <= 0 {
		size = DefaultQueueSize
	}
	ring := 1
	for ring < size+eventSlack {
		ring <<= 1
	}
	q := &queue{ring: make([]item, ring), mask: ring - 1, size: size, policy: policy, video: video, released: make(chan struct{})}
	q.notEmpty.L = &q.mu
	q.notFull.L = &q.mu
	return q
}

// pushOutcome says what happened to a pushed buffer.
type pushOutcome uint8

const (
	accepted pushOutcome = iota
	dropped
	droppedAskKeyframe // dropped, and the caller must send a keyframe request upstream
	closedQueue
)

// push adds a buffer. It blocks only under the Block policy.
func (q *queue) push(b *Buffer, caps *Caps) pushOutcome {
	q.mu.Lock()
	if q.policy == Block {
		for q.n >= q.size && !q.closed {
			q.pushWaiting++
			q.notFull.Wait()
			q.pushWaiting--
		}
	}
	if q.closed {
		q.mu.Unlock()
		return closedQueue
	}
	key := b.Flags&FlagKeyframe != 0
	if q.needKeyframe && !key {
		q.dropped++
		q.drops.Add(1)
		out := dropped
		// Waiting for a keyframe with room for it: the request may have
		// been merged away upstream, or its keyframe lost; ask again once
		// per interval until one comes.
		if q.n < q.size {
			iv := int64(DefaultKeyframeInterval)
			if q.askInterval != nil {
				iv = q.askInterval()
			}
			if now := nanotime(); now-q.lastAsk >= iv {
				q.lastAsk = now
				out = droppedAskKeyframe
			}
		}
		q.mu.Unlock()
		return out
	}
	if q.n >= q.size {
		q.dropped++
		q.drops.Add(1)
		out := dropped
		if q.video {
			if key {
				q.missedKeyframe = true
			}
			q.needKeyframe = true
			if !q.requested {
				q.requested = true
				q.lastAsk = nanotime()
				out = droppedAskKeyframe
			}
		}
		q.mu.Unlock()
		return out
	}
	q.needKeyframe, q.requested, q.missedKeyframe = false, false, false
	it := item{b: b, caps: caps}
	it.addDropped(q.dropped)
	q.appendLocked(it)
	q.dropped = 0
	q.mu.Unlock()
	return accepted
}

// pushEvent adds an event; it never blocks and never drops an event while
// there is a buffer to drop instead. It reports false if the queue is closed.
func (q *queue) pushEvent(ev Event, caps *Caps) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	if q.n == q.size+eventSlack && !q.dropOldestBufferLocked() {
		return false // a ring full of events: the sink has stopped reading
	}
	q.appendLocked(item{caps: caps, x: &itemExtra{ev: ev, dropped: q.dropped}})
	q.dropped = 0
	return true
}

// dropOldestBufferLocked removes the oldest buffer in the queue, to make
// room for an event; its loss is announced with the item after it. It
// reports false if the queue holds no buffer.
func (q *queue) dropOldestBufferLocked() bool {
	j := -1
	for i := 0; i < q.n; i++ {
		if q.ring[(q.head+i)&q.mask].b != nil {
			j = i
			break
		}
	}
	if j < 0 {
		return false
	}
	victim := q.ring[(q.head+j)&q.mask]
	victim.b.Unref()
	q.drops.Add(1)
	// Shift the events before it one slot up, over it, and free the head.
	for i := j; i > 0; i-- {
		q.ring[(q.head+i)&q.mask] = q.ring[(q.head+i-1)&q.mask]
	}
	q.ring[q.head] = item{}
	q.head = (q.head + 1) & q.mask
	q.n--
	lost := victim.dropped() + 1
	if j < q.n {
		q.ring[(q.head+j)&q.mask].addDropped(lost)
	} else {
		q.dropped += lost
	}
	return true
}

func (q *queue) appendLocked(it item) {
	q.ring[(q.head+q.n)&q.mask] = it
	q.n++
	if q.popWaiting > 0 {
		q.notEmpty.Signal()
	}
}

// popAll moves every queued item into dst and returns it, waiting while the
// queue is empty. askKeyframe is true when a keyframe was dropped for want of
// room and there is room now: the caller asks upstream again. It returns an
// empty slice once the queue is closed.
func (q *queue) popAll(dst []item) (items []item, askKeyframe bool) {
	q.mu.Lock()
	for q.n == 0 && !q.closed {
		q.popWaiting++
		q.notEmpty.Wait()
		q.popWaiting--
	}
	if q.closed {
		q.mu.Unlock()
		return dst[:0], false
	}
	dst = dst[:0]
	for q.n > 0 && len(dst) < cap(dst) {
		// Copy and clear whole runs of the ring, not item by item.
		run := min(q.n, cap(dst)-len(dst), len(q.ring)-q.head)
		seg := q.ring[q.head : q.head+run]
		dst = append(dst, seg...)
		clear(seg)
		q.head = (q.head + run) & q.mask
		q.n -= run
	}
	if q.missedKeyframe && q.needKeyframe {
		q.missedKeyframe = false
		askKeyframe = true
	}
	if q.pushWaiting > 0 {
		q.notFull.Broadcast()
	}
	q.mu.Unlock()
	return dst, askKeyframe
}

// close wakes everyone, refuses further pushes and releases what is
// queued. Every call returns only once the releases are done, so that a
// caller that closes after a context-driven close (Pad.Close after Run)
// knows nothing queued is still referenced.
func (q *queue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		<-q.released // another close is releasing: return when it has
		return
	}
	q.closed = true
	var left []*Buffer
	for ; q.n > 0; q.n-- {
		if b := q.ring[q.head].b; b != nil {
			left = append(left, b)
		}
		q.ring[q.head] = item{}
		q.head = (q.head + 1) & q.mask
	}
	q.notEmpty.Broadcast()
	q.notFull.Broadcast()
	q.mu.Unlock()
	for _, b := range left {
		b.Unref()
	}
	close(q.released)
}

// length returns the number of queued items.
func (q *queue) length() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
