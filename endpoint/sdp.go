package endpoint

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pion/sdp/v3"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
)

// Sentinel errors of the endpoints, matched with errors.Is.
var (
	// ErrInvalidSDP: an offer or answer that is not a session description
	// the endpoint can take: malformed, truncated, too large (MaxSDPSize),
	// without media, or refused by the WebRTC stack.
	ErrInvalidSDP = errors.New("endpoint: invalid SDP")
	// ErrNoCommonCodec: the offer has no media the endpoint can take (see
	// NoCommonCodecError for the codecs on each side).
	ErrNoCommonCodec = errors.New("endpoint: no codec in common")
	// ErrInvalidCandidate: AddIceCandidate got something that is not an
	// ICE candidate.
	ErrInvalidCandidate = errors.New("endpoint: invalid ICE candidate")
	// ErrSignalingState: the call does not fit the offer/answer exchange
	// in progress (an answer with no offer out, a second offer before the
	// answer).
	ErrSignalingState = errors.New("endpoint: wrong signaling state")
)

// MaxSDPSize bounds the SDP the endpoint parses. A browser's offer with
// audio, video, simulcast and every codec stays under 20 kB; 128 KiB leaves
// room for many tracks and refuses a megabyte of garbage before parsing it.
const MaxSDPSize = 128 << 10

// NoCommonCodecError is the error of an offer with no media the endpoint can
// take. It unwraps to ErrNoCommonCodec.
type NoCommonCodecError struct {
	// Offered lists the codecs of the offer, per media section
	// ("video VP9/90000").
	Offered []string
	// Supported lists the endpoint's codecs ("video VP8/90000").
	Supported []string
}

func (e *NoCommonCodecError) Error() string {
	offered := "nothing"
	if len(e.Offered) > 0 {
		offered = strings.Join(e.Offered, ", ")
	}
	return fmt.Sprintf("%v: offered %s; supported %s", ErrNoCommonCodec, offered, strings.Join(e.Supported, ", "))
}

// Unwrap returns ErrNoCommonCodec.
func (e *NoCommonCodecError) Unwrap() error { return ErrNoCommonCodec }

// parseSDP checks the size and syntax of a session description and parses
// it.
func parseSDP(s string) (*sdp.SessionDescription, error) {
	if len(s) > MaxSDPSize {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d allowed", ErrInvalidSDP, len(s), MaxSDPSize)
	}
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidSDP)
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%w: not UTF-8 text", ErrInvalidSDP)
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSDP, err)
	}
	if len(sd.MediaDescriptions) == 0 {
		return nil, fmt.Errorf("%w: no media section", ErrInvalidSDP)
	}
	return &sd, nil
}

// sdpCodec is one codec of a media section, as its rtpmap names it.
type sdpCodec struct {
	name     string // encoding name, "VP8"
	rate     uint32
	channels uint16
}

func (c sdpCodec) String() string {
	s := c.name + "/" + strconv.FormatUint(uint64(c.rate), 10)
	if c.channels > 1 {
		s += "/" + strconv.Itoa(int(c.channels))
	}
	return s
}

// staticCodecs are the static payload types of RFC 3551 (section 6) a
// section may list without an rtpmap.
var staticCodecs = map[string]sdpCodec{
	"0": {"PCMU", 8000, 1},
	"8": {"PCMA", 8000, 1},
	"9": {"G722", 8000, 1},
}

// mediaCodecs returns the codecs a media section offers, in its order.
func mediaCodecs(md *sdp.MediaDescription) []sdpCodec {
	maps := make(map[string]sdpCodec)
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		parts := strings.Split(strings.TrimSpace(enc), "/")
		if len(parts) < 2 {
			continue
		}
		rate, err := strconv.ParseUint(parts[1], 10, 32)
		if err != nil {
			continue
		}
		c := sdpCodec{name: parts[0], rate: uint32(rate), channels: 1}
		if len(parts) > 2 {
			if ch, err := strconv.ParseUint(parts[2], 10, 16); err == nil {
				c.channels = uint16(ch)
			}
		}
		maps[pt] = c
	}
	var r []sdpCodec
	for _, f := range md.MediaName.Formats {
		if c, ok := maps[f]; ok {
			r = append(r, c)
		} else if c, ok := staticCodecs[f]; ok {
			r = append(r, c)
		}
	}
	return r
}

// supports reports whether the endpoint's codec cd is the SDP codec c.
func supports(cd codec.Codec, k element.Kind, c sdpCodec) bool {
	_, name, _ := strings.Cut(cd.MIME, "/")
	return cd.Kind == k && strings.EqualFold(name, c.name) && cd.ClockRate == c.rate
}

// sectionKind maps an SDP media type to a kind, or 0.
func sectionKind(media string) element.Kind {
	switch media {
	case "audio":
		return element.KindAudio
	case "video":
		return element.KindVideo
	case "application":
		return element.KindData
	}
	return 0
}

// checkOffer makes sure the offer has something the endpoint can take: an
// audio or video section with a codec in common with a declared transceiver
// of its kind, or a data channel section when the endpoint declared one. It
// returns the sections it will reject, to report, and the indexes of the
// audio and video sections to reject: those with no codec in common, and
// those of a kind the endpoint did not declare.
func (c *config) checkOffer(sd *sdp.SessionDescription) (rejected []string, reject []int, err error) {
	var offered []string
	accepted := 0
	for i, md := range sd.MediaDescriptions {
		k := sectionKind(md.MediaName.Media)
		if md.MediaName.Port.Value == 0 {
			continue // rejected or stopped by the offerer
		}
		switch k {
		case element.KindData:
			if len(c.dataLabels) > 0 {
				accepted++
			}
			continue
		case 0:
			rejected = append(rejected, fmt.Sprintf("section %d: unknown media %q", i, md.MediaName.Media))
			continue
		}
		codecs := mediaCodecs(md)
		var names []string
		common := false
		for _, sc := range codecs {
			names = append(names, sc.String())
			for _, cd := range c.codecsOf(k) {
				if supports(cd, k, sc) {
					common = true
				}
			}
		}
		if len(names) == 0 {
			names = []string{"no codec"}
		}
		offered = append(offered, k.String()+" "+strings.Join(names, " "))
		if !common {
			reject = append(reject, i)
			rejected = append(rejected, fmt.Sprintf("section %d: no codec in common: offered %s", i, strings.Join(names, ", ")))
			continue
		}
		if !c.declares(k) {
			reject = append(reject, i)
			rejected = append(rejected, fmt.Sprintf("section %d: %s not declared", i, k))
			continue
		}
		accepted++
	}
	if accepted == 0 {
		return rejected, reject, &NoCommonCodecError{Offered: offered, Supported: c.supported()}
	}
	return rejected, reject, nil
}

// directions are the SDP direction attributes (RFC 8866, section 6.7).
var directions = map[string]bool{"sendrecv": true, "sendonly": true, "recvonly": true, "inactive": true}

// inactivate marks the sections of sd at idx inactive and returns the SDP.
// pion pairs a remote section with a local transceiver by kind and
// direction alone, and fails the whole answer when the transceiver it picked
// has no codec for the section; no local transceiver takes an inactive
// section, so pion answers it rejected (port 0), as it must.
func inactivate(sd *sdp.SessionDescription, idx []int) (string, error) {
	for _, i := range idx {
		md := sd.MediaDescriptions[i]
		attrs := md.Attributes[:0:0]
		for _, a := range md.Attributes {
			if !directions[a.Key] {
				attrs = append(attrs, a)
			}
		}
		md.Attributes = append(attrs, sdp.NewPropertyAttribute("inactive"))
	}
	b, err := sd.Marshal()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidSDP, err)
	}
	return string(b), nil
}

// declares reports whether a transceiver of kind k was declared.
func (c *config) declares(k element.Kind) bool {
	for _, m := range c.media {
		if m.kind == k {
			return true
		}
	}
	return false
}

// supported lists what the endpoint takes, for NoCommonCodecError.
func (c *config) supported() []string {
	var r []string
	for _, m := range []element.Kind{element.KindAudio, element.KindVideo} {
		if !c.declares(m) {
			continue
		}
		for _, cd := range c.codecsOf(m) {
			_, name, _ := strings.Cut(cd.MIME, "/")
			r = append(r, m.String()+" "+sdpCodec{name: name, rate: cd.ClockRate, channels: cd.Channels}.String())
		}
	}
	if len(c.dataLabels) > 0 {
		r = append(r, "data channel")
	}
	return r
}

// checkTransport makes sure every section in use of sd has ICE credentials
// and a DTLS fingerprint, at its level or the session's (RFC 8839, section
// 5.4; RFC 8122, section 5): what pion checks only after it has taken a
// description into its signaling state.
func checkTransport(sd *sdp.SessionDescription) error {
	for _, key := range []string{"ice-ufrag", "ice-pwd", "fingerprint"} {
		if _, ok := sd.Attribute(key); ok {
			continue
		}
		for i, md := range sd.MediaDescriptions {
			if md.MediaName.Port.Value == 0 {
				continue
			}
			if _, ok := md.Attribute(key); !ok {
				return fmt.Errorf("%w: section %d has no %s", ErrInvalidSDP, i, key)
			}
		}
	}
	return nil
}
