package codec

import (
	"fmt"
	"math/rand/v2"

	"github.com/medley-go/medley/element"
)

// DefaultMTU is the largest RTP packet, header included, a payloader makes
// unless told otherwise: pion/webrtc's outbound size, which leaves room for
// SRTP, header extensions, UDP, IP and a TURN relay within a 1280-byte IPv6
// path MTU.
const DefaultMTU = 1200

// rtpHeaderSize is the fixed RTP header a payloader's packets carry (no
// CSRC, no extension); the MTU less it is the payload budget.
const rtpHeaderSize = 12

// minMTU is the smallest MTU a payloader accepts: the RTP header, the
// largest payload descriptor medley writes (VP9 with its scalability
// structure, 11 bytes) and a few bytes of media.
const minMTU = 64

// MaxFrameSize is the default bound on one access unit a depayloader
// assembles: 4 MiB is more than any real-time encoder makes for a 4K
// keyframe, and keeps a stream of packets without marker bits (or a hostile
// peer) from growing a buffer without end. Larger frames are dropped.
const MaxFrameSize = 4 << 20

// Option configures a Payloader or a Depayloader. Options that concern only
// one of them say so and are ignored by the other.
type Option func(*config) error

type config struct {
	mtu          int
	payloadType  int // -1: the codec's
	ssrc         uint32
	ssrcSet      bool
	seq          uint16
	seqSet       bool
	timestamp    uint32
	tsSet        bool
	maxFrame     int
	queueSize    int
	queuePolicy  element.QueuePolicy
	queued       bool
	pictureIDSet bool
	pictureID    uint16
}

// WithMTU sets the largest RTP packet a payloader makes, its 12-byte header
// included (DefaultMTU). Payloaders only.
func WithMTU(mtu int) Option {
	return func(c *config) error {
		if mtu < minMTU || mtu > 65535 {
			return fmt.Errorf("codec: MTU %d out of range [%d, 65535]", mtu, minMTU)
		}
		c.mtu = mtu
		return nil
	}
}

// WithPayloadType sets the RTP payload type a payloader writes (the codec's
// PayloadType by default). Payloaders only.
func WithPayloadType(pt uint8) Option {
	return func(c *config) error {
		if pt > 127 {
			return fmt.Errorf("codec: payload type %d out of range [0, 127]", pt)
		}
		c.payloadType = int(pt)
		return nil
	}
}

// WithSSRC sets the SSRC a payloader writes (random by default).
// Payloaders only.
func WithSSRC(ssrc uint32) Option {
	return func(c *config) error { c.ssrc, c.ssrcSet = ssrc, true; return nil }
}

// WithSequenceNumber sets a payloader's first RTP sequence number (random by
// default, as RFC 3550 section 5.1 asks). Payloaders only.
func WithSequenceNumber(seq uint16) Option {
	return func(c *config) error { c.seq, c.seqSet = seq, true; return nil }
}

// WithTimestamp sets the RTP timestamp a payloader writes for PTS 0 (random
// by default). Payloaders only.
func WithTimestamp(ts uint32) Option {
	return func(c *config) error { c.timestamp, c.tsSet = ts, true; return nil }
}

// WithPictureID sets the first VP8/VP9 picture ID a payloader writes
// (random by default; 15 bits). Payloaders only.
func WithPictureID(id uint16) Option {
	return func(c *config) error { c.pictureID, c.pictureIDSet = id&0x7fff, true; return nil }
}

// WithMaxFrameSize bounds the access units a depayloader assembles
// (MaxFrameSize); larger ones are dropped. Depayloaders only.
func WithMaxFrameSize(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("codec: max frame size %d must be positive", n)
		}
		c.maxFrame = n
		return nil
	}
}

// WithQueue gives the element's sink pad a queue of that size and policy,
// drained by its own goroutine. Without it the sink pad is inline: the
// element runs on the goroutine of the element feeding it, which is right
// for these cheap elements behind a queue of their own.
func WithQueue(size int, policy element.QueuePolicy) Option {
	return func(c *config) error {
		if size <= 0 {
			return fmt.Errorf("codec: queue size %d must be positive", size)
		}
		c.queued, c.queueSize, c.queuePolicy = true, size, policy
		return nil
	}
}

func newConfig(opts []Option) (config, error) {
	c := config{mtu: DefaultMTU, payloadType: -1, maxFrame: MaxFrameSize}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return c, err
		}
	}
	if !c.ssrcSet {
		c.ssrc = rand.Uint32()
	}
	if !c.seqSet {
		c.seq = uint16(rand.Uint32())
	}
	if !c.tsSet {
		c.timestamp = rand.Uint32()
	}
	if !c.pictureIDSet {
		c.pictureID = uint16(rand.Uint32()) & 0x7fff
	}
	return c, nil
}

// sinkPadOptions returns the pad options of the element's sink pad.
func (c config) sinkPadOptions(events element.EventFunc) []element.PadOption {
	opts := []element.PadOption{element.WithEventHandler(events)}
	if c.queued {
		return append(opts, element.WithQueue(c.queueSize, c.queuePolicy))
	}
	return append(opts, element.Inline())
}
