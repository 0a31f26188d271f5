package element

import (
	"strconv"
	"strings"
)

// Caps describe the media a pad produces or accepts. In a pad's template
// list (what it can do) a zero field means "any value"; fixed caps, the ones a
// src pad announces with SetCaps before its first buffer, name at least the
// kind, the format and, but for data and raw media, the codec.
//
// Caps is a comparable value: use == for identity and Intersect for
// compatibility.
type Caps struct {
	Kind   Kind
	Format Format
	// Codec is the MIME type of the encoding ("video/VP8", "audio/opus",
	// "video/H264"), compared without regard to case. Raw media leave it
	// empty or name the raw type ("video/x-raw").
	Codec string
	// ClockRate is the RTP clock rate in Hz (90000 for video).
	ClockRate uint32
	// Channels is the audio channel count.
	Channels uint16
	// Width and Height are the video frame size in pixels.
	Width, Height int
	// PixelFormat and SampleFormat name raw layouts in FFmpeg's words
	// ("yuv420p", "s16").
	PixelFormat, SampleFormat string
	// Fmtp holds SDP format parameters ("packetization-mode=1;...").
	Fmtp string
}

// CapsList is an ordered list of caps, most preferred first: what a pad
// template offers.
type CapsList []Caps

// Common caps templates.
var (
	AnyAudio = Caps{Kind: KindAudio}
	AnyVideo = Caps{Kind: KindVideo}
	AnyData  = Caps{Kind: KindData}
)

// IsFixed reports whether c is specific enough to describe a buffer: kind and
// format set, and a codec for every format but raw and message.
func (c Caps) IsFixed() bool {
	if c.Kind == 0 || c.Kind&(c.Kind-1) != 0 || c.Format == FormatAny {
		return false
	}
	switch c.Format {
	case FormatRaw, FormatMessage:
		return true
	}
	return c.Codec != ""
}

// Intersect returns the caps that satisfy both c and o, and false when there
// are none: a field set on both sides must agree, a field set on one side is
// taken from it. Kind is the exception to "zero means any": every caps names
// its kind, and caps without one meet nothing.
func (c Caps) Intersect(o Caps) (Caps, bool) {
	r := c
	if c.Kind == 0 || o.Kind == 0 || c.Kind&o.Kind == 0 {
		return Caps{}, false
	}
	r.Kind = c.Kind & o.Kind
	var ok bool
	if r.Format, ok = meet(c.Format, o.Format); !ok {
		return Caps{}, false
	}
	switch {
	case c.Codec == "":
		r.Codec = o.Codec
	case o.Codec != "" && !strings.EqualFold(c.Codec, o.Codec):
		return Caps{}, false
	}
	if r.ClockRate, ok = meet(c.ClockRate, o.ClockRate); !ok {
		return Caps{}, false
	}
	if r.Channels, ok = meet(c.Channels, o.Channels); !ok {
		return Caps{}, false
	}
	if r.Width, ok = meet(c.Width, o.Width); !ok {
		return Caps{}, false
	}
	if r.Height, ok = meet(c.Height, o.Height); !ok {
		return Caps{}, false
	}
	if r.PixelFormat, ok = meet(c.PixelFormat, o.PixelFormat); !ok {
		return Caps{}, false
	}
	if r.SampleFormat, ok = meet(c.SampleFormat, o.SampleFormat); !ok {
		return Caps{}, false
	}
	if r.Fmtp, ok = meet(c.Fmtp, o.Fmtp); !ok {
		return Caps{}, false
	}
	return r, true
}

// CanIntersect reports whether c and o have caps in common.
func (c Caps) CanIntersect(o Caps) bool {
	_, ok := c.Intersect(o)
	return ok
}

// meet is Intersect for one field whose zero value means "any".
func meet[T comparable](a, b T) (T, bool) {
	var zero T
	switch {
	case a == zero:
		return b, true
	case b == zero, a == b:
		return a, true
	}
	return zero, false
}

// String renders c as "video/rtp,codec=video/VP8,rate=90000".
func (c Caps) String() string {
	var b strings.Builder
	b.WriteString(c.Kind.String())
	b.WriteByte('/')
	b.WriteString(c.Format.String())
	field := func(k, v string) {
		b.WriteByte(',')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	if c.Codec != "" {
		field("codec", c.Codec)
	}
	if c.ClockRate != 0 {
		field("rate", strconv.FormatUint(uint64(c.ClockRate), 10))
	}
	if c.Channels != 0 {
		field("channels", strconv.Itoa(int(c.Channels)))
	}
	if c.Width != 0 || c.Height != 0 {
		field("size", strconv.Itoa(c.Width)+"x"+strconv.Itoa(c.Height))
	}
	if c.PixelFormat != "" {
		field("pix", c.PixelFormat)
	}
	if c.SampleFormat != "" {
		field("sample", c.SampleFormat)
	}
	if c.Fmtp != "" {
		field("fmtp", c.Fmtp)
	}
	return b.String()
}

// Kind returns the kind every caps in l share, or 0 if l is empty or mixes
// kinds.
func (l CapsList) Kind() Kind {
	if len(l) == 0 {
		return 0
	}
	k := l[0].Kind
	for _, c := range l[1:] {
		if c.Kind != k {
			return 0
		}
	}
	return k
}

// Accepts returns the first caps of l that c meets, intersected with c.
func (l CapsList) Accepts(c Caps) (Caps, bool) {
	for _, t := range l {
		if r, ok := t.Intersect(c); ok {
			return r, true
		}
	}
	return Caps{}, false
}

// Intersects reports whether some caps of l meet some caps of o.
func (l CapsList) Intersects(o CapsList) bool {
	for _, c := range l {
		if _, ok := o.Accepts(c); ok {
			return true
		}
	}
	return false
}

func (l CapsList) String() string {
	parts := make([]string, len(l))
	for i, c := range l {
		parts[i] = c.String()
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func itoa(i int) string { return strconv.Itoa(i) }
