package endpoint_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
)

// checkLoopback asserts what a looped-back endpoint must do once connected
// to p: video and audio come back, with the frames the peer sent, data
// channel messages echo as text and binary, and a PLI from the peer's
// receiving side reaches its sending side through the pipeline.
func checkLoopback(t *testing.T, ep *endpoint.WebRTC, p *peer) {
	t.Helper()
	require.Eventually(t, func() bool {
		return p.videoIn.Load() > 50 && p.audioIn.Load() > 25
	}, waitFor, tick, "media should come back: video %d, audio %d", p.videoIn.Load(), p.audioIn.Load())
	assert.Positive(t, p.videoKeysIn.Load(), "the keyframe should come back")
	assert.Greater(t, p.maxFrameIn.Load(), int64(10), "the frames the peer sent should come back")

	// Data: text and binary echo, each as it was sent.
	var dc *webrtc.DataChannel
	require.Eventually(t, func() bool {
		dc = p.dc.Load()
		return dc != nil && dc.ReadyState() == webrtc.DataChannelStateOpen
	}, waitFor, tick, "the data channel should open")
	require.NoError(t, dc.SendText("hello medley"))
	require.NoError(t, dc.Send([]byte{1, 2, 3}))
	for _, want := range []webrtc.DataChannelMessage{
		{IsString: true, Data: []byte("hello medley")},
		{IsString: false, Data: []byte{1, 2, 3}},
	} {
		select {
		case got := <-p.msgs:
			assert.Equal(t, want, got)
		case <-time.After(waitFor):
			t.Fatalf("no echo of %q", want.Data)
		}
	}

	// PLI: peer receiver -> endpoint video sink (KeyframeRequest upstream)
	// -> endpoint video src -> PLI to the peer's sender.
	time.Sleep(100 * time.Millisecond) // past the merge interval of earlier requests
	before, keysBefore := p.plisIn.Load(), p.videoKeysIn.Load()
	require.NoError(t, p.sendPLI())
	require.Eventually(t, func() bool { return p.plisIn.Load() > before }, waitFor, tick, "the PLI should reach the sending peer")
	require.Eventually(t, func() bool { return p.videoKeysIn.Load() > keysBefore }, waitFor, tick, "the requested keyframe should come back")
	st := ep.Stats()
	assert.Positive(t, st.PLIsReceived)
	assert.Positive(t, st.PLIsSent)

	// Bandwidth: the estimate for what the endpoint sends the peer, made
	// from the peer's TWCC feedback, reaches the video sink's source as a
	// bitrate hint: here the endpoint's own video src pad, which tells the
	// peer with REMB.
	require.Eventually(t, func() bool { return p.rembIn.Load() > 0 }, waitFor, tick, "a REMB should reach the peer")
	assert.Positive(t, ep.Stats().BitrateEstimate)

	// pion v4.2 reports inbound streams, not outbound ones.
	var inbound, pairs int
	for _, s := range ep.RTCStats() {
		switch s := s.(type) {
		case webrtc.InboundRTPStreamStats:
			inbound++
			assert.Positive(t, s.PacketsReceived, "RTC stats: %s packets received", s.Kind)
		case webrtc.ICECandidatePairStats:
			pairs++
		}
	}
	assert.Equal(t, 2, inbound, "RTC stats: inbound streams")
	assert.Positive(t, pairs, "RTC stats: candidate pairs")
}

// TestLoopbackPeerOffers: the peer offers (complete SDP, no trickle); media
// and data loop back through the pipeline.
func TestLoopbackPeerOffers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ep, err := endpoint.NewWebRTC("ep", loopbackOptions(endpoint.WithCompleteSDP(), endpoint.WithDataChannel("chat"))...)
	require.NoError(t, err)
	_, sub := loopback(t, ep)
	bus := newBusLog(t, sub, nil)

	p := newPeer(t, peerConfig{data: true})
	answer, err := ep.ProcessOffer(ctx, p.offer(ctx))
	require.NoError(t, err)
	assert.Contains(t, answer, "a=candidate:", "a complete answer has candidates")
	assert.Contains(t, answer, "127.0.0.1")
	assert.Contains(t, answer, "a=end-of-candidates")
	require.NoError(t, p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	p.send()

	checkLoopback(t, ep, p)

	for _, pad := range []string{"video_0", "audio_0"} {
		c, ok := ep.Pad(pad).Caps()
		require.True(t, ok, "%s has caps", pad)
		assert.Equal(t, element.FormatRTP, c.Format)
	}
	vc, _ := ep.Pad("video_0").Caps()
	assert.Equal(t, "video/VP8", vc.Codec)
	assert.Equal(t, uint32(90000), vc.ClockRate)
	ac, _ := ep.Pad("audio_0").Caps()
	assert.Equal(t, "audio/opus", ac.Codec)
	assert.Equal(t, uint16(2), ac.Channels)
	assert.Contains(t, ac.Fmtp, "useinbandfec=1")

	assert.NotEmpty(t, bus.find(connState("ep", webrtc.PeerConnectionStateConnected)))
	assert.NotEmpty(t, bus.find(func(m element.Message) bool { _, ok := m.(*endpoint.NewCandidatePairSelected); return ok }))
	assert.NotEmpty(t, bus.find(func(m element.Message) bool {
		s, ok := m.(*endpoint.IceComponentStateChanged)
		return ok && s.State == webrtc.ICEConnectionStateConnected
	}))
	assert.NotEmpty(t, bus.find(func(m element.Message) bool { _, ok := m.(*endpoint.IceGatheringDone); return ok }))
	require.Eventually(t, func() bool {
		return len(bus.find(func(m element.Message) bool {
			f, ok := m.(*element.MediaFlowInStateChanged)
			return ok && f.Pad == "ep.video_sink_0" && f.State == element.Flowing
		})) > 0
	}, waitFor, tick, "media flow in at the video sink")
	assert.Empty(t, bus.find(func(m element.Message) bool { _, ok := m.(*element.Error); return ok }), "no errors")
}

// TestLoopbackEndpointOffers: the endpoint offers, both sides trickle their
// candidates through the host.
func TestLoopbackEndpointOffers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ep, err := endpoint.NewWebRTC("ep", loopbackOptions(endpoint.WithDataChannel("chat"))...)
	require.NoError(t, err)
	_, sub := loopback(t, ep)
	p := newPeer(t, peerConfig{})
	candidates := make(chan webrtc.ICECandidateInit, 64)
	newBusLog(t, sub, func(m element.Message) {
		if c, ok := m.(*endpoint.IceCandidateFound); ok {
			candidates <- c.Candidate
		}
	})
	// The host's signalling: the peer's candidates go to the endpoint as
	// the JSON a browser sends.
	p.pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		js, err := json.Marshal(c.ToJSON())
		if assert.NoError(t, err) {
			assert.NoError(t, ep.AddIceCandidate(string(js)))
		}
	})

	offer, err := ep.GenerateOffer(ctx)
	require.NoError(t, err)
	assert.Contains(t, offer, "m=video")
	assert.Contains(t, offer, "m=audio")
	assert.Contains(t, offer, "m=application")
	require.NoError(t, p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}))
	answer, err := p.pc.CreateAnswer(nil)
	require.NoError(t, err)
	require.NoError(t, p.pc.SetLocalDescription(answer))
	require.NoError(t, ep.ProcessAnswer(ctx, answer.SDP))
	go func() {
		for {
			select {
			case c := <-candidates:
				_ = p.pc.AddICECandidate(c)
			case <-ctx.Done():
				return
			}
		}
	}()
	p.send()
	checkLoopback(t, ep, p)
	cancel()
}

// TestPeerVanishes: of three looped-back endpoints in one pipeline, one's
// peer closes its connection and another's goes silent. Both endpoints
// report it and close, and the third keeps flowing.
func TestPeerVanishes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	timeouts := endpoint.WithICETimeouts(300*time.Millisecond, 600*time.Millisecond, 100*time.Millisecond)
	var eps []*endpoint.WebRTC
	for _, name := range []string{"stays", "closes", "vanishes"} {
		ep, err := endpoint.NewWebRTC(name, loopbackOptions(endpoint.WithCompleteSDP(), timeouts)...)
		require.NoError(t, err)
		eps = append(eps, ep)
	}
	pl, sub := loopback(t, eps...)
	bus := newBusLog(t, sub, nil)
	peers := []*peer{newPeer(t, peerConfig{}), newPeer(t, peerConfig{}), newPeer(t, peerConfig{vanishable: true})}
	for i, p := range peers {
		answer, err := eps[i].ProcessOffer(ctx, p.offer(ctx))
		require.NoError(t, err)
		require.NoError(t, p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
		p.send()
	}
	for _, p := range peers {
		require.Eventually(t, func() bool { return p.videoIn.Load() > 20 }, waitFor, tick)
	}

	require.NoError(t, peers[1].pc.Close())
	peers[2].conn.dead.Store(true)

	for _, ep := range eps[1:] {
		select {
		case <-ep.Done():
		case <-time.After(waitFor):
			t.Fatalf("%s did not close after its peer went", ep.Name())
		}
	}
	require.Eventually(t, func() bool {
		return len(bus.find(connState("closes", webrtc.PeerConnectionStateClosed))) > 0 &&
			len(bus.find(connState("vanishes", webrtc.PeerConnectionStateFailed))) > 0 &&
			len(bus.find(connState("vanishes", webrtc.PeerConnectionStateClosed))) > 0
	}, waitFor, tick, "failed and closed states on the bus")
	require.Eventually(t, func() bool {
		return len(bus.find(func(m element.Message) bool {
			e, ok := m.(*element.EndOfStream)
			return ok && e.Pad == "vanishes.video_0"
		})) > 0
	}, waitFor, tick, "the src pads of a closed endpoint end their stream")
	assert.Equal(t, webrtc.PeerConnectionStateClosed, eps[2].ConnectionState())

	// The survivor flows on.
	before := peers[0].videoIn.Load()
	require.Eventually(t, func() bool { return peers[0].videoIn.Load() > before+20 }, waitFor, tick, "the other endpoint keeps flowing")
	assert.Equal(t, webrtc.PeerConnectionStateConnected, eps[0].ConnectionState())

	// Closed endpoints refuse signalling, and leave the pipeline cleanly.
	_, err := eps[1].ProcessOffer(ctx, "v=0")
	assert.ErrorIs(t, err, element.ErrClosed)
	require.NoError(t, pl.Remove(eps[1]))
	require.NoError(t, pl.Remove(eps[2]))
	before = peers[0].videoIn.Load()
	require.Eventually(t, func() bool { return peers[0].videoIn.Load() > before+20 }, waitFor, tick)
}

// TestCandidatesBeforeThePipeline: candidates found while the endpoint is
// in no pipeline are posted when it starts running.
func TestCandidatesBeforeThePipeline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ep, err := endpoint.NewWebRTC("ep", loopbackOptions(endpoint.WithCompleteSDP())...)
	require.NoError(t, err)
	_, err = ep.GenerateOffer(ctx) // gathering ends before it returns
	require.NoError(t, err)
	_, sub := loopback(t, ep)
	bus := newBusLog(t, sub, nil)
	require.Eventually(t, func() bool {
		return len(bus.find(func(m element.Message) bool { _, ok := m.(*endpoint.IceCandidateFound); return ok })) > 0 &&
			len(bus.find(func(m element.Message) bool { _, ok := m.(*endpoint.IceGatheringDone); return ok })) == 1
	}, waitFor, tick)
}

// TestUndeclaredTrack: a second video track from the peer, which the
// endpoint did not declare, gets a src pad of its own, announced on the
// bus, with its caps.
func TestUndeclaredTrack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ep, err := endpoint.NewWebRTC("ep", loopbackOptions(endpoint.WithCompleteSDP(), endpoint.WithoutMedia(), endpoint.WithVideo(endpoint.RecvOnly))...)
	require.NoError(t, err)
	_, sub := startPipeline(t, false, ep)
	bus := newBusLog(t, sub, nil)
	p := newPeer(t, peerConfig{})
	second, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "second", "peer")
	require.NoError(t, err)
	_, err = p.pc.AddTrack(second)
	require.NoError(t, err)
	answer, err := ep.ProcessOffer(ctx, p.offer(ctx))
	require.NoError(t, err)
	require.NoError(t, p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	p.send()
	go func() {
		for f := uint32(0); ctx.Err() == nil; f++ {
			for i, pl := range vp8Frame(f, f%10 == 0) {
				_ = second.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(2*f) + uint16(i), Timestamp: f * 3000, Marker: i == 1}, Payload: pl})
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	require.Eventually(t, func() bool {
		return len(bus.find(func(m element.Message) bool {
			a, ok := m.(*endpoint.PadAdded)
			return ok && a.Pad == "ep.video_1" && a.Kind == element.KindVideo
		})) == 1
	}, waitFor, tick)
	for _, name := range []string{"video_0", "video_1"} {
		require.Eventually(t, func() bool {
			c, ok := ep.Pad(name).Caps()
			return ok && c.Codec == "video/VP8" && ep.Pad(name).Stats().Packets > 10
		}, waitFor, tick, name)
	}
	assert.Equal(t, []string{"src:video_0", "src:video_1"}, padNames(ep))
	cancel()
}

// TestSimulcastLayers: each rid layer of a simulcast track gets a src pad
// of its own, named after its transceiver's.
func TestSimulcastLayers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ep, err := endpoint.NewWebRTC("ep", loopbackOptions(endpoint.WithCompleteSDP(), endpoint.WithoutMedia(), endpoint.WithVideo(endpoint.RecvOnly))...)
	require.NoError(t, err)
	_, sub := startPipeline(t, false, ep)
	bus := newBusLog(t, sub, nil)

	sp := newSimulcastPeer(ctx, t, ep, "h", "l")
	go func() {
		for f := uint32(0); ctx.Err() == nil; f++ {
			for _, l := range sp.layers {
				for i, pl := range vp8Frame(f, f%10 == 0) {
					sp.write(l, &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(2*f) + uint16(i), Timestamp: f * 3000, Marker: i == 1}, Payload: pl})
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	for _, name := range []string{"video_0_h", "video_0_l"} {
		require.Eventually(t, func() bool {
			p := ep.Pad(name)
			return p != nil && p.Stats().Packets > 10
		}, waitFor, tick, name)
	}
	assert.Len(t, bus.find(func(m element.Message) bool { _, ok := m.(*endpoint.PadAdded); return ok }), 2)
	cancel()
}
