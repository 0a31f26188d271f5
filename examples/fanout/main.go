// Command fanout shows what medley's core does today: one synthetic video
// source fanned out to several sinks, one of which stalls, while the host
// watches the bus, the stats and the graph.
//
//	camera (elementtest.Source:         +--[queue 256]--> viewer1 (AppSink: counts)
//	VP8 RTP, 30 fps, 3 packets/frame)   |
//	  src ------------------------------+--[queue 256]--> viewer2 (AppSink: counts)
//	   ^                                |
//	   |                                +--[queue  32]--> slow    (AppSink: stalls 2 s
//	   |                                        |                  at t = 1 s)
//	   +---- KeyframeRequest (merged) ----------+ when full: drop until a keyframe, ask for one
//
// Connect links camera.src to each sink directly (the caps meet, so no
// converter is inserted); each sink pad has its own bounded queue and
// goroutine. While "slow" is stalled the viewers keep receiving every packet;
// slow's queue fills, drops until the next keyframe and asks the camera for
// one, and slow resumes from that keyframe once it unblocks.
//
// The program prints the bus messages as they come, the pipeline's Stats
// every second, a summary and the graph in Graphviz DOT, and exits when the
// source has sent -duration of video:
//
//	go run ./examples/fanout -duration 5s -sinks 3 -dot fanout.dot
//	dot -Tsvg fanout.dot > fanout.svg
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
	"github.com/medley-go/medley/pipeline"
)

// options are the program's settings; flags set some of them.
type options struct {
	// Duration is how much video the source sends before its end of stream.
	Duration time.Duration
	// Sinks is the number of sinks; the last one is the slow one (if
	// StallFor is not zero).
	Sinks int
	// Rate is the source's frames per second.
	Rate float64
	// StallAt is when, after the start, the slow sink stalls; StallFor how
	// long it stays stalled (0: it never does).
	StallAt, StallFor time.Duration
	// SlowQueue is the capacity of the slow sink's queue, in packets.
	SlowQueue int
	// StatsEvery is how often the stats are printed.
	StatsEvery time.Duration
	// DOTFile, if not empty, receives the graph in DOT at the end.
	DOTFile string
}

func defaultOptions() options {
	return options{
		Duration:   5 * time.Second,
		Sinks:      3,
		Rate:       30,
		StallAt:    time.Second,
		StallFor:   2 * time.Second,
		SlowQueue:  32,
		StatsEvery: time.Second,
	}
}

func main() {
	o := defaultOptions()
	flag.DurationVar(&o.Duration, "duration", o.Duration, "how much video the source sends before it ends")
	flag.IntVar(&o.Sinks, "sinks", o.Sinks, "number of sinks; the last one stalls")
	flag.Float64Var(&o.Rate, "fps", o.Rate, "frames per second of the source")
	flag.DurationVar(&o.StallAt, "stall-at", o.StallAt, "when the slow sink stalls")
	flag.DurationVar(&o.StallFor, "stall", o.StallFor, "how long the slow sink stalls (0: no slow sink)")
	flag.IntVar(&o.SlowQueue, "slow-queue", o.SlowQueue, "queue size of the slow sink, in packets")
	flag.StringVar(&o.DOTFile, "dot", "", "write the graph in Graphviz DOT to this `file`")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

// vp8 are the caps the camera announces.
var vp8 = element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/VP8", ClockRate: 90000}

// run builds the graph, runs it until the source's end of stream has
// reached every sink (or ctx ends), prints what happened to w, and closes
// the pipeline. It returns an error if the pipeline reported one.
func run(ctx context.Context, w io.Writer, o options) error {
	if o.Sinks < 1 {
		return fmt.Errorf("-sinks %d: need at least one sink", o.Sinks)
	}
	if o.Rate <= 0 || o.Duration <= 0 {
		return fmt.Errorf("-fps %v, -duration %v: both must be positive", o.Rate, o.Duration)
	}
	if o.StatsEvery <= 0 {
		o.StatsEvery = time.Second
	}
	out := &syncWriter{w: w}
	start := time.Now()
	since := func(t time.Time) string { return fmt.Sprintf("%6.3fs", t.Sub(start).Seconds()) }

	p, err := pipeline.New(pipeline.WithName("fanout"))
	if err != nil {
		return err
	}
	// Subscribe first, so that the ElementConnected messages are seen too.
	bus := p.Subscribe(0)
	var busErrors atomic.Int64
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for m := range bus.Messages(context.Background()) { // ends when the pipeline closes
			if _, ok := m.(*element.Error); ok {
				busErrors.Add(1)
			}
			out.printf("%s  bus   %s\n", since(m.Origin().Time), describe(m))
		}
	}()
	unstall := make(chan struct{}) // closed before Close, so that a stalled sink lets go
	var unstallOnce sync.Once
	shutdown := func() error {
		unstallOnce.Do(func() { close(unstall) })
		err := p.Close()
		<-printed
		return err
	}
	defer shutdown()

	frames := max(1, int(o.Duration.Seconds()*o.Rate))
	camera := elementtest.NewSource("camera", elementtest.SourceConfig{Caps: vp8, Rate: o.Rate, Frames: frames})

	var remaining atomic.Int64 // sinks still waiting for end of stream
	remaining.Store(int64(o.Sinks))
	allEOS := make(chan struct{})
	sinks := make([]*sink, o.Sinks)
	for i := range sinks {
		s := &sink{name: "viewer" + strconv.Itoa(i+1)}
		var opts []element.AppSinkOption
		if i == o.Sinks-1 && o.StallFor > 0 {
			s.name, s.slow = "slow", true
			opts = append(opts, element.WithSinkQueue(o.SlowQueue, element.Live))
		}
		opts = append(opts,
			element.WithBufferFunc(func(b *element.Buffer) {
				s.buffer(b, out, since)
				if s.slow && !s.stalled && time.Since(start) >= o.StallAt {
					s.stalled = true
					out.printf("%s  %-7s stalls for %v (its queue holds %d packets)\n", since(time.Now()), s.name, o.StallFor, o.SlowQueue)
					t := time.NewTimer(o.StallFor)
					select {
					case <-t.C:
					case <-unstall:
					}
					t.Stop()
					out.printf("%s  %-7s unblocked\n", since(time.Now()), s.name)
				}
			}),
			element.WithEventFunc(func(ev element.Event) {
				s.event(ev, out, since)
				if _, ok := ev.(element.EOSEvent); ok && remaining.Add(-1) == 0 {
					close(allEOS)
				}
			}))
		s.el = element.NewAppSink(s.name, element.CapsList{element.AnyVideo}, opts...)
		sinks[i] = s
	}

	if err := p.Add(camera); err != nil {
		return err
	}
	for _, s := range sinks {
		if err := p.Add(s.el); err != nil {
			return err
		}
		if err := p.Connect(camera, s.el, element.KindVideo); err != nil {
			return err
		}
	}
	out.printf("fanout: camera (%v, %v fps, %d frames) -> %d sinks", vp8, o.Rate, frames, o.Sinks)
	if o.StallFor > 0 {
		out.printf("; %q stalls %v at %v", "slow", o.StallFor, o.StallAt)
	}
	out.printf("\n")
	if err := p.Start(ctx); err != nil {
		return err
	}

	ticker := time.NewTicker(o.StatsEvery)
	defer ticker.Stop()
	// The source ends by itself; the deadline only guards against a sink
	// that never sees the end of stream.
	deadline := time.NewTimer(o.Duration + o.StallAt + o.StallFor + 5*time.Second)
	defer deadline.Stop()
	var ended error
wait:
	for {
		select {
		case <-allEOS:
			break wait
		case <-ctx.Done():
			ended = context.Cause(ctx)
			break wait
		case <-deadline.C:
			ended = errors.New("timed out waiting for the end of stream")
			break wait
		case now := <-ticker.C:
			out.write(statsTable("stats at "+since(now), p.Stats()))
		}
	}

	out.write(statsTable("final stats", p.Stats()))
	out.write(summary(camera, sinks, p.Stats()))
	dot := p.DOT()
	out.printf("graph (render with: dot -Tsvg):\n%s", dot)
	if o.DOTFile != "" {
		if err := os.WriteFile(o.DOTFile, []byte(dot), 0o644); err != nil {
			return err
		}
		out.printf("graph written to %s\n", o.DOTFile)
	}

	if err := shutdown(); err != nil {
		return err
	}
	if n := bus.Dropped(); n > 0 {
		out.printf("(the bus dropped %d messages for this slow reader)\n", n)
	}
	switch {
	case ended != nil:
		return ended
	case busErrors.Load() > 0:
		return fmt.Errorf("the pipeline reported %d errors", busErrors.Load())
	}
	return nil
}

// sink is one AppSink and what the program counts of it. Its buffer and
// event functions run on the sink pad's goroutine, one at a time; the fields
// the summary reads are atomic.
type sink struct {
	name string
	el   *element.AppSink
	slow bool

	packets, keyframes atomic.Uint64
	// resumedKey and resumedOther count the buffers that came first after a
	// gap, keyframes or not.
	resumedKey, resumedOther atomic.Uint64

	// Touched on the sink's goroutine only.
	stalled, afterGap bool
}

func (s *sink) buffer(b *element.Buffer, out *syncWriter, since func(time.Time) string) {
	s.packets.Add(1)
	if b.Keyframe() {
		s.keyframes.Add(1)
	}
	if s.afterGap {
		s.afterGap = false
		what := "a keyframe"
		if b.Keyframe() {
			s.resumedKey.Add(1)
		} else {
			s.resumedOther.Add(1)
			what = "NOT a keyframe"
		}
		out.printf("%s  %-7s resumes with %s (RTP seq %d)\n", since(time.Now()), s.name, what, b.RTP.SequenceNumber)
	}
}

func (s *sink) event(ev element.Event, out *syncWriter, since func(time.Time) string) {
	switch e := ev.(type) {
	case element.DiscontEvent:
		s.afterGap = true
		out.printf("%s  %-7s event %s: its queue dropped %d packets before the next one\n", since(time.Now()), s.name, e.EventName(), e.Dropped)
	case element.CapsEvent:
		out.printf("%s  %-7s event %s\n", since(time.Now()), s.name, e)
	default:
		out.printf("%s  %-7s event %s\n", since(time.Now()), s.name, ev.EventName())
	}
}

// describe renders a bus message on one line.
func describe(m element.Message) string {
	switch m := m.(type) {
	case *element.ElementConnected:
		return fmt.Sprintf("ElementConnected         %s -> %s (%s)", m.Source, m.Sink, m.Kind)
	case *element.ElementDisconnected:
		return fmt.Sprintf("ElementDisconnected      %s -> %s (%s)", m.Source, m.Sink, m.Kind)
	case *element.MediaFlowOutStateChanged:
		return fmt.Sprintf("MediaFlowOutStateChanged %s %s %s", m.Pad, m.Kind, m.State)
	case *element.MediaFlowInStateChanged:
		return fmt.Sprintf("MediaFlowInStateChanged  %s %s %s", m.Pad, m.Kind, m.State)
	case *element.TranscodingStateChanged:
		return fmt.Sprintf("TranscodingStateChanged  %s -> %s %s %v", m.Source, m.Sink, m.State, m.Chain)
	case *element.EndOfStream:
		return fmt.Sprintf("EndOfStream              %s", m.Pad)
	case *element.Error:
		return fmt.Sprintf("Error                    %s %s: %v", m.Element, m.Pad, m.Err)
	case *element.Warning:
		return fmt.Sprintf("Warning                  %s %s: %s", m.Element, m.Pad, m.Text)
	}
	return fmt.Sprintf("%T from %s", m, m.Origin().Element)
}

// statsTable renders the per-element counters.
func statsTable(title string, st pipeline.Stats) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "-- %s\n", title)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "element\tpackets in\tpackets out\tbytes\tqueued\tdrops\tkeyframe requests\t")
	for _, e := range st.Elements {
		queued := 0
		for _, ps := range e.Pads {
			queued += ps.Queued
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", e.Name, e.PacketsIn, e.PacketsOut, e.BytesIn+e.BytesOut, queued, e.Drops, e.KeyframeRequests)
	}
	tw.Flush()
	return b.Bytes()
}

// summary says, per sink, what reached it of what the camera sent.
func summary(camera *elementtest.Source, sinks []*sink, st pipeline.Stats) []byte {
	var b bytes.Buffer
	sent := uint64(camera.Packets())
	var merged uint64
	if e, ok := st.Element("camera"); ok {
		if ps, ok := e.Pad("src"); ok {
			merged = ps.KeyframeRequestsMerged
		}
	}
	fmt.Fprintf(&b, "summary:\n  camera: sent %d frames in %d packets; %d keyframe requests reached it, %d more were merged into those\n",
		camera.Frames(), sent, camera.KeyframeRequests(), merged)
	for _, s := range sinks {
		got := s.packets.Load()
		fmt.Fprintf(&b, "  %s: received %d of %d packets, %d lost, %d keyframes", s.name, got, sent, sent-min(got, sent), s.keyframes.Load())
		if e, ok := st.Element(s.name); ok && (e.Drops > 0 || e.KeyframeRequests > 0) {
			fmt.Fprintf(&b, "; its queue dropped %d and asked for %s", e.Drops, plural(e.KeyframeRequests, "keyframe"))
		}
		if n := s.resumedKey.Load(); n > 0 {
			fmt.Fprintf(&b, "; resumed from a keyframe after %s", plural(n, "gap"))
		}
		if n := s.resumedOther.Load(); n > 0 {
			fmt.Fprintf(&b, "; resumed WITHOUT a keyframe after %s", plural(n, "gap"))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// plural renders "1 gap", "2 gaps".
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatUint(n, 10) + " " + noun + "s"
}

// syncWriter serializes writes from the program's goroutines, one message
// per Write.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) write(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.w.Write(p)
}

func (s *syncWriter) printf(format string, args ...any) {
	s.write(fmt.Appendf(nil, format, args...))
}
