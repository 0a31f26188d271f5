package codec

import (
	"errors"
	"strings"

	"github.com/medley-go/medley/element"
)

// The MIME types of the codecs medley knows, as caps (element.Caps.Codec)
// and SDP name them. Caps compare them without regard to case.
const (
	MIMEVP8  = "video/VP8"
	MIMEVP9  = "video/VP9"
	MIMEH264 = "video/H264"
	MIMEAV1  = "video/AV1"
	MIMEOpus = "audio/opus"
	MIMEPCMU = "audio/PCMU"
	MIMEPCMA = "audio/PCMA"
	MIMEG722 = "audio/G722"
	MIMEAAC  = "audio/AAC"
)

// ErrUnknownCodec: no codec of that MIME type is registered, or medley has
// no RTP payloader for it.
var ErrUnknownCodec = errors.New("codec: unknown codec")

// Codec describes one media encoding: the caps that name it and the rules
// by which RTP carries it. It is a plain value; the registry's entries are
// returned by Lookup and Codecs, and their slices must not be modified.
type Codec struct {
	// MIME is the canonical MIME type ("video/VP8").
	MIME string
	// Name is the short lower-case name that converter and element names
	// use ("vp8").
	Name string
	// Kind is the media kind, audio or video.
	Kind element.Kind
	// ClockRate is the RTP clock rate in Hz. G.722's is 8000 although it
	// samples at 16 kHz (RFC 3551, section 4.5.2).
	ClockRate uint32
	// Channels is the audio channel count that RTP caps carry (Opus is
	// always 2 in SDP, RFC 7587 section 7); 0 for video.
	Channels uint16
	// Fmtp is the default SDP format parameters, the first of FmtpVariants.
	Fmtp string
	// FmtpVariants lists the format parameter sets medley offers for the
	// codec, most preferred first (H.264: constrained baseline and high,
	// packetization-mode 1 and 0). A payloader converter can make each.
	FmtpVariants []string
	// PayloadType is the RTP payload type a payloader uses unless told
	// otherwise: the static type of RFC 3551 when StaticPayloadType, else a
	// customary dynamic one (the ones pion/webrtc registers).
	PayloadType       uint8
	StaticPayloadType bool
	// RTP reports whether medley has a payloader and a depayloader for the
	// codec (not AAC, which medley carries only in files).
	RTP bool
	// Keyframes reports whether frames depend on earlier frames: a receiver
	// that lost a packet must drop frames until the next keyframe, which the
	// depayloader finds with IsKeyframe, and ask the sender for one.
	Keyframes bool
	// MarkerEndsFrame reports whether the RTP marker bit marks the last
	// packet of a frame (video); otherwise it marks the first packet of a
	// talkspurt and every packet carries whole frames (audio, RFC 3551
	// section 4.1).
	MarkerEndsFrame bool

	keyframe func(payload []byte) bool
	aliases  []string
}

// IsKeyframe reports whether an RTP payload of the codec shows that its
// frame is a keyframe: see VP8Keyframe, VP9Keyframe, H264Keyframe and
// AV1Keyframe for what each looks at. Audio frames are always keyframes.
func (c Codec) IsKeyframe(payload []byte) bool {
	if c.keyframe == nil {
		return c.Kind == element.KindAudio
	}
	return c.keyframe(payload)
}

// Caps returns the fixed caps of the codec in format f: kind, format,
// codec, clock rate and channels, and for FormatRTP the default fmtp.
// FormatRaw caps name no codec (decoded media has none).
func (c Codec) Caps(f element.Format) element.Caps {
	caps := element.Caps{Kind: c.Kind, Format: f, Codec: c.MIME, ClockRate: c.ClockRate, Channels: c.Channels}
	switch f {
	case element.FormatRTP:
		caps.Fmtp = c.Fmtp
	case element.FormatRaw:
		caps.Codec = ""
	}
	return caps
}

// Matches reports whether caps name this codec (by MIME type or alias,
// ignoring case) with a compatible clock rate (zero matches).
func (c Codec) Matches(caps element.Caps) bool {
	if caps.ClockRate != 0 && caps.ClockRate != c.ClockRate {
		return false
	}
	return c.named(caps.Codec)
}

func (c Codec) named(mime string) bool {
	if strings.EqualFold(mime, c.MIME) {
		return true
	}
	for _, a := range c.aliases {
		if strings.EqualFold(mime, a) {
			return true
		}
	}
	return false
}

// H.264 format parameters (RFC 6184, section 8.1): profile-level-id 42e01f
// is constrained baseline level 3.1, 64001f high level 3.1.
const (
	h264CBMode1   = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	h264CBMode0   = "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"
	h264HighMode1 = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f"
	h264HighMode0 = "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=64001f"
)

// noFmtp is the variant list of a codec without format parameters.
var noFmtp = []string{""}

// registry holds the codecs, in the order Codecs lists them.
var registry = []Codec{
	{
		MIME: MIMEVP8, Name: "vp8", Kind: element.KindVideo, ClockRate: 90000,
		FmtpVariants: noFmtp, PayloadType: 96, RTP: true, Keyframes: true, MarkerEndsFrame: true,
		keyframe: VP8Keyframe,
	},
	{
		MIME: MIMEVP9, Name: "vp9", Kind: element.KindVideo, ClockRate: 90000,
		Fmtp: "profile-id=0", FmtpVariants: []string{"profile-id=0"},
		PayloadType: 98, RTP: true, Keyframes: true, MarkerEndsFrame: true,
		keyframe: VP9Keyframe,
	},
	{
		MIME: MIMEH264, Name: "h264", Kind: element.KindVideo, ClockRate: 90000,
		Fmtp:         h264CBMode1,
		FmtpVariants: []string{h264CBMode1, h264HighMode1, h264CBMode0, h264HighMode0},
		PayloadType:  102, RTP: true, Keyframes: true, MarkerEndsFrame: true,
		keyframe: H264Keyframe,
	},
	{
		MIME: MIMEAV1, Name: "av1", Kind: element.KindVideo, ClockRate: 90000,
		FmtpVariants: noFmtp, PayloadType: 45, RTP: true, Keyframes: true, MarkerEndsFrame: true,
		keyframe: AV1Keyframe,
	},
	{
		MIME: MIMEOpus, Name: "opus", Kind: element.KindAudio, ClockRate: 48000, Channels: 2,
		Fmtp: "minptime=10;useinbandfec=1", FmtpVariants: []string{"minptime=10;useinbandfec=1"},
		PayloadType: 111, RTP: true,
	},
	{
		MIME: MIMEPCMU, Name: "pcmu", Kind: element.KindAudio, ClockRate: 8000, Channels: 1,
		FmtpVariants: noFmtp, PayloadType: 0, StaticPayloadType: true, RTP: true,
	},
	{
		MIME: MIMEPCMA, Name: "pcma", Kind: element.KindAudio, ClockRate: 8000, Channels: 1,
		FmtpVariants: noFmtp, PayloadType: 8, StaticPayloadType: true, RTP: true,
	},
	{
		MIME: MIMEG722, Name: "g722", Kind: element.KindAudio, ClockRate: 8000, Channels: 1,
		FmtpVariants: noFmtp, PayloadType: 9, StaticPayloadType: true, RTP: true,
	},
	{
		// AAC for MP4 files; RTP (RFC 3640's mpeg4-generic) is not payloaded.
		MIME: MIMEAAC, Name: "aac", Kind: element.KindAudio, ClockRate: 48000, Channels: 2,
		FmtpVariants: noFmtp, PayloadType: 97, aliases: []string{"audio/mpeg4-generic", "audio/mp4a-latm"},
	},
}

// Lookup returns the codec of that MIME type ("video/H264"), compared
// without regard to case, and false if medley knows none.
func Lookup(mime string) (Codec, bool) {
	for _, c := range registry {
		if c.named(mime) {
			return c, true
		}
	}
	return Codec{}, false
}

// Codecs returns every codec medley knows: video first, then audio.
func Codecs() []Codec { return append([]Codec(nil), registry...) }

// FmtpParam returns the value of parameter key in an SDP fmtp line
// ("a=1;b=2"), compared without regard to case, and false if it is absent.
func FmtpParam(fmtp, key string) (string, bool) {
	for part := range strings.SplitSeq(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		if strings.EqualFold(k, key) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// H264PacketizationMode returns the packetization-mode of an H.264 fmtp
// line: 0 (single NAL unit) when absent, as RFC 6184 section 8.1 says.
func H264PacketizationMode(fmtp string) int {
	switch v, _ := FmtpParam(fmtp, "packetization-mode"); v {
	case "1":
		return 1
	case "2":
		return 2
	}
	return 0
}
