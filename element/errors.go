package element

import (
	"errors"
	"fmt"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrIncompatibleCaps: the caps of a src pad and a sink pad cannot meet,
	// and no converter chain joins them.
	ErrIncompatibleCaps = errors.New("incompatible caps")
	// ErrWrongDirection: a link from a sink pad, or to a src pad.
	ErrWrongDirection = errors.New("wrong pad direction")
	// ErrNotLinked: the pads are not linked.
	ErrNotLinked = errors.New("pads not linked")
	// ErrNoPad: the element has no pad of the name or kind asked for.
	ErrNoPad = errors.New("no such pad")
	// ErrClosed: the pipeline or element is closed.
	ErrClosed = errors.New("closed")
)

// LinkError says why two pads could not be linked. It unwraps to its Reason,
// one of the sentinel errors above, so errors.Is(err, ErrIncompatibleCaps)
// works.
type LinkError struct {
	Src, Sink         string // "element.pad"
	SrcCaps, SinkCaps CapsList
	Reason            error
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("link %s -> %s: %v: %v -> %v", e.Src, e.Sink, e.Reason, e.SrcCaps, e.SinkCaps)
}

// Unwrap returns the reason.
func (e *LinkError) Unwrap() error { return e.Reason }

// More sentinels.
var (
	// ErrAlreadyLinked: the sink pad already has a src pad.
	ErrAlreadyLinked = errors.New("sink pad already linked")
	// ErrPanic wraps a panic recovered in an element's code.
	ErrPanic = errors.New("element panicked")
)
