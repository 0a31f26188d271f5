package codec

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/medley-go/medley/element"
)

// pktInfo is what a depacketizer learns from one RTP payload.
type pktInfo uint8

const (
	// infoStart: the payload is the first of a frame (VP8 S=1 and PID=0,
	// VP9 B=1, an H.264 access unit's first NAL unit...). After a loss, a
	// frame whose first packet does not say so is dropped: its head may
	// have been lost.
	infoStart pktInfo = 1 << iota
	// infoKey: the payload shows its frame is a keyframe.
	infoKey
)

// depacketizer is the codec half of a Depayloader: it turns one codec's RTP
// payloads, in order and without gaps, into access units. It must not keep
// a payload beyond the call, nor panic on any input.
type depacketizer interface {
	// append appends the media of one RTP payload to au, the frame so
	// far (empty for the frame's first packet), and says what the payload
	// showed. An error drops the frame.
	append(au, payload []byte) ([]byte, pktInfo, error)
	// finish completes au after its last packet: an error if a fragment
	// is still open. It returns the frame's duration when the payload
	// tells it (audio), else 0.
	finish(au []byte) ([]byte, time.Duration, error)
	// reset forgets the frame in progress.
	reset()
}

// newDepacketizer returns the depacketizer of a codec.
func newDepacketizer(c Codec) (depacketizer, error) {
	switch c.MIME {
	case MIMEVP8:
		return &vp8Depacketizer{}, nil
	case MIMEVP9:
		return &vp9Depacketizer{}, nil
	case MIMEH264:
		return &h264Depacketizer{}, nil
	case MIMEAV1:
		return &av1Depacketizer{}, nil
	case MIMEOpus:
		return opusDepacketizer{}, nil
	case MIMEPCMU, MIMEPCMA, MIMEG722:
		return &byteAudioDepacketizer{channels: int(c.Channels)}, nil
	}
	return nil, fmt.Errorf("%w: no depayloader for %s", ErrUnknownCodec, c.MIME)
}

// lateWindow is how far back a sequence number may be and still count as a
// late or duplicated packet, ignored, rather than as a jump of the stream.
const lateWindow = 128

// Depayloader turns RTP packets of one codec (element.FormatRTP) into
// encoded samples (element.FormatSample): one access unit per buffer, with
// PTS from the RTP timestamp relative to the stream's first packet, added
// to that packet's PTS (so that streams that start at different times keep
// their offset, as a receiving endpoint stamps them on one clock),
// Duration when the payload tells it (audio), FlagKeyframe on keyframes and
// FlagDiscont on the first sample after a loss. An
// element.SenderClockEvent goes on with the samples, its PTS on their
// timeline (shifted as they are when the source changes).
//
// It expects packets in order (a jitter buffer, if any, sits upstream). A
// sequence gap drops the frame it damages: a frame is emitted only when
// every one of its packets arrived. For video the depayloader then drops
// every frame until the next keyframe, which it asks for upstream (a
// KeyframeRequest from its sink pad, again for every frame it drops while
// waiting; the src pad upstream merges them). It also waits for a keyframe
// at the start of the stream. Keyframe requests arriving at its src pad go
// on upstream.
//
// Its sink pad is inline unless WithQueue says otherwise. Samples come from
// a BufferPool; the depayloader Unrefs each after Push.
type Depayloader struct {
	element.Base
	codec     Codec
	dp        depacketizer
	sink, src *element.Pad
	pool      *element.BufferPool
	maxFrame  int

	// Stream state, used only on the sink pad's goroutine.
	started   bool
	ssrc      uint32
	lastSeq   uint16
	lastTS    uint32
	ext       int64         // lastTS extended to 64 bits, relative to the first packet
	basePTS   time.Duration // the PTS of the first packet
	au        *element.Buffer
	inFrame   bool
	auTS      uint32
	auExt     int64
	bad       bool // the frame in progress is damaged: drop it
	key       bool // the frame in progress is a keyframe
	asked     bool // a keyframe request went out for the frame in progress
	needStart bool // the next frame must prove it starts with its first packet
	waitKey   bool // video: drop frames until a keyframe
	discont   bool // flag the next sample FlagDiscont

	// clockShift is what the depayloader adds to the PTS of the packets of
	// the current source: 0 for the first source, the jump to its own
	// timeline for a later one. SenderClockEvents are shifted as much.
	clockShift time.Duration

	frames, dropped, lost, late, kfRequests atomic.Uint64
}

// DepayloaderStats are a Depayloader's counters.
type DepayloaderStats struct {
	// Frames counts the samples pushed.
	Frames uint64
	// DroppedFrames counts the frames dropped: damaged by a loss, malformed,
	// or not keyframes while waiting for one.
	DroppedFrames uint64
	// LostPackets counts the packets missing from sequence gaps.
	LostPackets uint64
	// LatePackets counts packets that arrived after a later one (or twice)
	// and were ignored.
	LatePackets uint64
	// KeyframeRequests counts the keyframe requests sent upstream (before
	// the src pad upstream merged them).
	KeyframeRequests uint64
}

// NewDepayloader returns a depayloader named name for the codec that in
// (RTP caps) names. Its sink pad accepts the codec's RTP caps, its src pad
// produces the codec's sample caps, already set.
func NewDepayloader(name string, in element.Caps, opts ...Option) (*Depayloader, error) {
	c, ok := Lookup(in.Codec)
	if !ok || !c.RTP {
		return nil, fmt.Errorf("%w: no depayloader for %q", ErrUnknownCodec, in.Codec)
	}
	return newDepayloader(name, c, sampleCaps(c, in), opts...)
}

// sampleCaps are the sample caps a depayloader of c makes from RTP caps in.
func sampleCaps(c Codec, in element.Caps) element.Caps {
	out := c.Caps(element.FormatSample)
	if in.Channels != 0 && c.MIME != MIMEOpus {
		out.Channels = in.Channels
	}
	return out
}

func newDepayloader(name string, c Codec, out element.Caps, opts ...Option) (*Depayloader, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	dp, err := newDepacketizer(c)
	if err != nil {
		return nil, err
	}
	d := &Depayloader{
		Base:      element.NewBase(name),
		codec:     c,
		dp:        dp,
		maxFrame:  cfg.maxFrame,
		needStart: true,
		waitKey:   c.Keyframes,
	}
	size := 2048
	if c.Kind == element.KindVideo {
		size = 64 << 10
	}
	d.pool = element.NewBufferPool(size)
	in := element.Caps{Kind: c.Kind, Format: element.FormatRTP, Codec: c.MIME, ClockRate: c.ClockRate}
	d.sink = element.NewSinkPad("sink", element.CapsList{in}, d.chain, cfg.sinkPadOptions(d.sinkEvent)...)
	d.src = element.NewSrcPad("src", element.CapsList{out}, element.WithEventHandler(func(ev element.Event) {
		d.sink.SendUpstream(ev)
	}))
	d.AddPad(d.sink, d.src)
	if err := d.src.SetCaps(out); err != nil {
		return nil, err
	}
	return d, nil
}

// Codec returns the codec the depayloader reads.
func (d *Depayloader) Codec() Codec { return d.codec }

// SinkPad returns the input pad (RTP).
func (d *Depayloader) SinkPad() *element.Pad { return d.sink }

// SrcPad returns the output pad (samples).
func (d *Depayloader) SrcPad() *element.Pad { return d.src }

// Stats returns the depayloader's counters.
func (d *Depayloader) Stats() DepayloaderStats {
	return DepayloaderStats{
		Frames:           d.frames.Load(),
		DroppedFrames:    d.dropped.Load(),
		LostPackets:      d.lost.Load(),
		LatePackets:      d.late.Load(),
		KeyframeRequests: d.kfRequests.Load(),
	}
}

func (d *Depayloader) sinkEvent(ev element.Event) {
	switch e := ev.(type) {
	case element.CapsEvent:
		// The src pad's caps are fixed; the pipeline renegotiates when the
		// codec changes.
	case element.DiscontEvent:
		// A queue upstream dropped packets; the sequence gap will count
		// them.
		d.loss()
	case element.EOSEvent:
		if d.inFrame {
			// No marker: the frame may be incomplete.
			d.discard()
			d.dropped.Add(1)
		}
		_ = d.src.PushEvent(ev)
	case element.SenderClockEvent:
		// The PTS of the samples follow those of the packets, but for
		// the jump at a change of source.
		e.PTS += d.clockShift
		_ = d.src.PushEvent(e)
	default:
		_ = d.src.PushEvent(ev)
	}
}

// chain takes one RTP packet.
func (d *Depayloader) chain(b *element.Buffer) error {
	seq, ts := b.RTP.SequenceNumber, b.RTP.Timestamp
	switch {
	case !d.started:
		d.started, d.ssrc, d.lastTS, d.basePTS = true, b.RTP.SSRC, ts, b.PTS
	case b.RTP.SSRC != d.ssrc:
		// A new source (a sender restarted, a switch upstream): its
		// numbering starts afresh, the PTS goes on from the last one.
		d.ssrc, d.lastTS = b.RTP.SSRC, ts
		d.clockShift = d.basePTS + d.ticksToDuration(d.ext) - b.PTS
		d.loss()
	default:
		if gap := seq - d.lastSeq - 1; gap != 0 {
			if d.lastSeq-seq < lateWindow {
				d.late.Add(1)
				return nil
			}
			d.lost.Add(uint64(gap))
			d.loss()
		}
		d.ext += int64(int32(ts - d.lastTS))
		d.lastTS = ts
	}
	d.lastSeq = seq

	if d.inFrame && ts != d.auTS {
		// A new timestamp without a marker on the frame before.
		d.finish()
	}
	var mustStart bool
	if !d.inFrame {
		d.inFrame, d.auTS, d.auExt = true, ts, d.ext
		d.bad, d.key, d.asked = false, false, false
		mustStart, d.needStart = d.needStart, false
		if d.au == nil {
			d.au = d.pool.Get()
		}
		d.dp.reset()
	}
	if !d.bad {
		data, info, err := d.dp.append(d.au.Data, b.Data)
		d.au.Data = data
		switch {
		case err != nil, len(data) > d.maxFrame, mustStart && info&infoStart == 0:
			d.bad = true
		case info&infoKey != 0:
			d.key = true
		}
	}
	if !d.codec.MarkerEndsFrame || b.RTP.Marker {
		d.finish()
	}
	return nil
}

// loss records that packets went missing before the next one: the frame in
// progress is damaged, the next must prove it starts cleanly, and video
// waits for a keyframe.
func (d *Depayloader) loss() {
	d.discont = true
	d.needStart = true
	if d.codec.Keyframes {
		d.waitKey = true
	}
	if d.inFrame {
		if d.codec.Keyframes && !d.asked {
			// Ask now rather than when the frame ends; drop will not ask
			// again for this frame.
			d.asked = true
			d.requestKeyframe()
		}
		d.bad = true
	}
}

func (d *Depayloader) requestKeyframe() {
	d.kfRequests.Add(1)
	d.sink.RequestKeyframe()
}

// finish ends the frame in progress: push it if it is whole (and, while
// waiting for one, a keyframe), else drop it.
func (d *Depayloader) finish() {
	if d.bad || len(d.au.Data) == 0 {
		d.drop()
		return
	}
	data, dur, err := d.dp.finish(d.au.Data)
	if err != nil || len(data) > d.maxFrame {
		d.drop()
		return
	}
	if d.waitKey && !d.key {
		d.drop()
		return
	}
	d.waitKey = false
	d.inFrame = false
	au := d.au
	d.au = nil
	au.Data = data
	au.PTS = d.basePTS + d.ticksToDuration(d.auExt)
	au.Duration = dur
	if d.key || !d.codec.Keyframes {
		au.Flags |= element.FlagKeyframe
	}
	if d.discont {
		au.Flags |= element.FlagDiscont
		d.discont = false
	}
	d.frames.Add(1)
	d.src.Push(au)
	au.Unref()
}

// drop discards the frame in progress; video then waits for a keyframe,
// and asks for one unless it did for this frame already.
func (d *Depayloader) drop() {
	d.discard()
	d.dropped.Add(1)
	d.discont = true
	if d.codec.Keyframes {
		d.waitKey = true
		if !d.asked {
			d.requestKeyframe()
		}
	}
}

// discard forgets the frame in progress.
func (d *Depayloader) discard() {
	d.inFrame = false
	d.au.Data = d.au.Data[:0]
	d.dp.reset()
}

// ticksToDuration converts RTP clock ticks to a duration without
// overflowing for streams of any length.
func (d *Depayloader) ticksToDuration(t int64) time.Duration {
	rate := int64(d.codec.ClockRate)
	return time.Duration(t/rate)*time.Second + time.Duration(t%rate*int64(time.Second)/rate)
}
