package element

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// Flags mark properties of a buffer.
type Flags uint32

// The buffer flags.
const (
	// FlagKeyframe marks a buffer a decoder can start from: a keyframe
	// sample, or the first RTP packet of a keyframe.
	FlagKeyframe Flags = 1 << iota
	// FlagDiscont marks the first buffer after a gap (loss or drops).
	FlagDiscont
	// FlagEndOfFrame marks the last RTP packet of a frame (the RTP marker
	// bit for video).
	FlagEndOfFrame
)

// Buffer is one unit of media: an RTP packet, an encoded sample, a raw frame
// or a data message, as the caps of the pad it travels on say.
//
// Ownership: once pushed, a buffer is read-only for everybody, its payload
// too, because fan-out hands the same buffer to every sink. A sink that must
// modify it copies first (Clone). A ChainFunc may use the buffer only until
// it returns, unless it calls Ref, and then Unref when done.
//
// Memory: a buffer made with new(Buffer) or a literal is owned by the Go
// garbage collector, and Ref and Unref cost nothing. A buffer from a
// BufferPool (or NewBuffer with a release function) is reference counted and
// recycled when its last reference is dropped; the one who got it holds the
// first reference and drops it with Unref after Push.
type Buffer struct {
	// RTP is the packet header when the format is FormatRTP; Data holds the
	// payload.
	RTP rtp.Header
	// Data is the payload: RTP payload, encoded access unit, message bytes.
	Data []byte
	// Frame holds decoded media (FormatRaw); its type belongs to the
	// element that made it.
	Frame any
	// PTS is the presentation time on the pipeline's clock, Duration the
	// time the buffer covers.
	PTS, Duration time.Duration
	// Flags mark keyframes, discontinuities, frame ends.
	Flags Flags

	refs    atomic.Int32
	release func(*Buffer)
	// ext holds the RTP header extension payloads SetRTPHeader copies.
	ext []byte
}

// SetRTPHeader copies h into b.RTP, reusing b's memory for the CSRC list and
// the header extensions, so that a pooled buffer allocates nothing in
// steady state. h is not retained.
func (b *Buffer) SetRTPHeader(h *rtp.Header) {
	csrc, exts := b.RTP.CSRC[:0], b.RTP.Extensions[:0]
	if len(h.CSRC) == 0 && len(h.Extensions) == 0 {
		b.RTP = *h
		b.RTP.CSRC, b.RTP.Extensions = csrc, exts
		return
	}
	// pion's Extension has unexported fields: copy through the wire form,
	// whose Unmarshal reuses the slices and aliases b.ext.
	n := h.MarshalSize()
	if cap(b.ext) < n {
		b.ext = make([]byte, n)
	}
	b.ext = b.ext[:n]
	b.RTP.CSRC, b.RTP.Extensions = csrc, exts
	if _, err := h.MarshalTo(b.ext); err == nil {
		if _, err := b.RTP.Unmarshal(b.ext); err == nil {
			return
		}
	}
	b.RTP = h.Clone()
}

// NewBuffer returns a reference-counted buffer holding one reference. When
// the last reference is dropped, release is called with it (to recycle it
// or free what Frame holds). A nil release makes a plain, garbage-collected
// buffer.
func NewBuffer(release func(*Buffer)) *Buffer {
	b := &Buffer{release: release}
	b.refs.Store(1)
	return b
}

// Keyframe reports whether FlagKeyframe is set.
func (b *Buffer) Keyframe() bool { return b.Flags&FlagKeyframe != 0 }

// Ref adds a reference to a counted buffer and returns it.
func (b *Buffer) Ref() *Buffer {
	if b.release != nil {
		b.refs.Add(1)
	}
	return b
}

// ref adds n references at once (fan-out).
func (b *Buffer) ref(n int32) {
	if b.release != nil {
		b.refs.Add(n)
	}
}

// Unref drops a reference; the last one releases the buffer, after which it
// must not be touched.
func (b *Buffer) Unref() {
	if b.release == nil {
		return
	}
	switch n := b.refs.Add(-1); {
	case n == 0:
		b.release(b)
	case n < 0:
		panic("element: Buffer.Unref of a released buffer")
	}
}

// Clone returns a garbage-collected deep copy of b's header, flags, times
// and payload, which the caller may modify. Frame is shared, not copied.
func (b *Buffer) Clone() *Buffer {
	c := &Buffer{
		RTP:      b.RTP.Clone(),
		Data:     append([]byte(nil), b.Data...),
		Frame:    b.Frame,
		PTS:      b.PTS,
		Duration: b.Duration,
		Flags:    b.Flags,
	}
	return c
}

// BufferPool recycles reference-counted buffers and their payload memory, so
// that a source allocates nothing per packet in steady state. Buffers come
// back from the goroutines of the sinks that drop the last reference, so the
// pool is a plain locked free list (sync.Pool's per-P caches would make every
// Get steal from another P): at most maxFree buffers wait in it, more are
// left to the garbage collector.
type BufferPool struct {
	mu   sync.Mutex
	free []*Buffer
	size int
}

// maxFree bounds the buffers a BufferPool keeps: a few seconds of packets
// at the highest rates a pool serves.
const maxFree = 4096

// NewBufferPool returns a pool whose buffers come with a Data slice of
// capacity size (grown as needed by the user).
func NewBufferPool(size int) *BufferPool {
	return &BufferPool{size: size}
}

// Get returns a buffer holding one reference, with Data empty (length 0)
// and every other field zero.
func (p *BufferPool) Get() *Buffer {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		p.mu.Unlock()
		b.refs.Store(1)
		return b
	}
	p.mu.Unlock()
	b := NewBuffer(p.put)
	b.Data = make([]byte, 0, p.size)
	return b
}

func (p *BufferPool) put(b *Buffer) {
	csrc, ext := b.RTP.CSRC[:0], b.RTP.Extensions[:0]
	b.RTP = rtp.Header{CSRC: csrc, Extensions: ext}
	b.Data = b.Data[:0]
	b.Frame = nil
	b.PTS, b.Duration, b.Flags = 0, 0, 0
	p.mu.Lock()
	if len(p.free) < maxFree {
		p.free = append(p.free, b)
	}
	p.mu.Unlock()
}
