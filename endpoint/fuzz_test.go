package endpoint_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/pipeline"
)

// FuzzProcessOffer feeds random SDP to ProcessOffer: it must answer or
// fail with one of the endpoint's errors, never panic or hang, and the
// endpoint must close cleanly after.
//
//	go test -run '^$' -fuzz FuzzProcessOffer -fuzztime 30s ./endpoint/
func FuzzProcessOffer(f *testing.F) {
	good := offerWith(f, true, vp8, opus)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(offerWith(f, false, h264, pcmu))
	f.Add(offerWith(f, true))
	f.Add(strings.ReplaceAll(good, "\r\n", "\n"))
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, sdp string) {
		ep, err := endpoint.NewWebRTC("fuzz", loopbackOptions(endpoint.WithDataChannel("chat"))...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		answer, err := ep.ProcessOffer(ctx, sdp)
		switch {
		case err == nil:
			if !strings.HasPrefix(answer, "v=0") {
				t.Errorf("answer %q", answer)
			}
		case errors.Is(err, endpoint.ErrInvalidSDP), errors.Is(err, endpoint.ErrNoCommonCodec):
		default:
			t.Errorf("unexpected error kind: %v", err)
		}
		if err := ep.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
}

// rtpTarget is a receiving endpoint in a running pipeline, its src pads
// feeding sinks, and a connected pion peer sending it VP8, VP9, H.264,
// AV1 and Opus: what FuzzRTP feeds.
type rtpTarget struct {
	ep     *endpoint.WebRTC
	pc     *webrtc.PeerConnection
	tracks []*webrtc.TrackLocalStaticRTP // video VP8, VP9, H.264, AV1, then Opus
}

var fuzzCodecs = []webrtc.RTPCodecCapability{
	{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
	{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0"},
	{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
	{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000},
	{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
}

func newRTPTarget(f *testing.F) *rtpTarget {
	f.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := loopbackOptions(endpoint.WithCompleteSDP(), endpoint.WithAudio(endpoint.RecvOnly))
	for range 4 {
		opts = append(opts, endpoint.WithVideo(endpoint.RecvOnly))
	}
	ep, err := endpoint.NewWebRTC("fuzz", opts...)
	require.NoError(f, err)
	p, err := pipeline.New()
	require.NoError(f, err)
	require.NoError(f, p.Add(ep))
	for _, pad := range ep.Pads() {
		// A sink that keeps nothing: a long fuzzing run sends millions.
		sink := element.NewAppSink("sink-"+pad.Name(), element.CapsList{{Kind: pad.Kind()}},
			element.WithBufferFunc(func(*element.Buffer) {}))
		require.NoError(f, p.Add(sink))
		require.NoError(f, p.ConnectPads(pad, sink.SinkPad()))
	}
	require.NoError(f, p.Start(context.Background()))
	f.Cleanup(func() { require.NoError(f, p.Close()) })

	m := &webrtc.MediaEngine{}
	require.NoError(f, m.RegisterDefaultCodecs())
	ir := &interceptor.Registry{}
	require.NoError(f, webrtc.RegisterDefaultInterceptors(m, ir))
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(loopbackSettings())).
		NewPeerConnection(webrtc.Configuration{})
	require.NoError(f, err)
	x := &rtpTarget{ep: ep, pc: pc}
	f.Cleanup(func() { _ = pc.Close() })
	for i, c := range fuzzCodecs {
		tr, err := webrtc.NewTrackLocalStaticRTP(c, "t"+strconv.Itoa(i), "fuzz")
		require.NoError(f, err)
		s, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		require.NoError(f, err)
		go func() { // RTCP must be read; ends when pc closes
			for {
				if _, _, err := s.Sender().ReadRTCP(); err != nil {
					return
				}
			}
		}()
		x.tracks = append(x.tracks, tr)
	}
	offer, err := pc.CreateOffer(nil)
	require.NoError(f, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(f, pc.SetLocalDescription(offer))
	<-gathered
	answer, err := ep.ProcessOffer(ctx, pc.LocalDescription().SDP)
	require.NoError(f, err)
	require.NoError(f, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	// Every track reaches its pad before the fuzzing starts.
	require.Eventually(f, func() bool {
		for i, tr := range x.tracks {
			_ = tr.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i)}, Payload: []byte{0x10, 0, 0, 0}})
		}
		for _, pad := range ep.Pads() {
			if _, ok := pad.Caps(); !ok {
				return false
			}
		}
		return true
	}, waitFor, tick, "every track reaches the endpoint")
	return x
}

// FuzzRTP feeds random RTP packets (on the tracks of five codecs: pion
// sets their SSRC and payload type, the rest is the input's) and random
// RTCP to a receiving endpoint in a running pipeline: nothing may panic,
// and the connection must survive. The first byte picks the track (0-4) or
// RTCP (5); the rest is the packet.
//
//	go test -run '^$' -fuzz FuzzRTP -fuzztime 60s ./endpoint/
func FuzzRTP(f *testing.F) {
	seed := func(sel byte, p interface{ Marshal() ([]byte, error) }) {
		b, err := p.Marshal()
		require.NoError(f, err)
		f.Add(append([]byte{sel}, b...))
	}
	pkt := func(payload []byte, edit func(*rtp.Packet)) *rtp.Packet {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 100, Timestamp: 9000, Marker: true}, Payload: payload}
		if edit != nil {
			edit(p)
		}
		return p
	}
	vp8Key := append([]byte{0x10, 0x10, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}, make([]byte, 20)...)
	seed(0, pkt(vp8Key, nil))
	seed(0, pkt([]byte{0x90, 0x80, 0x7f, 0x10}, nil)) // extended descriptor, truncated
	seed(1, pkt([]byte{0x8a, 0x00, 0x01, 0x02}, nil))
	seed(2, pkt([]byte{0x67, 0x42, 0xe0, 0x1f}, nil))                   // SPS
	seed(2, pkt([]byte{0x78, 0x00, 0x04, 0x67, 0x42, 0xe0, 0x1f}, nil)) // STAP-A
	seed(2, pkt([]byte{0x7c, 0x85, 0x88, 0x84}, nil))                   // FU-A start of an IDR
	seed(2, pkt([]byte{0x78}, nil))                                     // STAP-A, truncated
	seed(3, pkt([]byte{0x18, 0x0a, 0x0b, 0x00, 0x00, 0x00}, nil))       // AV1: new sequence, sequence header OBU
	seed(4, pkt([]byte{0x78, 1, 2, 3}, func(p *rtp.Packet) {
		p.CSRC = []uint32{1, 2}
		_ = p.SetExtension(5, []byte{1, 2, 3})
	}))
	seed(4, pkt([]byte{0xfc, 0xff, 0xfe}, func(p *rtp.Packet) { p.Padding, p.PaddingSize = true, 3 }))
	for _, r := range []rtcp.Packet{
		&rtcp.PictureLossIndication{MediaSSRC: 1},
		&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 1e6, SSRCs: []uint32{1}},
		&rtcp.TransportLayerNack{MediaSSRC: 1, Nacks: []rtcp.NackPair{{PacketID: 100, LostPackets: 0xffff}}},
		&rtcp.SenderReport{SSRC: 1, NTPTime: 1 << 40, RTPTime: 9000, PacketCount: 1},
		&rtcp.ReceiverReport{SSRC: 2, Reports: []rtcp.ReceptionReport{{SSRC: 1, FractionLost: 255}}},
	} {
		seed(5, r)
	}

	x := newRTPTarget(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 || len(data) > 1200 {
			return
		}
		sel, raw := int(data[0]%6), data[1:]
		if sel == 5 {
			pkts, err := rtcp.Unmarshal(raw)
			if err != nil {
				return
			}
			// A BYE ends the stream it names, which leaves later inputs
			// nothing to reach: not what this target explores.
			for _, p := range pkts {
				if _, bye := p.(*rtcp.Goodbye); bye {
					return
				}
			}
			_ = x.pc.WriteRTCP(pkts)
		} else {
			var p rtp.Packet
			if p.Unmarshal(raw) != nil {
				return
			}
			_ = x.tracks[sel].WriteRTP(&p)
		}
		select {
		case <-x.ep.Done():
			t.Fatalf("the endpoint closed (connection %s)", x.ep.ConnectionState())
		default:
		}
	})
}
