package element

import (
	"fmt"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// AppSource lets Go code push media into a pipeline: RTP packets, encoded
// samples, raw frames or messages, as its caps say. It has one src pad,
// "src". Upstream events (keyframe requests, bitrate hints) reach the
// function given with WithUpstream, already merged.
//
// The Push methods may be called from any one goroutine at a time, before
// or after the pipeline starts.
type AppSource struct {
	Base
	src  *Pad
	mu   sync.Mutex
	pool *BufferPool
}

// AppSourceOption configures an AppSource.
type AppSourceOption func(*appSourceConfig)

type appSourceConfig struct {
	upstream   EventFunc
	kfInterval time.Duration
}

// WithUpstream sets the function that receives the upstream events
// (KeyframeRequest, BitrateHint, ...) sent to the source. It runs on the
// goroutine of the sink that sent the event and must not block.
func WithUpstream(fn EventFunc) AppSourceOption {
	return func(c *appSourceConfig) { c.upstream = fn }
}

// WithSourceKeyframeInterval sets the src pad's keyframe request interval
// (DefaultKeyframeInterval).
func WithSourceKeyframeInterval(d time.Duration) AppSourceOption {
	return func(c *appSourceConfig) { c.kfInterval = d }
}

// NewAppSource returns a source whose src pad offers caps (templates of one
// kind). If caps[0] is fixed it is announced at once; otherwise call SetCaps
// before the first push.
func NewAppSource(name string, caps CapsList, opts ...AppSourceOption) *AppSource {
	cfg := appSourceConfig{kfInterval: DefaultKeyframeInterval}
	for _, o := range opts {
		o(&cfg)
	}
	s := &AppSource{Base: NewBase(name), pool: NewBufferPool(1500)}
	s.src = NewSrcPad("src", caps, WithEventHandler(func(ev Event) {
		if cfg.upstream != nil {
			cfg.upstream(ev)
		}
	}), WithKeyframeInterval(cfg.kfInterval))
	s.AddPad(s.src)
	if len(caps) > 0 && caps[0].IsFixed() {
		_ = s.src.SetCaps(caps[0])
	}
	return s
}

// SrcPad returns the output pad.
func (s *AppSource) SrcPad() *Pad { return s.src }

// SetCaps announces the caps of what follows.
func (s *AppSource) SetCaps(c Caps) error { return s.src.SetCaps(c) }

// Push sends b downstream. The caller keeps its reference: Unref a pooled
// buffer after Push; never modify b once pushed.
func (s *AppSource) Push(b *Buffer) {
	s.src.Push(b)
}

// PushRTP copies pkt into a pooled buffer and sends it, marking it a
// keyframe start if keyframe is true. pkt may be reused once PushRTP returns.
func (s *AppSource) PushRTP(pkt *rtp.Packet, keyframe bool) {
	b := s.pool.Get()
	b.SetRTPHeader(&pkt.Header)
	b.Data = append(b.Data, pkt.Payload...)
	if keyframe {
		b.Flags |= FlagKeyframe
	}
	if pkt.Marker {
		b.Flags |= FlagEndOfFrame
	}
	s.src.Push(b)
	b.Unref()
}

// PushSample copies data (an encoded access unit, or a message) into a
// pooled buffer and sends it with the given times and flags. data may be
// reused once PushSample returns.
func (s *AppSource) PushSample(data []byte, pts, duration time.Duration, flags Flags) {
	b := s.pool.Get()
	b.Data = append(b.Data, data...)
	b.PTS, b.Duration, b.Flags = pts, duration, flags
	s.src.Push(b)
	b.Unref()
}

// PushFrame sends a raw frame (FormatRaw) in a garbage-collected buffer.
// The frame's type is the one the src pad's caps imply (see package codec);
// it must not be modified once pushed.
func (s *AppSource) PushFrame(frame any, pts, duration time.Duration, flags Flags) {
	s.src.Push(&Buffer{Frame: frame, PTS: pts, Duration: duration, Flags: flags})
}

// EndOfStream tells the sinks no more buffers follow (and posts
// EndOfStream on the bus).
func (s *AppSource) EndOfStream() error {
	if err := s.src.PushEvent(EOSEvent{}); err != nil {
		return fmt.Errorf("appsrc %s: %w", s.Name(), err)
	}
	return nil
}
