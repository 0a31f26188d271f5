package endpoint

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
)

// MediaDirection says which way a declared audio or video transceiver
// carries media, seen from the endpoint.
type MediaDirection uint8

// The media directions.
const (
	// SendRecv receives from the peer (a src pad) and sends to it (a sink
	// pad).
	SendRecv MediaDirection = iota + 1
	// SendOnly only sends to the peer: a sink pad.
	SendOnly
	// RecvOnly only receives from the peer: a src pad.
	RecvOnly
)

func (d MediaDirection) String() string {
	switch d {
	case SendRecv:
		return "sendrecv"
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

func (d MediaDirection) sends() bool    { return d == SendRecv || d == SendOnly }
func (d MediaDirection) receives() bool { return d == SendRecv || d == RecvOnly }

func (d MediaDirection) transceiver() webrtc.RTPTransceiverDirection {
	switch d {
	case SendOnly:
		return webrtc.RTPTransceiverDirectionSendonly
	case RecvOnly:
		return webrtc.RTPTransceiverDirectionRecvonly
	}
	return webrtc.RTPTransceiverDirectionSendrecv
}

// Option configures a WebRTC endpoint. Options apply in order over the
// defaults; NewWebRTC then validates the whole.
type Option func(*config) error

// mediaDecl is one declared transceiver.
type mediaDecl struct {
	kind element.Kind
	dir  MediaDirection
}

type config struct {
	iceServers       []webrtc.ICEServer
	portMin, portMax uint16
	udpMux           ice.UDPMux
	tcpMux           ice.TCPMux
	loopback         bool
	codecs           []codec.Codec
	media            []mediaDecl
	dataLabels       []string
	noMedia          bool
	completeSDP      bool
	iceTimeouts      *[3]time.Duration
	bwe              bool
	minBitrate       int
	initialBitrate   int
	maxBitrate       int
	kfInterval       time.Duration
	queueSize        int
	closeOnFailure   bool
}

// Bitrate defaults for the send-side bandwidth estimator, in bits per
// second: start where a 360p VP8 stream looks acceptable, never ask for less
// than an audio stream and a thumbnail need, and stop at what one HD stream
// can use.
const (
	DefaultMinBitrate     = 100_000
	DefaultInitialBitrate = 1_000_000
	DefaultMaxBitrate     = 10_000_000
)

func defaultConfig() config {
	return config{
		bwe:            true,
		minBitrate:     DefaultMinBitrate,
		initialBitrate: DefaultInitialBitrate,
		maxBitrate:     DefaultMaxBitrate,
		kfInterval:     element.DefaultKeyframeInterval,
		closeOnFailure: true,
	}
}

// WithICEServers sets the STUN and TURN servers used to gather candidates.
// Without it the endpoint offers host candidates only.
func WithICEServers(servers ...webrtc.ICEServer) Option {
	return func(c *config) error {
		for _, s := range servers {
			if len(s.URLs) == 0 {
				return errors.New("endpoint: WithICEServers: a server without URLs")
			}
		}
		c.iceServers = append(c.iceServers, servers...)
		return nil
	}
}

// WithUDPPortRange limits the local UDP ports ICE gathers candidates on to
// [min, max].
func WithUDPPortRange(min, max uint16) Option {
	return func(c *config) error {
		if min == 0 || max < min {
			return fmt.Errorf("endpoint: WithUDPPortRange(%d, %d): need 0 < min <= max", min, max)
		}
		c.portMin, c.portMax = min, max
		return nil
	}
}

// WithUDPMux makes ICE use one shared UDP socket, so that every endpoint
// of the process listens on a single port. Make the mux once with
// webrtc.NewICEUDPMux (or ice.NewMultiUDPMuxFromPort) and give it to every
// endpoint; the host closes it after the last endpoint.
func WithUDPMux(mux ice.UDPMux) Option {
	return func(c *config) error {
		if mux == nil {
			return errors.New("endpoint: WithUDPMux(nil)")
		}
		c.udpMux = mux
		return nil
	}
}

// WithICETCP adds ICE-TCP candidates (passive, RFC 6544) served by a
// shared TCP listener, for peers whose UDP is blocked. Make the mux with
// webrtc.NewICETCPMux; the host closes it after the last endpoint.
func WithICETCP(mux ice.TCPMux) Option {
	return func(c *config) error {
		if mux == nil {
			return errors.New("endpoint: WithICETCP(nil)")
		}
		c.tcpMux = mux
		return nil
	}
}

// WithICELoopback makes the endpoint gather and accept only loopback
// candidates (127.0.0.0/8, ::1), with no STUN and no mDNS: what tests and
// demos on one machine need, and a guarantee that their traffic never
// leaves it.
func WithICELoopback() Option {
	return func(c *config) error { c.loopback = true; return nil }
}

// WithICETimeouts sets how long the connection may stay silent before ICE
// reports it disconnected, then failed, and how often ICE sends keepalives
// when no media flows (pion's defaults: 5 s, 25 s, 2 s).
func WithICETimeouts(disconnected, failed, keepalive time.Duration) Option {
	return func(c *config) error {
		if disconnected <= 0 || failed <= 0 || keepalive <= 0 {
			return fmt.Errorf("endpoint: WithICETimeouts(%v, %v, %v): must be positive", disconnected, failed, keepalive)
		}
		c.iceTimeouts = &[3]time.Duration{disconnected, failed, keepalive}
		return nil
	}
}

// WithCodecs sets the codecs the endpoint negotiates, by MIME type
// ("video/VP8", "audio/opus"), most preferred first for each kind. Without
// it every codec that package codec carries over RTP is offered, in its
// registry order (VP8, VP9, H.264, AV1; Opus, PCMU, PCMA, G.722).
func WithCodecs(mimes ...string) Option {
	return func(c *config) error {
		if len(mimes) == 0 {
			return errors.New("endpoint: WithCodecs: no codec")
		}
		c.codecs = c.codecs[:0]
		for _, m := range mimes {
			cd, ok := codec.Lookup(m)
			if !ok || !cd.RTP {
				return fmt.Errorf("endpoint: WithCodecs %q: %w", m, codec.ErrUnknownCodec)
			}
			for _, o := range c.codecs {
				if o.MIME == cd.MIME {
					return fmt.Errorf("endpoint: WithCodecs: %s twice", cd.MIME)
				}
			}
			c.codecs = append(c.codecs, cd)
		}
		return nil
	}
}

// WithAudio declares one audio transceiver: a src pad "audio_N" if it
// receives, a sink pad "audio_sink_N" if it sends (N counts the audio
// transceivers from 0). Without any WithAudio or WithVideo the endpoint
// declares one audio and one video transceiver, both SendRecv (see
// WithoutMedia).
func WithAudio(dir MediaDirection) Option {
	return withMedia(element.KindAudio, dir)
}

// WithVideo declares one video transceiver: a src pad "video_N" if it
// receives, a sink pad "video_sink_N" if it sends. See WithAudio.
func WithVideo(dir MediaDirection) Option {
	return withMedia(element.KindVideo, dir)
}

func withMedia(k element.Kind, dir MediaDirection) Option {
	return func(c *config) error {
		if dir < SendRecv || dir > RecvOnly {
			return fmt.Errorf("endpoint: With%s: invalid %v", k, dir)
		}
		c.media = append(c.media, mediaDecl{kind: k, dir: dir})
		return nil
	}
}

// WithoutMedia declares no audio or video transceiver by default: for an
// endpoint that carries data channels only, or only the transceivers
// declared by WithAudio and WithVideo.
func WithoutMedia() Option {
	return func(c *config) error { c.noMedia = true; return nil }
}

// WithDataChannel declares a data channel of that label, carried by a src
// pad "data_N" (the messages the peer sends) and a sink pad "data_sink_N"
// (messages to send it). The endpoint opens the channel when it makes the
// offer; when the peer offers, the first channel the peer opens with that
// label is bound (an empty label binds the first channel of any label).
func WithDataChannel(label string) Option {
	return func(c *config) error {
		for _, l := range c.dataLabels {
			if l == label {
				return fmt.Errorf("endpoint: WithDataChannel(%q) twice", label)
			}
		}
		c.dataLabels = append(c.dataLabels, label)
		return nil
	}
}

// WithCompleteSDP makes ProcessOffer and GenerateOffer wait until ICE has
// gathered every candidate, so that the SDP they return is complete: for
// peers that do not trickle (WHIP, WHEP, plain HTTP signalling).
// IceCandidateFound messages are posted all the same.
func WithCompleteSDP() Option {
	return func(c *config) error { c.completeSDP = true; return nil }
}

// WithSendBitrate bounds the send-side bandwidth estimate (TWCC and Google
// congestion control), in bits per second, and sets where it starts. The
// estimate reaches the sources feeding the video sink pads as
// element.BitrateHint events.
func WithSendBitrate(min, initial, max int) Option {
	return func(c *config) error {
		if min <= 0 || initial < min || max < initial {
			return fmt.Errorf("endpoint: WithSendBitrate(%d, %d, %d): need 0 < min <= initial <= max", min, initial, max)
		}
		c.bwe = true
		c.minBitrate, c.initialBitrate, c.maxBitrate = min, initial, max
		return nil
	}
}

// WithoutBandwidthEstimation turns the send-side bandwidth estimator off:
// the packets sent carry no transport-cc sequence numbers, so the peer
// sends no feedback about them; REMB messages from the peer, if any, still
// become bitrate hints.
func WithoutBandwidthEstimation() Option {
	return func(c *config) error { c.bwe = false; return nil }
}

// WithKeyframeRequestInterval sets how often, at most, a src pad passes
// keyframe requests from the pipeline on to the peer as RTCP PLI
// (element.DefaultKeyframeInterval).
func WithKeyframeRequestInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("endpoint: WithKeyframeRequestInterval(%v): negative", d)
		}
		c.kfInterval = d
		return nil
	}
}

// WithSinkQueue sets the queue size (in buffers) of the endpoint's sink
// pads (element.DefaultQueueSize). Their policy is element.Live.
func WithSinkQueue(size int) Option {
	return func(c *config) error {
		if size <= 0 {
			return fmt.Errorf("endpoint: WithSinkQueue(%d): must be positive", size)
		}
		c.queueSize = size
		return nil
	}
}

// WithoutCloseOnFailure keeps the peer connection open when it fails
// (ICE found no path, or lost it for the failed timeout), for a host that
// restarts ICE itself. By default a failed connection is closed: its
// goroutines end and its src pads send end of stream.
func WithoutCloseOnFailure() Option {
	return func(c *config) error { c.closeOnFailure = false; return nil }
}

func (c *config) validate() error {
	if len(c.codecs) == 0 {
		for _, cd := range codec.Codecs() {
			if cd.RTP && (cd.Kind == element.KindAudio || cd.Kind == element.KindVideo) {
				c.codecs = append(c.codecs, cd)
			}
		}
	}
	if len(c.media) == 0 && !c.noMedia {
		c.media = []mediaDecl{{element.KindAudio, SendRecv}, {element.KindVideo, SendRecv}}
	}
	for _, m := range c.media {
		if len(c.codecsOf(m.kind)) == 0 {
			return fmt.Errorf("endpoint: %s declared but no %s codec configured: %w", m.kind, m.kind, ErrNoCommonCodec)
		}
	}
	if len(c.media) == 0 && len(c.dataLabels) == 0 {
		return errors.New("endpoint: WithoutMedia and no data channel: nothing to negotiate")
	}
	if c.loopback && len(c.iceServers) > 0 {
		return errors.New("endpoint: WithICELoopback excludes ICE servers")
	}
	return nil
}

// codecsOf returns the configured codecs of kind k, in preference order.
func (c *config) codecsOf(k element.Kind) []codec.Codec {
	var r []codec.Codec
	for _, cd := range c.codecs {
		if cd.Kind == k {
			r = append(r, cd)
		}
	}
	return r
}

// isLoopback is the address filter of WithICELoopback.
func isLoopback(ip net.IP) bool { return ip.IsLoopback() }
