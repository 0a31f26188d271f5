package endpoint

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
)

// RTP is an element that exchanges plain RTP/AVP over UDP with one peer (the
// ffmpeg CLI, GStreamer's udpsrc/udpsink, a media server), as Kurento's
// RtpEndpoint does. Signalling is SDP offer/answer in the host's hands
// (ProcessOffer, or GenerateOffer then ProcessAnswer) with one audio and one
// video section, RTCP on the RTP port + 1 or multiplexed (a=rtcp-mux).
//
// Pads, declared up front:
//
//   - "audio", "video": src pads, the RTP the peer sends, caps fixed from
//     the negotiated codec when the first packet arrives (FlagKeyframe from
//     the codec's IsKeyframe, FlagEndOfFrame on the marker bit of video).
//   - "audio_sink", "video_sink": sink pads, RTP sent to the peer's address
//     with the negotiated payload type and the endpoint's SSRC, on a header
//     of the pad's own (the shared buffer is never modified).
//
// Run starts one read goroutine per socket and one that sends the reports;
// they end when the endpoint closes. RTCP goes to the peer's RTCP address
// (a=rtcp, the RTP port + 1, or the RTP port with rtcp-mux), as SRTCP when
// the section is SDES-SRTP (RTP/SAVP with a=crypto, RFC 4568):
//
//   - a keyframe request reaching the video src pad becomes a PLI, and a
//     PLI or FIR from the peer a keyframe request upstream of the sink pad;
//   - about every second (WithRTCPInterval) each negotiated section sends
//     a compound report (RFC 3550, section 6.4): an SR when it sent RTP
//     since the last one (NTP time and RTP timestamp of one instant,
//     packet and octet counts), else an RR, with a reception block (loss,
//     highest sequence number, jitter, LSR/DLSR) for each source heard
//     from, and an SDES CNAME (the endpoint's name);
//   - the peer's SR and RR feed Stats (its view of what the endpoint
//     sends, the round trip time) and RemoteSenderReport (the NTP/RTP
//     timestamp mapping of what it sends);
//   - each SR of the peer's source also goes down the section's src pad
//     as an element.SenderClockEvent (after the next packet, once the
//     stream has started): the PTS of its RTP timestamp, on the packets'
//     own timeline, and its NTP time, by which a Recorder lines up the
//     peer's audio and video (lip sync);
//
// other RTCP is read and ignored.
type RTP struct {
	element.Base
	cfg     rtpConfig
	streams [2]*rtpStream // audio, video

	sigMu   sync.Mutex
	offered bool // a local offer waits for its answer
	sessID  uint64
	version uint64
	epoch   time.Time

	mu       sync.Mutex
	closing  bool
	wg       sync.WaitGroup
	shutOnce sync.Once
	stop     chan struct{} // closed at shutdown: ends the report loop
	done     chan struct{}
}

// rtpNeg is what a negotiation settled for one stream.
type rtpNeg struct {
	send     bool // the peer receives
	recv     bool // the peer sends
	remote   *net.UDPAddr
	rtcp     *net.UDPAddr // where the peer takes RTCP: a=rtcp, port + 1, or remote with rtcp-mux
	sendPT   uint8
	sendCaps element.Caps
	recvPTs  map[uint8]rtpPT // payload types the peer may send
	answer   []sectionPT     // the codecs to answer with, the send codec first

	// SDES-SRTP (RFC 4568), when the section is RTP/SAVP: the crypto
	// line to answer with, and a context per goroutine that uses one
	// (srtp.Context is not safe for concurrent use). A nil context in a
	// secure negotiation drops the packets (no key yet).
	secure       bool
	cryptoAnswer string
	decRTP       *srtp.Context // read goroutine of the RTP socket
	decRTCP      *srtp.Context // read goroutine of the RTCP socket
	encRTP       *srtp.Context // sink pad goroutine
	encRTCP      *srtp.Context // keyframe requests, under encMu
	encMu        sync.Mutex
}

type rtpPT struct {
	caps element.Caps
	cd   codec.Codec
}

// rtpStream is one media section: its sockets and pads.
type rtpStream struct {
	ep       *RTP
	kind     element.Kind
	rtpConn  *net.UDPConn
	rtcpConn *net.UDPConn
	src      *element.Pad
	sink     *element.Pad
	ssrc     uint32
	neg      atomic.Pointer[rtpNeg]
	localKey []byte // SRTP master key and salt, 30 bytes

	// remoteSSRC is the SSRC of the packets last received, the target of
	// PLI.
	remoteSSRC atomic.Uint32

	// Sink pad goroutine state.
	hdr     rtp.Header
	out     []byte
	enc     []byte
	lastErr time.Time

	sent, received, drops  atomic.Uint64
	plisSent, plisReceived atomic.Uint64
	reportsSent            atomic.Uint64

	// Sender report state (rtp_report.go), from the sink pad goroutine.
	sendMu          sync.Mutex
	sentPackets     uint32
	sentOctets      uint32
	sentSinceReport bool
	haveSentTS      bool
	lastTS          uint32    // the RTP timestamp sent last
	lastTSAt        time.Time // when its first packet left

	// Receiver report state (rtp_report.go), from the read goroutines.
	recvMu          sync.Mutex
	sources         map[uint32]*rtpSource
	lastSource      *rtpSource // the source heard from last
	lastSR          RTPSenderReport
	haveLastSR      bool
	srPending       atomic.Bool   // an SR came: push its SenderClockEvent
	senderClocks    atomic.Uint64 // SenderClockEvents pushed
	reportsReceived uint64
	peerReports     uint64
	peerLost        int64
	peerFraction    float64
	peerJitter      time.Duration
	rtt             time.Duration
}

// NewRTP returns an RTP endpoint named name, bound to 127.0.0.1 unless
// WithRTPBindAddress says otherwise. Its sockets are open from here on: the
// host must Close it if it never joins a pipeline.
func NewRTP(name string, opts ...RTPOption) (*RTP, error) {
	cfg := rtpConfig{bind: "127.0.0.1", rtcpInterval: defaultRTCPInterval}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("endpoint %s: %w", name, err)
		}
	}
	ip := net.ParseIP(cfg.bind)
	if ip == nil {
		return nil, fmt.Errorf("endpoint %s: bind address %q is not an IP address", name, cfg.bind)
	}
	e := &RTP{Base: element.NewBase(name), cfg: cfg, done: make(chan struct{}), stop: make(chan struct{}),
		sessID: uint64(time.Now().UnixNano()), epoch: time.Now()}
	for i, k := range []element.Kind{element.KindAudio, element.KindVideo} {
		s := &rtpStream{ep: e, kind: k, ssrc: randomSSRC(), localKey: make([]byte, 30), sources: make(map[uint32]*rtpSource)}
		if _, err := rand.Read(s.localKey); err != nil {
			return nil, fmt.Errorf("endpoint %s: %w", name, err)
		}
		var err error
		if s.rtpConn, s.rtcpConn, err = listenPair(ip, cfg.mux); err != nil {
			e.closeSockets()
			return nil, fmt.Errorf("endpoint %s: %w", name, err)
		}
		tmpl := rtpTemplates(rtpCodecsOf(k))
		s.src = element.NewSrcPad(k.String(), tmpl, element.WithEventHandler(s.upstream))
		s.sink = element.NewSinkPad(k.String()+"_sink", tmpl, s.chain)
		e.streams[i] = s
		e.AddPad(s.src, s.sink)
	}
	return e, nil
}

// rtpCodecsOf returns the registry's codecs the RTP endpoint offers for k:
// VP8 and H.264 for video, Opus, PCMU and PCMA for audio.
func rtpCodecsOf(k element.Kind) []codec.Codec {
	var mimes []string
	if k == element.KindVideo {
		mimes = []string{codec.MIMEVP8, codec.MIMEH264}
	} else {
		mimes = []string{codec.MIMEOpus, codec.MIMEPCMU, codec.MIMEPCMA}
	}
	var l []codec.Codec
	for _, m := range mimes {
		if cd, ok := codec.Lookup(m); ok {
			l = append(l, cd)
		}
	}
	return l
}

var ssrcSeq atomic.Uint32

func randomSSRC() uint32 {
	return uint32(time.Now().UnixNano())*2654435761 + ssrcSeq.Add(0x9e3779b9)
}

// listenPair opens an RTP socket on an even port and, unless mux, the RTCP
// socket on the next port.
func listenPair(ip net.IP, mux bool) (*net.UDPConn, *net.UDPConn, error) {
	var lastErr error
	for range 64 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			return nil, nil, fmt.Errorf("listen: %w", err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		if mux {
			return c, nil, nil
		}
		if port%2 == 1 || port == 65535 {
			_ = c.Close()
			continue
		}
		c2, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port + 1})
		if err != nil {
			lastErr = err
			_ = c.Close()
			continue
		}
		return c, c2, nil
	}
	return nil, nil, fmt.Errorf("no free RTP/RTCP port pair: %v", lastErr)
}

func (e *RTP) errorf(format string, args ...any) error {
	return fmt.Errorf("endpoint %s: "+format, append([]any{e.Name()}, args...)...)
}

func (e *RTP) checkOpen() error {
	select {
	case <-e.done:
		return e.errorf("%w", element.ErrClosed)
	default:
	}
	return nil
}

// Port returns the local RTP port of kind k's section.
func (e *RTP) Port(k element.Kind) int {
	return e.stream(k).rtpConn.LocalAddr().(*net.UDPAddr).Port
}

func (e *RTP) stream(k element.Kind) *rtpStream {
	if k == element.KindVideo {
		return e.streams[1]
	}
	return e.streams[0]
}

// GenerateOffer returns an SDP offer with an audio and a video section,
// every codec the endpoint takes, sendrecv. Until the answer comes the
// endpoint accepts the payload types it offered.
func (e *RTP) GenerateOffer() (string, error) {
	if err := e.checkOpen(); err != nil {
		return "", err
	}
	e.sigMu.Lock()
	defer e.sigMu.Unlock()
	sd := e.session()
	for _, s := range e.streams {
		crypto := ""
		if e.cfg.sdes {
			crypto = "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(s.localKey)
		}
		md := s.localMedia(rtpCodecsOf(s.kind), nil, "sendrecv", e.cfg.mux, crypto)
		sd.MediaDescriptions = append(sd.MediaDescriptions, md)
		recv := make(map[uint8]rtpPT)
		for _, cd := range rtpCodecsOf(s.kind) {
			recv[cd.PayloadType] = rtpPT{caps: cd.Caps(element.FormatRTP), cd: cd}
		}
		// Ready to receive what it offers; sending goes on as negotiated
		// before until the answer.
		n := &rtpNeg{recv: true, recvPTs: recv, secure: e.cfg.sdes}
		if old := s.neg.Load(); old != nil && old.send && !old.secure && !e.cfg.sdes {
			n.send, n.remote, n.rtcp, n.sendPT, n.sendCaps = true, old.remote, old.rtcp, old.sendPT, old.sendCaps
		}
		s.neg.Store(n)
	}
	out, err := sd.Marshal()
	if err != nil {
		return "", e.errorf("generate offer: %w", err)
	}
	e.offered = true
	return string(out), nil
}

// ProcessAnswer takes the peer's answer to GenerateOffer's offer.
func (e *RTP) ProcessAnswer(answer string) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	e.sigMu.Lock()
	defer e.sigMu.Unlock()
	if !e.offered {
		return e.errorf("process answer: %w: no offer out", ErrSignalingState)
	}
	sd, err := parseSDP(answer)
	if err != nil {
		return e.errorf("process answer: %w", err)
	}
	negs, _, err := e.negotiate(sd)
	if err != nil {
		return e.errorf("process answer: %w", err)
	}
	e.offered = false
	e.apply(negs)
	return nil
}

// ProcessOffer takes the peer's SDP offer and returns the endpoint's answer:
// for each audio and video section (the first of each kind), the first
// offered codec the endpoint takes, with the offer's payload type. Malformed
// SDP fails with ErrInvalidSDP, nothing in common with a *NoCommonCodecError.
func (e *RTP) ProcessOffer(offer string) (string, error) {
	if err := e.checkOpen(); err != nil {
		return "", err
	}
	e.sigMu.Lock()
	defer e.sigMu.Unlock()
	sd, err := parseSDP(offer)
	if err != nil {
		return "", e.errorf("process offer: %w", err)
	}
	negs, idx, err := e.negotiate(sd)
	if err != nil {
		return "", e.errorf("process offer: %w", err)
	}
	ans := e.session()
	mux := false
	for i, md := range sd.MediaDescriptions {
		j := -1
		for k, x := range idx {
			if x == i {
				j = k
			}
		}
		if j < 0 {
			// Rejected: port 0, same media and formats.
			ans.MediaDescriptions = append(ans.MediaDescriptions, &sdp.MediaDescription{
				MediaName: sdp.MediaName{Media: md.MediaName.Media, Port: sdp.RangedPort{Value: 0}, Protos: md.MediaName.Protos, Formats: md.MediaName.Formats},
			})
			continue
		}
		s, n := e.streams[j], negs[j]
		_, mux = md.Attribute("rtcp-mux")
		dir := "sendrecv"
		switch {
		case n.send && !n.recv:
			dir = "sendonly"
		case !n.send && n.recv:
			dir = "recvonly"
		case !n.send && !n.recv:
			dir = "inactive"
		}
		ans.MediaDescriptions = append(ans.MediaDescriptions, s.localMedia(nil, n.answer, dir, mux, n.cryptoAnswer))
	}
	out, err := ans.Marshal()
	if err != nil {
		return "", e.errorf("process offer: %w", err)
	}
	e.offered = false
	e.apply(negs)
	return string(out), nil
}

func (e *RTP) session() *sdp.SessionDescription {
	e.version++
	addr := e.cfg.bind
	at := "IP4"
	if ip := net.ParseIP(addr); ip != nil && ip.To4() == nil {
		at = "IP6"
	}
	return &sdp.SessionDescription{
		Origin: sdp.Origin{Username: "-", SessionID: e.sessID, SessionVersion: e.version,
			NetworkType: "IN", AddressType: at, UnicastAddress: addr},
		SessionName:           "medley",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: at, Address: &sdp.Address{Address: addr}},
		TimeDescriptions:      []sdp.TimeDescription{{}},
	}
}

// localMedia describes this stream's section: codecs (with their registry
// payload types) or pts, direction and the RTCP port.
func (s *rtpStream) localMedia(codecs []codec.Codec, pts []sectionPT, dir string, mux bool, crypto string) *sdp.MediaDescription {
	port := s.rtpConn.LocalAddr().(*net.UDPAddr).Port
	proto := []string{"RTP", "AVP"}
	if crypto != "" {
		proto = []string{"RTP", "SAVP"}
	}
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{Media: s.kind.String(), Port: sdp.RangedPort{Value: port}, Protos: proto}}
	add := func(pt uint8, name string, rate uint32, channels uint16, fmtp string) {
		f := strconv.Itoa(int(pt))
		md.MediaName.Formats = append(md.MediaName.Formats, f)
		v := fmt.Sprintf("%s %s/%d", f, name, rate)
		if channels > 1 {
			v += "/" + strconv.Itoa(int(channels))
		}
		md.WithValueAttribute("rtpmap", v)
		if fmtp != "" {
			md.WithValueAttribute("fmtp", f+" "+fmtp)
		}
	}
	for _, cd := range codecs {
		_, name, _ := strings.Cut(cd.MIME, "/")
		add(cd.PayloadType, name, cd.ClockRate, cd.Channels, cd.Fmtp)
	}
	for _, p := range pts {
		add(p.pt, p.name, p.rate, p.channels, p.fmtp)
	}
	if mux || s.rtcpConn == nil {
		md.WithPropertyAttribute("rtcp-mux")
	} else {
		md.WithValueAttribute("rtcp", strconv.Itoa(s.rtcpConn.LocalAddr().(*net.UDPAddr).Port))
	}
	if crypto != "" {
		md.WithValueAttribute("crypto", crypto)
	}
	md.WithValueAttribute("ssrc", fmt.Sprintf("%d cname:%s", s.ssrc, s.ep.Name()))
	md.WithPropertyAttribute(dir)
	return md
}

// negotiate matches the remote description's sections to the streams: the
// first audio and the first video section. It returns the negotiation of
// each stream and the index of its section (-1: none).
func (e *RTP) negotiate(sd *sdp.SessionDescription) ([2]*rtpNeg, [2]int, error) {
	var negs [2]*rtpNeg
	idx := [2]int{-1, -1}
	var offered []string
	for i, md := range sd.MediaDescriptions {
		k := sectionKind(md.MediaName.Media)
		if k != element.KindAudio && k != element.KindVideo {
			continue
		}
		j := 0
		if k == element.KindVideo {
			j = 1
		}
		if negs[j] != nil || md.MediaName.Port.Value == 0 {
			continue
		}
		pts := sectionPTs(md)
		for _, p := range pts {
			offered = append(offered, fmt.Sprintf("%s %s", k, p.name))
		}
		n := &rtpNeg{recvPTs: make(map[uint8]rtpPT)}
		for _, p := range pts {
			cd, ok := codec.Lookup(k.String() + "/" + p.name)
			if !ok || !usable(cd, k, p) {
				continue
			}
			c := cd.Caps(element.FormatRTP)
			c.Fmtp = p.fmtp
			if p.channels != 0 && k == element.KindAudio {
				c.Channels = p.channels
			}
			if len(n.recvPTs) == 0 {
				n.sendPT, n.sendCaps = p.pt, c
			}
			n.recvPTs[p.pt] = rtpPT{caps: c, cd: cd}
			n.answer = append(n.answer, p)
		}
		if len(n.recvPTs) == 0 {
			continue
		}
		addr, err := remoteAddr(sd, md)
		if err != nil {
			return negs, idx, err
		}
		n.remote = addr
		n.rtcp = &net.UDPAddr{IP: addr.IP, Port: addr.Port + 1}
		if _, ok := md.Attribute("rtcp-mux"); ok {
			n.rtcp = addr
		} else if v, ok := md.Attribute("rtcp"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				if port, err := strconv.Atoi(f[0]); err == nil && port > 0 && port <= 65535 {
					n.rtcp = &net.UDPAddr{IP: addr.IP, Port: port}
				}
			}
		}
		// SDES on RTP/SAVP, or on RTP/AVP with a crypto line, as the
		// ffmpeg CLI writes it: then plain RTP if no suite fits.
		_, hasCrypto := md.Attribute("crypto")
		if savp := slices.Contains(md.MediaName.Protos, "SAVP"); savp || hasCrypto {
			if err := e.streams[j].keySRTP(n, md); err != nil && savp {
				offered = append(offered, fmt.Sprintf("%s (%v)", k, err))
				continue
			}
		}
		n.send, n.recv = true, true
		if _, ok := md.Attribute("recvonly"); ok {
			n.recv = false
		}
		if _, ok := md.Attribute("sendonly"); ok {
			n.send = false
		}
		if _, ok := md.Attribute("inactive"); ok {
			n.send, n.recv = false, false
		}
		negs[j], idx[j] = n, i
	}
	if negs[0] == nil && negs[1] == nil {
		var sup []string
		for _, k := range []element.Kind{element.KindAudio, element.KindVideo} {
			for _, cd := range rtpCodecsOf(k) {
				_, name, _ := strings.Cut(cd.MIME, "/")
				sup = append(sup, fmt.Sprintf("%s %s/%d", k, name, cd.ClockRate))
			}
		}
		return negs, idx, &NoCommonCodecError{Offered: offered, Supported: sup}
	}
	return negs, idx, nil
}

func usable(cd codec.Codec, k element.Kind, p sectionPT) bool {
	if cd.Kind != k || !cd.RTP || cd.ClockRate != p.rate {
		return false
	}
	for _, c := range rtpCodecsOf(k) {
		if c.MIME == cd.MIME {
			return true
		}
	}
	return false
}

type sectionPT struct {
	pt       uint8
	name     string
	rate     uint32
	channels uint16
	fmtp     string
}

// sectionPTs returns the payload types of a section with their codecs, in
// the section's order.
func sectionPTs(md *sdp.MediaDescription) []sectionPT {
	maps := make(map[string]sectionPT)
	fmtps := make(map[string]string)
	for _, a := range md.Attributes {
		pt, v, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		switch a.Key {
		case "rtpmap":
			parts := strings.Split(strings.TrimSpace(v), "/")
			if len(parts) < 2 {
				continue
			}
			rate, err := strconv.ParseUint(parts[1], 10, 32)
			if err != nil {
				continue
			}
			p := sectionPT{name: parts[0], rate: uint32(rate)}
			if len(parts) > 2 {
				if ch, err := strconv.ParseUint(parts[2], 10, 16); err == nil {
					p.channels = uint16(ch)
				}
			}
			maps[pt] = p
		case "fmtp":
			fmtps[pt] = strings.TrimSpace(v)
		}
	}
	var r []sectionPT
	for _, f := range md.MediaName.Formats {
		n, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		p, ok := maps[f]
		if !ok {
			s, ok := staticCodecs[f]
			if !ok {
				continue
			}
			p = sectionPT{name: s.name, rate: s.rate, channels: s.channels}
		}
		p.pt, p.fmtp = uint8(n), fmtps[f]
		r = append(r, p)
	}
	return r
}

// remoteAddr returns the peer's RTP address of a section.
func remoteAddr(sd *sdp.SessionDescription, md *sdp.MediaDescription) (*net.UDPAddr, error) {
	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return nil, fmt.Errorf("%w: %s section without connection address", ErrInvalidSDP, md.MediaName.Media)
	}
	host, _, _ := strings.Cut(ci.Address.Address, "/")
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, fmt.Errorf("%w: connection address %q is not an IP address", ErrInvalidSDP, ci.Address.Address)
	}
	port := md.MediaName.Port.Value
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("%w: port %d", ErrInvalidSDP, port)
	}
	return &net.UDPAddr{IP: ip, Port: port}, nil
}

// apply installs a negotiation; streams without a section stop.
func (e *RTP) apply(negs [2]*rtpNeg) {
	for i, s := range e.streams {
		n := negs[i]
		if n == nil {
			n = &rtpNeg{}
		}
		s.neg.Store(n)
		if n.send {
			if err := s.sink.SetTemplates(element.CapsList{templateOf(n.sendCaps)}); err != nil {
				e.PostError(e.errorf("%s: %w", s.sink.Name(), err))
			}
		}
	}
}

func templateOf(c element.Caps) element.Caps {
	c.Fmtp = ""
	return c
}

// chain sends one buffer to the peer, on the sink pad's goroutine.
func (s *rtpStream) chain(b *element.Buffer) error {
	n := s.neg.Load()
	if n == nil || !n.send || n.remote == nil {
		s.drops.Add(1)
		return nil
	}
	if c, ok := s.sink.Caps(); ok && !strings.EqualFold(c.Codec, n.sendCaps.Codec) {
		s.drops.Add(1)
		return nil
	}
	h := &s.hdr
	*h = b.RTP
	h.Version = 2
	h.SSRC = s.ssrc
	h.PayloadType = n.sendPT
	h.Padding, h.PaddingSize = false, 0
	h.Extension, h.ExtensionProfile, h.Extensions = false, 0, nil
	h.CSRC = nil
	size := h.MarshalSize() + len(b.Data)
	if cap(s.out) < size {
		s.out = make([]byte, size)
	}
	out := s.out[:size]
	hl, err := h.MarshalTo(out)
	if err != nil {
		s.drops.Add(1)
		return nil
	}
	copy(out[hl:], b.Data)
	if n.secure {
		if n.encRTP == nil {
			s.drops.Add(1)
			return nil
		}
		if out, err = n.encRTP.EncryptRTP(s.enc[:0], out, h); err != nil {
			s.drops.Add(1)
			return nil
		}
		s.enc = out[:0]
	}
	if _, err := s.rtpConn.WriteToUDP(out, n.remote); err != nil {
		s.drops.Add(1)
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		// One report per errorInterval: a broken path fails every packet.
		if now := time.Now(); now.Sub(s.lastErr) >= errorInterval {
			s.lastErr = now
			return fmt.Errorf("endpoint: rtp send to %v: %w", n.remote, err)
		}
	}
	s.sent.Add(1)
	s.countSent(h, len(b.Data))
	return nil
}

// srtpSuites are the SDES crypto suites taken (RFC 4568, section 6.2).
var srtpSuites = map[string]srtp.ProtectionProfile{
	"AES_CM_128_HMAC_SHA1_80": srtp.ProtectionProfileAes128CmHmacSha1_80,
	"AES_CM_128_HMAC_SHA1_32": srtp.ProtectionProfileAes128CmHmacSha1_32,
}

// keySRTP takes the first crypto line of a RTP/SAVP section with a suite
// the endpoint knows: its key decrypts what the peer sends; the stream's
// own key, in the same suite, encrypts what it sends.
func (s *rtpStream) keySRTP(n *rtpNeg, md *sdp.MediaDescription) error {
	for _, a := range md.Attributes {
		if a.Key != "crypto" {
			continue
		}
		f := strings.Fields(a.Value)
		if len(f) < 3 {
			continue
		}
		prof, ok := srtpSuites[f[1]]
		if !ok {
			continue
		}
		b64, ok := strings.CutPrefix(f[2], "inline:")
		if !ok {
			continue
		}
		b64, _, _ = strings.Cut(b64, "|")
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			key, err = base64.RawStdEncoding.DecodeString(b64)
		}
		if err != nil || len(key) != 30 {
			continue
		}
		var ctxs [4]*srtp.Context
		for i := range ctxs {
			k := key
			if i >= 2 {
				k = s.localKey
			}
			if ctxs[i], err = srtp.CreateContext(k[:16], k[16:], prof); err != nil {
				return fmt.Errorf("%w: SRTP: %w", ErrInvalidSDP, err)
			}
		}
		n.secure = true
		n.decRTP, n.decRTCP, n.encRTP, n.encRTCP = ctxs[0], ctxs[1], ctxs[2], ctxs[3]
		n.cryptoAnswer = f[0] + " " + f[1] + " inline:" + base64.StdEncoding.EncodeToString(s.localKey)
		return nil
	}
	return errors.New("RTP/SAVP without a crypto suite the endpoint takes")
}

// readRTP pushes the RTP packets arriving on the stream's socket on its src
// pad until the socket closes; RTCP (multiplexed) is dropped.
func (s *rtpStream) readRTP() {
	defer func() { _ = s.src.PushEvent(element.EOSEvent{}) }()
	pool := element.NewBufferPool(receiveBufferSize)
	var (
		hdr     rtp.Header
		lastPT  = -1
		cur     rtpPT
		isVideo = s.kind == element.KindVideo
		tl      rtpTimeline
		scratch = make([]byte, receiveBufferSize)
	)
	for {
		b := pool.Get()
		raw := b.Data[:cap(b.Data)]
		nr, _, err := s.rtpConn.ReadFromUDP(raw)
		if err != nil {
			b.Unref()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		n := s.neg.Load()
		if nr >= 2 && raw[1] >= 192 && raw[1] <= 223 {
			// RTCP, multiplexed (RFC 5761, section 4).
			if pkt, ok := s.decrypt(n, n.decryptRTCP, raw[:nr], scratch); ok {
				s.handleRTCP(pkt)
			}
			b.Unref()
			continue
		}
		if n != nil && n.secure {
			pkt, ok := s.decrypt(n, n.decryptRTP, raw[:nr], scratch)
			if !ok {
				s.drops.Add(1)
				b.Unref()
				continue
			}
			nr = copy(raw, pkt)
		}
		hl, err := hdr.Unmarshal(raw[:nr])
		end := nr
		if err == nil && hdr.Padding {
			if p := int(raw[nr-1]); p == 0 || hl+p > nr {
				err = errPadding
			} else {
				end = nr - p
			}
		}
		if err != nil || n == nil || !n.recv {
			s.drops.Add(1)
			b.Unref()
			continue
		}
		if int(hdr.PayloadType) != lastPT {
			p, ok := n.recvPTs[hdr.PayloadType]
			if !ok {
				s.drops.Add(1)
				b.Unref()
				continue
			}
			lastPT, cur = int(hdr.PayloadType), p
			if err := s.src.SetCaps(p.caps); err != nil {
				s.ep.PostError(err)
			}
		}
		b.SetRTPHeader(&hdr)
		b.RTP.Padding, b.RTP.PaddingSize = false, 0
		b.Data = raw[:copy(raw, raw[hl:end])]
		if cur.cd.IsKeyframe(b.Data) {
			b.Flags |= element.FlagKeyframe
		}
		if isVideo && hdr.Marker {
			b.Flags |= element.FlagEndOfFrame
		}
		b.PTS = tl.Next(hdr.Timestamp, cur.caps.ClockRate, s.ep.epoch)
		s.received.Add(1)
		s.remoteSSRC.Store(hdr.SSRC)
		s.countReceived(&hdr, cur.caps.ClockRate)
		s.src.Push(b)
		b.Unref()
		if s.srPending.Load() {
			s.pushSenderClock(&tl, hdr.SSRC, cur.caps.ClockRate)
		}
	}
}

// pushSenderClock pushes the element.SenderClockEvent of the peer's last
// sender report on the src pad, on the read goroutine (after a packet, so
// that the stream has started and an element that follows the PTS of the
// packets, a depayloader, has seen the one before): the report's RTP
// timestamp dated by the packets' own PTS formula. A report about another
// SSRC than the packets' is skipped.
func (s *rtpStream) pushSenderClock(tl *rtpTimeline, ssrc, rate uint32) {
	s.srPending.Store(false)
	s.recvMu.Lock()
	sr := s.lastSR
	s.recvMu.Unlock()
	if ev, ok := senderClockEvent(tl, ssrc, rate, sr); ok {
		_ = s.src.PushEvent(ev)
		s.senderClocks.Add(1)
	}
}

// readRTCP reads the RTCP arriving on the stream's RTCP socket until it
// closes.
func (s *rtpStream) readRTCP() {
	buf := make([]byte, receiveBufferSize)
	scratch := make([]byte, receiveBufferSize)
	for {
		nr, _, err := s.rtcpConn.ReadFromUDP(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		n := s.neg.Load()
		if pkt, ok := s.decrypt(n, func(dst, src []byte) ([]byte, error) {
			return n.decRTCP.DecryptRTCP(dst, src, nil)
		}, buf[:nr], scratch); ok {
			s.handleRTCP(pkt)
		}
	}
}

// decrypt returns pkt decrypted by fn into scratch when the negotiation is
// secure (false if it fails or there is no key yet), else pkt.
func (s *rtpStream) decrypt(n *rtpNeg, fn func(dst, src []byte) ([]byte, error), pkt, scratch []byte) ([]byte, bool) {
	if n == nil || !n.secure {
		return pkt, true
	}
	if n.decRTP == nil {
		return nil, false
	}
	out, err := fn(scratch[:0], pkt)
	return out, err == nil
}

func (n *rtpNeg) decryptRTP(dst, src []byte) ([]byte, error) {
	return n.decRTP.DecryptRTP(dst, src, nil)
}

func (n *rtpNeg) decryptRTCP(dst, src []byte) ([]byte, error) {
	return n.decRTP.DecryptRTCP(dst, src, nil)
}

// handleRTCP turns the peer's PLI and FIR into keyframe requests upstream
// of the sink pad and takes its sender and receiver reports; other RTCP is
// ignored.
func (s *rtpStream) handleRTCP(b []byte) {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return
	}
	for _, p := range pkts {
		switch p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			s.plisReceived.Add(1)
			s.sink.RequestKeyframe()
		}
	}
	s.processReports(pkts, time.Now())
}

// upstream handles the events reaching the src pad: a keyframe request
// becomes an RTCP PLI to the peer's RTCP address.
func (s *rtpStream) upstream(ev element.Event) {
	if _, ok := ev.(element.KeyframeRequest); !ok || s.kind != element.KindVideo {
		return
	}
	n := s.neg.Load()
	media := s.remoteSSRC.Load()
	if n == nil || n.rtcp == nil || media == 0 {
		return
	}
	if s.writeRTCP(n, []rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: s.ssrc, MediaSSRC: media}}) == nil {
		s.plisSent.Add(1)
	}
}

// writeRTCP sends pkts as one compound packet to the peer's RTCP address,
// through SRTCP when the negotiation is secure, from the RTCP socket or,
// multiplexed, the RTP socket.
func (s *rtpStream) writeRTCP(n *rtpNeg, pkts []rtcp.Packet) error {
	out, err := rtcp.Marshal(pkts)
	if err != nil {
		return fmt.Errorf("endpoint: rtcp: %w", err)
	}
	if n.secure {
		if n.encRTCP == nil {
			return errors.New("endpoint: rtcp: no SRTP key")
		}
		n.encMu.Lock()
		out, err = n.encRTCP.EncryptRTCP(nil, out, nil)
		n.encMu.Unlock()
		if err != nil {
			return fmt.Errorf("endpoint: srtcp: %w", err)
		}
	}
	c := s.rtcpConn
	if c == nil || n.rtcp == n.remote {
		c = s.rtpConn
	}
	if _, err := c.WriteToUDP(out, n.rtcp); err != nil {
		return fmt.Errorf("endpoint: rtcp send to %v: %w", n.rtcp, err)
	}
	return nil
}

// Run implements element.Runner: it reads the sockets until ctx ends or the
// endpoint closes, then closes it.
func (e *RTP) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return nil
	}
	e.wg.Add(1)
	go func() { defer e.wg.Done(); e.reportLoop(e.stop) }()
	for _, s := range e.streams {
		e.wg.Add(1)
		go func() { defer e.wg.Done(); s.readRTP() }()
		if s.rtcpConn != nil {
			e.wg.Add(1)
			go func() { defer e.wg.Done(); s.readRTCP() }()
		}
	}
	e.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-e.done:
	}
	e.shutdown()
	return nil
}

func (e *RTP) closeSockets() {
	for _, s := range e.streams {
		if s == nil {
			continue
		}
		if s.rtpConn != nil {
			_ = s.rtpConn.Close()
		}
		if s.rtcpConn != nil {
			_ = s.rtcpConn.Close()
		}
	}
}

func (e *RTP) shutdown() {
	e.shutOnce.Do(func() {
		e.mu.Lock()
		e.closing = true
		e.mu.Unlock()
		close(e.stop)
		e.closeSockets()
		e.wg.Wait()
		close(e.done)
	})
}

// Close implements element.Closer: it closes the sockets and returns when
// the read goroutines have ended. It is idempotent.
func (e *RTP) Close() error {
	e.shutdown()
	return nil
}

// Done is closed when the endpoint has closed.
func (e *RTP) Done() <-chan struct{} { return e.done }

// RTPStats are the RTP endpoint's counters, over both sections, and each
// section's RTCP statistics.
type RTPStats struct {
	PacketsSent, PacketsReceived, Drops uint64
	// PLIsSent counts the keyframe requests sent to the peer (RTCP PLI);
	// PLIsReceived the PLI and FIR it sent.
	PLIsSent, PLIsReceived uint64
	// Audio and Video are the sections' sender and receiver report
	// statistics.
	Audio, Video RTPStreamStats
}

// Stats returns the endpoint's counters.
func (e *RTP) Stats() RTPStats {
	st := RTPStats{Audio: e.streams[0].streamStats(), Video: e.streams[1].streamStats()}
	for _, s := range e.streams {
		st.PacketsSent += s.sent.Load()
		st.PacketsReceived += s.received.Load()
		st.Drops += s.drops.Load()
		st.PLIsSent += s.plisSent.Load()
		st.PLIsReceived += s.plisReceived.Load()
	}
	return st
}
