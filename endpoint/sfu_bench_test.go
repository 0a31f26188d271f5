package endpoint_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/pipeline"
)

// BenchmarkSFUForward: one pion publisher (VP8 at about 2 Mbit/s, 200
// packets/s, and Opus-sized audio, 50 packets/s) forwarded to N pion
// subscribers, all on 127.0.0.1 with DTLS-SRTP, through a medley pipeline
// (a WebRTC endpoint whose src pads fan out to N WebRTC endpoints) or
// through bare pion (TrackLocalStaticRTP, one ReadRTP/WriteRTP loop per
// track). One iteration is one second of media, paced in real time; the
// process CPU time it takes (publisher and subscriber peers included, the
// same in both variants) is reported per packet per subscriber (cpu-us/pkt)
// with the fraction of packets the subscribers did not receive (loss).
// Negotiation and a warm-up until every subscriber receives are untimed.
//
// The peers and the bare pion forwarder run pion's default interceptors
// (NACK generator and responder, sender and receiver reports, stats, TWCC
// feedback on what carries transport-cc numbers); medley's endpoints run
// the same and their send-side bandwidth estimator, which numbers the
// video packets with transport-cc, so that the subscribers send feedback
// on them: the estimator's cost, the subscribers' share of it included,
// is what medley-nobwe leaves out.
func BenchmarkSFUForward(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("medley/subs=%d", n), func(b *testing.B) { benchSFU(b, n, setupMedleySFU) })
		b.Run(fmt.Sprintf("pion/subs=%d", n), func(b *testing.B) { benchSFU(b, n, setupPionSFU) })
		// The same medley forwarding without the send-side bandwidth
		// estimator, which bare pion does not run either.
		b.Run(fmt.Sprintf("medley-nobwe/subs=%d", n), func(b *testing.B) {
			benchSFU(b, n, func(b *testing.B, ctx context.Context, pub *sfuPublisher, subs []*sfuSubscriber) func() {
				return setupMedleySFUWith(b, ctx, pub, subs, endpoint.WithoutBandwidthEstimation())
			})
		})
	}
}

// An sfuSetup connects pub to subs through a forwarder and returns what
// closes the forwarder.
type sfuSetup func(b *testing.B, ctx context.Context, pub *sfuPublisher, subs []*sfuSubscriber) func()

func benchSFU(b *testing.B, n int, setup sfuSetup) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	peers := sfuAPI(b, nil)
	pub := newSFUPublisher(b, peers)
	subs := make([]*sfuSubscriber, n)
	for i := range subs {
		subs[i] = newSFUSubscriber(b, peers)
	}
	defer func() {
		for _, s := range subs {
			s.close()
		}
	}()
	closeFwd := setup(b, ctx, pub, subs)
	defer closeFwd()

	// Warm up until every subscriber receives both kinds, then let the
	// queues drain.
	deadline := time.Now().Add(20 * time.Second)
	pub.sendPaced(0, func() bool { return sfuAllFlowing(subs) || time.Now().After(deadline) })
	require.True(b, sfuAllFlowing(subs), "every subscriber should receive audio and video")
	pub.sendPaced(10, nil)
	time.Sleep(300 * time.Millisecond)

	before := sfuReceived(subs)
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		pub.sendPaced(sfuTicksPerIter, nil)
	}
	// Drain: until everything arrived or nothing has for 300 ms.
	want := before + int64(b.N)*sfuPktsPerIter*int64(n)
	last, lastChange := sfuReceived(subs), time.Now()
	for last < want && time.Since(lastChange) < 300*time.Millisecond {
		time.Sleep(10 * time.Millisecond)
		if r := sfuReceived(subs); r != last {
			last, lastChange = r, time.Now()
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	sent := float64(b.N) * sfuPktsPerIter * float64(n)
	got := float64(last - before)
	b.ReportMetric(float64(cpu.Microseconds())/sent, "cpu-us/pkt")
	b.ReportMetric(max(0, 1-got/sent), "loss")
}

// setupMedleySFU: a pipeline with a publisher endpoint connected to n
// subscriber endpoints, on one shared UDP socket.
func setupMedleySFU(b *testing.B, ctx context.Context, pub *sfuPublisher, subs []*sfuSubscriber) func() {
	return setupMedleySFUWith(b, ctx, pub, subs)
}

// setupMedleySFUWith is setupMedleySFU with more endpoint options.
func setupMedleySFUWith(b *testing.B, ctx context.Context, pub *sfuPublisher, subs []*sfuSubscriber, more ...endpoint.Option) func() {
	mux := sfuMux(b)
	opts := append([]endpoint.Option{
		endpoint.WithICELoopback(), endpoint.WithUDPMux(mux), endpoint.WithCompleteSDP(),
		endpoint.WithCodecs(codec.MIMEVP8, codec.MIMEOpus),
		endpoint.WithICETimeouts(3*time.Second, 6*time.Second, time.Second),
	}, more...)
	p, err := pipeline.New()
	require.NoError(b, err)
	in, err := endpoint.NewWebRTC("pub", opts...)
	require.NoError(b, err)
	require.NoError(b, p.Add(in))
	outs := make([]*endpoint.WebRTC, len(subs))
	for i := range subs {
		outs[i], err = endpoint.NewWebRTC(fmt.Sprintf("sub%d", i), opts...)
		require.NoError(b, err)
		require.NoError(b, p.Add(outs[i]))
		require.NoError(b, p.Connect(in, outs[i], element.KindAudio|element.KindVideo))
	}
	closed := false
	closeAll := func() {
		if !closed {
			closed = true
			require.NoError(b, p.Close())
		}
	}
	b.Cleanup(closeAll)
	require.NoError(b, p.Start(ctx))

	offer, err := pub.pc.CreateOffer(nil)
	require.NoError(b, err)
	require.NoError(b, gatherDone(ctx, pub.pc, offer))
	answer, err := in.ProcessOffer(ctx, pub.pc.LocalDescription().SDP)
	require.NoError(b, err)
	require.NoError(b, pub.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))

	require.NoError(b, parallel(len(subs), 8, func(i int) error {
		s := subs[i]
		o, err := s.pc.CreateOffer(nil)
		if err != nil {
			return err
		}
		if err := gatherDone(ctx, s.pc, o); err != nil {
			return err
		}
		a, err := outs[i].ProcessOffer(ctx, s.pc.LocalDescription().SDP)
		if err != nil {
			return err
		}
		return s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: a})
	}))
	return closeAll
}

// setupPionSFU: the same forwarding with bare pion.
func setupPionSFU(b *testing.B, ctx context.Context, pub *sfuPublisher, subs []*sfuSubscriber) func() {
	api := sfuAPI(b, sfuMux(b))
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "sfu")
	require.NoError(b, err)
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "sfu")
	require.NoError(b, err)

	var wg sync.WaitGroup
	var pcs []*webrtc.PeerConnection
	closed := false
	closeAll := func() {
		if closed {
			return
		}
		closed = true
		for _, pc := range pcs {
			_ = pc.Close()
		}
		wg.Wait()
	}
	b.Cleanup(closeAll)

	in, err := api.NewPeerConnection(webrtc.Configuration{})
	require.NoError(b, err)
	pcs = append(pcs, in)
	in.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Add(1)
		defer wg.Done()
		out := audio
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			out = video
		}
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			_ = out.WriteRTP(pkt)
		}
	})
	offer, err := pub.pc.CreateOffer(nil)
	require.NoError(b, err)
	require.NoError(b, gatherDone(ctx, pub.pc, offer))
	require.NoError(b, in.SetRemoteDescription(*pub.pc.LocalDescription()))
	answer, err := in.CreateAnswer(nil)
	require.NoError(b, err)
	require.NoError(b, gatherDone(ctx, in, answer))
	require.NoError(b, pub.pc.SetRemoteDescription(*in.LocalDescription()))

	outs := make([]*webrtc.PeerConnection, len(subs))
	for i := range outs {
		outs[i], err = api.NewPeerConnection(webrtc.Configuration{})
		require.NoError(b, err)
		pcs = append(pcs, outs[i])
	}
	require.NoError(b, parallel(len(subs), 8, func(i int) error {
		s, out := subs[i], outs[i]
		o, err := s.pc.CreateOffer(nil)
		if err != nil {
			return err
		}
		if err := gatherDone(ctx, s.pc, o); err != nil {
			return err
		}
		if err := out.SetRemoteDescription(*s.pc.LocalDescription()); err != nil {
			return err
		}
		for _, tr := range []webrtc.TrackLocal{video, audio} {
			sender, err := out.AddTrack(tr)
			if err != nil {
				return err
			}
			wg.Add(1)
			go func() { // pion's interceptors need RTCP read
				defer wg.Done()
				for {
					if _, _, err := sender.ReadRTCP(); err != nil {
						return
					}
				}
			}()
		}
		a, err := out.CreateAnswer(nil)
		if err != nil {
			return err
		}
		if err := gatherDone(ctx, out, a); err != nil {
			return err
		}
		return s.pc.SetRemoteDescription(*out.LocalDescription())
	}))
	return closeAll
}
