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
)

// sfuMux is one shared UDP socket on 127.0.0.1 for many peer connections.
func sfuMux(tb testing.TB) ice.UDPMux {
	tb.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(tb, err)
	mux := webrtc.NewICEUDPMux(nil, c)
	tb.Cleanup(func() { _ = mux.Close() })
	return mux
}

// sfuAPI is a pion API on loopback over mux, with pion's default codecs
// and interceptors and short ICE timeouts; without mux, each peer
// connection has a socket of its own. (Peer connections on two shared
// sockets cannot talk to each other more than once: a mux tells its
// connections apart by remote address.)
func sfuAPI(tb testing.TB, mux ice.UDPMux) *webrtc.API {
	tb.Helper()
	m := &webrtc.MediaEngine{}
	require.NoError(tb, m.RegisterDefaultCodecs())
	ir := &interceptor.Registry{}
	require.NoError(tb, webrtc.RegisterDefaultInterceptors(m, ir))
	se := loopbackSettings()
	if mux != nil {
		se.SetICEUDPMux(mux)
	}
	se.SetICETimeouts(3*time.Second, 6*time.Second, time.Second)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// gatherDone sets d as the local description and waits for ICE gathering.
func gatherDone(ctx context.Context, pc *webrtc.PeerConnection, d webrtc.SessionDescription) error {
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(d); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sfuPublisher sends synthetic VP8 at about 2 Mbit/s (50 frames/s of four
// 1250-byte packets) and Opus-sized audio (50 packets/s).
type sfuPublisher struct {
	pc           *webrtc.PeerConnection
	video, audio *webrtc.TrackLocalStaticRTP
	forceKey     atomic.Bool
	frame        uint32
	seqV, seqA   uint16
	wg           sync.WaitGroup
}

const (
	sfuVideoPerFrame = 4
	sfuPktsPerTick   = sfuVideoPerFrame + 1
	sfuTicksPerIter  = 50 // one iteration: one second of media
	sfuPktsPerIter   = sfuPktsPerTick * sfuTicksPerIter
)

func newSFUPublisher(tb testing.TB, api *webrtc.API) *sfuPublisher {
	tb.Helper()
	p := &sfuPublisher{}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	require.NoError(tb, err)
	p.pc = pc
	p.video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "pub")
	require.NoError(tb, err)
	p.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "pub")
	require.NoError(tb, err)
	for _, tr := range []webrtc.TrackLocal{p.video, p.audio} {
		x, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		require.NoError(tb, err)
		s := x.Sender()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				pkts, _, err := s.ReadRTCP()
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					switch pkt.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						p.forceKey.Store(true)
					}
				}
			}
		}()
	}
	tb.Cleanup(func() {
		_ = pc.Close()
		p.wg.Wait()
	})
	return p
}

// tick writes one 20 ms tick of media: one video frame and one audio packet.
func (p *sfuPublisher) tick() {
	f := p.frame
	p.frame++
	key := f%50 == 0 || p.forceKey.Swap(false)
	for i := range sfuVideoPerFrame {
		pl := make([]byte, 1250)
		if i == 0 {
			pl[0] = 0x10 // S=1, PID=0
			if key {
				pl[1] = 0x10 // P=0
				pl[4], pl[5], pl[6] = 0x9d, 0x01, 0x2a
				binary.LittleEndian.PutUint16(pl[7:], 320)
				binary.LittleEndian.PutUint16(pl[9:], 240)
			} else {
				pl[1] = 0x11
			}
		}
		_ = p.video.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, SequenceNumber: p.seqV, Timestamp: f * 1800, Marker: i == sfuVideoPerFrame-1},
			Payload: pl,
		})
		p.seqV++
	}
	opus := make([]byte, 80)
	opus[0] = 0x78
	_ = p.audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: p.seqA, Timestamp: f * 960}, Payload: opus})
	p.seqA++
}

// sendPaced writes ticks every 20 ms until n ticks are sent or done says so.
func (p *sfuPublisher) sendPaced(n int, done func() bool) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for i := 0; n <= 0 || i < n; i++ {
		p.tick()
		if done != nil && done() {
			return
		}
		<-t.C
	}
}

// sfuSubscriber is a pion peer that receives audio and video and counts
// the packets.
type sfuSubscriber struct {
	pc           *webrtc.PeerConnection
	video, audio atomic.Int64
	wg           sync.WaitGroup
}

func newSFUSubscriber(tb testing.TB, api *webrtc.API) *sfuSubscriber {
	tb.Helper()
	s := &sfuSubscriber{}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	require.NoError(tb, err)
	s.pc = pc
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		_, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		require.NoError(tb, err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		s.wg.Add(1)
		defer s.wg.Done()
		n := &s.audio
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			n = &s.video
		}
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			n.Add(1)
		}
	})
	return s
}

func (s *sfuSubscriber) close() {
	_ = s.pc.Close()
	s.wg.Wait()
}

// sfuReceived sums what the subscribers received.
func sfuReceived(subs []*sfuSubscriber) int64 {
	var n int64
	for _, s := range subs {
		n += s.video.Load() + s.audio.Load()
	}
	return n
}

// sfuAllFlowing reports whether every subscriber received video and audio.
func sfuAllFlowing(subs []*sfuSubscriber) bool {
	for _, s := range subs {
		if s.video.Load() == 0 || s.audio.Load() == 0 {
			return false
		}
	}
	return true
}

// parallel runs f(i) for i in [0, n), a few at a time.
func parallel(n, width int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, width)
	)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
