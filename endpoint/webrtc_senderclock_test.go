package endpoint_test

import (
	"context"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/pipeline"
)

// TestWebRTCSenderClock: the RTCP sender reports of a pion peer's audio
// and video tracks become element.SenderClockEvents on the endpoint's src
// pads, each dating a PTS of its stream with the peer's wall clock: the
// NTP time is now (same machine), and the PTS is near the stream's latest
// (a sender report describes the packet last sent).
func TestWebRTCSenderClock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ep, err := endpoint.NewWebRTC("ep", loopbackOptions(endpoint.WithCompleteSDP())...)
	require.NoError(t, err)
	p, err := pipeline.New()
	require.NoError(t, err)
	sinks := map[string]*elementtest.Sink{}
	require.NoError(t, p.Add(ep))
	for _, k := range []element.Kind{element.KindAudio, element.KindVideo} {
		s := elementtest.NewSink(k.String(), element.CapsList{{Kind: k, Format: element.FormatRTP}}, elementtest.WithKeep())
		sinks[k.String()] = s
		require.NoError(t, p.Add(s))
		require.NoError(t, p.ConnectPads(ep.Pad(k.String()+"_0"), s.SinkPad()))
	}
	require.NoError(t, p.Start(ctx))
	defer func() { require.NoError(t, p.Close()) }()

	peer := newPeer(t, peerConfig{dir: webrtc.RTPTransceiverDirectionSendonly})
	defer peer.close()
	answer, err := ep.ProcessOffer(ctx, peer.offer(ctx))
	require.NoError(t, err)
	require.NoError(t, peer.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	peer.send()

	for kind, s := range sinks {
		ev, err := s.WaitEvent(ctx, func(ev element.Event) bool { _, ok := ev.(element.SenderClockEvent); return ok })
		require.NoError(t, err, kind)
		clock := ev.(element.SenderClockEvent)
		got := s.Buffers()
		require.NotEmpty(t, got, kind)
		var last time.Duration
		for _, b := range got {
			last = max(last, b.PTS)
		}
		t.Logf("%s: %v; latest PTS %v", kind, clock, last)
		assert.WithinDuration(t, time.Now(), clock.NTP, 2*time.Second, kind)
		assert.InDelta(t, float64(last), float64(clock.PTS), float64(500*time.Millisecond), "%s: the report dates a recent packet", kind)
	}
	assert.GreaterOrEqual(t, ep.Stats().SenderClocks, uint64(2))
}
