package elementtest

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/medley-go/medley/element"
)

// Received is what a Sink records of one buffer.
type Received struct {
	// Frame, Packet and Packets come from a Source's synthetic payload
	// header (zero for other payloads).
	Frame           uint32
	Packet, Packets uint16
	// Seq and Timestamp are the RTP header's (for RTP buffers).
	Seq       uint16
	Timestamp uint32
	PTS       time.Duration
	Flags     element.Flags
	Size      int
	// At is when the sink's ChainFunc saw the buffer.
	At time.Time
}

// Keyframe reports whether the buffer was flagged a keyframe.
func (r Received) Keyframe() bool { return r.Flags&element.FlagKeyframe != 0 }

// Sink is a collecting sink: it records every buffer (as Received) and
// downstream event it gets, and every upstream event it sends. Block makes
// it stall, to test what a stuck consumer does to the rest of a graph.
type Sink struct {
	element.Base
	sink *element.Pad

	mu       sync.Mutex
	cond     *sync.Cond
	got      []Received
	events   []element.Event
	upstream []element.Event
	blocked  chan struct{} // closed when not blocked
	stopped  chan struct{}
	stopOnce sync.Once
	keep     bool
	bufs     []*element.Buffer
}

// SinkOption configures a Sink.
type SinkOption func(*sinkConfig)

type sinkConfig struct {
	queueSize int
	policy    element.QueuePolicy
	inline    bool
	keep      bool
}

// WithQueue sets the sink pad's queue.
func WithQueue(size int, policy element.QueuePolicy) SinkOption {
	return func(c *sinkConfig) { c.queueSize, c.policy = size, policy }
}

// WithInline makes the sink pad inline (no queue).
func WithInline() SinkOption { return func(c *sinkConfig) { c.inline = true } }

// WithKeep makes the sink keep a reference to every buffer (Buffers), for
// tests that check payloads; Close releases them.
func WithKeep() SinkOption { return func(c *sinkConfig) { c.keep = true } }

// NewSink returns a sink accepting caps (templates of one kind).
func NewSink(name string, caps element.CapsList, opts ...SinkOption) *Sink {
	var cfg sinkConfig
	for _, o := range opts {
		o(&cfg)
	}
	s := &Sink{Base: element.NewBase(name), blocked: make(chan struct{}), stopped: make(chan struct{}), keep: cfg.keep}
	close(s.blocked)
	s.cond = sync.NewCond(&s.mu)
	popts := []element.PadOption{element.WithEventHandler(s.event)}
	if cfg.inline {
		popts = append(popts, element.Inline())
	} else {
		popts = append(popts, element.WithQueue(cfg.queueSize, cfg.policy))
	}
	s.sink = element.NewSinkPad("sink", caps, s.chain, popts...)
	s.AddPad(s.sink)
	return s
}

// SinkPad returns the input pad.
func (s *Sink) SinkPad() *element.Pad { return s.sink }

func (s *Sink) chain(b *element.Buffer) error {
	s.mu.Lock()
	gate := s.blocked
	s.mu.Unlock()
	select {
	case <-gate:
	case <-s.stopped:
	}
	r := Received{Seq: b.RTP.SequenceNumber, Timestamp: b.RTP.Timestamp, PTS: b.PTS, Flags: b.Flags, Size: len(b.Data), At: time.Now()}
	if len(b.Data) >= headerSize {
		r.Frame = binary.BigEndian.Uint32(b.Data[0:])
		r.Packet = binary.BigEndian.Uint16(b.Data[4:])
		r.Packets = binary.BigEndian.Uint16(b.Data[6:])
	}
	s.mu.Lock()
	s.got = append(s.got, r)
	if s.keep {
		s.bufs = append(s.bufs, b.Ref())
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	return nil
}

func (s *Sink) event(ev element.Event) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.cond.Broadcast()
	s.mu.Unlock()
}

// Run only waits for the pipeline to stop, and then unblocks the sink.
func (s *Sink) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-s.stopped:
	}
	s.stopOnce.Do(func() { close(s.stopped) })
	s.mu.Lock()
	s.cond.Broadcast()
	s.mu.Unlock()
	return nil
}

// Block makes the sink's ChainFunc wait until Unblock (or the pipeline
// stops) before recording each buffer.
func (s *Sink) Block() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.blocked:
		s.blocked = make(chan struct{})
	default:
	}
}

// Unblock lets the sink go on.
func (s *Sink) Unblock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.blocked:
	default:
		close(s.blocked)
	}
}

// Received returns a copy of what the sink recorded.
func (s *Sink) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.got...)
}

// Count returns how many buffers the sink recorded.
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// Buffers returns the buffers kept (WithKeep). They stay valid until Close.
func (s *Sink) Buffers() []*element.Buffer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*element.Buffer(nil), s.bufs...)
}

// Events returns the downstream events the sink received, in order.
func (s *Sink) Events() []element.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]element.Event(nil), s.events...)
}

// UpstreamSent returns the upstream events the sink sent, in order.
func (s *Sink) UpstreamSent() []element.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]element.Event(nil), s.upstream...)
}

// SendUpstream sends ev to the source and records it.
func (s *Sink) SendUpstream(ev element.Event) bool {
	s.mu.Lock()
	s.upstream = append(s.upstream, ev)
	s.mu.Unlock()
	return s.sink.SendUpstream(ev)
}

// RequestKeyframe sends a KeyframeRequest upstream.
func (s *Sink) RequestKeyframe() bool { return s.SendUpstream(element.KeyframeRequest{}) }

// SendBitrateHint sends a BitrateHint upstream.
func (s *Sink) SendBitrateHint(bps int64) bool {
	return s.SendUpstream(element.BitrateHint{BitsPerSecond: bps})
}

// WaitCount waits until the sink has recorded at least n buffers, or ctx
// ends.
func (s *Sink) WaitCount(ctx context.Context, n int) error {
	return s.wait(ctx, func() bool { return len(s.got) >= n }, func() string {
		return fmt.Sprintf("sink %s: %d of %d buffers", s.Name(), len(s.got), n)
	})
}

// WaitEvent waits until the sink has received a downstream event for which
// match is true, and returns it.
func (s *Sink) WaitEvent(ctx context.Context, match func(element.Event) bool) (element.Event, error) {
	var found element.Event
	err := s.wait(ctx, func() bool {
		for _, ev := range s.events {
			if match(ev) {
				found = ev
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("sink %s: event not received (%d events)", s.Name(), len(s.events)) })
	return found, err
}

// wait waits, under s.mu, until cond is true or ctx ends.
func (s *Sink) wait(ctx context.Context, cond func() bool, what func() string) error {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for !cond() {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what(), ctx.Err())
		}
		s.cond.Wait()
	}
	return nil
}

// Close releases kept buffers.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bufs {
		b.Unref()
	}
	s.bufs = nil
	return nil
}
