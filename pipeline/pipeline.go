package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/medley-go/medley/element"
)

// Sentinel errors of the pipeline, matched with errors.Is.
var (
	// ErrDuplicateName: an element of that name is in the pipeline already.
	ErrDuplicateName = errors.New("pipeline: duplicate element name")
	// ErrNotInPipeline: the element or pad is not in this pipeline.
	ErrNotInPipeline = errors.New("pipeline: not in this pipeline")
	// ErrStarted: Start was called twice.
	ErrStarted = errors.New("pipeline: already started")
)

// DefaultFlowTimeout is how long a pad may see no buffer before the
// pipeline reports its media flow as NOT_FLOWING.
const DefaultFlowTimeout = time.Second

type config struct {
	name        string
	registry    *Registry
	transcode   bool
	flowTimeout time.Duration
}

// Option configures a pipeline.
type Option func(*config) error

// WithName names the pipeline (in DOT output).
func WithName(name string) Option {
	return func(c *config) error { c.name = name; return nil }
}

// WithRegistry makes Connect search r for converters instead of
// DefaultRegistry.
func WithRegistry(r *Registry) Option {
	return func(c *config) error {
		if r == nil {
			return errors.New("pipeline: WithRegistry(nil)")
		}
		c.registry = r
		return nil
	}
}

// WithoutTranscoding turns automatic converter insertion off: pads whose
// caps differ then fail to connect with element.ErrIncompatibleCaps, for hosts
// that must never spend CPU on transcoding.
func WithoutTranscoding() Option {
	return func(c *config) error { c.transcode = false; return nil }
}

// WithFlowTimeout sets how long a pad may see no buffer before its media
// flow is reported NOT_FLOWING (DefaultFlowTimeout).
func WithFlowTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("pipeline: flow timeout %v must be positive", d)
		}
		c.flowTimeout = d
		return nil
	}
}

// Pipeline is a graph of elements: it links their pads (Connect), runs
// their goroutines between Start and Close, carries their messages on its
// Bus, and reports their Stats and DOT graph. All methods are safe for
// concurrent use.
type Pipeline struct {
	cfg config
	bus Bus

	mu       sync.Mutex
	elements []*elemState
	byName   map[string]*elemState
	routes   map[*element.Pad]*route // by sink pad
	seq      int
	ctx      context.Context
	cancel   context.CancelFunc
	started  bool
	closed   bool

	wg        sync.WaitGroup
	closeOnce sync.Once
	done      chan struct{}
}

// elemState is the pipeline's record of one element.
type elemState struct {
	el     element.Element
	auto   bool // a converter inserted by negotiation
	cancel context.CancelFunc
	wg     sync.WaitGroup
	close  sync.Once
}

// New returns an empty pipeline.
func New(opts ...Option) (*Pipeline, error) {
	cfg := config{name: "pipeline", registry: DefaultRegistry, transcode: true, flowTimeout: DefaultFlowTimeout}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	return &Pipeline{
		cfg:    cfg,
		byName: make(map[string]*elemState),
		routes: make(map[*element.Pad]*route),
		done:   make(chan struct{}),
	}, nil
}

// Name returns the pipeline's name.
func (p *Pipeline) Name() string { return p.cfg.name }

// Bus returns the pipeline's message bus.
func (p *Pipeline) Bus() *Bus { return &p.bus }

// Subscribe is Bus().Subscribe(size).
func (p *Pipeline) Subscribe(size int) *Subscription { return p.bus.Subscribe(size) }

// Post implements element.Host: it puts m on the bus.
func (p *Pipeline) Post(m element.Message) { p.bus.Post(m) }

// Add puts elements into the pipeline. In a running pipeline they start at
// once. Names must be unique.
func (p *Pipeline) Add(els ...element.Element) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("pipeline: Add: %w", element.ErrClosed)
	}
	for i, el := range els {
		if _, dup := p.byName[el.Name()]; dup {
			return fmt.Errorf("%w: %q", ErrDuplicateName, el.Name())
		}
		for _, o := range els[:i] {
			if o.Name() == el.Name() {
				return fmt.Errorf("%w: %q", ErrDuplicateName, el.Name())
			}
		}
	}
	for _, el := range els {
		p.addLocked(el, false)
	}
	return nil
}

func (p *Pipeline) addLocked(el element.Element, auto bool) *elemState {
	es := &elemState{el: el, auto: auto}
	p.elements = append(p.elements, es)
	p.byName[el.Name()] = es
	el.ElementBase().SetHost(p)
	if p.started {
		p.startLocked(es)
	}
	return es
}

// Element returns the element of that name, or nil.
func (p *Pipeline) Element(name string) element.Element {
	p.mu.Lock()
	defer p.mu.Unlock()
	if es := p.byName[name]; es != nil {
		return es.el
	}
	return nil
}

// Elements returns the pipeline's elements, converters included, in the
// order they were added.
func (p *Pipeline) Elements() []element.Element {
	p.mu.Lock()
	defer p.mu.Unlock()
	els := make([]element.Element, len(p.elements))
	for i, es := range p.elements {
		els[i] = es.el
	}
	return els
}

// Remove disconnects an element from everything, stops its goroutines and,
// once they have ended, closes it. It does not wait for that.
func (p *Pipeline) Remove(el element.Element) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("pipeline: Remove %q: %w", el.Name(), element.ErrClosed)
	}
	es := p.byName[el.Name()]
	if es == nil || es.el != el {
		return fmt.Errorf("pipeline: Remove %q: %w", el.Name(), ErrNotInPipeline)
	}
	for _, pad := range el.Pads() {
		for _, r := range p.routesOfLocked(pad) {
			p.removeRouteLocked(r)
		}
	}
	p.removeLocked(es)
	return nil
}

func (p *Pipeline) removeLocked(es *elemState) {
	delete(p.byName, es.el.Name())
	for i, o := range p.elements {
		if o == es {
			p.elements = append(p.elements[:i:i], p.elements[i+1:]...)
			break
		}
	}
	if es.cancel != nil {
		es.cancel()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			es.wg.Wait()
			p.closeElement(es)
		}()
	} else {
		p.closeElement(es)
	}
}

func (p *Pipeline) closeElement(es *elemState) {
	es.close.Do(func() {
		for _, pad := range es.el.Pads() {
			pad.Close()
		}
		if c, ok := es.el.(element.Closer); ok {
			if err := safeClose(c); err != nil {
				p.Post(&element.Error{MessageHeader: element.Header(es.el.Name()), Err: fmt.Errorf("close: %w", err)})
			}
		}
		es.el.ElementBase().SetHost(nil)
	})
}

func safeClose(c element.Closer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", element.ErrPanic, r)
		}
	}()
	return c.Close()
}

// Start runs the pipeline: every element's Run and every queued sink pad's
// goroutine. Cancelling ctx is the same as calling Close.
func (p *Pipeline) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("pipeline: Start: %w", element.ErrClosed)
	}
	if p.started {
		return ErrStarted
	}
	p.started = true
	p.ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, es := range p.elements {
		p.startLocked(es)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.monitorFlow(p.ctx)
	}()
	stop := context.AfterFunc(ctx, func() { go p.Close() })
	go func() {
		<-p.done
		stop()
	}()
	return nil
}

func (p *Pipeline) startLocked(es *elemState) {
	ctx, cancel := context.WithCancel(p.ctx)
	es.cancel = cancel
	for _, pad := range es.el.Pads() {
		if pad.Direction() == element.Sink && !pad.IsInline() {
			p.goElem(es, func() { pad.Run(ctx) })
		}
	}
	if r, ok := es.el.(element.Runner); ok {
		p.goElem(es, func() { p.run(ctx, es.el, r) })
	}
}

func (p *Pipeline) goElem(es *elemState, fn func()) {
	p.wg.Add(1)
	es.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer es.wg.Done()
		fn()
	}()
}

func (p *Pipeline) run(ctx context.Context, el element.Element, r element.Runner) {
	defer func() {
		if v := recover(); v != nil {
			p.Post(&element.Error{MessageHeader: element.Header(el.Name()), Err: fmt.Errorf("%w: %v", element.ErrPanic, v)})
		}
	}()
	err := r.Run(ctx)
	if err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		p.Post(&element.Error{MessageHeader: element.Header(el.Name()), Err: fmt.Errorf("run: %w", err)})
	}
}

// Close stops the pipeline: it ends every goroutine, closes every element
// (element.Closer) and then the bus, whose subscribers still read the
// messages posted before. It returns when all of that is done. Close is
// idempotent and may be called from any goroutine but an element's own
// (a ChainFunc, an event handler, a Run): there, cancel Start's context
// instead.
func (p *Pipeline) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		if p.cancel != nil {
			p.cancel()
		}
		p.mu.Unlock()
		p.wg.Wait()
		p.mu.Lock()
		els := append([]*elemState(nil), p.elements...)
		p.mu.Unlock()
		for _, es := range els {
			p.closeElement(es)
		}
		p.bus.close()
		close(p.done)
	})
	<-p.done
	return nil
}

// Done is closed when Close has finished.
func (p *Pipeline) Done() <-chan struct{} { return p.done }
