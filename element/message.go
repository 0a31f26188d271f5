package element

import (
	"time"
)

// Message is what elements and the pipeline post on the bus for the host to
// read: errors, end of stream, media flow and link changes. Messages name the
// element they come from; they never hold it.
//
// Packages define further messages (endpoint: ConnectionStateChanged, ...):
// any type that embeds MessageHeader is a Message.
type Message interface {
	Origin() MessageHeader
}

// MessageHeader says which element posted a message, and when.
type MessageHeader struct {
	// Element is the name of the element the message is about.
	Element string
	// Time is when it was posted.
	Time time.Time
}

// Origin implements Message.
func (h MessageHeader) Origin() MessageHeader { return h }

// Header returns a MessageHeader for element, stamped now.
func Header(element string) MessageHeader {
	return MessageHeader{Element: element, Time: time.Now()}
}

// Host is what an element posts messages to: the pipeline it belongs to.
type Host interface {
	// Post hands m to the bus. It never blocks.
	Post(m Message)
}

// Error reports a failure in an element: an error returned by its Run or
// ChainFunc, a panic, or a link that failed to negotiate. The pipeline keeps
// running.
type Error struct {
	MessageHeader
	// Pad is the pad involved, if any ("element.pad").
	Pad string
	Err error
}

// Warning reports something the host should know of that is not a failure.
type Warning struct {
	MessageHeader
	Pad  string
	Text string
}

// EndOfStream reports that a src pad pushed EOSEvent: the source is done.
type EndOfStream struct {
	MessageHeader
	Pad string
}

// FlowState says whether media crosses a pad.
type FlowState uint8

// The flow states.
const (
	NotFlowing FlowState = iota
	Flowing
)

func (s FlowState) String() string {
	if s == Flowing {
		return "FLOWING"
	}
	return "NOT_FLOWING"
}

// MediaFlowInStateChanged reports that buffers started or stopped arriving at
// a sink pad.
type MediaFlowInStateChanged struct {
	MessageHeader
	Pad   string
	Kind  Kind
	State FlowState
}

// MediaFlowOutStateChanged reports that a src pad started or stopped pushing
// buffers.
type MediaFlowOutStateChanged struct {
	MessageHeader
	Pad   string
	Kind  Kind
	State FlowState
}

// ElementConnected reports a new connection from a src pad to a sink pad.
// Element is the source element.
type ElementConnected struct {
	MessageHeader
	Source, Sink string // "element.pad"
	SinkElement  string
	Kind         Kind
}

// ElementDisconnected reports the end of a connection.
type ElementDisconnected struct {
	MessageHeader
	Source, Sink string // "element.pad"
	SinkElement  string
	Kind         Kind
}

// TranscodingState says whether a connection converts media.
type TranscodingState uint8

// The transcoding states.
const (
	NotTranscoding TranscodingState = iota
	Transcoding
)

func (s TranscodingState) String() string {
	if s == Transcoding {
		return "TRANSCODING"
	}
	return "NOT_TRANSCODING"
}

// TranscodingStateChanged reports that a connection's negotiation inserted a
// converter chain (Transcoding) or linked directly after one
// (NotTranscoding). Element is the source element.
type TranscodingStateChanged struct {
	MessageHeader
	Source, Sink string // "element.pad"
	State        TranscodingState
	From, To     Caps
	// Chain names the inserted converter elements, upstream first.
	Chain []string
}
