package element

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Element is a unit of media processing with named pads. Implementations
// embed Base, which provides every method of the interface; they add pads
// with AddPad and may implement the optional Runner and Closer.
type Element interface {
	// Name returns the element's name, unique within a pipeline.
	Name() string
	// Pads returns the element's pads, in the order they were added.
	Pads() []*Pad
	// ElementBase returns the embedded Base.
	ElementBase() *Base
}

// Runner is an element with work of its own: a source reading a network or
// a file, a timer. The pipeline calls Run on its own goroutine when it
// starts (or when the element is added to a running pipeline) and cancels
// ctx to stop it; Run returns then. An error other than ctx's is posted as an
// Error message; a panic too.
type Runner interface {
	Run(ctx context.Context) error
}

// Closer is an element holding resources. The pipeline calls Close once,
// after every goroutine of the element has ended.
type Closer interface {
	Close() error
}

// Base carries what every element has: a name, pads and the host (the
// pipeline) it posts messages to. Embed it by value, made with NewBase.
type Base struct{ s *baseState }

type baseState struct {
	name string
	mu   sync.Mutex
	pads []*Pad
	host atomic.Pointer[hostBox]
}

type hostBox struct{ h Host }

func (s *baseState) getHost() Host {
	if b := s.host.Load(); b != nil {
		return b.h
	}
	return nil
}

// NewBase returns a Base for an element of the given name.
func NewBase(name string) Base {
	return Base{s: &baseState{name: name}}
}

// ElementBase implements Element.
func (b Base) ElementBase() *Base { return &b }

// Name implements Element.
func (b Base) Name() string { return b.s.name }

// Pads implements Element. The slice is a copy.
func (b Base) Pads() []*Pad {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return append([]*Pad(nil), b.s.pads...)
}

// AddPad adds pads to the element. Pad names must be unique within it; a pad
// belongs to one element. Hubs add request pads while running.
func (b Base) AddPad(pads ...*Pad) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	for _, p := range pads {
		if p.owner != nil {
			panic(fmt.Sprintf("element: pad %s already belongs to element %s", p.name, p.owner.name))
		}
		for _, q := range b.s.pads {
			if q.name == p.name {
				panic(fmt.Sprintf("element %s: duplicate pad %s", b.s.name, p.name))
			}
		}
		p.owner = b.s
		b.s.pads = append(b.s.pads, p)
	}
}

// Pad returns the pad of that name, or nil.
func (b Base) Pad(name string) *Pad {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	for _, p := range b.s.pads {
		if p.name == name {
			return p
		}
	}
	return nil
}

// SetHost attaches the element to the host it posts messages to; the
// pipeline calls it on Add (and with nil on Remove).
func (b Base) SetHost(h Host) {
	if h == nil {
		b.s.host.Store(nil)
		return
	}
	b.s.host.Store(&hostBox{h})
}

// Host returns the host the element is attached to, or nil.
func (b Base) Host() Host { return b.s.getHost() }

// Post puts a message on the host's bus; it does nothing while the element
// is not in a pipeline.
func (b Base) Post(m Message) {
	if h := b.s.getHost(); h != nil {
		h.Post(m)
	}
}

// PostError posts an Error message naming the element.
func (b Base) PostError(err error) {
	b.Post(&Error{MessageHeader: Header(b.s.name), Err: err})
}

var epoch = time.Now()

// nanotime is a monotonic clock in nanoseconds.
func nanotime() int64 { return int64(time.Since(epoch)) }
