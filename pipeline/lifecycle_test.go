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
	"go.uber.org/goleak"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
	"github.com/medley-go/medley/pipeline"
)

// Must hold 5: Start(ctx) / Close(); cancelling ctx closes; Close is
// idempotent and safe from any goroutine; after Close no goroutine remains;
// an element that panics is reported as an Error and the pipeline
// survives.

// closeWait bounds how long a test waits for a pipeline to close.
const closeWait = 3 * time.Second

// lifeElement is an element that records its life: Run started and ended,
// Close calls.
type lifeElement struct {
	element.Base
	running, ran atomic.Bool
	closes       atomic.Int32
	runCtxDone   chan struct{}
}

func newLifeElement(name string) *lifeElement {
	return &lifeElement{Base: element.NewBase(name), runCtxDone: make(chan struct{})}
}

func (e *lifeElement) Run(ctx context.Context) error {
	e.running.Store(true)
	<-ctx.Done()
	close(e.runCtxDone)
	e.ran.Store(true)
	return ctx.Err()
}

func (e *lifeElement) Close() error {
	e.closes.Add(1)
	return nil
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func waitClosed(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(closeWait):
		require.Failf(t, "not closed", "%s within %v", what, closeWait)
	}
}

// busyPipeline builds a pipeline exercising every kind of goroutine: a
// source's Run, queued sink pads, an inline converter, a blocked sink, the
// flow monitor, and an element with Run and Close.
func busyPipeline(t *testing.T) (*pipeline.Pipeline, *lifeElement, []*elementtest.Sink) {
	t.Helper()
	reg := pipeline.NewRegistry()
	reg.Register(newFakeConverter("vp8-to-h264", capsVP8RTP, capsH264RTP))
	p := newTestPipeline(t, pipeline.WithRegistry(reg), pipeline.WithFlowTimeout(100*time.Millisecond))
	src := elementtest.NewSource("cam", elementtest.SourceConfig{Caps: capsVP8RTP, Rate: 500, FrameSize: 1000})
	direct := elementtest.NewSink("direct", element.CapsList{element.AnyVideo})
	h264 := elementtest.NewSink("h264", element.CapsList{capsH264RTP})
	stuck := elementtest.NewSink("stuck", element.CapsList{element.AnyVideo}, elementtest.WithQueue(8, element.Live))
	stuck.Block()
	life := newLifeElement("life")
	require.NoError(t, p.Add(src, direct, h264, stuck, life))
	for _, s := range []*elementtest.Sink{direct, h264, stuck} {
		require.NoError(t, p.Connect(src, s, element.KindVideo))
	}
	return p, life, []*elementtest.Sink{direct, h264, stuck}
}

func TestStartClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p, life, sinks := busyPipeline(t)
	require.NoError(t, p.Start(context.Background()))
	ctx := testCtx(t)
	require.NoError(t, sinks[0].WaitCount(ctx, 20), "media flows once started")
	require.NoError(t, sinks[1].WaitCount(ctx, 20), "media flows through the converter once started")
	assert.Eventually(t, life.running.Load, closeWait, time.Millisecond, "Start runs each Runner")
	assert.False(t, isClosed(p.Done()), "Done must stay open until Close")

	// An element added to a running pipeline starts at once.
	late := newLifeElement("late")
	require.NoError(t, p.Add(late))
	assert.Eventually(t, late.running.Load, closeWait, time.Millisecond, "an element added while running starts")

	closed := make(chan struct{})
	go func() {
		assert.NoError(t, p.Close())
		close(closed)
	}()
	waitClosed(t, closed, "Close with a blocked sink must return")
	assert.True(t, isClosed(p.Done()), "Done is closed when Close returns")
	assert.True(t, life.ran.Load(), "Close ends each Run")
	assert.True(t, late.ran.Load(), "Close ends each Run")
	assert.Equal(t, int32(1), life.closes.Load(), "Close closes each element once")
	assert.Equal(t, int32(1), late.closes.Load(), "Close closes each element once")
}

func TestCancelContextCloses(t *testing.T) {
	cases := []struct {
		name string
		// cancelAt: before Start, or after media flows.
		beforeStart bool
	}{
		{"cancelled while running", false},
		{"cancelled before Start", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			p, life, sinks := busyPipeline(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.beforeStart {
				cancel()
			}
			require.NoError(t, p.Start(ctx))
			if !tc.beforeStart {
				require.NoError(t, sinks[0].WaitCount(testCtx(t), 10))
				assert.False(t, isClosed(p.Done()))
				cancel()
			}
			waitClosed(t, p.Done(), "cancelling Start's context must close the pipeline")
			assert.Equal(t, int32(1), life.closes.Load(), "elements are closed")
			assert.NoError(t, p.Close(), "Close after the context closed the pipeline")
			err := p.Add(newLifeElement("after"))
			assert.ErrorIs(t, err, element.ErrClosed, "the pipeline is closed")
		})
	}
}

func TestCloseIdempotentAndConcurrent(t *testing.T) {
	cases := []struct {
		name  string
		start bool
	}{
		{"started", true},
		{"never started", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			p, life, sinks := busyPipeline(t)
			if tc.start {
				require.NoError(t, p.Start(context.Background()))
				require.NoError(t, sinks[0].WaitCount(testCtx(t), 5))
			}
			const n = 32
			var ready, wg sync.WaitGroup
			ready.Add(n)
			gate := make(chan struct{})
			errs := make([]error, n)
			doneAtReturn := make([]bool, n)
			for i := range n {
				wg.Go(func() {
					ready.Done()
					<-gate
					errs[i] = p.Close()
					doneAtReturn[i] = isClosed(p.Done())
				})
			}
			ready.Wait()
			close(gate)
			finished := make(chan struct{})
			go func() { wg.Wait(); close(finished) }()
			waitClosed(t, finished, "32 concurrent Close calls must all return")
			for i := range n {
				assert.NoError(t, errs[i])
				assert.True(t, doneAtReturn[i], "every Close returns only once the pipeline is closed")
			}
			assert.NoError(t, p.Close(), "Close again")
			assert.NoError(t, p.Close(), "and again")
			assert.Equal(t, int32(1), life.closes.Load(), "each element is closed exactly once")
		})
	}
}

func TestLifecycleErrors(t *testing.T) {
	cases := []struct {
		name string
		do   func(t *testing.T, p *pipeline.Pipeline) error
		want error
	}{
		{"Start twice", func(t *testing.T, p *pipeline.Pipeline) error {
			require.NoError(t, p.Start(context.Background()))
			return p.Start(context.Background())
		}, pipeline.ErrStarted},
		{"Start after Close", func(t *testing.T, p *pipeline.Pipeline) error {
			require.NoError(t, p.Close())
			return p.Start(context.Background())
		}, element.ErrClosed},
		{"Add after Close", func(t *testing.T, p *pipeline.Pipeline) error {
			require.NoError(t, p.Close())
			return p.Add(newLifeElement("x"))
		}, element.ErrClosed},
		{"Add after Close of a started pipeline", func(t *testing.T, p *pipeline.Pipeline) error {
			require.NoError(t, p.Start(context.Background()))
			require.NoError(t, p.Close())
			return p.Add(newLifeElement("x"))
		}, element.ErrClosed},
		{"Connect after Close", func(t *testing.T, p *pipeline.Pipeline) error {
			src := element.NewAppSource("s", element.CapsList{capsVP8RTP})
			sink := elementtest.NewSink("k", element.CapsList{element.AnyVideo})
			require.NoError(t, p.Add(src, sink))
			require.NoError(t, p.Close())
			return p.Connect(src, sink, element.KindVideo)
		}, element.ErrClosed},
		{"duplicate name across Adds", func(t *testing.T, p *pipeline.Pipeline) error {
			require.NoError(t, p.Add(newLifeElement("dup")))
			return p.Add(newLifeElement("dup"))
		}, pipeline.ErrDuplicateName},
		{"duplicate name in one Add", func(t *testing.T, p *pipeline.Pipeline) error {
			return p.Add(newLifeElement("dup"), newLifeElement("dup"))
		}, pipeline.ErrDuplicateName},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPipeline(t)
			assert.ErrorIs(t, tc.do(t, p), tc.want)
		})
	}

	t.Run("a failed Add adds nothing", func(t *testing.T) {
		p := newTestPipeline(t)
		first := newLifeElement("dup")
		require.NoError(t, p.Add(first))
		other, dup := newLifeElement("other"), newLifeElement("dup")
		require.ErrorIs(t, p.Add(other, dup), pipeline.ErrDuplicateName)
		assert.Nil(t, p.Element("other"), "Add is all or nothing")
		assert.Same(t, first, p.Element("dup"))
		assert.Len(t, p.Elements(), 1)
	})
}

// panicSink is a sink whose ChainFunc, or downstream event handler,
// panics; it counts the calls.
type panicSink struct {
	element.Base
	chainCalls atomic.Int64
}

func newPanicSink(name string, inline, inChain, inEvent bool) *panicSink {
	s := &panicSink{Base: element.NewBase(name)}
	opts := []element.PadOption{element.WithEventHandler(func(ev element.Event) {
		if inEvent {
			if _, ok := ev.(element.CapsEvent); ok {
				panic("panicSink: event handler panics")
			}
		}
	})}
	if inline {
		opts = append(opts, element.Inline())
	}
	s.AddPad(element.NewSinkPad("sink", element.CapsList{element.AnyVideo}, func(*element.Buffer) error {
		s.chainCalls.Add(1)
		if inChain {
			panic("panicSink: ChainFunc panics")
		}
		return nil
	}, opts...))
	return s
}

// panicRunner is an element whose Run panics.
type panicRunner struct{ element.Base }

func (panicRunner) Run(context.Context) error { panic("panicRunner: Run panics") }

// panicCloser is an element whose Close panics.
type panicCloser struct{ element.Base }

func (panicCloser) Close() error { panic("panicCloser: Close panics") }

func TestPanickingElementIsReported(t *testing.T) {
	type env struct {
		p   *pipeline.Pipeline
		src *elementtest.Source // manual, feeding "good" and what the case connects
	}
	cases := []struct {
		name string
		// setup adds the panicking element; trigger (after Start) makes
		// it panic if emitting buffers does not; after checks the
		// panicking element itself kept working where it can.
		setup   func(t *testing.T, e env) (trigger func(), after func(t *testing.T))
		element string
		pad     string
	}{
		{
			name: "ChainFunc of a queued sink", element: "bomb", pad: "bomb.sink",
			setup: func(t *testing.T, e env) (func(), func(*testing.T)) {
				s := newPanicSink("bomb", false, true, false)
				require.NoError(t, e.p.Add(s))
				require.NoError(t, e.p.Connect(e.src, s, element.KindVideo))
				return nil, func(t *testing.T) {
					assert.Eventually(t, func() bool { return s.chainCalls.Load() == 10 }, closeWait, time.Millisecond,
						"the panicking sink is still fed after its panics")
				}
			},
		},
		{
			name: "ChainFunc of an inline sink", element: "bomb", pad: "bomb.sink",
			setup: func(t *testing.T, e env) (func(), func(*testing.T)) {
				s := newPanicSink("bomb", true, true, false)
				require.NoError(t, e.p.Add(s))
				require.NoError(t, e.p.Connect(e.src, s, element.KindVideo))
				return nil, func(t *testing.T) {
					assert.Equal(t, int64(10), s.chainCalls.Load(), "the panicking sink is still fed after its panics")
				}
			},
		},
		{
			name: "downstream event handler", element: "bomb", pad: "bomb.sink",
			setup: func(t *testing.T, e env) (func(), func(*testing.T)) {
				s := newPanicSink("bomb", false, false, true)
				require.NoError(t, e.p.Add(s))
				require.NoError(t, e.p.Connect(e.src, s, element.KindVideo))
				return nil, func(t *testing.T) {
					assert.Eventually(t, func() bool { return s.chainCalls.Load() == 10 }, closeWait, time.Millisecond,
						"the sink whose event handler panicked still gets every buffer")
				}
			},
		},
		{
			name: "upstream event handler", element: "bomb", pad: "bomb.src",
			setup: func(t *testing.T, e env) (func(), func(*testing.T)) {
				bomb := element.NewAppSource("bomb", element.CapsList{capsVP8RTP},
					element.WithUpstream(func(ev element.Event) { panic("upstream handler panics") }))
				viewer := elementtest.NewSink("bomb-viewer", element.CapsList{element.AnyVideo})
				require.NoError(t, e.p.Add(bomb, viewer))
				require.NoError(t, e.p.Connect(bomb, viewer, element.KindVideo))
				trigger := func() { viewer.RequestKeyframe() }
				return trigger, func(t *testing.T) {
					bomb.PushSample([]byte("12345678"), 0, 0, element.FlagKeyframe)
					require.NoError(t, viewer.WaitCount(testCtx(t), 1), "the source whose handler panicked still works")
				}
			},
		},
		{
			name: "Run", element: "bomb",
			setup: func(t *testing.T, e env) (func(), func(*testing.T)) {
				require.NoError(t, e.p.Add(panicRunner{element.NewBase("bomb")}))
				return nil, nil
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			p := newTestPipeline(t)
			bus := recordBus(p, 0)
			src := elementtest.NewSource("cam", elementtest.SourceConfig{Caps: capsVP8RTP, Manual: true, FrameSize: 500})
			good := elementtest.NewSink("good", element.CapsList{element.AnyVideo})
			require.NoError(t, p.Add(src, good))
			require.NoError(t, p.Connect(src, good, element.KindVideo))
			trigger, after := tc.setup(t, env{p: p, src: src})
			require.NoError(t, p.Start(testCtx(t)))

			src.Emit(5)
			if trigger != nil {
				trigger()
			}
			e := awaitMsg(t, bus, func(m *element.Error) bool { return errors.Is(m.Err, element.ErrPanic) })
			assertStamped(t, e, tc.element, start)
			if tc.pad != "" {
				assert.Equal(t, tc.pad, e.Pad)
			}

			// The pipeline survives: media still reaches the other sink.
			src.Emit(5)
			require.NoError(t, good.WaitCount(testCtx(t), 10), "the pipeline must keep delivering after a panic")
			if after != nil {
				after(t)
			}
			assert.False(t, isClosed(p.Done()), "a panic must not close the pipeline")
		})
	}
}

func TestPanickingCloseIsReported(t *testing.T) {
	start := time.Now()
	p, err := pipeline.New()
	require.NoError(t, err)
	bus := recordBus(p, 0)
	life := newLifeElement("after-bomb")
	require.NoError(t, p.Add(panicCloser{element.NewBase("bomb")}, life))
	require.NoError(t, p.Start(context.Background()))
	assert.NoError(t, p.Close(), "a panic in an element's Close must not fail the pipeline's")
	assert.Equal(t, int32(1), life.closes.Load(), "the other elements are closed")
	bus.waitClosed(t)
	e := awaitMsg(t, bus, func(m *element.Error) bool { return errors.Is(m.Err, element.ErrPanic) })
	assertStamped(t, e, "bomb", start)
}

// TestCloseRacesGraphChanges closes pipelines while other goroutines
// remove and disconnect their elements, as a host does when a call ends
// (ctx cancelled) while participants leave: every call must return (nil or
// a closed/not-linked error), none may panic, and no goroutine may remain.
func TestCloseRacesGraphChanges(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const rounds = 300
	for round := range rounds {
		p, err := pipeline.New()
		require.NoError(t, err)
		src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: capsVP8RTP, Manual: true})
		require.NoError(t, p.Add(src))
		var sinks []*elementtest.Sink
		for i := range 4 {
			s := elementtest.NewSink("sink"+string(rune('a'+i)), element.CapsList{element.AnyVideo})
			require.NoError(t, p.Add(s))
			require.NoError(t, p.Connect(src, s, element.KindVideo))
			sinks = append(sinks, s)
		}
		require.NoError(t, p.Start(context.Background()))

		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			failures []string
		)
		call := func(what string, fn func() error) {
			wg.Go(func() {
				defer func() {
					if r := recover(); r != nil {
						mu.Lock()
						failures = append(failures, what+" panicked: "+fmt.Sprint(r))
						mu.Unlock()
					}
				}()
				err := fn()
				if err != nil && !errors.Is(err, element.ErrClosed) && !errors.Is(err, element.ErrNotLinked) && !errors.Is(err, pipeline.ErrNotInPipeline) {
					mu.Lock()
					failures = append(failures, what+": "+err.Error())
					mu.Unlock()
				}
			})
		}
		call("Close", p.Close)
		for i, s := range sinks {
			if i%2 == 0 {
				call("Remove "+s.Name(), func() error { return p.Remove(s) })
			} else {
				call("Disconnect "+s.Name(), func() error { return p.Disconnect(src, s, element.KindVideo) })
			}
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		waitClosed(t, done, "Close racing Remove and Disconnect must return")
		if len(failures) > 0 {
			// A pipeline whose Close panicked cannot be closed again: leave
			// it (and its goroutines) rather than hang.
			require.Failf(t, "Close racing graph changes", "round %d: %v", round, failures)
		}
		require.True(t, isClosed(p.Done()), "Done is closed once Close returned")
	}
}
