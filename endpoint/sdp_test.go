package endpoint_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
)

// offerWith returns the SDP offer of a throwaway pion peer that sends the
// given codecs, one transceiver each, and a data channel if data is set.
func offerWith(t testing.TB, data bool, codecs ...webrtc.RTPCodecParameters) string {
	t.Helper()
	m := &webrtc.MediaEngine{}
	for _, c := range codecs {
		typ := webrtc.RTPCodecTypeAudio
		if strings.HasPrefix(c.MimeType, "video/") {
			typ = webrtc.RTPCodecTypeVideo
		}
		require.NoError(t, m.RegisterCodec(c, typ))
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m)).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	defer func() { require.NoError(t, pc.Close()) }()
	for _, c := range codecs {
		tr, err := webrtc.NewTrackLocalStaticRTP(c.RTPCodecCapability, c.MimeType, "s")
		require.NoError(t, err)
		_, err = pc.AddTrack(tr)
		require.NoError(t, err)
	}
	if data {
		_, err := pc.CreateDataChannel("chat", nil)
		require.NoError(t, err)
	}
	o, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	return o.SDP
}

var (
	vp8  = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}
	opus = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}
	h264 = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 102}
	pcmu = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0}
)

func newTestEndpoint(t testing.TB, opts ...endpoint.Option) *endpoint.WebRTC {
	t.Helper()
	ep, err := endpoint.NewWebRTC("ep", loopbackOptions(opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ep.Close()) })
	return ep
}

// TestProcessOfferBadSDP: what is not an offer the endpoint can take is an
// error value saying why, and the endpoint takes a good offer after it.
func TestProcessOfferBadSDP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	good := offerWith(t, true, vp8, opus)
	cases := []struct {
		name string
		sdp  string
		want error
	}{
		{"empty", "", endpoint.ErrInvalidSDP},
		{"garbage", "hello, world", endpoint.ErrInvalidSDP},
		{"binary", "v=0\r\n\x00\xff\xfe", endpoint.ErrInvalidSDP},
		{"truncated mid-line", good[:len(good)/2], endpoint.ErrInvalidSDP},
		{"truncated header", good[:40], endpoint.ErrInvalidSDP},
		{"1 MB", good + strings.Repeat("a=x-padding:"+strings.Repeat("z", 1000)+"\r\n", 1024), endpoint.ErrInvalidSDP},
		{"no media", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", endpoint.ErrInvalidSDP},
		{"no fingerprint", strings.ReplaceAll(good, "a=fingerprint:", "a=x-fingerprint:"), endpoint.ErrInvalidSDP},
		{"no common codec", offerWith(t, false, h264, pcmu), endpoint.ErrNoCommonCodec},
	}
	ep := newTestEndpoint(t, endpoint.WithCodecs("video/VP8", "audio/opus"), endpoint.WithDataChannel("chat"))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			answer, err := ep.ProcessOffer(ctx, c.sdp)
			require.ErrorIs(t, err, c.want)
			assert.Empty(t, answer)
			assert.Contains(t, err.Error(), "endpoint ep: process offer")
		})
	}
	answer, err := ep.ProcessOffer(ctx, good)
	require.NoError(t, err, "a good offer after bad ones")
	assert.Contains(t, answer, "VP8/90000")
}

// TestNoCommonCodecNamesCodecs: the error of an offer with nothing in
// common names what each side has.
func TestNoCommonCodecNamesCodecs(t *testing.T) {
	ep := newTestEndpoint(t, endpoint.WithCodecs("video/VP8", "audio/opus"))
	_, err := ep.ProcessOffer(context.Background(), offerWith(t, false, h264, pcmu))
	var nc *endpoint.NoCommonCodecError
	require.ErrorAs(t, err, &nc)
	assert.Equal(t, []string{"video H264/90000", "audio PCMU/8000"}, nc.Offered)
	assert.Equal(t, []string{"audio opus/48000/2", "video VP8/90000"}, nc.Supported)
	assert.Contains(t, err.Error(), "no codec in common: offered video H264/90000, audio PCMU/8000; supported audio opus/48000/2, video VP8/90000")

	// Data only, to an endpoint without data channels.
	_, err = ep.ProcessOffer(context.Background(), offerWith(t, true))
	require.ErrorIs(t, err, endpoint.ErrNoCommonCodec)
}

// TestPartialOfferWarns: an offer with one section in common is taken; the
// other is rejected and reported as a warning.
func TestPartialOfferWarns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ep, err := endpoint.NewWebRTC("ep", loopbackOptions(endpoint.WithCodecs("video/VP8", "audio/opus"))...)
	require.NoError(t, err)
	_, sub := loopback(t, ep)
	bus := newBusLog(t, sub, nil)
	answer, err := ep.ProcessOffer(ctx, offerWith(t, false, vp8, pcmu))
	require.NoError(t, err)
	assert.Contains(t, answer, "VP8/90000")
	require.Eventually(t, func() bool {
		return len(bus.find(func(m element.Message) bool {
			w, ok := m.(*element.Warning)
			return ok && strings.Contains(w.Text, "no codec in common: offered PCMU/8000")
		})) == 1
	}, waitFor, tick)
}

func TestSignalingErrors(t *testing.T) {
	ctx := context.Background()
	ep := newTestEndpoint(t)
	good := offerWith(t, false, vp8, opus)

	err := ep.ProcessAnswer(ctx, good)
	require.ErrorIs(t, err, endpoint.ErrSignalingState, "an answer with no offer out")

	_, err = ep.GenerateOffer(ctx)
	require.NoError(t, err)
	_, err = ep.ProcessOffer(ctx, good)
	require.Error(t, err, "an offer while the endpoint's own is out (glare)")
	assert.ErrorIs(t, err, endpoint.ErrSignalingState)

	require.NoError(t, ep.Close())
	_, err = ep.GenerateOffer(ctx)
	require.ErrorIs(t, err, element.ErrClosed)
	require.ErrorIs(t, ep.AddIceCandidate(""), element.ErrClosed)
}

func TestAddIceCandidate(t *testing.T) {
	ep := newTestEndpoint(t)
	for _, bad := range []string{
		"candidate:garbage",
		"not a candidate",
		`{"candidate": 12}`,
		`{"candidate":"candidate:1 1 udp"}`,
		"candidate:" + strings.Repeat("1", 2000),
	} {
		err := ep.AddIceCandidate(bad)
		assert.ErrorIs(t, err, endpoint.ErrInvalidCandidate, "%q", bad)
	}
	// Good ones before the remote description are kept, in every form.
	for _, good := range []string{
		"candidate:2878742611 1 udp 2130706431 127.0.0.1 51136 typ host",
		"a=candidate:2878742611 1 udp 2130706431 127.0.0.1 51137 typ host",
		"2878742611 1 udp 2130706431 127.0.0.1 51138 typ host",
		`{"candidate":"candidate:2878742611 1 udp 2130706431 127.0.0.1 51139 typ host","sdpMid":"0","sdpMLineIndex":0}`,
		"",
	} {
		assert.NoError(t, ep.AddIceCandidate(good), "%q", good)
	}
}

// TestProcessAnswerBadSDP: an answer without ICE credentials or
// fingerprint is refused before pion sees it, and the offer stays out for
// a good answer.
func TestProcessAnswerBadSDP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ep := newTestEndpoint(t)
	offer, err := ep.GenerateOffer(ctx)
	require.NoError(t, err)
	p := newPeer(t, peerConfig{})
	require.NoError(t, p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}))
	answer, err := p.pc.CreateAnswer(nil)
	require.NoError(t, err)
	for name, bad := range map[string]string{
		"garbage":        "v=0 garbage",
		"no fingerprint": strings.ReplaceAll(answer.SDP, "a=fingerprint:", "a=x-fingerprint:"),
		"no ice-pwd":     strings.ReplaceAll(answer.SDP, "a=ice-pwd:", "a=x-ice-pwd:"),
		"1 MB":           answer.SDP + strings.Repeat("a=x:"+strings.Repeat("y", 1020)+"\r\n", 1024),
	} {
		assert.ErrorIs(t, ep.ProcessAnswer(ctx, bad), endpoint.ErrInvalidSDP, name)
	}
	require.NoError(t, ep.ProcessAnswer(ctx, answer.SDP))
}
