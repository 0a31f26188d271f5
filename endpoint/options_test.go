package endpoint_test

import (
	"context"
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/pipeline"
)

func TestOptionErrors(t *testing.T) {
	cases := []struct {
		name string
		opts []endpoint.Option
		want error
	}{
		{"unknown codec", []endpoint.Option{endpoint.WithCodecs("video/nope")}, codec.ErrUnknownCodec},
		{"codec without RTP", []endpoint.Option{endpoint.WithCodecs("audio/AAC")}, codec.ErrUnknownCodec},
		{"video without video codec", []endpoint.Option{endpoint.WithCodecs("audio/opus"), endpoint.WithVideo(endpoint.SendRecv)}, endpoint.ErrNoCommonCodec},
		{"port range", []endpoint.Option{endpoint.WithUDPPortRange(5000, 4000)}, nil},
		{"direction", []endpoint.Option{endpoint.WithVideo(0)}, nil},
		{"loopback and STUN", []endpoint.Option{endpoint.WithICELoopback(), endpoint.WithICEServers(webrtc.ICEServer{URLs: []string{"stun:stun.example.org"}})}, nil},
		{"nothing to negotiate", []endpoint.Option{endpoint.WithoutMedia()}, nil},
		{"bitrates", []endpoint.Option{endpoint.WithSendBitrate(0, 1, 2)}, nil},
		{"timeouts", []endpoint.Option{endpoint.WithICETimeouts(time.Second, 0, time.Second)}, nil},
		{"data channel twice", []endpoint.Option{endpoint.WithDataChannel("a"), endpoint.WithDataChannel("a")}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ep, err := endpoint.NewWebRTC("ep", c.opts...)
			require.Error(t, err)
			assert.Nil(t, ep)
			if c.want != nil {
				assert.ErrorIs(t, err, c.want)
			}
			assert.Contains(t, err.Error(), "endpoint ep:")
		})
	}
}

func padNames(ep *endpoint.WebRTC) []string {
	var names []string
	for _, p := range ep.Pads() {
		names = append(names, p.Direction().String()+":"+p.Name())
	}
	return names
}

// TestDeclaredPads: the pads exist before any negotiation, one set per
// declared transceiver, and connect before their caps are known.
func TestDeclaredPads(t *testing.T) {
	cases := []struct {
		name string
		opts []endpoint.Option
		want []string
	}{
		{"default", nil, []string{"src:audio_0", "sink:audio_sink_0", "src:video_0", "sink:video_sink_0"}},
		{"data only", []endpoint.Option{endpoint.WithoutMedia(), endpoint.WithDataChannel("")}, []string{"src:data_0", "sink:data_sink_0"}},
		{"directions", []endpoint.Option{endpoint.WithVideo(endpoint.RecvOnly), endpoint.WithVideo(endpoint.SendOnly), endpoint.WithAudio(endpoint.SendRecv)},
			[]string{"src:video_0", "sink:video_sink_1", "src:audio_0", "sink:audio_sink_0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ep := newTestEndpoint(t, c.opts...)
			assert.Equal(t, c.want, padNames(ep))
		})
	}

	ep, err := endpoint.NewWebRTC("ep", loopbackOptions(endpoint.WithCodecs("video/VP8", "video/H264", "audio/opus"))...)
	require.NoError(t, err)
	p, err := pipeline.New()
	require.NoError(t, err)
	defer p.Close()
	vp8, _ := codec.Lookup(codec.MIMEVP8)
	h264, _ := codec.Lookup(codec.MIMEH264)
	camera := element.NewAppSource("camera", element.CapsList{h264.Caps(element.FormatRTP)})
	viewer := element.NewAppSink("viewer", element.CapsList{vp8.Caps(element.FormatRTP)})
	require.NoError(t, p.Add(ep, camera, viewer))
	_, ok := ep.Pad("video_0").Caps()
	assert.False(t, ok, "no caps before negotiation")
	require.NoError(t, p.Connect(ep, viewer, element.KindVideo), "connect before the caps are known")
	require.NoError(t, p.Connect(camera, ep, element.KindVideo), "H.264 into the video sink")
	err = p.Connect(ep, viewer, element.KindAudio)
	assert.ErrorIs(t, err, element.ErrIncompatibleCaps)
	assert.Equal(t, camera.SrcPad(), ep.Pad("video_sink_0").Peer())
}

var candidatePort = regexp.MustCompile(`a=candidate:\S+ 1 (udp|tcp) \d+ 127\.0\.0\.1 (\d+) typ host`)

// connectPeer negotiates a peer with ep (the peer offers) and starts its
// media.
func connectPeer(t *testing.T, ctx context.Context, ep *endpoint.WebRTC, p *peer) string {
	t.Helper()
	answer, err := ep.ProcessOffer(ctx, p.offer(ctx))
	require.NoError(t, err)
	require.NoError(t, p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	p.send()
	return answer
}

// TestICETransports: a shared UDP socket for several endpoints, a port
// range, and ICE over TCP.
func TestICETransports(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	mux := webrtc.NewICEUDPMux(nil, conn)
	defer mux.Close()
	muxPort := strconv.Itoa(conn.LocalAddr().(*net.UDPAddr).Port)

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	tcpMux := webrtc.NewICETCPMux(nil, ln, 32)
	defer tcpMux.Close()
	tcpPort := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	const lo, hi = 41000, 41999
	type setup struct {
		name  string
		opts  []endpoint.Option
		peer  peerConfig
		check func(t *testing.T, answer string)
	}
	setups := []setup{
		{"mux1", []endpoint.Option{endpoint.WithUDPMux(mux)}, peerConfig{}, func(t *testing.T, answer string) {
			assert.Equal(t, []string{muxPort}, ports(answer, "udp"))
		}},
		{"mux2", []endpoint.Option{endpoint.WithUDPMux(mux)}, peerConfig{}, func(t *testing.T, answer string) {
			assert.Equal(t, []string{muxPort}, ports(answer, "udp"))
		}},
		{"range", []endpoint.Option{endpoint.WithUDPPortRange(lo, hi)}, peerConfig{}, func(t *testing.T, answer string) {
			ps := ports(answer, "udp")
			require.NotEmpty(t, ps)
			for _, p := range ps {
				n, _ := strconv.Atoi(p)
				assert.True(t, n >= lo && n <= hi, "port %d in [%d, %d]", n, lo, hi)
			}
		}},
		{"tcp", []endpoint.Option{endpoint.WithICETCP(tcpMux)}, peerConfig{tcp: true}, func(t *testing.T, answer string) {
			assert.Contains(t, ports(answer, "tcp"), tcpPort)
		}},
	}
	var eps []*endpoint.WebRTC
	for _, s := range setups {
		ep, err := endpoint.NewWebRTC(s.name, loopbackOptions(append(s.opts, endpoint.WithCompleteSDP())...)...)
		require.NoError(t, err)
		eps = append(eps, ep)
	}
	loopback(t, eps...)
	for i, s := range setups {
		p := newPeer(t, s.peer)
		answer := connectPeer(t, ctx, eps[i], p)
		s.check(t, answer)
		require.Eventually(t, func() bool { return p.videoIn.Load() > 20 && p.audioIn.Load() > 10 }, waitFor, tick, "%s: media comes back", s.name)
	}
}

func ports(sdp, proto string) []string {
	var r []string
	for _, m := range candidatePort.FindAllStringSubmatch(sdp, -1) {
		if m[1] == proto {
			r = append(r, m[2])
		}
	}
	return r
}
