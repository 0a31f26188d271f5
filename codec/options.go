package codec

import (
	"fmt"
	"math/rand/v2"
	"time"

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
	inline       bool

	// Decoders and encoders.
	threads int
	// Encoders.
	bitrate    int64
	kfInterval time.Duration
	preset     string
	speed      int
	profile    string
	codecOpts  map[string]string
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
// drained by its own goroutine. Without it a payloader's or depayloader's
// sink pad is inline: the element runs on the goroutine of the element
// feeding it, which is right for these cheap elements behind a queue of
// their own. Decoders, encoders, scalers and resamplers are heavy and have
// a queue by default (DefaultFrameQueueSize for raw video, else
// DefaultSampleQueueSize, policy Live); Block suits batch work, where
// nothing may be dropped.
func WithQueue(size int, policy element.QueuePolicy) Option {
	return func(c *config) error {
		if size <= 0 {
			return fmt.Errorf("codec: queue size %d must be positive", size)
		}
		c.queued, c.queueSize, c.queuePolicy = true, size, policy
		c.inline = false
		return nil
	}
}

// WithInline makes a decoder's, encoder's, scaler's or resampler's sink pad
// inline: the element then works on the goroutine of the element feeding
// it, for hosts that run a whole chain on one goroutine of their own. It
// must then be fed by one goroutine at a time (a queue upstream, or a
// source).
func WithInline() Option {
	return func(c *config) error { c.inline, c.queued = true, false; return nil }
}

// Default queue sizes of the heavy elements' sink pads.
const (
	// DefaultFrameQueueSize bounds the raw video frames waiting for an
	// encoder or a scaler: a quarter of a second at 30 fps, and 24 MB of
	// 1080p, since raw frames are large.
	DefaultFrameQueueSize = 8
	// DefaultSampleQueueSize bounds the samples waiting for a decoder
	// (two seconds of 30 fps video) and the raw audio frames waiting for
	// an encoder or a resampler (1.3 s of 20 ms frames).
	DefaultSampleQueueSize = 64
)

// WithThreads sets the number of FFmpeg threads of a decoder or an encoder
// (1 by default). FFmpeg's threads are invisible to the Go scheduler: with
// many streams on few cores keep 1. Decoders and encoders only.
func WithThreads(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 64 {
			return fmt.Errorf("codec: threads %d out of range [1, 64]", n)
		}
		c.threads = n
		return nil
	}
}

// WithBitrate sets an encoder's target bit rate in bits per second (the
// default depends on the codec and, for video, the frame size; see
// DefaultBitrate). Bitrate hints from downstream lower it, never raise it.
// Encoders only; G.711 and G.722 have fixed rates.
func WithBitrate(bps int64) Option {
	return func(c *config) error {
		if bps <= 0 {
			return fmt.Errorf("codec: bit rate %d must be positive", bps)
		}
		c.bitrate = bps
		return nil
	}
}

// WithKeyframeInterval sets the longest time between an encoder's
// keyframes (DefaultKeyframeInterval); keyframe requests make them sooner.
// Encoders of video only.
func WithKeyframeInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("codec: keyframe interval %v must be positive", d)
		}
		c.kfInterval = d
		return nil
	}
}

// DefaultKeyframeInterval is the longest time between an encoder's
// keyframes unless WithKeyframeInterval says otherwise. Real-time
// receivers ask for keyframes when they need them; the interval bounds how
// long a receiver that cannot ask waits.
const DefaultKeyframeInterval = 3 * time.Second

// WithPreset sets libx264's preset ("veryfast" by default; "ultrafast"
// is about twice as fast for a lower quality). Encoders of H.264 only;
// the preset is always tuned for zero latency.
func WithPreset(preset string) Option {
	return func(c *config) error { c.preset = preset; return nil }
}

// WithSpeed sets the speed of libvpx and libaom (cpu-used, 8 by default,
// deadline always realtime) and of SVT-AV1 (preset, 12 by default): higher
// is faster, at a lower quality. Encoders of VP8, VP9 and AV1 only.
func WithSpeed(speed int) Option {
	return func(c *config) error { c.speed = speed; return nil }
}

// WithProfile sets the H.264 profile libx264 makes: "constrained_baseline"
// (the default: what every WebRTC peer decodes), "main" or "high". Encoders
// of H.264 only.
func WithProfile(profile string) Option {
	return func(c *config) error { c.profile = profile; return nil }
}

// WithCodecOption passes a private option to the FFmpeg encoder or decoder
// ("x264-params", "application", "error-resilient", ...); a key the codec
// does not know makes the element fail to open, with an Error message.
// Decoders and encoders.
func WithCodecOption(key, value string) Option {
	return func(c *config) error {
		if c.codecOpts == nil {
			c.codecOpts = make(map[string]string)
		}
		c.codecOpts[key] = value
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
