// Package element is medley's contract between the pipeline and the units
// of media processing it links: Element, Pad, Caps, Buffer, Event and the
// bus Message types, with helpers for implementers (Base) and a few
// elements of general use (AppSource, AppSink, PassThrough).
//
// # The model
//
// An Element has named pads. A src Pad produces buffers, a sink Pad consumes
// them; each pad carries one media Kind (audio, video, data) and advertises
// the Caps it can produce or accept, most preferred first. Before its first
// buffer a src pad fixes its caps with SetCaps; every sink linked to it, even
// one linked later, receives them as a CapsEvent before the next buffer.
//
// A src pad pushes each Buffer to all the sink pads linked to it (fan-out is
// built in: one pad, many sinks) without copying or allocating: the sinks
// share the same, read-only buffer. Unless it is Inline, a sink pad sits
// behind a bounded queue drained by its own goroutine, so a slow sink stalls
// nobody else. A full queue follows its QueuePolicy: Live (the default)
// drops, video until the next keyframe, for which it asks upstream once;
// Block makes the pusher wait, for batch work. No queue is unbounded.
//
// Events travel beside the buffers: downstream (CapsEvent, EOSEvent,
// DiscontEvent) in order with them, upstream (KeyframeRequest, BitrateHint,
// ReconfigureEvent) from a sink pad to the src pad feeding it, where keyframe
// requests are merged to one per interval and bitrate hints to their
// minimum, before they reach the source element's handler.
//
// Elements report to the host by posting Messages (Error, EndOfStream,
// MediaFlowInStateChanged, ...) to their Host, the pipeline, whose bus
// carries them. Messages name elements; they never hold them.
//
// # Writing an element
//
// Embed Base (made with NewBase), create pads with NewSrcPad and
// NewSinkPad, add them with AddPad. A sink pad's ChainFunc receives each
// buffer on the pad's goroutine; an EventFunc receives events. Implement
// Runner for work of your own (a source reading the network) and Closer to
// free resources; the pipeline calls them. See the package example for a
// complete pass-through filter.
//
// # Buffers and ownership
//
// A pushed buffer is read-only for everybody. A ChainFunc may use it until
// it returns; to keep it longer, Ref it and Unref it when done. Buffers from
// a BufferPool are recycled when their last reference is dropped, so a
// source allocates nothing per packet in steady state; plain buffers are
// left to the garbage collector.
//
// Package element does not use cgo and depends on pion/rtp only.
package element
