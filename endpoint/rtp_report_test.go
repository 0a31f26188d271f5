package endpoint_test

import (
	"context"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
)

// TestRTPReports: two endpoints exchange VP8 both ways, one way with every
// twentieth packet missing. Each sends SR and RR: the receiver's stats and
// the sender's (from the receiver's report blocks) count the missing
// packets, the round trip is measured, and the receiver's copy of the
// sender's SR maps an RTP timestamp to the wall-clock time it was sent.
// Plain RTCP on the RTP port + 1, and SRTCP multiplexed on the RTP port.
func TestRTPReports(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testRTPReports(t, nil) })
	t.Run("sdes-mux", func(t *testing.T) {
		testRTPReports(t, []endpoint.RTPOption{endpoint.WithSDES(), endpoint.WithRTCPMux()})
	})
}

func testRTPReports(t *testing.T, opts []endpoint.RTPOption) {
	interval := endpoint.WithRTCPInterval(100 * time.Millisecond)
	a, err := endpoint.NewRTP("a", append(opts, interval)...)
	require.NoError(t, err)
	b, err := endpoint.NewRTP("b", interval)
	require.NoError(t, err)
	offer, err := a.GenerateOffer()
	require.NoError(t, err)
	answer, err := b.ProcessOffer(offer)
	require.NoError(t, err)
	require.NoError(t, a.ProcessAnswer(answer))

	vp8, _ := codec.Lookup(codec.MIMEVP8)
	asrc := element.NewAppSource("asrc", element.CapsList{vp8.Caps(element.FormatRTP)})
	bsrc := element.NewAppSource("bsrc", element.CapsList{vp8.Caps(element.FormatRTP)})
	asink, bsink := newRTPCollector("asink", element.KindVideo), newRTPCollector("bsink", element.KindVideo)
	p := rtpPipeline(t, a, b, asrc, bsrc, asink, bsink)
	require.NoError(t, p.ConnectPads(asrc.SrcPad(), a.Pad("video_sink")))
	require.NoError(t, p.ConnectPads(bsrc.SrcPad(), b.Pad("video_sink")))
	require.NoError(t, p.ConnectPads(a.Pad("video"), asink.SinkPad()))
	require.NoError(t, p.ConnectPads(b.Pad("video"), bsink.SinkPad()))
	require.NoError(t, p.Start(context.Background()))

	// 200 packets each way, 10 ms apart, timestamps on the 90 kHz clock of
	// the time they are pushed; a skips every twentieth sequence number.
	const n, every = 200, 20
	var (
		lastTS uint32
		lastAt time.Time
	)
	start := time.Now()
	payload := []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * 10 * time.Millisecond)))
		now := time.Now()
		ts := uint32(now.Sub(start) * 90000 / time.Second)
		h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(60000 + i), Timestamp: 5000 + ts, Marker: true}
		bsrc.PushRTP(&rtp.Packet{Header: h, Payload: payload}, i == 0)
		if i%every == every/2 {
			continue
		}
		asrc.PushRTP(&rtp.Packet{Header: h, Payload: payload}, i == 0)
		lastTS, lastAt = h.Timestamp, now
	}
	const lost = n / every
	var fraction, peerFraction float64 // the largest seen
	require.Eventually(t, func() bool {
		sa, sb := a.Stats().Video, b.Stats().Video
		fraction, peerFraction = max(fraction, sb.FractionLost), max(peerFraction, sa.PeerFractionLost)
		return sa.PeerReports > 0 && sa.PeerPacketsLost == lost && sb.PeerReports > 0 && sb.PacketsLost == lost
	}, 5*time.Second, 10*time.Millisecond, "a %+v\nb %+v", a.Stats(), b.Stats())
	require.Eventually(t, func() bool { return bsink.packets.Load() == n-lost && asink.packets.Load() == n },
		5*time.Second, 10*time.Millisecond)

	// Once the last packets have gone, one more report interval: the last
	// SR of each side counts all of them.
	time.Sleep(300 * time.Millisecond)
	sa, sb := a.Stats().Video, b.Stats().Video
	t.Logf("a %+v\nb %+v", sa, sb)
	assert.Equal(t, sb.RemoteSSRC, sa.SSRC)
	assert.Equal(t, sa.RemoteSSRC, sb.SSRC)
	assert.Positive(t, sa.ReportsSent)
	assert.Positive(t, sb.ReportsReceived)
	// b's reception of a, and what b told a about it.
	assert.EqualValues(t, lost, sb.PacketsLost)
	assert.EqualValues(t, lost, sa.PeerPacketsLost)
	// Reports come every 50 to 150 ms, 5 to 15 packets: one lost in one
	// is 1/15 to 1/5 of it.
	assert.Positive(t, fraction, "b saw a loss in an interval")
	assert.Positive(t, peerFraction, "and told a")
	assert.Less(t, sb.Jitter, 20*time.Millisecond)
	assert.Less(t, sa.PeerJitter, 20*time.Millisecond)
	assert.Positive(t, sa.RoundTripTime)
	assert.Less(t, sa.RoundTripTime, 200*time.Millisecond)
	// a's reception of b: nothing lost.
	assert.Zero(t, sa.PacketsLost)
	assert.Zero(t, sb.PeerPacketsLost)
	assert.Zero(t, sb.PeerFractionLost)
	assert.Positive(t, sb.RoundTripTime)

	sr, ok := b.RemoteSenderReport(element.KindVideo)
	require.True(t, ok)
	t.Logf("b's last SR from a: %+v", sr)
	assert.Equal(t, sa.SSRC, sr.SSRC)
	assert.EqualValues(t, 90000, sr.ClockRate)
	assert.EqualValues(t, n-lost, sr.PacketCount)
	assert.EqualValues(t, (n-lost)*len(payload), sr.OctetCount)
	assert.WithinDuration(t, time.Now(), sr.Received, time.Second)
	assert.WithinDuration(t, lastAt, sr.Time(lastTS), 30*time.Millisecond, "the last packet's RTP time on a's wall clock")
	_, ok = b.RemoteSenderReport(element.KindAudio)
	assert.False(t, ok, "no audio")
}
