package element

import "strings"

// Kind is the media kind a pad carries. Kinds are bits, so a Kind can also
// name a set of kinds, as Connect's kind argument does (KindAll).
type Kind uint8

// The media kinds.
const (
	KindAudio Kind = 1 << iota
	KindVideo
	KindData

	// KindAll names every kind; it is what Connect takes to link all the
	// kinds two elements have in common.
	KindAll = KindAudio | KindVideo | KindData
)

// Kinds lists the single kinds, in the order Connect visits them.
var Kinds = [...]Kind{KindAudio, KindVideo, KindData}

// Has reports whether the set k includes every kind in o.
func (k Kind) Has(o Kind) bool { return o != 0 && k&o == o }

func (k Kind) String() string {
	switch k {
	case 0:
		return "none"
	case KindAudio:
		return "audio"
	case KindVideo:
		return "video"
	case KindData:
		return "data"
	case KindAll:
		return "all"
	}
	var parts []string
	for _, s := range Kinds {
		if k.Has(s) {
			parts = append(parts, s.String())
		}
	}
	return strings.Join(parts, "+")
}

// Format is the form media takes on a pad.
type Format uint8

// The formats. FormatAny appears only in caps templates: fixed caps always
// name one of the others.
const (
	FormatAny Format = iota
	// FormatRTP: Buffer.RTP holds the header and Buffer.Data the payload of
	// one RTP packet.
	FormatRTP
	// FormatSample: Buffer.Data holds one encoded access unit (a video frame
	// or an audio frame) with PTS and Duration.
	FormatSample
	// FormatRaw: decoded media; Buffer.Frame holds it (see package codec).
	FormatRaw
	// FormatMessage: Buffer.Data holds one application message (data
	// channel text or binary).
	FormatMessage
)

func (f Format) String() string {
	switch f {
	case FormatAny:
		return "any"
	case FormatRTP:
		return "rtp"
	case FormatSample:
		return "sample"
	case FormatRaw:
		return "raw"
	case FormatMessage:
		return "message"
	}
	return "format(" + itoa(int(f)) + ")"
}

// Direction tells which way buffers cross a pad.
type Direction uint8

// The pad directions.
const (
	// Src pads produce buffers (an element's output).
	Src Direction = iota + 1
	// Sink pads consume buffers (an element's input).
	Sink
)

func (d Direction) String() string {
	switch d {
	case Src:
		return "src"
	case Sink:
		return "sink"
	}
	return "direction(" + itoa(int(d)) + ")"
}
