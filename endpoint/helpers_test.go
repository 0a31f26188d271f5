package endpoint_test

import (
	"context"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/pipeline"
)

// peer is a plain pion peer on 127.0.0.1, the far end of a medley WebRTC
// endpoint in the tests: it sends synthetic VP8 and Opus RTP and data
// channel messages, and counts what comes back.
type peer struct {
	t     *testing.T
	pc    *webrtc.PeerConnection
	video *webrtc.TrackLocalStaticRTP
	audio *webrtc.TrackLocalStaticRTP
	dc    atomic.Pointer[webrtc.DataChannel]
	conn  *switchConn // with vanishable: the UDP socket, whose traffic can be cut
	mux   ice.UDPMux

	// What came back.
	videoIn, audioIn atomic.Int64
	videoKeysIn      atomic.Int64
	videoSSRCIn      atomic.Uint32
	maxFrameIn       atomic.Int64 // highest frame counter echoed
	framesMu         sync.Mutex
	framesIn         map[int64]bool // the frame counters echoed
	msgs             chan webrtc.DataChannelMessage

	// What the peer was asked for.
	plisIn    atomic.Int64 // PLI received on the video sender
	nacksIn   atomic.Int64 // NACKs received on the video sender
	rembIn    atomic.Int64 // the last REMB received on the video sender, in bits per second
	forceKey  atomic.Bool
	framesOut atomic.Int64

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

type peerConfig struct {
	data       bool // open a data channel "chat" (the offerer side)
	vanishable bool // route ICE through a switchConn
	tcp        bool // ICE over TCP only
	// dir is the direction of the peer's audio and video transceivers
	// (0: sendrecv, as AddTrack makes them).
	dir webrtc.RTPTransceiverDirection
	// video lists the video codecs the peer takes (MIME types, VP8 among
	// them: the peer sends VP8); nil for pion's defaults.
	video []string
}

// loopbackSettings keep a test peer on 127.0.0.1: loopback candidates
// only, no mDNS, UDP over IPv4.
func loopbackSettings() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return se
}

// newPeer makes a pion peer with a VP8 and an Opus sendrecv transceiver.
func newPeer(t *testing.T, cfg peerConfig) *peer {
	t.Helper()
	p := &peer{t: t, msgs: make(chan webrtc.DataChannelMessage, 64), stop: make(chan struct{})}
	m := &webrtc.MediaEngine{}
	if cfg.video == nil {
		require.NoError(t, m.RegisterDefaultCodecs())
	} else {
		require.NoError(t, m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
			PayloadType:        111,
		}, webrtc.RTPCodecTypeAudio))
		for i, mime := range cfg.video {
			require.NoError(t, m.RegisterCodec(webrtc.RTPCodecParameters{
				RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000},
				PayloadType:        webrtc.PayloadType(96 + i),
			}, webrtc.RTPCodecTypeVideo))
		}
	}
	ir := &interceptor.Registry{}
	require.NoError(t, webrtc.RegisterDefaultInterceptors(m, ir))
	se := loopbackSettings()
	if cfg.tcp {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	}
	if cfg.vanishable {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		p.conn = &switchConn{PacketConn: c}
		p.mux = webrtc.NewICEUDPMux(nil, p.conn)
		se.SetICEUDPMux(p.mux)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	p.pc = pc
	p.video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "peer")
	require.NoError(t, err)
	p.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "peer")
	require.NoError(t, err)
	switch cfg.dir {
	case webrtc.RTPTransceiverDirectionRecvonly:
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			_, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: cfg.dir})
			require.NoError(t, err)
		}
	default:
		add := func(tr webrtc.TrackLocal) *webrtc.RTPSender {
			if cfg.dir == 0 {
				s, err := pc.AddTrack(tr)
				require.NoError(t, err)
				return s
			}
			x, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: cfg.dir})
			require.NoError(t, err)
			return x.Sender()
		}
		p.goRTCP(add(p.video), true)
		p.goRTCP(add(p.audio), false)
	}
	pc.OnTrack(p.onTrack)
	if cfg.data {
		dc, err := pc.CreateDataChannel("chat", nil)
		require.NoError(t, err)
		p.bindData(dc)
	}
	pc.OnDataChannel(p.bindData)
	t.Cleanup(p.close)
	return p
}

func (p *peer) bindData(dc *webrtc.DataChannel) {
	p.dc.Store(dc)
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case p.msgs <- m:
		default:
		}
	})
}

func (p *peer) goRTCP(s *webrtc.RTPSender, video bool) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			pkts, _, err := s.ReadRTCP()
			if err != nil {
				return
			}
			for _, pkt := range pkts {
				switch pkt := pkt.(type) {
				case *rtcp.ReceiverEstimatedMaximumBitrate:
					if video {
						p.rembIn.Store(int64(pkt.Bitrate))
					}
				case *rtcp.TransportLayerNack:
					if video {
						p.nacksIn.Add(1)
					}
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					if video {
						p.plisIn.Add(1)
						p.forceKey.Store(true)
					}
				}
			}
		}
	}()
}

func (p *peer) onTrack(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	video := track.Kind() == webrtc.RTPCodecTypeVideo
	if video {
		p.videoSSRCIn.Store(uint32(track.SSRC()))
	}
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		if !video {
			p.audioIn.Add(1)
			continue
		}
		p.videoIn.Add(1)
		pl := pkt.Payload
		if len(pl) >= 1+14 && pl[0]&0x10 != 0 {
			if pl[1]&1 == 0 {
				p.videoKeysIn.Add(1)
			}
			f := int64(binary.BigEndian.Uint32(pl[1+10:]))
			p.framesMu.Lock()
			if p.framesIn == nil {
				p.framesIn = make(map[int64]bool)
			}
			p.framesIn[f] = true
			p.framesMu.Unlock()
			for {
				old := p.maxFrameIn.Load()
				if f <= old || p.maxFrameIn.CompareAndSwap(old, f) {
					break
				}
			}
		}
	}
}

// send starts writing 50 frames per second of VP8 (two packets each, a
// keyframe every second and when asked) and Opus (one packet each).
func (p *peer) send() { p.sendFrames(50) }

// sendFrames starts the sending goroutine: a keyframe first, then every
// keyEvery frames (never when 0) and when asked.
func (p *peer) sendFrames(keyEvery uint32) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var seqV, seqA uint16
		for f := uint32(0); ; f++ {
			key := f == 0 || keyEvery > 0 && f%keyEvery == 0 || p.forceKey.Swap(false)
			for i, pl := range vp8Frame(f, key) {
				_ = p.video.WriteRTP(&rtp.Packet{
					Header:  rtp.Header{Version: 2, SequenceNumber: seqV, Timestamp: f * 1800, Marker: i == 1},
					Payload: pl,
				})
				seqV++
			}
			p.framesOut.Add(1)
			opus := make([]byte, 80)
			opus[0] = 0x78 // TOC: CELT-only FB 20 ms, one frame
			binary.BigEndian.PutUint32(opus[1:], f)
			_ = p.audio.WriteRTP(&rtp.Packet{
				Header:  rtp.Header{Version: 2, SequenceNumber: seqA, Timestamp: f * 960},
				Payload: opus,
			})
			seqA++
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
}

// vp8Frame returns the two RTP payloads of synthetic VP8 frame f: a
// one-byte payload descriptor (RFC 7741) then, in the first, a frame
// header that is a keyframe's (P=0 and the start code 9d 01 2a, RFC 6386
// section 9.1) or an interframe's, and the frame counter at offset 10.
func vp8Frame(f uint32, key bool) [2][]byte {
	first := make([]byte, 1+600)
	first[0] = 0x10 // S=1, PID=0
	frame := first[1:]
	if key {
		frame[0] = 0x10 // P=0, show_frame
		frame[3], frame[4], frame[5] = 0x9d, 0x01, 0x2a
		binary.LittleEndian.PutUint16(frame[6:], 320)
		binary.LittleEndian.PutUint16(frame[8:], 240)
	} else {
		frame[0] = 0x11 // P=1
	}
	binary.BigEndian.PutUint32(frame[10:], f)
	second := make([]byte, 1+400)
	return [2][]byte{first, second}
}

// framesEchoed counts the frames in [from, to) that came back.
func (p *peer) framesEchoed(from, to int64) int {
	p.framesMu.Lock()
	defer p.framesMu.Unlock()
	n := 0
	for f := from; f < to; f++ {
		if p.framesIn[f] {
			n++
		}
	}
	return n
}

// sendPLI asks medley for a keyframe of the video the peer receives.
func (p *peer) sendPLI() error {
	return p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: p.videoSSRCIn.Load()}})
}

// offer makes the peer's offer and waits for its candidates.
func (p *peer) offer(ctx context.Context) string {
	p.t.Helper()
	o, err := p.pc.CreateOffer(nil)
	require.NoError(p.t, err)
	done := webrtc.GatheringCompletePromise(p.pc)
	require.NoError(p.t, p.pc.SetLocalDescription(o))
	select {
	case <-done:
	case <-ctx.Done():
		p.t.Fatal("peer: gathering did not complete")
	}
	return p.pc.LocalDescription().SDP
}

// stopSending stops the sending goroutine.
func (p *peer) stopSending() { p.stopOnce.Do(func() { close(p.stop) }) }

func (p *peer) close() {
	p.stopSending()
	_ = p.pc.GracefulClose()
	p.wg.Wait()
	if p.mux != nil {
		_ = p.mux.Close()
	}
}

// switchConn is a UDP socket that can go silent both ways, as a peer that
// vanishes without a goodbye.
type switchConn struct {
	net.PacketConn
	dead atomic.Bool
}

func (c *switchConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.dead.Load() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

func (c *switchConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.dead.Load() {
			return n, addr, err
		}
	}
}

// loopback builds a started pipeline in which each endpoint's src pads
// feed its own sink pads, as Kurento's loopback does, and a bus
// subscription. Close runs at cleanup.
func loopback(t *testing.T, eps ...*endpoint.WebRTC) (*pipeline.Pipeline, *pipeline.Subscription) {
	t.Helper()
	return startPipeline(t, true, eps...)
}

// startPipeline starts a pipeline holding eps, each looped back if loop.
func startPipeline(t *testing.T, loop bool, eps ...*endpoint.WebRTC) (*pipeline.Pipeline, *pipeline.Subscription) {
	t.Helper()
	p, err := pipeline.New(pipeline.WithFlowTimeout(400 * time.Millisecond))
	require.NoError(t, err)
	sub := p.Subscribe(4096)
	for _, ep := range eps {
		require.NoError(t, p.Add(ep))
		if loop {
			require.NoError(t, p.Connect(ep, ep, element.KindAll))
		}
	}
	require.NoError(t, p.Start(context.Background()))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stats: %+v", p.Stats())
		}
		require.NoError(t, p.Close())
	})
	return p, sub
}

// busLog collects a subscription's messages for later assertions.
type busLog struct {
	mu   sync.Mutex
	msgs []element.Message
	done chan struct{}
}

func newBusLog(t *testing.T, sub *pipeline.Subscription, each func(element.Message)) *busLog {
	l := &busLog{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for m := range sub.C() {
			if each != nil {
				each(m)
			}
			l.mu.Lock()
			l.msgs = append(l.msgs, m)
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		sub.Close()
		<-l.done
		if t.Failed() {
			for _, m := range l.msgs {
				t.Logf("bus: %T %+v", m, m)
			}
		}
	})
	return l
}

// find returns the messages that match.
func (l *busLog) find(match func(element.Message) bool) []element.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	var r []element.Message
	for _, m := range l.msgs {
		if match(m) {
			r = append(r, m)
		}
	}
	return r
}

// connState matches a ConnectionStateChanged of element name in state s.
func connState(name string, s webrtc.PeerConnectionState) func(element.Message) bool {
	return func(m element.Message) bool {
		c, ok := m.(*endpoint.ConnectionStateChanged)
		return ok && c.Element == name && c.State == s
	}
}

// loopbackOptions are the options every test endpoint takes.
func loopbackOptions(extra ...endpoint.Option) []endpoint.Option {
	return append([]endpoint.Option{
		endpoint.WithICELoopback(),
		endpoint.WithKeyframeRequestInterval(50 * time.Millisecond),
	}, extra...)
}

const waitFor = 10 * time.Second
const tick = 20 * time.Millisecond
