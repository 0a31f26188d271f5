package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
	"github.com/medley-go/medley/pipeline"
)

// Must hold 7: the bus carries typed messages that name elements and are
// time-stamped; a slow subscriber cannot block the media path.

// busWait bounds every wait for a bus message in these tests.
const busWait = 3 * time.Second

// busLog records everything one subscription receives, on a goroutine of
// its own that ends when the pipeline closes the subscription's channel.
type busLog struct {
	sub    *pipeline.Subscription
	mu     sync.Mutex
	cond   *sync.Cond
	msgs   []element.Message
	closed bool
}

// recordBus subscribes to p (with a buffer of size messages, 0 for the
// default) and records what arrives. It must be called before the actions
// whose messages the test wants.
func recordBus(p *pipeline.Pipeline, size int) *busLog {
	l := &busLog{sub: p.Subscribe(size)}
	l.cond = sync.NewCond(&l.mu)
	go func() {
		for m := range l.sub.C() {
			l.mu.Lock()
			l.msgs = append(l.msgs, m)
			l.cond.Broadcast()
			l.mu.Unlock()
		}
		l.mu.Lock()
		l.closed = true
		l.cond.Broadcast()
		l.mu.Unlock()
	}()
	return l
}

// all returns a copy of the messages recorded so far.
func (l *busLog) all() []element.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]element.Message(nil), l.msgs...)
}

// waitUntil waits until cond (called under l.mu with the messages so far
// and whether the channel was closed) is true, or the timeout passes; it
// reports whether cond became true.
func (l *busLog) waitUntil(timeout time.Duration, cond func(msgs []element.Message, closed bool) bool) bool {
	expired := false
	timer := time.AfterFunc(timeout, func() {
		l.mu.Lock()
		expired = true
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer timer.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for !cond(l.msgs, l.closed) {
		if expired || l.closed {
			return cond(l.msgs, l.closed)
		}
		l.cond.Wait()
	}
	return true
}

// waitClosed waits for the subscription's channel to be closed.
func (l *busLog) waitClosed(t *testing.T) {
	t.Helper()
	ok := l.waitUntil(busWait, func(_ []element.Message, closed bool) bool { return closed })
	require.True(t, ok, "subscription channel not closed within %v", busWait)
}

// awaitMsg waits for a message of type T for which match is true (nil
// matches any) and returns it; the test fails if none comes within busWait.
func awaitMsg[T element.Message](t *testing.T, l *busLog, match func(T) bool) T {
	t.Helper()
	var found T
	ok := l.waitUntil(busWait, func(msgs []element.Message, _ bool) bool {
		for _, m := range msgs {
			if v, ok := m.(T); ok && (match == nil || match(v)) {
				found = v
				return true
			}
		}
		return false
	})
	if !ok {
		var zero T
		require.Failf(t, "message not posted", "no %T matching within %v; bus had:\n%s", zero, busWait, describeMsgs(l.all()))
	}
	return found
}

// msgsOf returns the recorded messages of type T.
func msgsOf[T element.Message](l *busLog) []T {
	var out []T
	for _, m := range l.all() {
		if v, ok := m.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func describeMsgs(msgs []element.Message) string {
	var s string
	for _, m := range msgs {
		s += fmt.Sprintf("  %T %+v\n", m, m)
	}
	return s
}

// assertStamped checks that a message names element and carries a time
// between start and now.
func assertStamped(t *testing.T, m element.Message, elementName string, start time.Time) {
	t.Helper()
	h := m.Origin()
	assert.Equal(t, elementName, h.Element, "%T names the wrong element", m)
	assert.False(t, h.Time.IsZero(), "%T has no timestamp", m)
	assert.False(t, h.Time.Before(start), "%T stamped %v, before the test started at %v", m, h.Time, start)
	assert.False(t, h.Time.After(time.Now()), "%T stamped in the future", m)
}

// newTestPipeline makes a pipeline that the test closes at its end.
func newTestPipeline(t *testing.T, opts ...pipeline.Option) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.New(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// testCtx returns a context that ends with the test (or after 10 s).
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// errSink is a video sink whose ChainFunc fails for every buffer: each
// failure is posted on the bus, on the media path.
type errSink struct {
	element.Base
	calls atomic.Int64
}

var errBusTest = errors.New("bus test: sink refuses buffer")

func newErrSink(name string, inline bool) *errSink {
	s := &errSink{Base: element.NewBase(name)}
	var opts []element.PadOption
	if inline {
		opts = append(opts, element.Inline())
	}
	s.AddPad(element.NewSinkPad("sink", element.CapsList{element.AnyVideo}, func(*element.Buffer) error {
		s.calls.Add(1)
		return errBusTest
	}, opts...))
	return s
}

// closeErrElement is an element whose Close fails (or panics): the
// pipeline reports that as an Error during Close.
type closeErrElement struct {
	element.Base
	panics bool
	closes atomic.Int32
}

var errCloseTest = errors.New("bus test: close failed")

func (e *closeErrElement) Close() error {
	e.closes.Add(1)
	if e.panics {
		panic("bus test: close panics")
	}
	return errCloseTest
}

func TestBusConnectDisconnectMessages(t *testing.T) {
	start := time.Now()
	p := newTestPipeline(t)
	bus := recordBus(p, 0)
	a := elementtest.NewSource("alice", elementtest.SourceConfig{Caps: capsVP8RTP, Manual: true})
	b := elementtest.NewSource("bob", elementtest.SourceConfig{Caps: capsVP8RTP, Manual: true})
	viewer := elementtest.NewSink("viewer", element.CapsList{element.AnyVideo})
	require.NoError(t, p.Add(a, b, viewer))

	require.NoError(t, p.Connect(a, viewer, element.KindVideo))
	c := awaitMsg[*element.ElementConnected](t, bus, nil)
	assertStamped(t, c, "alice", start)
	assert.Equal(t, "alice.src", c.Source)
	assert.Equal(t, "viewer.sink", c.Sink)
	assert.Equal(t, "viewer", c.SinkElement)
	assert.Equal(t, element.KindVideo, c.Kind)

	// Connecting another source to the sink replaces the first (Kurento's
	// rule): the old connection is announced gone, the new one made.
	require.NoError(t, p.Connect(b, viewer, element.KindVideo))
	d := awaitMsg[*element.ElementDisconnected](t, bus, func(m *element.ElementDisconnected) bool { return m.Source == "alice.src" })
	assertStamped(t, d, "alice", start)
	assert.Equal(t, "viewer.sink", d.Sink)
	assert.Equal(t, "viewer", d.SinkElement)
	assert.Equal(t, element.KindVideo, d.Kind)
	c2 := awaitMsg[*element.ElementConnected](t, bus, func(m *element.ElementConnected) bool { return m.Source == "bob.src" })
	assertStamped(t, c2, "bob", start)
	assert.Equal(t, "viewer.sink", c2.Sink)

	require.NoError(t, p.Disconnect(b, viewer, element.KindVideo))
	d2 := awaitMsg[*element.ElementDisconnected](t, bus, func(m *element.ElementDisconnected) bool { return m.Source == "bob.src" })
	assertStamped(t, d2, "bob", start)
	assert.Equal(t, "viewer.sink", d2.Sink)
	assert.Equal(t, "viewer", d2.SinkElement)

	require.NoError(t, p.Close())
	bus.waitClosed(t)
	assert.Len(t, msgsOf[*element.ElementConnected](bus), 2, "one ElementConnected per connection")
	assert.Len(t, msgsOf[*element.ElementDisconnected](bus), 2, "one ElementDisconnected per connection ended")
}

func TestBusMediaFlowStates(t *testing.T) {
	start := time.Now()
	p := newTestPipeline(t, pipeline.WithFlowTimeout(200*time.Millisecond))
	bus := recordBus(p, 0)
	src := elementtest.NewSource("cam", elementtest.SourceConfig{Caps: capsVP8RTP, Rate: 100, Frames: 20, FrameSize: 500})
	sink := elementtest.NewSink("screen", element.CapsList{element.AnyVideo})
	require.NoError(t, p.Add(src, sink))
	require.NoError(t, p.Connect(src, sink, element.KindVideo))
	require.NoError(t, p.Start(testCtx(t)))

	outOn := awaitMsg(t, bus, func(m *element.MediaFlowOutStateChanged) bool {
		return m.Pad == "cam.src" && m.State == element.Flowing
	})
	assertStamped(t, outOn, "cam", start)
	assert.Equal(t, element.KindVideo, outOn.Kind)
	inOn := awaitMsg(t, bus, func(m *element.MediaFlowInStateChanged) bool {
		return m.Pad == "screen.sink" && m.State == element.Flowing
	})
	assertStamped(t, inOn, "screen", start)
	assert.Equal(t, element.KindVideo, inOn.Kind)

	// The source stops after 20 frames: both pads go NOT_FLOWING once the
	// flow timeout has passed without a buffer.
	outOff := awaitMsg(t, bus, func(m *element.MediaFlowOutStateChanged) bool {
		return m.Pad == "cam.src" && m.State == element.NotFlowing
	})
	assertStamped(t, outOff, "cam", start)
	inOff := awaitMsg(t, bus, func(m *element.MediaFlowInStateChanged) bool {
		return m.Pad == "screen.sink" && m.State == element.NotFlowing
	})
	assertStamped(t, inOff, "screen", start)
	assert.Equal(t, 20, sink.Count())
	assert.True(t, outOff.Time.After(outOn.Time), "NOT_FLOWING must come after FLOWING")
	assert.True(t, inOff.Time.After(inOn.Time), "NOT_FLOWING must come after FLOWING")

	require.NoError(t, p.Close())
	bus.waitClosed(t)
	// Exactly one change each way per pad: no flapping while media flows.
	for _, pad := range []string{"cam.src", "screen.sink"} {
		var states []element.FlowState
		for _, m := range bus.all() {
			switch m := m.(type) {
			case *element.MediaFlowOutStateChanged:
				if m.Pad == pad {
					states = append(states, m.State)
				}
			case *element.MediaFlowInStateChanged:
				if m.Pad == pad {
					states = append(states, m.State)
				}
			}
		}
		assert.Equal(t, []element.FlowState{element.Flowing, element.NotFlowing}, states, "flow states of %s", pad)
	}
}

func TestBusEndOfStream(t *testing.T) {
	start := time.Now()
	p := newTestPipeline(t)
	bus := recordBus(p, 0)
	src := elementtest.NewSource("file", elementtest.SourceConfig{Caps: capsOpusRTP, Rate: -1, Frames: 5})
	sink := elementtest.NewSink("speaker", element.CapsList{element.AnyAudio})
	require.NoError(t, p.Add(src, sink))
	require.NoError(t, p.Connect(src, sink, element.KindAudio))
	require.NoError(t, p.Start(testCtx(t)))

	eos := awaitMsg[*element.EndOfStream](t, bus, nil)
	assertStamped(t, eos, "file", start)
	assert.Equal(t, "file.src", eos.Pad)
	_, err := sink.WaitEvent(testCtx(t), func(ev element.Event) bool { _, ok := ev.(element.EOSEvent); return ok })
	require.NoError(t, err, "the sink gets the EOS event too")
	assert.Equal(t, 5, sink.Count(), "EOS comes after every buffer")
}

func TestBusErrorFromChainFunc(t *testing.T) {
	start := time.Now()
	p := newTestPipeline(t)
	bus := recordBus(p, 0)
	src := elementtest.NewSource("cam", elementtest.SourceConfig{Caps: capsVP8RTP, Manual: true, FrameSize: 500})
	bad := newErrSink("picky", false)
	require.NoError(t, p.Add(src, bad))
	require.NoError(t, p.Connect(src, bad, element.KindVideo))
	require.NoError(t, p.Start(testCtx(t)))
	src.Emit(1)

	e := awaitMsg[*element.Error](t, bus, nil)
	assertStamped(t, e, "picky", start)
	assert.Equal(t, "picky.sink", e.Pad)
	assert.ErrorIs(t, e.Err, errBusTest)
}

func TestBusTranscodingStateChanged(t *testing.T) {
	start := time.Now()
	reg := pipeline.NewRegistry()
	reg.Register(newFakeConverter("vp8-to-h264", capsVP8RTP, capsH264RTP))
	p := newTestPipeline(t, pipeline.WithRegistry(reg))
	bus := recordBus(p, 0)
	src := elementtest.NewSource("cam", elementtest.SourceConfig{Caps: capsVP8RTP, Manual: true})
	sink := elementtest.NewSink("player", element.CapsList{capsH264RTP})
	require.NoError(t, p.Add(src, sink))
	require.NoError(t, p.Connect(src, sink, element.KindVideo))

	m := awaitMsg[*element.TranscodingStateChanged](t, bus, nil)
	assertStamped(t, m, "cam", start)
	assert.Equal(t, "cam.src", m.Source)
	assert.Equal(t, "player.sink", m.Sink)
	assert.Equal(t, element.Transcoding, m.State)
	assert.Len(t, m.Chain, 1)
}

// TestBusSlowSubscriberDoesNotBlockMedia posts a message per buffer from
// the media path (a sink whose ChainFunc fails) to a subscriber with room
// for one message that never reads: every buffer still reaches every sink,
// and the subscriber's losses are counted.
func TestBusSlowSubscriberDoesNotBlockMedia(t *testing.T) {
	const frames = 300
	p := newTestPipeline(t)
	slow := p.Subscribe(1) // never read while media flows
	// Should Post block, the test itself would hang in Connect, or the
	// source in Post: a watchdog then drains the subscription, so that
	// the test fails instead of hanging.
	watchdog := time.AfterFunc(2*time.Second, func() {
		go func() {
			for range slow.C() {
			}
		}()
	})
	defer watchdog.Stop()
	src := elementtest.NewSource("cam", elementtest.SourceConfig{Caps: capsVP8RTP, Rate: -1, Frames: frames, FrameSize: 500})
	good := elementtest.NewSink("good", element.CapsList{element.AnyVideo}, elementtest.WithQueue(frames+10, element.Live))
	bad := newErrSink("bad", true) // inline: its Error is posted on the source's goroutine
	require.NoError(t, p.Add(src, good, bad))
	require.NoError(t, p.Connect(src, good, element.KindVideo))
	require.NoError(t, p.Connect(src, bad, element.KindVideo))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, p.Start(ctx))
	require.NoError(t, good.WaitCount(ctx, frames), "the media path stalled behind a slow subscriber")
	_, err := good.WaitEvent(ctx, func(ev element.Event) bool { _, ok := ev.(element.EOSEvent); return ok })
	require.NoError(t, err)

	require.True(t, watchdog.Stop(), "posting to a slow subscriber blocked the caller until the watchdog drained it")
	assert.Equal(t, frames, good.Count())
	assert.Equal(t, int64(frames), bad.calls.Load(), "the failing sink saw every buffer")
	// One message fits; the rest (2 connections, 300 errors, EOS) are lost
	// to this subscriber alone, and counted.
	assert.GreaterOrEqual(t, slow.Dropped(), uint64(frames), "messages the slow subscriber lost must be counted")
	st, ok := p.Stats().Element("good")
	require.True(t, ok)
	assert.Zero(t, st.Drops)
}

// TestBusMessagesSurviveClose checks that the messages posted before Close,
// including the ones Close itself causes, stay readable after Close, and
// that the channel is closed after the last of them.
func TestBusMessagesSurviveClose(t *testing.T) {
	start := time.Now()
	p, err := pipeline.New()
	require.NoError(t, err)
	sub := p.Subscribe(64)
	src := elementtest.NewSource("file", elementtest.SourceConfig{Caps: capsVP8RTP, Rate: -1, Frames: 3, FrameSize: 500})
	sink := elementtest.NewSink("sink", element.CapsList{element.AnyVideo})
	closer := &closeErrElement{Base: element.NewBase("closer")}
	require.NoError(t, p.Add(src, sink, closer))
	require.NoError(t, p.Connect(src, sink, element.KindVideo))
	require.NoError(t, p.Start(testCtx(t)))
	_, err = sink.WaitEvent(testCtx(t), func(ev element.Event) bool { _, ok := ev.(element.EOSEvent); return ok })
	require.NoError(t, err)
	require.NoError(t, p.Close())

	var got []element.Message
	timeout := time.After(busWait)
read:
	for {
		select {
		case m, ok := <-sub.C():
			if !ok {
				break read
			}
			got = append(got, m)
		case <-timeout:
			require.Fail(t, "subscription channel not closed after Close", "read so far:\n%s", describeMsgs(got))
		}
	}
	var connected, eos, closeErr bool
	for _, m := range got {
		switch m := m.(type) {
		case *element.ElementConnected:
			connected = true
			assertStamped(t, m, "file", start)
		case *element.EndOfStream:
			eos = true
			assertStamped(t, m, "file", start)
		case *element.Error:
			if errors.Is(m.Err, errCloseTest) {
				closeErr = true
				assertStamped(t, m, "closer", start)
			}
		}
	}
	assert.True(t, connected, "ElementConnected lost")
	assert.True(t, eos, "EndOfStream lost")
	assert.True(t, closeErr, "the Error from an element's Close, posted during Close, lost")
	assert.Equal(t, int32(1), closer.closes.Load(), "Close of an element runs once")

	// A subscription made after Close gets a closed channel at once.
	late := p.Subscribe(1)
	select {
	case _, ok := <-late.C():
		assert.False(t, ok, "a subscription after Close gets no message")
	case <-time.After(busWait):
		assert.Fail(t, "a subscription after Close must have a closed channel")
	}
}

func TestBusSubscriptionClose(t *testing.T) {
	p := newTestPipeline(t)
	a, b := p.Subscribe(4), p.Subscribe(4)
	a.Close()
	a.Close() // idempotent
	_, ok := <-a.C()
	assert.False(t, ok, "Close closes the subscription's channel")

	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: capsVP8RTP, Manual: true})
	sink := elementtest.NewSink("sink", element.CapsList{element.AnyVideo})
	require.NoError(t, p.Add(src, sink))
	require.NoError(t, p.Connect(src, sink, element.KindVideo))
	select {
	case m := <-b.C():
		assert.IsType(t, &element.ElementConnected{}, m, "the other subscriber still gets messages")
	case <-time.After(busWait):
		assert.Fail(t, "the other subscriber got nothing")
	}
	require.NoError(t, p.Close())
	ctx, cancel := context.WithTimeout(context.Background(), busWait)
	defer cancel()
	for range b.Messages(ctx) {
	}
	assert.NoError(t, ctx.Err(), "Messages must end when the pipeline closes")
}
