package element

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// inlineRig links a src pad to one inline sink pad whose ChainFunc is
// chain, with an event handler that records the events.
func inlineRig(t *testing.T, chain ChainFunc) (src, sink *Pad, events *[]Event) {
	t.Helper()
	caps := Caps{Kind: KindVideo, Format: FormatRTP, Codec: "video/VP8", ClockRate: 90000}
	src = NewSrcPad("src", CapsList{caps})
	require.NoError(t, src.SetCaps(caps))
	events = new([]Event)
	sink = NewSinkPad("sink", CapsList{AnyVideo}, chain, Inline(),
		WithEventHandler(func(ev Event) { *events = append(*events, ev) }))
	require.NoError(t, src.Link(sink))
	return src, sink, events
}

// An inline sink borrows the pusher's reference: a ChainFunc that keeps
// the buffer takes its own, and the buffer is released once, when the last
// of the two is dropped.
func TestInlineSinkBorrowsTheBuffer(t *testing.T) {
	var kept *Buffer
	src, sink, _ := inlineRig(t, func(b *Buffer) error {
		if b.Data[0] == 1 {
			kept = b.Ref()
		}
		return nil
	})
	var released atomic.Int32
	push := func(v byte) {
		b := NewBuffer(func(*Buffer) { released.Add(1) })
		b.Data = []byte{v}
		src.Push(b)
		b.Unref()
	}

	push(0)
	assert.Equal(t, int32(1), released.Load(), "released by the pusher's Unref")
	push(1)
	assert.Equal(t, int32(1), released.Load(), "still held by the ChainFunc")
	require.NotNil(t, kept)
	assert.Equal(t, []byte{1}, kept.Data)
	kept.Unref()
	assert.Equal(t, int32(2), released.Load())

	// Closed, the pad delivers nothing and takes no reference either.
	sink.Close()
	push(2)
	assert.Equal(t, int32(3), released.Load())
	assert.Equal(t, uint64(2), sink.Stats().Packets)
}

// A panicking inline ChainFunc is recovered on the pusher's goroutine; the
// pad stays usable (its lock released), delivers the next buffers and
// closes.
func TestInlineSinkChainPanicRecovered(t *testing.T) {
	var calls int
	src, sink, events := inlineRig(t, func(b *Buffer) error {
		calls++
		if b.Data[0] == 1 {
			panic("chain panics")
		}
		return nil
	})
	for _, v := range []byte{0, 1, 2} {
		require.NotPanics(t, func() { src.Push(&Buffer{Data: []byte{v}}) })
	}
	assert.Equal(t, 3, calls)
	assert.Equal(t, uint64(3), sink.Stats().Packets)
	require.NoError(t, src.PushEvent(EOSEvent{}), "the pad's lock was released after the panic")
	sink.Close()
	src.Push(&Buffer{Data: []byte{3}})
	assert.Equal(t, 3, calls, "no delivery after Close")
	require.Len(t, *events, 2)
	assert.IsType(t, CapsEvent{}, (*events)[0])
	assert.IsType(t, EOSEvent{}, (*events)[1])
}

// The caps reach an inline sink's event handler before the first buffer,
// and again only when they change.
func TestInlineSinkCapsBeforeBuffers(t *testing.T) {
	var events *[]Event
	var seen []int // how many events had arrived at each buffer
	src, _, events := inlineRig(t, func(b *Buffer) error {
		seen = append(seen, len(*events))
		return nil
	})
	src.Push(&Buffer{Data: []byte{0}})
	src.Push(&Buffer{Data: []byte{1}})
	c2 := Caps{Kind: KindVideo, Format: FormatRTP, Codec: "video/VP8", ClockRate: 90000, Fmtp: "x=1"}
	require.NoError(t, src.SetTemplates(CapsList{c2}))
	require.NoError(t, src.SetCaps(c2))
	src.Push(&Buffer{Data: []byte{2}})
	assert.Equal(t, []int{1, 1, 2}, seen)
	require.Len(t, *events, 2)
	assert.Equal(t, "", (*events)[0].(CapsEvent).Caps.Fmtp)
	assert.Equal(t, "x=1", (*events)[1].(CapsEvent).Caps.Fmtp)
}
