package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/rtcerr"

	"github.com/medley-go/medley/element"
)

// WebRTC is an element that exchanges media with one WebRTC peer (a
// browser, a pion program, GStreamer's webrtcbin), as Kurento's
// WebRtcEndpoint does: pion/webrtc v4 underneath, with NACK, RTCP reports,
// TWCC and a send-side bandwidth estimator (Google congestion control on
// transport-cc feedback) as interceptors.
//
// Signalling is the host's: it carries the SDP offer and answer and the ICE
// candidates between the peer and ProcessOffer, GenerateOffer,
// ProcessAnswer, AddIceCandidate and the IceCandidateFound messages.
//
// Pads are declared up front, one set per transceiver (WithAudio,
// WithVideo, WithDataChannel), so that a host connects them before the
// negotiation fixes any codec:
//
//   - "audio_N", "video_N": src pads, the RTP packets the peer sends
//     (element.FormatRTP). Their caps are fixed when the peer's track
//     arrives, from the negotiated codec. Keyframe requests reaching them
//     become RTCP PLI to the peer; bitrate hints become REMB.
//   - "audio_sink_N", "video_sink_N": sink pads, RTP packets to send to
//     the peer, in any codec the endpoint offers until negotiation
//     narrows the pad's templates to the codecs the peer accepted (the
//     pipeline then transcodes, or reports the link it cannot make);
//     packets of another codec are dropped and reported. PLI and FIR
//     from the peer become keyframe requests upstream; the bandwidth
//     estimate (or the peer's REMB) becomes bitrate hints upstream.
//   - "data_N", "data_sink_N": data channel messages (element.FormatMessage),
//     in and out. A buffer whose Frame is TextMessage{} is a text message.
//
// A second track of a declared kind (an extra video track, a simulcast
// layer) gets a src pad of its own while running, reported by PadAdded;
// offered media of a kind not declared is rejected.
//
// The endpoint posts ConnectionStateChanged, IceCandidateFound,
// IceGatheringDone, IceComponentStateChanged and NewCandidatePairSelected
// on the pipeline's bus; the pipeline adds MediaFlowIn/OutStateChanged from
// the pads' counters. When the connection fails it is closed (unless
// WithoutCloseOnFailure): the src pads send end of stream and the endpoint's
// goroutines end; the host removes the element when it likes.
//
// All methods are safe for concurrent use.
type WebRTC struct {
	element.Base
	cfg   config
	pc    *webrtc.PeerConnection
	probe *webrtc.API
	epoch time.Time

	// Declared pads, in declaration order; dynamic receivers are appended
	// under mu.
	recv []*receiver
	send []*sender
	data []*dataLink

	est atomic.Pointer[bwe]

	// sigMu serialises the signalling methods; pending holds the remote
	// candidates that arrived before the remote description.
	sigMu   sync.Mutex
	pending []webrtc.ICECandidateInit

	// msgMu guards early, the candidate messages found while the endpoint
	// was in no pipeline, posted when it runs.
	msgMu sync.Mutex
	early []element.Message

	// mu guards closing (after which no goroutine starts), dynamic pads and
	// the wait group's additions.
	mu       sync.Mutex
	closing  bool
	wg       sync.WaitGroup
	shutOnce sync.Once
	shutErr  error
	done     chan struct{}

	// settleMu serialises the narrowing of the sink pads' templates after
	// a negotiation (settleSinks).
	settleMu sync.Mutex

	plisSent, plisReceived atomic.Uint64
	senderClocks           atomic.Uint64
	warnedCodec            atomic.Bool
}

// maxPendingCandidates bounds the remote candidates kept before the remote
// description arrives: a browser trickles a few per network interface.
const maxPendingCandidates = 256

// maxEarlyMessages bounds the candidate messages kept while the endpoint is
// in no pipeline.
const maxEarlyMessages = 256

// NewWebRTC returns a WebRTC endpoint named name, configured by opts. Add it
// to a pipeline, subscribe to the bus and connect its pads, then signal.
// The host must Close it if it never joins a pipeline (the pipeline closes
// its elements).
func NewWebRTC(name string, opts ...Option) (*WebRTC, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("endpoint %s: %w", name, err)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", name, err)
	}
	e := &WebRTC{Base: element.NewBase(name), cfg: cfg, epoch: time.Now(), done: make(chan struct{})}
	api, err := newAPI(&e.cfg, e.est.Store, e.onTargetBitrate)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", name, err)
	}
	if e.probe, err = newProbeAPI(&e.cfg); err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", name, err)
	}
	e.pc, err = api.NewPeerConnection(webrtc.Configuration{ICEServers: cfg.iceServers})
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: peer connection: %w", name, err)
	}
	if err := e.declare(); err != nil {
		_ = e.shutdown()
		return nil, fmt.Errorf("endpoint %s: %w", name, err)
	}
	e.pc.OnICECandidate(e.onICECandidate)
	e.pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		e.Post(&IceComponentStateChanged{MessageHeader: element.Header(name), State: s})
	})
	e.pc.OnConnectionStateChange(e.onConnectionState)
	e.pc.OnTrack(e.onTrack)
	e.pc.OnDataChannel(e.onDataChannel)
	e.pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(p *webrtc.ICECandidatePair) {
		e.Post(&NewCandidatePairSelected{
			MessageHeader: element.Header(name),
			Local:         p.Local.ToJSON().Candidate,
			Remote:        p.Remote.ToJSON().Candidate,
		})
	})
	return e, nil
}

// declare adds the declared transceivers and data channels, and their
// pads.
func (e *WebRTC) declare() error {
	counts := make(map[element.Kind]int)
	for _, m := range e.cfg.media {
		idx := counts[m.kind]
		counts[m.kind]++
		var s *sender
		var tr *webrtc.RTPTransceiver
		var err error
		init := webrtc.RTPTransceiverInit{Direction: m.dir.transceiver()}
		if m.dir.sends() {
			s = newSender(e, m.kind, fmt.Sprintf("%s_sink_%d", m.kind, idx))
			tr, err = e.pc.AddTransceiverFromTrack(s, init)
		} else {
			tr, err = e.pc.AddTransceiverFromKind(rtpCodecType(m.kind), init)
		}
		if err != nil {
			return fmt.Errorf("add %s %s transceiver: %w", m.dir, m.kind, err)
		}
		if m.dir.receives() {
			r := newReceiver(e, m.kind, fmt.Sprintf("%s_%d", m.kind, idx), tr)
			e.recv = append(e.recv, r)
			e.AddPad(r.pad)
		}
		if s != nil {
			e.send = append(e.send, s)
			e.AddPad(s.pad)
			rs := tr.Sender()
			e.spawn(func() { s.readRTCP(rs) })
		}
	}
	for i, label := range e.cfg.dataLabels {
		d := newDataLink(e, i, label)
		e.data = append(e.data, d)
		e.AddPad(d.src, d.sink)
		if err := d.src.SetCaps(dataCaps); err != nil {
			return err
		}
	}
	return nil
}

func rtpCodecType(k element.Kind) webrtc.RTPCodecType {
	if k == element.KindVideo {
		return webrtc.RTPCodecTypeVideo
	}
	return webrtc.RTPCodecTypeAudio
}

// spawn runs fn on a goroutine the endpoint owns, unless it is closing.
func (e *WebRTC) spawn(fn func()) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return false
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		fn()
	}()
	return true
}

// enter registers the calling goroutine (a pion callback that goes on
// reading) with the endpoint; it returns false if the endpoint is closing.
// The caller calls e.wg.Done when it returns.
func (e *WebRTC) enter() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return false
	}
	e.wg.Add(1)
	return true
}

func (e *WebRTC) errorf(format string, args ...any) error {
	return fmt.Errorf("endpoint %s: "+format, append([]any{e.Name()}, args...)...)
}

func (e *WebRTC) checkOpen() error {
	select {
	case <-e.done:
		return e.errorf("%w", element.ErrClosed)
	default:
	}
	if e.pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
		return e.errorf("%w", element.ErrClosed)
	}
	return nil
}

// ProcessOffer takes the peer's SDP offer and returns the endpoint's
// answer. The answer holds the candidates gathered so far (all of them with
// WithCompleteSDP, which waits for gathering to end within ctx); the others
// come as IceCandidateFound messages. An offer that is not valid SDP, or
// larger than MaxSDPSize, fails with ErrInvalidSDP; one with nothing the
// endpoint can take fails with a *NoCommonCodecError (ErrNoCommonCodec).
// Sections the endpoint rejects while taking others are reported as
// element.Warning messages.
func (e *WebRTC) ProcessOffer(ctx context.Context, offer string) (string, error) {
	if err := e.checkOpen(); err != nil {
		return "", err
	}
	sd, err := parseSDP(offer)
	if err != nil {
		return "", e.errorf("process offer: %w", err)
	}
	rejected, reject, err := e.cfg.checkOffer(sd)
	if err != nil {
		return "", e.errorf("process offer: %w", err)
	}
	if len(reject) > 0 {
		if offer, err = inactivate(sd, reject); err != nil {
			return "", e.errorf("process offer: %w", err)
		}
	}
	if err := e.probeOffer(offer); err != nil {
		return "", e.errorf("process offer: %w", err)
	}
	for _, r := range rejected {
		e.Post(&element.Warning{MessageHeader: element.Header(e.Name()), Text: "offer " + r})
	}
	e.sigMu.Lock()
	if err := e.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		e.sigMu.Unlock()
		return "", e.errorf("process offer: %w", remoteError(err))
	}
	e.addPendingLocked()
	answer, err := e.pc.CreateAnswer(nil)
	if err != nil {
		e.sigMu.Unlock()
		return "", e.errorf("process offer: create answer: %w", remoteError(err))
	}
	gathered := webrtc.GatheringCompletePromise(e.pc)
	if err := e.pc.SetLocalDescription(answer); err != nil {
		e.sigMu.Unlock()
		return "", e.errorf("process offer: set answer: %w", err)
	}
	e.sigMu.Unlock()
	e.settleSinks()
	return e.localDescription(ctx, gathered, "process offer")
}

// GenerateOffer makes an SDP offer for the peer, with a section per
// declared transceiver and one for the data channels, whose answer goes to
// ProcessAnswer. See ProcessOffer for what the SDP holds.
func (e *WebRTC) GenerateOffer(ctx context.Context) (string, error) {
	if err := e.checkOpen(); err != nil {
		return "", err
	}
	e.sigMu.Lock()
	for _, d := range e.data {
		if err := d.open(); err != nil {
			e.sigMu.Unlock()
			return "", e.errorf("generate offer: %w", err)
		}
	}
	offer, err := e.pc.CreateOffer(nil)
	if err != nil {
		e.sigMu.Unlock()
		return "", e.errorf("generate offer: %w", signalingError(err))
	}
	gathered := webrtc.GatheringCompletePromise(e.pc)
	if err := e.pc.SetLocalDescription(offer); err != nil {
		e.sigMu.Unlock()
		return "", e.errorf("generate offer: %w", signalingError(err))
	}
	e.sigMu.Unlock()
	return e.localDescription(ctx, gathered, "generate offer")
}

// ProcessAnswer takes the peer's SDP answer to GenerateOffer's offer. An
// answer that is not valid SDP, or lacks ICE credentials or a DTLS
// fingerprint, fails with ErrInvalidSDP and leaves the offer out; one that
// pion refuses after that leaves the endpoint unable to negotiate (pion
// v4 cannot roll a description back): close it.
func (e *WebRTC) ProcessAnswer(ctx context.Context, answer string) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return e.errorf("process answer: %w", err)
	}
	sd, err := parseSDP(answer)
	if err == nil {
		err = checkTransport(sd)
	}
	if err != nil {
		return e.errorf("process answer: %w", err)
	}
	e.sigMu.Lock()
	if err := e.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		e.sigMu.Unlock()
		return e.errorf("process answer: %w", remoteError(err))
	}
	e.addPendingLocked()
	e.sigMu.Unlock()
	e.settleSinks()
	return nil
}

// settleSinks narrows each sink pad's templates to the codecs the peer
// accepted for its transceiver, after a negotiation bound it (pion binds
// the senders within SetLocalDescription of an answer and
// SetRemoteDescription of one). It runs outside sigMu: the pipeline
// renegotiates the pads' connections under its own lock.
func (e *WebRTC) settleSinks() {
	e.settleMu.Lock()
	defer e.settleMu.Unlock()
	for _, s := range e.send {
		s.settle()
	}
}

// probeOffer tries the offer on a throwaway peer connection with the
// endpoint's codecs and transceivers, which touches no network, and
// returns why it fails. pion takes a remote description into its signaling
// state before it has checked all of it, and cannot roll back: without the
// probe, an offer missing, say, its ICE credentials would leave the
// endpoint unable to take the next one.
func (e *WebRTC) probeOffer(offer string) (err error) {
	pc, err := e.probe.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := pc.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	for _, m := range e.cfg.media {
		if _, err := pc.AddTransceiverFromKind(rtpCodecType(m.kind), webrtc.RTPTransceiverInit{Direction: m.dir.transceiver()}); err != nil {
			return err
		}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSDP, err)
	}
	if _, err := pc.CreateAnswer(nil); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSDP, err)
	}
	return nil
}

// localDescription returns the local SDP, after gathering ends with
// WithCompleteSDP.
func (e *WebRTC) localDescription(ctx context.Context, gathered <-chan struct{}, op string) (string, error) {
	if e.cfg.completeSDP {
		select {
		case <-gathered:
		case <-ctx.Done():
			return "", e.errorf("%s: waiting for ICE gathering: %w", op, context.Cause(ctx))
		case <-e.done:
			return "", e.errorf("%s: %w", op, element.ErrClosed)
		}
	}
	ld := e.pc.LocalDescription()
	if ld == nil {
		return "", e.errorf("%s: %w", op, element.ErrClosed)
	}
	return ld.SDP, nil
}

// remoteError classifies an error of SetRemoteDescription: a call out of
// turn is ErrSignalingState, anything else a description the stack refused,
// ErrInvalidSDP.
func remoteError(err error) error {
	if s := signalingError(err); s != err {
		return s
	}
	return fmt.Errorf("%w: %w", ErrInvalidSDP, err)
}

func signalingError(err error) error {
	var ise *rtcerr.InvalidStateError
	var ime *rtcerr.InvalidModificationError
	if errors.As(err, &ise) || errors.As(err, &ime) || errors.Is(err, webrtc.ErrConnectionClosed) {
		return fmt.Errorf("%w: %w", ErrSignalingState, err)
	}
	return err
}

// AddIceCandidate adds a remote ICE candidate (trickle ICE): the JSON a
// browser's onicecandidate gives ({"candidate":"candidate:...",
// "sdpMid":"0","sdpMLineIndex":0}), or the bare candidate line, with or
// without its "candidate:" or "a=candidate:" prefix. An empty candidate
// marks the end of the peer's candidates. Candidates that arrive before the
// remote description are kept until it comes.
func (e *WebRTC) AddIceCandidate(candidate string) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	var ci webrtc.ICECandidateInit
	s := strings.TrimSpace(candidate)
	if strings.HasPrefix(s, "{") {
		if err := json.Unmarshal([]byte(s), &ci); err != nil {
			return e.errorf("add candidate: %w: %w", ErrInvalidCandidate, err)
		}
	} else {
		ci.Candidate = strings.TrimPrefix(s, "a=")
	}
	if line := strings.TrimPrefix(ci.Candidate, "candidate:"); line != "" {
		if len(line) > 1024 {
			return e.errorf("add candidate: %w: %d bytes", ErrInvalidCandidate, len(line))
		}
		// Like pion, let through what is well formed but of a type or
		// network it does not use: it discards those itself.
		if _, err := ice.UnmarshalCandidate(line); err != nil &&
			!errors.Is(err, ice.ErrUnknownCandidateTyp) && !errors.Is(err, ice.ErrDetermineNetworkType) {
			return e.errorf("add candidate: %w: %w", ErrInvalidCandidate, err)
		}
		if !strings.HasPrefix(ci.Candidate, "candidate:") {
			ci.Candidate = "candidate:" + ci.Candidate
		}
	}
	e.sigMu.Lock()
	defer e.sigMu.Unlock()
	if e.pc.RemoteDescription() == nil {
		if len(e.pending) >= maxPendingCandidates {
			return e.errorf("add candidate: %d candidates before the remote description: %w", len(e.pending), ErrSignalingState)
		}
		e.pending = append(e.pending, ci)
		return nil
	}
	if err := e.pc.AddICECandidate(ci); err != nil {
		return e.errorf("add candidate: %w", signalingError(err))
	}
	return nil
}

// addPendingLocked adds the candidates kept for want of a remote
// description. e.sigMu is held.
func (e *WebRTC) addPendingLocked() {
	for _, ci := range e.pending {
		if err := e.pc.AddICECandidate(ci); err != nil {
			e.PostError(fmt.Errorf("endpoint: add candidate %q: %w", ci.Candidate, err))
		}
	}
	e.pending = nil
}

// LocalDescription returns the current local SDP with the candidates
// gathered so far, or "" before the first offer or answer.
func (e *WebRTC) LocalDescription() string {
	if ld := e.pc.LocalDescription(); ld != nil {
		return ld.SDP
	}
	return ""
}

// RemoteDescription returns the peer's SDP, or "".
func (e *WebRTC) RemoteDescription() string {
	if rd := e.pc.RemoteDescription(); rd != nil {
		return rd.SDP
	}
	return ""
}

// ConnectionState returns the peer connection's state.
func (e *WebRTC) ConnectionState() webrtc.PeerConnectionState { return e.pc.ConnectionState() }

func (e *WebRTC) onICECandidate(c *webrtc.ICECandidate) {
	h := element.Header(e.Name())
	if c == nil {
		e.postEarly(&IceGatheringDone{MessageHeader: h})
		return
	}
	e.postEarly(&IceCandidateFound{MessageHeader: h, Candidate: c.ToJSON()})
}

// postEarly posts m, or keeps it for Run if the endpoint is in no
// pipeline yet.
func (e *WebRTC) postEarly(m element.Message) {
	e.msgMu.Lock()
	defer e.msgMu.Unlock()
	if h := e.Host(); h != nil {
		h.Post(m)
		return
	}
	if len(e.early) < maxEarlyMessages {
		e.early = append(e.early, m)
	}
}

func (e *WebRTC) onConnectionState(s webrtc.PeerConnectionState) {
	e.Post(&ConnectionStateChanged{MessageHeader: element.Header(e.Name()), State: s})
	// Closed comes from Close, or from the peer's DTLS close_notify, on
	// which pion closes the connection itself: either way the endpoint's
	// goroutines end. pion runs this handler on a goroutine of its own,
	// where closing the connection is allowed.
	if s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed && e.cfg.closeOnFailure {
		_ = e.shutdown()
	}
}

// writeRTCP sends RTCP to the peer; a failure is counted by pion's stats
// and otherwise ignored (the connection may be going).
func (e *WebRTC) writeRTCP(pkts ...rtcp.Packet) {
	_ = e.pc.WriteRTCP(pkts)
}

// Run implements element.Runner: it posts the candidate messages found
// before the endpoint joined the pipeline, then waits for the end.
func (e *WebRTC) Run(ctx context.Context) error {
	e.msgMu.Lock()
	early := e.early
	e.early = nil
	for _, m := range early {
		e.Post(m)
	}
	e.msgMu.Unlock()
	select {
	case <-ctx.Done():
	case <-e.done:
	}
	return nil
}

// shutdown closes the peer connection once, and waits for the endpoint's
// goroutines.
func (e *WebRTC) shutdown() error {
	e.shutOnce.Do(func() {
		e.mu.Lock()
		e.closing = true
		e.mu.Unlock()
		e.shutErr = e.pc.GracefulClose()
		e.wg.Wait()
		close(e.done)
	})
	return e.shutErr
}

// Close implements element.Closer: it closes the peer connection and
// returns when every goroutine of the endpoint has ended. It is
// idempotent.
func (e *WebRTC) Close() error { return e.shutdown() }

// Done is closed when the endpoint has closed its peer connection (Close,
// or a failed connection) and its goroutines have ended.
func (e *WebRTC) Done() <-chan struct{} { return e.done }

// RTCStats returns pion's W3C statistics of the peer connection:
// inbound-rtp, outbound-rtp, remote-inbound-rtp, candidate-pair,
// transport, data-channel, codec... keyed by stats ID.
func (e *WebRTC) RTCStats() webrtc.StatsReport { return e.pc.GetStats() }

// WebRTCStats are the endpoint's own counters.
type WebRTCStats struct {
	// PLIsSent counts the keyframe requests sent to the peer (RTCP PLI);
	// PLIsReceived the PLI and FIR the peer sent.
	PLIsSent, PLIsReceived uint64
	// SinkDrops counts buffers the sink pads could not send: before
	// negotiation, in a codec the peer did not accept, or waiting for a
	// keyframe after a source switch.
	SinkDrops uint64
	// DataDrops counts data messages that found no open channel.
	DataDrops uint64
	// BitrateEstimate is the send-side bandwidth estimate in bits per
	// second (0 without estimator).
	BitrateEstimate int
	// SenderClocks counts the element.SenderClockEvents pushed on the src
	// pads, one per RTCP sender report of a track (for lip sync).
	SenderClocks uint64
}

// Stats returns the endpoint's counters; RTCStats has pion's.
func (e *WebRTC) Stats() WebRTCStats {
	s := WebRTCStats{PLIsSent: e.plisSent.Load(), PLIsReceived: e.plisReceived.Load(), SenderClocks: e.senderClocks.Load()}
	for _, sd := range e.send {
		s.SinkDrops += sd.drops.Load()
	}
	for _, d := range e.data {
		s.DataDrops += d.drops.Load()
	}
	if b := e.est.Load(); b != nil {
		s.BitrateEstimate = b.targetBitrate()
	}
	return s
}
