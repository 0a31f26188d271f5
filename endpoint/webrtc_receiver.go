package endpoint

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
)

// receiveBufferSize is the capacity of a receive buffer: a whole RTP packet
// as pion's receive MTU (1460 bytes) allows, with room to spare.
const receiveBufferSize = 1500

// receiver turns one remote track into buffers on a src pad.
type receiver struct {
	ep   *WebRTC
	pad  *element.Pad
	kind element.Kind
	// tr is the transceiver the pad was declared for; nil for a pad added
	// for an undeclared track.
	tr *webrtc.RTPTransceiver
	// bound is set once a track feeds the pad; a pad carries one track in
	// its life.
	bound atomic.Bool
	// ssrc is the SSRC of the track being read, the target of PLI and
	// REMB; 0 while there is none.
	ssrc atomic.Uint32
	// sr is the peer's last sender report about the track, from the RTCP
	// reading goroutine; srPending says the read goroutine has yet to
	// push its element.SenderClockEvent (after its next packet, on the one
	// goroutine that pushes on the pad).
	sr        atomic.Pointer[RTPSenderReport]
	srPending atomic.Bool
}

// takeRTCP keeps the sender reports among pkts that are about ssrc.
func (r *receiver) takeRTCP(pkts []rtcp.Packet, ssrc uint32) {
	for _, p := range pkts {
		if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == ssrc {
			r.sr.Store(&RTPSenderReport{SSRC: sr.SSRC, NTPTime: sr.NTPTime, Wallclock: fromNTP(sr.NTPTime),
				RTPTime: sr.RTPTime, PacketCount: sr.PacketCount, OctetCount: sr.OctetCount, Received: time.Now()})
			r.srPending.Store(true)
		}
	}
}

func newReceiver(e *WebRTC, k element.Kind, name string, tr *webrtc.RTPTransceiver) *receiver {
	r := &receiver{ep: e, kind: k, tr: tr}
	r.pad = element.NewSrcPad(name, rtpTemplates(e.cfg.codecsOf(k)),
		element.WithEventHandler(r.upstream),
		element.WithKeyframeInterval(e.cfg.kfInterval))
	return r
}

// rtpTemplates returns the RTP caps of codecs, any fmtp.
func rtpTemplates(codecs []codec.Codec) element.CapsList {
	l := make(element.CapsList, 0, len(codecs))
	for _, cd := range codecs {
		c := cd.Caps(element.FormatRTP)
		c.Fmtp = ""
		l = append(l, c)
	}
	return l
}

// trackCaps returns the fixed caps of a negotiated codec, and false if
// medley does not know it.
func trackCaps(p webrtc.RTPCodecParameters) (element.Caps, codec.Codec, bool) {
	cd, ok := codec.Lookup(p.MimeType)
	if !ok {
		return element.Caps{}, cd, false
	}
	c := cd.Caps(element.FormatRTP)
	c.Fmtp = p.SDPFmtpLine
	if p.ClockRate != 0 {
		c.ClockRate = p.ClockRate
	}
	if p.Channels != 0 {
		c.Channels = p.Channels
	}
	return c, cd, true
}

// upstream handles the events the pipeline sends the src pad, already
// merged: keyframe requests become PLI, bitrate hints REMB.
func (r *receiver) upstream(ev element.Event) {
	ssrc := r.ssrc.Load()
	if ssrc == 0 {
		return
	}
	switch ev := ev.(type) {
	case element.KeyframeRequest:
		if r.kind != element.KindVideo {
			return
		}
		r.sendPLI(ssrc)
	case element.BitrateHint:
		bps := ev.BitsPerSecond
		if bps <= 0 {
			// No limit any more: lift the one sent before.
			bps = int64(r.ep.cfg.maxBitrate)
		}
		r.ep.writeRTCP(&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: float32(bps), SSRCs: []uint32{ssrc}})
	}
}

// sendPLI asks the peer for a keyframe of the track of SSRC ssrc.
func (r *receiver) sendPLI(ssrc uint32) {
	r.ep.plisSent.Add(1)
	r.ep.writeRTCP(&rtcp.PictureLossIndication{MediaSSRC: ssrc})
}

// When a video track resumes after a gap that retransmission cannot fill
// in time, the receiver asks the peer for a keyframe itself, at once,
// rather than leave every subscriber's decoder to notice and ask: a gap of
// more than gapPackets sequence numbers, or any gap after more than
// stallInterval without a packet (a network outage: what NACK brings back
// of it comes too late to show). A packet older than maxRetransmitAge
// sequence numbers is no retransmission (pion's NACK responders keep 1024
// packets at most) but a sender that started over.
const (
	gapPackets       = 256
	stallInterval    = 500 * time.Millisecond
	maxRetransmitAge = 4096
)

// onTrack binds a remote track to a src pad (its transceiver's, else the
// first unbound one of its kind, else a new one) and reads it until the
// connection closes. pion calls it on a goroutine of its own.
func (e *WebRTC) onTrack(track *webrtc.TrackRemote, rr *webrtc.RTPReceiver) {
	if !e.enter() {
		return
	}
	defer e.wg.Done()
	k := element.KindAudio
	if track.Kind() == webrtc.RTPCodecTypeVideo {
		k = element.KindVideo
	}
	r := e.receiverFor(k, rr.RTPTransceiver(), track.RID())
	if r == nil {
		return
	}
	rid := track.RID()
	ssrc := uint32(track.SSRC())
	e.spawn(func() {
		for {
			var (
				pkts []rtcp.Packet
				err  error
			)
			if rid == "" {
				pkts, _, err = rr.ReadRTCP()
			} else {
				pkts, _, err = rr.ReadSimulcastRTCP(rid)
			}
			if err != nil {
				return
			}
			r.takeRTCP(pkts, ssrc)
		}
	})
	r.read(track)
}

// receiverFor picks the receiver of a new track.
func (e *WebRTC) receiverFor(k element.Kind, tr *webrtc.RTPTransceiver, rid string) *receiver {
	e.mu.Lock()
	if rid == "" {
		for _, r := range e.recv {
			if r.tr == tr && r.bound.CompareAndSwap(false, true) {
				e.mu.Unlock()
				return r
			}
		}
		for _, r := range e.recv {
			if r.kind == k && r.tr != nil && r.bound.CompareAndSwap(false, true) {
				e.mu.Unlock()
				return r
			}
		}
	}
	n := 0
	for _, r := range e.recv {
		if r.kind == k {
			n++
		}
	}
	name := fmt.Sprintf("%s_%d", k, n)
	if rid != "" {
		// A simulcast layer: named after its transceiver's pad
		// ("video_0_h"), or a new index if the transceiver has none.
		for _, r := range e.recv {
			if r.tr == tr && r.tr != nil {
				name = r.pad.Name()
				break
			}
		}
		name += "_" + rid
	}
	if e.Pad(name) != nil {
		name = fmt.Sprintf("%s_%d", name, len(e.recv))
	}
	r := newReceiver(e, k, name, nil)
	r.bound.Store(true)
	e.recv = append(e.recv, r)
	e.AddPad(r.pad)
	e.mu.Unlock()
	e.Post(&PadAdded{MessageHeader: element.Header(e.Name()), Pad: r.pad.FullName(), Kind: k})
	return r
}

// read pushes the track's packets on the pad until the track ends, then
// an end of stream. Each packet is read into a pooled buffer, its header
// parsed in place and its payload moved to the buffer's start: no
// allocation per packet in steady state.
func (r *receiver) read(track *webrtc.TrackRemote) {
	defer func() {
		r.ssrc.Store(0)
		_ = r.pad.PushEvent(element.EOSEvent{})
	}()
	pool := element.NewBufferPool(receiveBufferSize)
	var (
		hdr     rtp.Header
		cd      codec.Codec
		clock   uint32
		lastPT  = -1
		first   = true
		tl      rtpTimeline
		isVideo = r.kind == element.KindVideo
		// The highest sequence number read and when (video).
		lastSeq uint16
		lastAt  time.Time
	)
	for {
		b := pool.Get()
		raw := b.Data[:cap(b.Data)]
		n, _, err := track.Read(raw)
		if err != nil {
			b.Unref()
			return
		}
		hl, err := hdr.Unmarshal(raw[:n])
		end := n
		if err == nil && hdr.Padding {
			// RFC 3550, section 5.1: the last octet counts the padding,
			// itself included.
			if p := int(raw[n-1]); p == 0 || hl+p > n {
				err = errPadding
			} else {
				end = n - p
			}
		}
		if err != nil {
			b.Unref()
			continue
		}
		if int(hdr.PayloadType) != lastPT {
			lastPT = int(hdr.PayloadType)
			caps, c, ok := trackCaps(track.Codec())
			if !ok {
				r.ep.PostError(fmt.Errorf("endpoint: %s: track codec %s unknown to medley", r.pad.FullName(), track.Codec().MimeType))
				b.Unref()
				return
			}
			if err := r.pad.SetCaps(caps); err != nil {
				r.ep.PostError(err)
			}
			cd, clock = c, caps.ClockRate
			r.ssrc.Store(uint32(track.SSRC()))
		}
		b.SetRTPHeader(&hdr)
		b.RTP.Padding, b.RTP.PaddingSize = false, 0
		b.Data = raw[:copy(raw, raw[hl:end])]
		if cd.IsKeyframe(b.Data) {
			b.Flags |= element.FlagKeyframe
		}
		if isVideo && hdr.Marker {
			b.Flags |= element.FlagEndOfFrame
		}
		if isVideo {
			now := time.Now()
			d := int16(hdr.SequenceNumber - lastSeq)
			switch {
			case first || d < -maxRetransmitAge:
				// The first packet, or the sender started over.
				lastSeq, lastAt = hdr.SequenceNumber, now
			case d > 0:
				if lost := int(d) - 1; lost > gapPackets || lost > 0 && now.Sub(lastAt) > stallInterval {
					r.sendPLI(uint32(track.SSRC()))
				}
				lastSeq, lastAt = hdr.SequenceNumber, now
			}
			// Otherwise a retransmission, filling a gap: nothing moves.
		}
		// PTS: the arrival time of the track's first packet on the
		// endpoint's clock, then the RTP timestamps' progress.
		first = false
		b.PTS = tl.Next(hdr.Timestamp, clock, r.ep.epoch)
		r.pad.Push(b)
		b.Unref()
		if r.srPending.Load() && r.srPending.CompareAndSwap(true, false) {
			if ev, ok := senderClockEvent(&tl, uint32(track.SSRC()), clock, *r.sr.Load()); ok {
				_ = r.pad.PushEvent(ev)
				r.ep.senderClocks.Add(1)
			}
		}
	}
}

var errPadding = fmt.Errorf("endpoint: RTP padding longer than the packet")
