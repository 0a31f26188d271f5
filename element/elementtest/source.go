package elementtest

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/medley-go/medley/element"
)

// headerSize is the synthetic header at the start of every payload: frame
// index (4 bytes, big endian), packet index within the frame (2 bytes),
// packets in the frame (2 bytes).
const headerSize = 8

// Source is a synthetic media source: each frame it emits is one encoded
// sample (FormatSample) or a run of RTP packets of at most MTU payload bytes
// (FormatRTP), at Rate frames per second, with a keyframe every
// KeyframeEvery frames, at the start, and after a KeyframeRequest.
type Source struct {
	element.Base
	src  *element.Pad
	cfg  SourceConfig
	pool *element.BufferPool

	mu       sync.Mutex // guards emission state
	frame    uint32
	seq      uint16
	forceKey atomic.Bool

	frames, packets atomic.Uint64
	kfRequests      atomic.Uint64
	hints           []int64
	hintMu          sync.Mutex
}

// SourceConfig sets what a Source emits. Zero fields take the defaults
// given.
type SourceConfig struct {
	// Caps are the fixed caps announced; FormatRTP or FormatSample.
	Caps element.Caps
	// Rate is frames per second (default 30 for video, 50 for audio).
	// A negative rate means as fast as possible.
	Rate float64
	// FrameSize is the encoded frame size in bytes (default 3000 for
	// video, 160 for audio).
	FrameSize int
	// MTU bounds an RTP packet's payload (default 1200).
	MTU int
	// KeyframeEvery makes every n-th frame a keyframe; 0 means only the first
	// frame and requested ones.
	KeyframeEvery int
	// Frames stops the source after that many frames (0: until stopped).
	Frames int
	// SSRC and PayloadType go in RTP headers (defaults 0x1234, 96).
	SSRC        uint32
	PayloadType uint8
	// KeyframeRequestInterval is the src pad's merge interval for keyframe
	// requests (element.DefaultKeyframeInterval).
	KeyframeRequestInterval time.Duration
	// Manual makes Run emit nothing: the test calls Emit.
	Manual bool
}

// NewSource returns a source named name emitting as cfg says.
func NewSource(name string, cfg SourceConfig) *Source {
	if cfg.Rate == 0 {
		cfg.Rate = 30
		if cfg.Caps.Kind == element.KindAudio {
			cfg.Rate = 50
		}
	}
	if cfg.FrameSize == 0 {
		cfg.FrameSize = 3000
		if cfg.Caps.Kind == element.KindAudio {
			cfg.FrameSize = 160
		}
	}
	cfg.FrameSize = max(cfg.FrameSize, headerSize)
	if cfg.MTU == 0 {
		cfg.MTU = 1200
	}
	cfg.MTU = max(cfg.MTU, headerSize+1)
	if cfg.SSRC == 0 {
		cfg.SSRC = 0x1234
	}
	if cfg.PayloadType == 0 {
		cfg.PayloadType = 96
	}
	if cfg.KeyframeRequestInterval == 0 {
		cfg.KeyframeRequestInterval = element.DefaultKeyframeInterval
	}
	s := &Source{Base: element.NewBase(name), cfg: cfg, pool: element.NewBufferPool(cfg.MTU + 64)}
	s.src = element.NewSrcPad("src", element.CapsList{cfg.Caps},
		element.WithEventHandler(s.upstream),
		element.WithKeyframeInterval(cfg.KeyframeRequestInterval))
	s.AddPad(s.src)
	if err := s.src.SetCaps(cfg.Caps); err != nil {
		panic("elementtest: NewSource: " + err.Error())
	}
	s.forceKey.Store(true)
	return s
}

// SrcPad returns the output pad.
func (s *Source) SrcPad() *element.Pad { return s.src }

func (s *Source) upstream(ev element.Event) {
	switch e := ev.(type) {
	case element.KeyframeRequest:
		s.kfRequests.Add(1)
		s.forceKey.Store(true)
	case element.BitrateHint:
		s.hintMu.Lock()
		s.hints = append(s.hints, e.BitsPerSecond)
		s.hintMu.Unlock()
	}
}

// Run emits frames at the configured rate until ctx ends or Frames are out,
// then pushes EOS if Frames was set.
func (s *Source) Run(ctx context.Context) error {
	if s.cfg.Manual {
		<-ctx.Done()
		return nil
	}
	if s.cfg.Rate < 0 {
		for s.cfg.Frames == 0 || int(s.frames.Load()) < s.cfg.Frames {
			if ctx.Err() != nil {
				return nil
			}
			s.Emit(1)
		}
		return s.src.PushEvent(element.EOSEvent{})
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / s.cfg.Rate))
	defer t.Stop()
	for {
		if s.cfg.Frames > 0 && int(s.frames.Load()) >= s.cfg.Frames {
			return s.src.PushEvent(element.EOSEvent{})
		}
		s.Emit(1)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Emit pushes n frames now, on the caller's goroutine.
func (s *Source) Emit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.emitFrame()
	}
}

func (s *Source) emitFrame() {
	f := s.frame
	s.frame++
	key := s.forceKey.Swap(false) || (s.cfg.KeyframeEvery > 0 && int(f)%s.cfg.KeyframeEvery == 0)
	frameDur := time.Duration(float64(time.Second) / max(s.cfg.Rate, 1))
	pts := time.Duration(f) * frameDur
	size := s.cfg.FrameSize
	if s.cfg.Caps.Format != element.FormatRTP {
		b := s.pool.Get()
		b.Data = fill(b.Data, size, f, 0, 1)
		b.PTS, b.Duration = pts, frameDur
		if key {
			b.Flags |= element.FlagKeyframe
		}
		s.src.Push(b)
		b.Unref()
		s.packets.Add(1)
		s.frames.Add(1)
		return
	}
	per := s.cfg.MTU
	n := (size + per - 1) / per
	rate := s.cfg.Caps.ClockRate
	if rate == 0 {
		rate = 90000
	}
	ts := uint32(uint64(f) * uint64(rate) / uint64(max(s.cfg.Rate, 1)))
	for i := range n {
		plen := min(per, size-i*per)
		b := s.pool.Get()
		b.RTP = rtp.Header{Version: 2, PayloadType: s.cfg.PayloadType, SequenceNumber: s.seq, Timestamp: ts, SSRC: s.cfg.SSRC, Marker: i == n-1}
		s.seq++
		b.Data = fill(b.Data, max(plen, headerSize), f, i, n)
		b.PTS, b.Duration = pts, frameDur
		if key && i == 0 {
			b.Flags |= element.FlagKeyframe
		}
		if i == n-1 {
			b.Flags |= element.FlagEndOfFrame
		}
		s.src.Push(b)
		b.Unref()
		s.packets.Add(1)
	}
	s.frames.Add(1)
}

// fill makes data size bytes long and writes the synthetic header.
func fill(data []byte, size int, frame uint32, pkt, pkts int) []byte {
	if cap(data) < size {
		data = make([]byte, size)
	}
	data = data[:size]
	binary.BigEndian.PutUint32(data[0:], frame)
	binary.BigEndian.PutUint16(data[4:], uint16(pkt))
	binary.BigEndian.PutUint16(data[6:], uint16(pkts))
	return data
}

// Frames returns how many frames were emitted.
func (s *Source) Frames() int { return int(s.frames.Load()) }

// Packets returns how many buffers were pushed.
func (s *Source) Packets() int { return int(s.packets.Load()) }

// KeyframeRequests returns how many keyframe requests reached the source
// (after the src pad merged them).
func (s *Source) KeyframeRequests() int { return int(s.kfRequests.Load()) }

// BitrateHints returns the bitrate hints that reached the source, in order.
func (s *Source) BitrateHints() []int64 {
	s.hintMu.Lock()
	defer s.hintMu.Unlock()
	return append([]int64(nil), s.hints...)
}
