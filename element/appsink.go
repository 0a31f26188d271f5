package element

import (
	"sync/atomic"
)

// AppSink hands what reaches it to Go code: to a callback, or through a
// bounded channel. It has one sink pad, "sink", with its own queue and
// goroutine (so a slow callback stalls nobody but itself; see QueuePolicy).
type AppSink struct {
	Base
	sink    *Pad
	fn      func(*Buffer)
	events  func(Event)
	c       chan *Buffer
	dropped atomic.Uint64
}

// AppSinkOption configures an AppSink.
type AppSinkOption func(*appSinkConfig)

type appSinkConfig struct {
	fn        func(*Buffer)
	events    func(Event)
	chanSize  int
	queueSize int
	policy    QueuePolicy
}

// WithBufferFunc makes the sink call fn with each buffer, on the sink's
// goroutine. The buffer is valid until fn returns; fn must Ref it to keep
// it (and Unref later).
func WithBufferFunc(fn func(*Buffer)) AppSinkOption {
	return func(c *appSinkConfig) { c.fn = fn }
}

// WithEventFunc makes the sink call fn with each downstream event (caps,
// EOS, discontinuities), in order with the buffers.
func WithEventFunc(fn func(Event)) AppSinkOption {
	return func(c *appSinkConfig) { c.events = fn }
}

// WithChannel makes the sink send each buffer on a channel of capacity
// size, read with C. Each buffer received holds a reference: call Unref when
// done with it. When the channel is full the buffer is dropped and counted
// (Dropped).
func WithChannel(size int) AppSinkOption {
	return func(c *appSinkConfig) { c.chanSize = size }
}

// WithSinkQueue sets the sink pad's queue size and policy.
func WithSinkQueue(size int, policy QueuePolicy) AppSinkOption {
	return func(c *appSinkConfig) { c.queueSize, c.policy = size, policy }
}

// NewAppSink returns a sink accepting caps (templates of one kind).
func NewAppSink(name string, caps CapsList, opts ...AppSinkOption) *AppSink {
	var cfg appSinkConfig
	for _, o := range opts {
		o(&cfg)
	}
	s := &AppSink{Base: NewBase(name), fn: cfg.fn, events: cfg.events}
	if cfg.chanSize > 0 {
		s.c = make(chan *Buffer, cfg.chanSize)
	}
	s.sink = NewSinkPad("sink", caps, s.chain,
		WithQueue(cfg.queueSize, cfg.policy),
		WithEventHandler(func(ev Event) {
			if s.events != nil {
				s.events(ev)
			}
		}))
	s.AddPad(s.sink)
	return s
}

func (s *AppSink) chain(b *Buffer) error {
	if s.fn != nil {
		s.fn(b)
	}
	if s.c != nil {
		select {
		case s.c <- b.Ref():
		default:
			b.Unref()
			s.dropped.Add(1)
		}
	}
	return nil
}

// SinkPad returns the input pad.
func (s *AppSink) SinkPad() *Pad { return s.sink }

// C returns the channel buffers arrive on (nil without WithChannel). It is
// never closed; watch the pipeline's Done.
func (s *AppSink) C() <-chan *Buffer { return s.c }

// Dropped returns how many buffers the channel had no room for.
func (s *AppSink) Dropped() uint64 { return s.dropped.Load() }

// RequestKeyframe asks the source upstream for a keyframe.
func (s *AppSink) RequestKeyframe() bool { return s.sink.RequestKeyframe() }

// SendBitrateHint tells the source upstream the most this sink can take.
func (s *AppSink) SendBitrateHint(bps int64) bool {
	return s.sink.SendUpstream(BitrateHint{BitsPerSecond: bps})
}

// Close releases the buffers left in the channel.
func (s *AppSink) Close() error {
	if s.c == nil {
		return nil
	}
	for {
		select {
		case b := <-s.c:
			b.Unref()
		default:
			return nil
		}
	}
}
