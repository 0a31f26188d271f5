package element

// PassThrough forwards every buffer and event unchanged from its sink pad
// to its src pad, and upstream events back: a placeholder in a graph, a
// point to measure (its pads count what crosses), and the smallest example
// of an element.
type PassThrough struct {
	Base
	sink, src *Pad
}

// NewPassThrough returns a pass-through element of one media kind that
// accepts and produces caps (most often the kind's Any caps). Its sink pad
// is inline: it adds no queue and no goroutine.
func NewPassThrough(name string, caps ...Caps) *PassThrough {
	e := &PassThrough{Base: NewBase(name)}
	e.src = NewSrcPad("src", caps, WithEventHandler(func(ev Event) { e.sink.SendUpstream(ev) }))
	e.sink = NewSinkPad("sink", caps, func(b *Buffer) error {
		e.src.Push(b)
		return nil
	}, Inline(), WithEventHandler(func(ev Event) { _ = e.src.PushEvent(ev) }))
	e.AddPad(e.sink, e.src)
	return e
}

// SinkPad returns the input pad.
func (e *PassThrough) SinkPad() *Pad { return e.sink }

// SrcPad returns the output pad.
func (e *PassThrough) SrcPad() *Pad { return e.src }
