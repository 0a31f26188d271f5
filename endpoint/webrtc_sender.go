package endpoint

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
)

// sender sends the RTP packets reaching a sink pad to the peer. It is the
// webrtc.TrackLocal of its transceiver: pion binds it when a negotiation
// gives the transceiver a codec (Bind) and the sink pad's goroutine writes
// each packet through the binding, with the binding's SSRC and the payload
// type the peer gave the packet's codec, on a header of its own: the shared
// buffer is never modified.
type sender struct {
	ep    *WebRTC
	pad   *element.Pad
	kind  element.Kind
	video bool
	bind  atomic.Pointer[binding]

	// State of the sink pad's goroutine, which alone touches it.
	caps     *element.Caps
	codec    codec.Codec
	cached   *binding // the binding pt was picked for
	pt       uint8
	ptOK     bool
	hdr      rtp.Header
	exts     []rtp.Extension
	started  bool // a packet was sent
	input    bool // inSSRC is known
	inSSRC   uint32
	rebase   bool // renumber from the next packet sent
	seqDelta uint16
	tsDelta  uint32
	lastSeq  uint16
	lastTS   uint32
	lastAt   time.Time
	lastErr  time.Time // when a write error was last reported
	waitKey  bool

	// settled is the binding the pad's templates were last narrowed to
	// (settle); guarded by the endpoint's settleMu.
	settled *binding

	drops atomic.Uint64
	// remb and share are the peer's REMB and this pad's share of the
	// bandwidth estimate, in bits per second (0: none); hint is the last
	// bitrate hint sent upstream.
	remb, share, hint atomic.Int64
}

// binding is what pion's Bind gave a sender: where and as what to write.
type binding struct {
	id     string
	ssrc   uint32
	w      webrtc.TrackLocalWriter
	codecs []webrtc.RTPCodecParameters
}

func newSender(e *WebRTC, k element.Kind, name string) *sender {
	s := &sender{ep: e, kind: k, video: k == element.KindVideo}
	opts := []element.PadOption{element.WithEventHandler(s.event)}
	if e.cfg.queueSize > 0 {
		opts = append(opts, element.WithQueue(e.cfg.queueSize, element.Live))
	}
	s.pad = element.NewSinkPad(name, rtpTemplates(e.cfg.codecsOf(k)), s.chain, opts...)
	return s
}

// ID implements webrtc.TrackLocal.
func (s *sender) ID() string { return s.pad.Name() }

// RID implements webrtc.TrackLocal.
func (s *sender) RID() string { return "" }

// StreamID implements webrtc.TrackLocal: the endpoint's name.
func (s *sender) StreamID() string { return s.ep.Name() }

// Kind implements webrtc.TrackLocal.
func (s *sender) Kind() webrtc.RTPCodecType { return rtpCodecType(s.kind) }

// Bind implements webrtc.TrackLocal: it records the negotiated codecs and
// the stream to write to, and names as the track's codec the one the sink
// pad receives if the peer accepted it, else the peer's first.
func (s *sender) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codecs := append([]webrtc.RTPCodecParameters(nil), ctx.CodecParameters()...)
	var chosen *webrtc.RTPCodecParameters
	if c, ok := s.pad.Caps(); ok {
		chosen = matchCodec(c, codecs)
	}
	if chosen == nil {
		for i := range codecs {
			if _, ok := codec.Lookup(codecs[i].MimeType); ok {
				chosen = &codecs[i]
				break
			}
		}
	}
	if chosen == nil {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	s.bind.Store(&binding{id: ctx.ID(), ssrc: uint32(ctx.SSRC()), w: ctx.WriteStream(), codecs: codecs})
	return *chosen, nil
}

// Unbind implements webrtc.TrackLocal.
func (s *sender) Unbind(ctx webrtc.TrackLocalContext) error {
	if b := s.bind.Load(); b != nil && b.id == ctx.ID() {
		s.bind.CompareAndSwap(b, nil)
	}
	return nil
}

// settle narrows the sink pad's templates to the codecs the peer accepted
// for the transceiver, once a negotiation has bound it: the pipeline then
// negotiates the connection into the pad again, linking a source of an
// accepted codec directly, inserting a transcoder before one of another
// codec, or, when it has none, unlinking it with an element.Error. The
// endpoint's settleMu is held.
func (s *sender) settle() {
	bd := s.bind.Load()
	if bd == nil || bd == s.settled {
		return
	}
	s.settled = bd
	l := peerTemplates(bd.codecs)
	if len(l) == 0 || slices.Equal(l, s.pad.Templates()) {
		return
	}
	if err := s.pad.SetTemplates(l); err != nil {
		s.ep.PostError(fmt.Errorf("endpoint: %s: %w", s.pad.FullName(), err))
	}
}

// peerTemplates returns the RTP caps of the negotiated codecs that medley
// knows, in the negotiated order, each once, of any fmtp (as the declared
// templates are: matchCodec picks the payload type per packet).
func peerTemplates(codecs []webrtc.RTPCodecParameters) element.CapsList {
	var l element.CapsList
	for _, p := range codecs {
		c, _, ok := trackCaps(p)
		if !ok {
			continue
		}
		c.Fmtp = ""
		if !slices.Contains(l, c) {
			l = append(l, c)
		}
	}
	return l
}

// matchCodec returns the negotiated codec that carries caps c: same MIME
// type and clock rate, the same fmtp if the peer has it, else (H.264) the
// same packetization mode, else the first.
func matchCodec(c element.Caps, codecs []webrtc.RTPCodecParameters) *webrtc.RTPCodecParameters {
	var first, mode *webrtc.RTPCodecParameters
	for i := range codecs {
		p := &codecs[i]
		if !strings.EqualFold(p.MimeType, c.Codec) || (c.ClockRate != 0 && p.ClockRate != c.ClockRate) {
			continue
		}
		if p.SDPFmtpLine == c.Fmtp {
			return p
		}
		if first == nil {
			first = p
		}
		if mode == nil && strings.EqualFold(c.Codec, codec.MIMEH264) &&
			codec.H264PacketizationMode(p.SDPFmtpLine) == codec.H264PacketizationMode(c.Fmtp) {
			mode = p
		}
	}
	if mode != nil {
		return mode
	}
	return first
}

// event handles the downstream events of the sink pad, on its goroutine.
func (s *sender) event(ev element.Event) {
	if c, ok := ev.(element.CapsEvent); ok {
		caps := c.Caps
		s.caps = &caps
		s.codec, _ = codec.Lookup(caps.Codec)
		s.cached = nil
	}
}

// chain sends one buffer to the peer.
func (s *sender) chain(b *element.Buffer) error {
	bd := s.bind.Load()
	if bd == nil || s.caps == nil {
		s.drops.Add(1)
		return nil
	}
	if bd != s.cached {
		s.cached = bd
		s.ptOK = false
		if p := matchCodec(*s.caps, bd.codecs); p != nil {
			s.pt, s.ptOK = uint8(p.PayloadType), true
		} else if s.ep.warnedCodec.CompareAndSwap(false, true) {
			s.ep.PostError(fmt.Errorf("endpoint: %s: the peer did not accept %s (it takes %s): dropping", s.pad.FullName(), s.caps.Codec, codecNames(bd.codecs)))
		}
	}
	if !s.ptOK {
		s.drops.Add(1)
		return nil
	}
	if !s.input || b.RTP.SSRC != s.inSSRC {
		s.newInput(b)
	}
	if s.waitKey {
		if !b.Keyframe() && !s.codec.IsKeyframe(b.Data) {
			s.drops.Add(1)
			return nil
		}
		s.waitKey = false
	}
	if s.rebase {
		s.rebase = false
		s.rebaseAt(b)
	}
	h := &s.hdr
	*h = b.RTP
	h.SSRC = bd.ssrc
	h.PayloadType = s.pt
	h.SequenceNumber += s.seqDelta
	h.Timestamp += s.tsDelta
	// The packet's header extensions were numbered for the link it came
	// from; the interceptors add this link's own (transport-cc).
	h.Padding, h.PaddingSize = false, 0
	h.Extension, h.ExtensionProfile, h.Extensions = false, 0, s.exts[:0]
	_, err := bd.w.WriteRTP(h, b.Data)
	s.exts = h.Extensions[:0]
	h.CSRC = nil // don't keep the pooled buffer's memory
	if !s.started || int16(h.SequenceNumber-s.lastSeq) > 0 {
		s.lastSeq, s.lastTS = h.SequenceNumber, h.Timestamp
	}
	s.started = true
	s.lastAt = time.Now()
	if err != nil && !errors.Is(err, io.ErrClosedPipe) {
		s.drops.Add(1)
		// One report per errorInterval: a broken path fails every packet.
		if s.lastAt.Sub(s.lastErr) >= errorInterval {
			s.lastErr = s.lastAt
			return fmt.Errorf("endpoint: send: %w", err)
		}
	}
	return nil
}

// errorInterval is the least time between two reports of a failing write.
const errorInterval = time.Second

// newInput starts a new input stream (the first, or a new source after the
// sink pad was connected elsewhere): video waits for a keyframe, which it
// asks for, and the first packet sent renumbers the stream.
func (s *sender) newInput(b *element.Buffer) {
	s.input, s.inSSRC, s.rebase = true, b.RTP.SSRC, true
	if s.video && s.codec.Keyframes {
		s.waitKey = true
		s.pad.RequestKeyframe()
	}
}

// rebaseAt makes the output numbering continue where it was from b, the
// first packet sent of a new input: the next sequence number, and a
// timestamp as far from the last as time went by.
func (s *sender) rebaseAt(b *element.Buffer) {
	if !s.started {
		return
	}
	s.seqDelta = s.lastSeq + 1 - b.RTP.SequenceNumber
	gap := uint32(1)
	if s.caps.ClockRate > 0 {
		gap = max(1, uint32(time.Since(s.lastAt).Seconds()*float64(s.caps.ClockRate)))
	}
	s.tsDelta = s.lastTS + gap - b.RTP.Timestamp
}

func codecNames(codecs []webrtc.RTPCodecParameters) string {
	names := make([]string, 0, len(codecs))
	for _, p := range codecs {
		names = append(names, p.MimeType)
	}
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}

// readRTCP reads the RTCP the peer sends about this track until the
// connection closes (reading is also what drives the NACK responder and
// the bandwidth estimator): PLI and FIR become keyframe requests upstream,
// REMB a bitrate hint.
func (s *sender) readRTCP(rs *webrtc.RTPSender) {
	for {
		pkts, _, err := rs.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				s.ep.plisReceived.Add(1)
				s.pad.RequestKeyframe()
			case *rtcp.ReceiverEstimatedMaximumBitrate:
				s.remb.Store(int64(p.Bitrate))
				s.sendHint()
			}
		}
	}
}

// sendHint sends upstream the least of the peer's REMB and the estimate's
// share, when it moved by more than hintStep.
func (s *sender) sendHint() {
	v := s.remb.Load()
	if sh := s.share.Load(); sh > 0 && (v == 0 || sh < v) {
		v = sh
	}
	if v <= 0 {
		return
	}
	if max := int64(s.ep.cfg.maxBitrate); v > max {
		v = max
	}
	old := s.hint.Load()
	if d := v - old; old != 0 && d < old/hintStep && -d < old/hintStep {
		return
	}
	if s.hint.CompareAndSwap(old, v) {
		s.pad.SendUpstream(element.BitrateHint{BitsPerSecond: v})
	}
}

// hintStep: a bitrate hint goes upstream when the bitrate moved by more
// than 1/hintStep of the last one sent (10%), so that encoders are not
// reconfigured at every estimator update.
const hintStep = 10

// onTargetBitrate shares a new bandwidth estimate among the bound video
// senders. The estimator counts the video packets only (see
// bwe.BindLocalStream): the estimate is the video's share already.
func (e *WebRTC) onTargetBitrate(bps int) {
	n := 0
	for _, s := range e.send {
		if s.video && s.bind.Load() != nil {
			n++
		}
	}
	if n == 0 {
		return
	}
	share := max(int64(bps)/int64(n), int64(e.cfg.minBitrate))
	for _, s := range e.send {
		if s.video && s.bind.Load() != nil {
			s.share.Store(share)
			s.sendHint()
		}
	}
}
