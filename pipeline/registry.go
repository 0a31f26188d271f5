package pipeline

import (
	"sync"

	"github.com/medley-go/medley/element"
)

// Converter is a factory of elements that convert media from one caps to
// another: a depayloader, a decoder, a scaler, an encoder. Package codec
// registers its converters with RegisterConverter when imported; Connect
// chains them when a src pad's caps do not fit a sink pad.
type Converter interface {
	// Name names the converter ("vp8-depay", "h264-enc").
	Name() string
	// Outputs lists the fixed caps the converter can make from the fixed
	// caps in, most preferred first; none if it cannot take in.
	Outputs(in element.Caps) []element.Caps
	// New makes a converter element, named name, with exactly one sink pad
	// accepting in and one src pad producing out.
	New(name string, in, out element.Caps) (element.Element, error)
}

// Step is one converter of a chain, with the caps it takes and makes.
type Step struct {
	Converter Converter
	In, Out   element.Caps
}

// MaxChain is the longest converter chain a search considers: depayload,
// decode, scale or resample, encode, payload, and one spare.
const MaxChain = 6

// maxSearch bounds the caps a chain search visits, so that a registry of
// many converters cannot make Connect slow.
const maxSearch = 4096

// Registry is a set of converters, searched in registration order.
type Registry struct {
	mu    sync.RWMutex
	convs []Converter
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// DefaultRegistry is the registry pipelines use unless given another
// (WithRegistry). Packages fill it with RegisterConverter.
var DefaultRegistry = NewRegistry()

// RegisterConverter adds c to DefaultRegistry.
func RegisterConverter(c Converter) { DefaultRegistry.Register(c) }

// Register adds c to the registry.
func (r *Registry) Register(c Converter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.convs = append(r.convs, c)
}

// Converters returns the registered converters.
func (r *Registry) Converters() []Converter {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]Converter(nil), r.convs...)
}

// Chain returns the shortest chain of converters that turns from into caps
// some template of to accepts, and false if there is none within MaxChain
// steps. Among chains of equal length it prefers converters registered
// earlier and outputs listed earlier. Every step keeps the media kind.
func (r *Registry) Chain(from element.Caps, to element.CapsList) ([]Step, bool) {
	convs := r.Converters()
	type node struct {
		caps  element.Caps
		prev  int // index in nodes, -1 for the start
		step  Step
		depth int
	}
	nodes := []node{{caps: from, prev: -1}}
	seen := map[element.Caps]bool{from: true}
	for i := 0; i < len(nodes) && len(nodes) < maxSearch; i++ {
		n := nodes[i]
		if n.depth == MaxChain {
			continue
		}
		for _, c := range convs {
			for _, out := range c.Outputs(n.caps) {
				if out.Kind != from.Kind || !out.IsFixed() || seen[out] {
					continue
				}
				seen[out] = true
				nodes = append(nodes, node{caps: out, prev: i, step: Step{Converter: c, In: n.caps, Out: out}, depth: n.depth + 1})
				if _, ok := to.Accepts(out); ok {
					chain := make([]Step, n.depth+1)
					for j := len(nodes) - 1; j > 0; j = nodes[j].prev {
						chain[nodes[j].depth-1] = nodes[j].step
					}
					return chain, true
				}
			}
		}
	}
	return nil, false
}
