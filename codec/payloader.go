package codec

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/medley-go/medley/element"
)

// packetizer is the codec half of a Payloader: it cuts one access unit
// into RTP payloads, each written into a packet the payloader hands out
// (see Payloader.packet and Payloader.commit). An error must come before
// the first commit: a frame is sent whole or not at all.
type packetizer interface {
	packetize(p *Payloader, au []byte, key bool) error
}

var errEmptyFrame = errors.New("empty frame")

// newPacketizer returns the packetizer of a codec for RTP caps out.
func newPacketizer(c Codec, out element.Caps, cfg config) (packetizer, error) {
	switch c.MIME {
	case MIMEVP8:
		return &vp8Packetizer{pictureID: cfg.pictureID}, nil
	case MIMEVP9:
		return &vp9Packetizer{pictureID: cfg.pictureID}, nil
	case MIMEH264:
		mode := H264PacketizationMode(out.Fmtp)
		if mode > 1 {
			return nil, fmt.Errorf("codec: H.264 packetization-mode %d (interleaved) is not supported", mode)
		}
		return &h264Packetizer{singleNAL: mode == 0}, nil
	case MIMEAV1:
		return &av1Packetizer{}, nil
	case MIMEOpus:
		return opusPacketizer{}, nil
	case MIMEPCMU, MIMEPCMA, MIMEG722:
		return byteAudioPacketizer{channels: int(c.Channels)}, nil
	}
	return nil, fmt.Errorf("%w: no payloader for %s", ErrUnknownCodec, c.MIME)
}

// Payloader turns encoded samples of one codec (element.FormatSample, one
// access unit per buffer) into RTP packets (element.FormatRTP) of at most
// the MTU (WithMTU), with a sequence number, SSRC and payload type of its
// own. The RTP timestamp is the sample's PTS at the codec's clock rate,
// offset by a random base (WithTimestamp). For video the marker bit and
// FlagEndOfFrame are set on the last packet of a frame; for audio the
// marker is set on the stream's first packet (the start of a talkspurt)
// and FlagEndOfFrame on each sample's last packet. FlagKeyframe marks the
// first packet of a keyframe sample.
//
// Upstream events at its src pad (keyframe requests from receivers, bitrate
// hints) go on upstream. Its sink pad is inline unless WithQueue says
// otherwise. Packets come from a BufferPool; the payloader Unrefs each
// after Push.
type Payloader struct {
	element.Base
	codec     Codec
	pk        packetizer
	sink, src *element.Pad
	pool      *element.BufferPool
	budget    int // payload bytes per packet: MTU less the RTP header

	pt     uint8
	ssrc   uint32
	seq    uint16
	tsBase uint32

	// Frame state, used only on the sink pad's goroutine.
	ts       uint32
	pts      time.Duration
	key      bool
	n        int // packets committed for this frame
	pending  *element.Buffer
	building *element.Buffer
	started  bool

	frames, packets, errs atomic.Uint64
}

// PayloaderStats are a Payloader's counters.
type PayloaderStats struct {
	// Frames and Packets count the samples taken and the packets pushed.
	Frames, Packets uint64
	// Errors counts samples that could not be payloaded (and were dropped).
	Errors uint64
}

// NewPayloader returns a payloader named name producing RTP caps out (whose
// codec and, for H.264, packetization-mode it follows). Its sink pad
// accepts the codec's sample caps; its src pad's caps are set to out.
func NewPayloader(name string, out element.Caps, opts ...Option) (*Payloader, error) {
	c, ok := Lookup(out.Codec)
	if !ok || !c.RTP {
		return nil, fmt.Errorf("%w: no payloader for %q", ErrUnknownCodec, out.Codec)
	}
	if out.Format != element.FormatRTP || out.Kind != c.Kind {
		return nil, fmt.Errorf("codec: payloader %s: caps %v are not %s RTP caps", name, out, c.MIME)
	}
	out.Codec = c.MIME
	if out.ClockRate == 0 {
		out.ClockRate = c.ClockRate
	}
	return newPayloader(name, c, out, opts...)
}

func newPayloader(name string, c Codec, out element.Caps, opts ...Option) (*Payloader, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	pk, err := newPacketizer(c, out, cfg)
	if err != nil {
		return nil, err
	}
	p := &Payloader{
		Base:   element.NewBase(name),
		codec:  c,
		pk:     pk,
		budget: cfg.mtu - rtpHeaderSize,
		pt:     c.PayloadType,
		ssrc:   cfg.ssrc,
		seq:    cfg.seq,
		tsBase: cfg.timestamp,
		pool:   element.NewBufferPool(cfg.mtu),
	}
	if cfg.payloadType >= 0 {
		p.pt = uint8(cfg.payloadType)
	}
	in := element.Caps{Kind: c.Kind, Format: element.FormatSample, Codec: c.MIME}
	p.sink = element.NewSinkPad("sink", element.CapsList{in}, p.chain, cfg.sinkPadOptions(p.sinkEvent)...)
	p.src = element.NewSrcPad("src", element.CapsList{out}, element.WithEventHandler(func(ev element.Event) {
		p.sink.SendUpstream(ev)
	}))
	p.AddPad(p.sink, p.src)
	if err := p.src.SetCaps(out); err != nil {
		return nil, err
	}
	return p, nil
}

// Codec returns the codec the payloader writes.
func (p *Payloader) Codec() Codec { return p.codec }

// SinkPad returns the input pad (samples).
func (p *Payloader) SinkPad() *element.Pad { return p.sink }

// SrcPad returns the output pad (RTP).
func (p *Payloader) SrcPad() *element.Pad { return p.src }

// SSRC returns the SSRC the payloader writes.
func (p *Payloader) SSRC() uint32 { return p.ssrc }

// PayloadType returns the payload type the payloader writes.
func (p *Payloader) PayloadType() uint8 { return p.pt }

// Stats returns the payloader's counters.
func (p *Payloader) Stats() PayloaderStats {
	return PayloaderStats{Frames: p.frames.Load(), Packets: p.packets.Load(), Errors: p.errs.Load()}
}

func (p *Payloader) sinkEvent(ev element.Event) {
	if _, ok := ev.(element.CapsEvent); ok {
		return
	}
	_ = p.src.PushEvent(ev)
}

// chain takes one sample.
func (p *Payloader) chain(b *element.Buffer) error {
	p.ts = p.tsBase + uint32(durationToTicks(b.PTS, p.codec.ClockRate))
	p.pts, p.key, p.n = b.PTS, b.Keyframe(), 0
	err := p.pk.packetize(p, b.Data, p.key)
	if p.building != nil {
		p.building.Unref()
		p.building = nil
	}
	if err != nil {
		if p.pending != nil {
			p.pending.Unref()
			p.pending = nil
		}
		p.errs.Add(1)
		return fmt.Errorf("codec: %s payloader: %w", p.codec.Name, err)
	}
	if last := p.pending; last != nil {
		p.pending = nil
		last.Flags |= element.FlagEndOfFrame
		if p.codec.MarkerEndsFrame {
			last.RTP.Marker = true
		}
		p.push(last)
	}
	p.packets.Add(uint64(p.n))
	p.frames.Add(1)
	return nil
}

// packet returns an empty payload of capacity at least the budget, to
// append one packet's payload to and hand to commit.
func (p *Payloader) packet() []byte {
	if p.building == nil {
		p.building = p.pool.Get()
	}
	if cap(p.building.Data) < p.budget {
		p.building.Data = make([]byte, 0, p.budget)
	}
	return p.building.Data[:0]
}

// commit makes payload, built in the slice packet returned, the next RTP
// packet of the frame, tsOffset ticks after the frame's timestamp. The
// packet before it, now known not to be the frame's last, is pushed.
func (p *Payloader) commit(payload []byte, tsOffset uint32) {
	b := p.building
	p.building = nil
	b.Data = payload
	h := &b.RTP
	h.Version = 2
	h.PayloadType = p.pt
	h.SequenceNumber = p.seq
	h.Timestamp = p.ts + tsOffset
	h.SSRC = p.ssrc
	p.seq++
	if !p.started {
		p.started = true
		h.Marker = !p.codec.MarkerEndsFrame // audio: start of a talkspurt
	}
	b.PTS = p.pts
	if p.n == 0 && p.key {
		b.Flags |= element.FlagKeyframe
	}
	p.n++
	if prev := p.pending; prev != nil {
		p.pending = b
		p.push(prev)
		return
	}
	p.pending = b
}

func (p *Payloader) push(b *element.Buffer) {
	p.src.Push(b)
	b.Unref()
}

// durationToTicks converts a duration to RTP clock ticks, rounded to the
// nearest, without overflowing for streams of any length.
func durationToTicks(d time.Duration, rate uint32) int64 {
	r := int64(rate)
	sec, rem := int64(d/time.Second), int64(d%time.Second)
	return sec*r + (rem*r+int64(time.Second)/2)/int64(time.Second)
}

// splitEven returns how to cut size bytes into n pieces of at most limit
// bytes as evenly as possible: each piece is each bytes, the first extra of
// them one more, so that no packet is a tiny tail.
func splitEven(size, limit int) (n, each, extra int) {
	n = (size + limit - 1) / limit
	if n == 0 {
		return 0, 0, 0
	}
	return n, size / n, size % n
}
