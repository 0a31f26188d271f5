package element

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBufferRefUnref(t *testing.T) {
	var released atomic.Int32
	var got *Buffer
	b := NewBuffer(func(x *Buffer) {
		released.Add(1)
		got = x
	})
	assert.Same(t, b, b.Ref(), "Ref returns the buffer")
	b.Ref()
	b.Unref()
	b.Unref()
	assert.Zero(t, released.Load(), "still one reference")
	b.Unref()
	assert.Equal(t, int32(1), released.Load(), "the last Unref releases")
	assert.Same(t, b, got)
}

func TestBufferRefUnrefConcurrent(t *testing.T) {
	var released atomic.Int32
	b := NewBuffer(func(*Buffer) { released.Add(1) })
	const n = 64
	for range n {
		b.Ref()
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(b.Unref)
	}
	wg.Wait()
	assert.Zero(t, released.Load())
	b.Unref()
	assert.Equal(t, int32(1), released.Load())
}

func TestBufferUnrefReleasedPanics(t *testing.T) {
	b := NewBuffer(func(*Buffer) {})
	b.Unref()
	assert.PanicsWithValue(t, "element: Buffer.Unref of a released buffer", b.Unref)

	p := NewBufferPool(16)
	pb := p.Get()
	pb.Unref()
	assert.Panics(t, pb.Unref, "a pooled buffer released twice")
}

func TestBufferGarbageCollected(t *testing.T) {
	for _, b := range []*Buffer{new(Buffer), NewBuffer(nil), {Data: []byte("x")}} {
		assert.NotPanics(t, func() {
			b.Ref()
			for range 5 {
				b.Unref() // no count: Ref and Unref cost nothing
			}
		})
	}
}

func TestBufferPoolRecycles(t *testing.T) {
	p := NewBufferPool(100)
	b := p.Get()
	assert.Empty(t, b.Data)
	assert.Equal(t, 100, cap(b.Data))

	// sync.Pool may drop an item (it does so at random under -race), so
	// try until the released buffer comes back.
	var recycled bool
	for range 200 {
		b := p.Get()
		b.RTP = rtp.Header{Version: 2, SequenceNumber: 7, Timestamp: 9, SSRC: 3, CSRC: []uint32{1, 2}, Marker: true}
		b.Data = append(b.Data, "payload"...)
		b.Frame = "frame"
		b.PTS, b.Duration, b.Flags = time.Second, time.Millisecond, FlagKeyframe|FlagDiscont
		b.Ref()
		b.Unref()
		b.Unref()
		c := p.Get()
		if c == b {
			recycled = true
			assert.Zero(t, c.RTP.SequenceNumber)
			assert.Zero(t, c.RTP.SSRC)
			assert.False(t, c.RTP.Marker)
			assert.Empty(t, c.RTP.CSRC)
			assert.Empty(t, c.Data, "Data is emptied")
			assert.GreaterOrEqual(t, cap(c.Data), 100, "payload memory is kept")
			assert.Nil(t, c.Frame)
			assert.Zero(t, c.PTS)
			assert.Zero(t, c.Duration)
			assert.Zero(t, c.Flags)
			// A recycled buffer holds one reference again.
			c.Unref()
			assert.Panics(t, c.Unref)
			break
		}
		c.Unref()
	}
	assert.True(t, recycled, "a released buffer was never handed out again")
}

func TestBufferPoolGetIsZero(t *testing.T) {
	p := NewBufferPool(8)
	for range 50 {
		b := p.Get()
		assert.Empty(t, b.Data)
		assert.Zero(t, b.Flags)
		assert.Zero(t, b.PTS)
		assert.Nil(t, b.Frame)
		b.Data = append(b.Data, 1, 2, 3)
		b.Flags = FlagKeyframe
		b.PTS = time.Second
		b.Frame = 1
		b.Unref()
	}
}

func TestBufferClone(t *testing.T) {
	frame := &struct{ n int }{1}
	b := NewBuffer(func(*Buffer) {})
	b.RTP = rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 5, Timestamp: 1000, SSRC: 42, CSRC: []uint32{7}, Marker: true}
	require.NoError(t, b.RTP.SetExtension(1, []byte{0xaa}))
	b.Data = []byte{1, 2, 3}
	b.Frame = frame
	b.PTS, b.Duration, b.Flags = time.Second, 20*time.Millisecond, FlagKeyframe|FlagEndOfFrame

	c := b.Clone()
	assert.NotSame(t, b, c)
	assert.Equal(t, b.RTP, c.RTP)
	assert.Equal(t, b.Data, c.Data)
	assert.Same(t, frame, c.Frame.(*struct{ n int }), "Frame is shared")
	assert.Equal(t, b.PTS, c.PTS)
	assert.Equal(t, b.Duration, c.Duration)
	assert.Equal(t, b.Flags, c.Flags)

	// The clone is the caller's to modify: the original does not change.
	c.Data[0] = 9
	c.RTP.CSRC[0] = 8
	c.RTP.GetExtension(1)[0] = 0xbb
	c.RTP.SequenceNumber = 6
	assert.Equal(t, []byte{1, 2, 3}, b.Data)
	assert.Equal(t, []uint32{7}, b.RTP.CSRC)
	assert.Equal(t, []byte{0xaa}, b.RTP.GetExtension(1))
	assert.Equal(t, uint16(5), b.RTP.SequenceNumber)

	// The clone is garbage collected: Unref costs nothing and releasing
	// the original does not touch it.
	b.Unref()
	assert.NotPanics(t, func() { c.Unref(); c.Unref() })
	assert.Equal(t, []byte{9, 2, 3}, c.Data)
}

// Fan-out hands one buffer to every sink without copying it; the buffer is
// released once, after the last sink is done with it, whether the sinks
// are inline or queued, and whether a queue delivered it or dropped it.
func TestPushReleasesOnceAfterEverySink(t *testing.T) {
	caps := Caps{Kind: KindAudio, Format: FormatRTP, Codec: "audio/opus", ClockRate: 48000, Channels: 2}
	src := NewSrcPad("src", CapsList{caps})
	require.NoError(t, src.SetCaps(caps))

	var mu sync.Mutex
	seen := make(map[*Buffer]int)
	chain := func(b *Buffer) error {
		mu.Lock()
		seen[b]++
		mu.Unlock()
		return nil
	}
	inline := NewSinkPad("inline", CapsList{AnyAudio}, chain, Inline())
	queued := NewSinkPad("queued", CapsList{AnyAudio}, chain, WithQueue(64, Live))
	tiny := NewSinkPad("tiny", CapsList{AnyAudio}, chain, WithQueue(1, Live)) // not running until the end: drops
	for _, s := range []*Pad{inline, queued, tiny} {
		require.NoError(t, src.Link(s))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		queued.Run(ctx)
	}()

	var released atomic.Int32
	const n = 20
	bufs := make([]*Buffer, n)
	for i := range bufs {
		bufs[i] = NewBuffer(func(*Buffer) { released.Add(1) })
		bufs[i].Data = []byte{byte(i)}
		src.Push(bufs[i])
		bufs[i].Unref() // the pusher's own reference
	}
	// The queued sink counts a batch as it pops it, before its ChainFunc
	// runs and drops its references: wait for the releases themselves.
	require.Eventually(t, func() bool { return queued.Stats().Packets == n && released.Load() >= n-1 }, 2*time.Second, time.Millisecond)
	time.Sleep(10 * time.Millisecond) // room for a wrong extra release
	assert.Equal(t, int32(n-1), released.Load(), "all but the one still queued at the stalled sink")
	assert.Equal(t, uint64(n-1), tiny.Stats().Drops)

	cancel()
	<-done
	// The stalled sink's queue is released when its Run ends (it may or
	// may not deliver what it holds first); start and stop it.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	tiny.Run(ctx2)
	assert.Equal(t, int32(n), released.Load(), "every buffer released exactly once")

	mu.Lock()
	defer mu.Unlock()
	for i, b := range bufs {
		assert.GreaterOrEqual(t, seen[b], 2, "buffer %d reached the inline and the queued sink, uncopied", i)
	}
}
