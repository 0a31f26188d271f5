package element

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// ChainFunc handles one buffer arriving at a sink pad. It runs on the pad's
// own goroutine (or, for an inline pad, on the pusher's), never on two
// goroutines at once for the same pad. The buffer is read-only and valid
// until the function returns (call Ref to keep it). A returned error is
// posted on the bus as an Error naming the pad; the stream goes on.
type ChainFunc func(b *Buffer) error

// EventFunc handles an event arriving at a pad: downstream events at a sink
// pad (on the same goroutine as its ChainFunc, in order with the buffers),
// upstream events at a src pad (on the goroutine of the sink that sent it,
// which may be the source's own goroutine, inside its Push, when a full
// queue asks for a keyframe: it must not block, nor take a lock held around
// Push).
type EventFunc func(ev Event)

// DefaultKeyframeInterval is how often, at most, a src pad passes keyframe
// requests to its element when the pad does not say otherwise.
const DefaultKeyframeInterval = 500 * time.Millisecond

// Pad is an element's input (Sink) or output (Src) of one media kind.
//
// A src pad announces its caps with SetCaps, then pushes buffers and
// downstream events to every sink pad linked to it (fan-out is built in),
// without copying and without allocating. A sink pad has at most one src pad
// at a time; unless it is inline, it sits behind a bounded queue drained by
// its own goroutine, so a slow sink never stalls its source or the other
// sinks.
type Pad struct {
	name      string
	dir       Direction
	kind      Kind
	templates atomic.Pointer[CapsList]
	owner     *baseState

	onEvent EventFunc
	caps    atomic.Pointer[Caps]

	// sink side
	chain    ChainFunc
	inline   bool
	inlineMu sync.Mutex
	// inlineClosed: Close ran; an inline pad delivers nothing more.
	inlineClosed bool
	q            *queue
	peer         atomic.Pointer[Pad]
	delivered    *Caps // last caps delivered to onEvent; the consumer's own
	running      atomic.Bool

	// src side
	linkMu     sync.Mutex
	links      atomic.Pointer[linkSet]
	kfInterval atomic.Int64
	lastKF     atomic.Int64
	hintMu     sync.Mutex // guards hints and hintMin, and orders their delivery
	hints      map[*Pad]int64
	hintMin    int64

	packets, bytes atomic.Uint64
	kfRequests     atomic.Uint64
	kfMerged       atomic.Uint64
}

// linkSet is the sinks of a src pad, replaced whole on Link and Unlink
// (copy on write), so that Push reads it without a lock.
type linkSet struct {
	sinks []*Pad
	// queued counts the sinks that are not inline: Push takes a buffer
	// reference for each of them. An inline sink borrows the pusher's.
	queued int32
}

// PadOption configures a pad at creation.
type PadOption func(*Pad)

// WithEventHandler sets the function that receives events at the pad: for
// a sink pad the downstream events (CapsEvent before the first buffer, EOS,
// discontinuities), for a src pad the upstream ones (keyframe requests,
// bitrate hints), already merged.
func WithEventHandler(fn EventFunc) PadOption { return func(p *Pad) { p.onEvent = fn } }

// WithQueue sets a sink pad's queue capacity (in buffers) and its policy when
// full. Without it the pad gets DefaultQueueSize and Live.
func WithQueue(size int, policy QueuePolicy) PadOption {
	return func(p *Pad) {
		if p.dir == Sink && !p.inline {
			p.q = newQueue(size, policy, p.kind == KindVideo)
			p.q.askInterval = p.peerKeyframeInterval
		}
	}
}

// Inline makes a sink pad call its ChainFunc on the pusher's goroutine, with
// no queue: for cheap elements (a depayloader, a pass-through) inside a
// branch that already has a queue upstream. An inline pad's element must be
// fast and must not block.
func Inline() PadOption {
	return func(p *Pad) {
		if p.dir == Sink {
			p.inline, p.q = true, nil
		}
	}
}

// WithKeyframeInterval sets how often, at most, a src pad passes keyframe
// requests on to its element; requests in between are merged into the one
// already passed.
func WithKeyframeInterval(d time.Duration) PadOption {
	return func(p *Pad) { p.kfInterval.Store(int64(d)) }
}

func newPad(name string, dir Direction, caps CapsList) *Pad {
	k := caps.Kind()
	if k == 0 || k&(k-1) != 0 {
		panic(fmt.Sprintf("element: pad %q needs caps of one kind, got %v", name, caps))
	}
	p := &Pad{name: name, dir: dir, kind: k}
	t := append(CapsList(nil), caps...)
	p.templates.Store(&t)
	p.kfInterval.Store(int64(DefaultKeyframeInterval))
	return p
}

// NewSrcPad returns an output pad that can produce the given caps (a
// template list, most preferred first, all of one kind).
func NewSrcPad(name string, caps CapsList, opts ...PadOption) *Pad {
	p := newPad(name, Src, caps)
	p.hints = make(map[*Pad]int64)
	for _, o := range opts {
		o(p)
	}
	return p
}

// NewSinkPad returns an input pad that accepts the given caps and hands each
// buffer to chain.
func NewSinkPad(name string, caps CapsList, chain ChainFunc, opts ...PadOption) *Pad {
	if chain == nil {
		panic("element: NewSinkPad " + name + " with a nil ChainFunc")
	}
	p := newPad(name, Sink, caps)
	p.chain = chain
	p.q = newQueue(DefaultQueueSize, Live, p.kind == KindVideo)
	p.q.askInterval = p.peerKeyframeInterval
	for _, o := range opts {
		o(p)
	}
	return p
}

// peerKeyframeInterval is the keyframe request interval of the src pad
// feeding a sink pad: how often its queue asks again while it waits.
func (p *Pad) peerKeyframeInterval() int64 {
	if src := p.peer.Load(); src != nil {
		return src.kfInterval.Load()
	}
	return int64(DefaultKeyframeInterval)
}

// Name returns the pad's name, unique within its element.
func (p *Pad) Name() string { return p.name }

// FullName returns "element.pad".
func (p *Pad) FullName() string {
	if p.owner == nil {
		return "?." + p.name
	}
	return p.owner.name + "." + p.name
}

// Element returns the name of the element the pad belongs to.
func (p *Pad) Element() string {
	if p.owner == nil {
		return ""
	}
	return p.owner.name
}

// Direction returns Src or Sink.
func (p *Pad) Direction() Direction { return p.dir }

// Kind returns the pad's media kind.
func (p *Pad) Kind() Kind { return p.kind }

// Templates returns the caps the pad can produce or accept.
func (p *Pad) Templates() CapsList { return *p.templates.Load() }

// SetTemplates replaces the caps a pad can produce or accept, keeping its
// kind: a WebRTC endpoint narrows its sink pads to the codecs the peer
// accepted once negotiation is done. The pipeline renegotiates the pad's
// connections (inserting or removing converters) before SetTemplates
// returns. The list must not be modified afterwards.
func (p *Pad) SetTemplates(caps CapsList) error {
	if k := caps.Kind(); k != p.kind {
		return &LinkError{Src: p.FullName(), SrcCaps: p.Templates(), SinkCaps: caps, Reason: ErrIncompatibleCaps}
	}
	t := append(CapsList(nil), caps...)
	p.templates.Store(&t)
	if h, ok := p.host().(interface{ TemplatesChanged(*Pad) }); ok {
		h.TemplatesChanged(p)
	}
	return nil
}

// IsInline reports whether a sink pad runs its ChainFunc on the pusher's
// goroutine.
func (p *Pad) IsInline() bool { return p.inline }

// Caps returns the pad's fixed caps: for a src pad what it announced with
// SetCaps, for a sink pad what was last delivered to it. ok is false while
// they are not known.
func (p *Pad) Caps() (c Caps, ok bool) {
	if cp := p.caps.Load(); cp != nil {
		return *cp, true
	}
	return Caps{}, false
}

// Peer returns the src pad feeding a sink pad, or nil.
func (p *Pad) Peer() *Pad { return p.peer.Load() }

// Sinks returns the sink pads a src pad feeds. The slice must not be
// modified.
func (p *Pad) Sinks() []*Pad {
	if l := p.links.Load(); l != nil {
		return l.sinks
	}
	return nil
}

func (p *Pad) host() Host {
	if p.owner == nil {
		return nil
	}
	return p.owner.getHost()
}

func (p *Pad) post(m Message) {
	if h := p.host(); h != nil {
		h.Post(m)
	}
}

func (p *Pad) postError(err error) {
	p.post(&Error{MessageHeader: Header(p.Element()), Pad: p.FullName(), Err: err})
}

// SetCaps fixes the caps of the buffers a src pad pushes from now on. Every
// sink receives them as a CapsEvent before the next buffer, and the pipeline
// negotiates the pad's connections (inserting or removing converters) before
// SetCaps returns. Caps that do not fit the pad's templates are refused.
func (p *Pad) SetCaps(c Caps) error {
	if p.dir != Src {
		return fmt.Errorf("element: SetCaps on sink pad %s: %w", p.FullName(), ErrWrongDirection)
	}
	if !c.IsFixed() {
		return fmt.Errorf("element: SetCaps %s on %s: caps not fixed: %w", c, p.FullName(), ErrIncompatibleCaps)
	}
	if _, ok := p.Templates().Accepts(c); !ok {
		return &LinkError{Src: p.FullName(), SrcCaps: CapsList{c}, SinkCaps: p.Templates(), Reason: ErrIncompatibleCaps}
	}
	if old := p.caps.Load(); old != nil && *old == c {
		return nil
	}
	p.caps.Store(&c)
	if h, ok := p.host().(interface{ CapsChanged(*Pad) }); ok {
		h.CapsChanged(p)
	}
	return nil
}

// Push hands b to every sink pad linked to the src pad. It neither copies
// nor allocates; the sinks see the same, read-only buffer. The caller keeps
// its own reference (a pooled buffer is Unref'd by the caller after Push).
// Push never blocks unless a sink's queue has the Block policy. It is safe to
// call Push from one goroutine at a time per pad.
func (p *Pad) Push(b *Buffer) {
	p.packets.Add(1)
	p.bytes.Add(uint64(len(b.Data)))
	l := p.links.Load()
	if l == nil {
		return
	}
	caps := p.caps.Load()
	if l.queued > 0 {
		b.ref(l.queued)
	}
	for _, s := range l.sinks {
		if s.inline {
			s.chainInline(b, caps)
		} else {
			s.enqueue(b, caps)
		}
	}
}

// enqueue takes one reference of b into a queued sink pad.
func (p *Pad) enqueue(b *Buffer, caps *Caps) {
	switch p.q.push(b, caps) {
	case accepted:
		return
	case droppedAskKeyframe:
		p.SendUpstream(KeyframeRequest{})
	}
	b.Unref()
}

// chainInline hands a buffer to an inline sink pad's ChainFunc (after
// the caps, if they changed) on the pusher's goroutine, one pusher at a
// time, unless the pad is closed. The buffer is borrowed: the pusher holds
// a reference until Push returns, and a ChainFunc that keeps the buffer
// takes its own. It does what deliverInline and chainOne do, in one call
// with one deferred function, for the path every inline buffer takes.
func (p *Pad) chainInline(b *Buffer, caps *Caps) {
	p.inlineMu.Lock()
	returned := false
	defer func() {
		if !returned {
			if r := recover(); r != nil {
				p.postPanic(r)
			}
		}
		p.inlineMu.Unlock()
	}()
	if p.inlineClosed {
		returned = true
		return
	}
	p.count(1, len(b.Data))
	if caps != nil && caps != p.delivered {
		p.deliverCaps(caps)
	}
	err := p.chain(b)
	returned = true
	if err != nil {
		p.postError(err)
	}
}

// deliverInline runs an inline sink pad's event handler for an item
// without a buffer on the pusher's goroutine, one pusher at a time (and
// not during a chainInline), unless the pad is closed.
func (p *Pad) deliverInline(it item) {
	p.inlineMu.Lock()
	defer p.inlineMu.Unlock()
	if !p.inlineClosed {
		p.deliverBorrowed(it)
	}
}

// PushEvent sends a downstream event to every linked sink, in order with the
// buffers. A CapsEvent is the same as SetCaps; an EOSEvent is also posted on
// the bus as EndOfStream.
func (p *Pad) PushEvent(ev Event) error {
	if p.dir != Src {
		return fmt.Errorf("element: PushEvent on sink pad %s: %w", p.FullName(), ErrWrongDirection)
	}
	if c, ok := ev.(CapsEvent); ok {
		return p.SetCaps(c.Caps)
	}
	if _, ok := ev.(EOSEvent); ok {
		p.post(&EndOfStream{MessageHeader: Header(p.Element()), Pad: p.FullName()})
	}
	caps := p.caps.Load()
	for _, s := range p.Sinks() {
		if s.inline {
			s.deliverInline(item{caps: caps, x: &itemExtra{ev: ev}})
		} else {
			s.q.pushEvent(ev, caps)
		}
	}
	return nil
}

// SendUpstream sends an upstream event from a sink pad to the src pad
// feeding it, and reports whether there was one. Keyframe requests and
// bitrate hints are merged at the src pad (see KeyframeRequest, BitrateHint).
func (p *Pad) SendUpstream(ev Event) bool {
	if p.dir != Sink {
		return false
	}
	src := p.peer.Load()
	if src == nil {
		return false
	}
	if _, ok := ev.(KeyframeRequest); ok {
		p.kfRequests.Add(1)
	}
	src.upstream(p, ev)
	return true
}

// RequestKeyframe is SendUpstream(KeyframeRequest{}).
func (p *Pad) RequestKeyframe() bool { return p.SendUpstream(KeyframeRequest{}) }

// upstream receives an upstream event at a src pad from one of its sinks.
func (p *Pad) upstream(from *Pad, ev Event) {
	switch e := ev.(type) {
	case KeyframeRequest:
		now := nanotime()
		last := p.lastKF.Load()
		if last != 0 && now-last < p.kfInterval.Load() || !p.lastKF.CompareAndSwap(last, now) {
			p.kfMerged.Add(1)
			return
		}
		p.kfRequests.Add(1)
	case BitrateHint:
		// Computing the minimum and handing it over happen under one lock,
		// so that the element sees the minimums in the order they arose.
		p.hintMu.Lock()
		defer p.hintMu.Unlock()
		if _, linked := p.hints[from]; !linked && from.peer.Load() != p {
			return
		}
		p.hints[from] = e.BitsPerSecond
		if !p.updateHintMinLocked() {
			return
		}
		ev = BitrateHint{BitsPerSecond: p.hintMin}
	}
	p.handleEvent(ev)
}

// updateHintMinLocked recomputes the minimum bitrate hint and reports
// whether it changed (to 0, "no limit", when no sink has a hint left).
// Sinks that never sent a hint do not count. p.hintMu is held.
func (p *Pad) updateHintMinLocked() bool {
	var min int64
	for _, v := range p.hints {
		if v > 0 && (min == 0 || v < min) {
			min = v
		}
	}
	if min == p.hintMin {
		return false
	}
	p.hintMin = min
	return true
}

// handleEvent runs the pad's event handler, turning a panic into an Error.
func (p *Pad) handleEvent(ev Event) {
	if p.onEvent == nil {
		return
	}
	defer p.recoverPanic()
	p.onEvent(ev)
}

func (p *Pad) recoverPanic() {
	if r := recover(); r != nil {
		p.postPanic(r)
	}
}

// postPanic posts a recovered panic as an Error with the stack.
func (p *Pad) postPanic(r any) {
	p.postError(fmt.Errorf("%w: %v\n%s", ErrPanic, r, debug.Stack()))
}

// deliver hands one queue item to a sink pad's handlers and drops the
// item's buffer reference.
func (p *Pad) deliver(it item) {
	p.deliverBorrowed(it)
	if it.b != nil {
		it.b.Unref()
	}
}

// deliverBorrowed hands one item to a sink pad's handlers: the caps first
// if they changed, then a discontinuity, then the event or the buffer. It
// leaves the buffer's reference to the caller.
func (p *Pad) deliverBorrowed(it item) {
	if it.caps != nil && it.caps != p.delivered {
		p.deliverCaps(it.caps)
	}
	if x := it.x; x != nil {
		if x.dropped > 0 {
			p.handleEvent(DiscontEvent{Dropped: x.dropped})
		}
		if x.ev != nil {
			p.handleEvent(x.ev)
		}
	}
	if it.b != nil {
		p.chainOne(it.b)
	}
}

// deliverCaps hands new caps to a sink pad's event handler.
func (p *Pad) deliverCaps(caps *Caps) {
	p.delivered = caps
	p.caps.Store(caps)
	p.handleEvent(CapsEvent{Caps: *caps})
}

// count adds delivered buffers to the pad's counters.
func (p *Pad) count(packets, bytes int) {
	p.packets.Add(uint64(packets))
	p.bytes.Add(uint64(bytes))
}

func (p *Pad) chainOne(b *Buffer) {
	// recover only when the chain did not return: the call to recover
	// costs, and this runs for every buffer.
	returned := false
	defer func() {
		if !returned {
			if r := recover(); r != nil {
				p.postPanic(r)
			}
		}
	}()
	err := p.chain(b)
	returned = true
	if err != nil {
		p.postError(err)
	}
}

// Run drains a queued sink pad's queue into its ChainFunc until ctx ends;
// the pipeline runs it, one goroutine per queued sink pad. What is still
// queued when ctx ends is released undelivered. Run returns at once for an
// inline pad, a src pad, or a pad already running.
func (p *Pad) Run(ctx context.Context) {
	if p.dir != Sink || p.inline || !p.running.CompareAndSwap(false, true) {
		return
	}
	stop := context.AfterFunc(ctx, p.q.close)
	defer stop()
	batch := make([]item, 0, 64)
	for {
		var ask bool
		batch, ask = p.q.popAll(batch)
		if len(batch) == 0 {
			return
		}
		if ask {
			p.SendUpstream(KeyframeRequest{})
		}
		// Count the batch before delivering it, so that whoever sees an
		// item's effect (an EOS, a buffer) sees it counted.
		var packets, bytes int
		for i := range batch {
			if b := batch[i].b; b != nil {
				packets++
				bytes += len(b.Data)
			}
		}
		p.count(packets, bytes)
		for i := range batch {
			p.deliver(batch[i])
		}
		clear(batch)
	}
}

// Close releases what a sink pad's queue holds and makes it refuse further
// buffers: the pipeline calls it when the pad's element leaves it or the
// pipeline closes, so that nothing stays referenced, started or not.
//
// For an inline pad, Close waits for a handler running on a pusher's
// goroutine to return, and no handler runs after it: the element's own
// Close may then free what its handlers use.
func (p *Pad) Close() {
	if p.q != nil {
		p.q.close()
	}
	if p.inline {
		p.inlineMu.Lock()
		p.inlineClosed = true
		p.inlineMu.Unlock()
	}
}

// Link joins a src pad to a sink pad directly, with no caps negotiation: the
// primitive under pipeline.Connect, which is what hosts and elements use.
// The sink must not be linked already.
func (p *Pad) Link(sink *Pad) error {
	if p.dir != Src || sink.dir != Sink {
		return &LinkError{Src: p.FullName(), Sink: sink.FullName(), SrcCaps: p.Templates(), SinkCaps: sink.Templates(), Reason: ErrWrongDirection}
	}
	if p.kind != sink.kind {
		return &LinkError{Src: p.FullName(), Sink: sink.FullName(), SrcCaps: p.Templates(), SinkCaps: sink.Templates(), Reason: ErrIncompatibleCaps}
	}
	if !sink.peer.CompareAndSwap(nil, p) {
		return &LinkError{Src: p.FullName(), Sink: sink.FullName(), SrcCaps: p.Templates(), SinkCaps: sink.Templates(), Reason: ErrAlreadyLinked}
	}
	p.linkMu.Lock()
	old := p.Sinks()
	links := make([]*Pad, len(old), len(old)+1)
	copy(links, old)
	links = append(links, sink)
	p.links.Store(newLinkSet(links))
	p.linkMu.Unlock()
	return nil
}

// Unlink undoes Link. Buffers already queued at the sink are still
// delivered.
func (p *Pad) Unlink(sink *Pad) error {
	if sink.peer.Load() != p || !sink.peer.CompareAndSwap(p, nil) {
		return &LinkError{Src: p.FullName(), Sink: sink.FullName(), SrcCaps: p.Templates(), SinkCaps: sink.Templates(), Reason: ErrNotLinked}
	}
	p.linkMu.Lock()
	old := p.Sinks()
	links := make([]*Pad, 0, len(old))
	for _, s := range old {
		if s != sink {
			links = append(links, s)
		}
	}
	p.links.Store(newLinkSet(links))
	p.linkMu.Unlock()
	p.hintMu.Lock()
	defer p.hintMu.Unlock()
	if _, hinted := p.hints[sink]; hinted {
		delete(p.hints, sink)
		if p.updateHintMinLocked() {
			p.handleEvent(BitrateHint{BitsPerSecond: p.hintMin})
		}
	}
	return nil
}

func newLinkSet(sinks []*Pad) *linkSet {
	l := &linkSet{sinks: sinks}
	for _, s := range sinks {
		if !s.inline {
			l.queued++
		}
	}
	return l
}

// PadStats are the counters of one pad.
type PadStats struct {
	Pad       string // "element.pad"
	Direction Direction
	Kind      Kind
	// Caps are the fixed caps, if known.
	Caps    Caps
	HasCaps bool
	// Packets and Bytes count buffers pushed (src) or delivered (sink).
	Packets, Bytes uint64
	// Drops counts buffers a sink pad's queue dropped.
	Drops uint64
	// Queued is the number of items waiting in a sink pad's queue.
	Queued int
	// KeyframeRequests counts, for a sink pad, the requests it sent
	// upstream; for a src pad, those it passed to its element.
	KeyframeRequests uint64
	// KeyframeRequestsMerged counts, for a src pad, requests merged into
	// one already passed.
	KeyframeRequestsMerged uint64
}

// Stats returns the pad's counters.
func (p *Pad) Stats() PadStats {
	s := PadStats{
		Pad:                    p.FullName(),
		Direction:              p.dir,
		Kind:                   p.kind,
		Packets:                p.packets.Load(),
		Bytes:                  p.bytes.Load(),
		KeyframeRequests:       p.kfRequests.Load(),
		KeyframeRequestsMerged: p.kfMerged.Load(),
	}
	s.Caps, s.HasCaps = p.Caps()
	if p.q != nil {
		s.Drops = p.q.drops.Load()
		s.Queued = p.q.length()
	}
	return s
}
