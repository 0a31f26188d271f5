package endpoint

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bweLink simulates a sender, a bottleneck and a receiver around the
// estimator, on a simulated clock in 1 ms steps: the sender writes
// 1200-byte packets through the estimator's stream writer at rate(target)
// bits per second; the link drops a share of them at random, queues the
// rest (FIFO, unbounded) and delivers them at capacity(t) after 20 ms of
// propagation; pion's TWCC recorder reports the arrivals every 100 ms,
// marshalled and read back through the estimator's RTCP reader.
type bweLink struct {
	t        *testing.T
	b        *bwe
	clock    time.Duration
	w        interceptor.RTPWriter
	rtcpIn   interceptor.RTCPReader
	pending  []byte
	rec      *twcc.Recorder
	rng      *rand.Rand
	loss     float64
	capacity func(time.Duration) float64
	rate     func(target float64) float64

	nextSend, linkFree time.Duration
	inFlight           []flight
	targets            int // target changes reported
	maxDelay           time.Duration
}

type flight struct {
	seq     uint16
	arrival time.Duration
}

const bweTestExtID = 5

func newBWELink(t *testing.T, capacity func(time.Duration) float64, rate func(float64) float64, loss float64) *bweLink {
	l := &bweLink{t: t, rec: twcc.NewRecorder(1), rng: rand.New(rand.NewPCG(1, 2)), loss: loss, capacity: capacity, rate: rate}
	l.b = newBWE(100_000, 1_000_000, 10_000_000)
	l.b.now = func() time.Duration { return l.clock }
	l.b.onTarget = func(int) { l.targets++ }
	info := &interceptor.StreamInfo{SSRC: 7, MimeType: "video/VP8", RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: bweTestExtID}}}
	l.w = l.b.BindLocalStream(info, interceptor.RTPWriterFunc(l.transmit))
	l.rtcpIn = l.b.BindRTCPReader(interceptor.RTCPReaderFunc(func(buf []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		return copy(buf, l.pending), a, nil
	}))
	return l
}

// transmit puts one packet written by the estimator on the link.
func (l *bweLink) transmit(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
	ext := h.GetExtension(bweTestExtID)
	require.Len(l.t, ext, 2, "the estimator numbers every packet")
	if l.rng.Float64() < l.loss {
		return len(payload), nil
	}
	size := h.MarshalSize() + len(payload)
	start := max(l.clock, l.linkFree)
	l.linkFree = start + time.Duration(float64(size*8)/l.capacity(l.clock)*float64(time.Second))
	l.inFlight = append(l.inFlight, flight{seq: binary.BigEndian.Uint16(ext), arrival: l.linkFree + 20*time.Millisecond})
	return len(payload), nil
}

// run simulates d more.
func (l *bweLink) run(d time.Duration) {
	payload := make([]byte, 1200-12-8)
	var seq uint16
	for end := l.clock + d; l.clock < end; l.clock += time.Millisecond {
		for l.nextSend <= l.clock {
			h := rtp.Header{Version: 2, SSRC: 7, SequenceNumber: seq}
			seq++
			_, err := l.w.Write(&h, payload, nil)
			require.NoError(l.t, err)
			bps := l.rate(float64(l.b.targetBitrate()))
			l.nextSend += time.Duration(1200 * 8 / bps * float64(time.Second))
		}
		n := 0
		for _, f := range l.inFlight {
			if f.arrival > l.clock {
				break
			}
			l.rec.Record(7, f.seq, f.arrival.Microseconds())
			l.maxDelay = max(l.maxDelay, l.clock-f.arrival)
			n++
		}
		l.inFlight = l.inFlight[n:]
		if l.clock%(100*time.Millisecond) == 0 {
			for _, p := range l.rec.BuildFeedbackPacket() {
				raw, err := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1}, p})
				require.NoError(l.t, err)
				l.pending = raw
				buf := make([]byte, 1500)
				_, _, err = l.rtcpIn.Read(buf, nil)
				require.NoError(l.t, err)
			}
		}
	}
}

// queueDelay is how long a packet sent now would wait at the bottleneck.
func (l *bweLink) queueDelay() time.Duration { return max(0, l.linkFree-l.clock) }

func constant(v float64) func(time.Duration) float64 { return func(time.Duration) float64 { return v } }

// followTarget is an encoder that sends what the estimate allows.
func followTarget(target float64) float64 { return target }

// TestBWEConvergesBelowCapacity: an encoder following the estimate over
// a 1.5 Mbit/s bottleneck settles near the capacity without building a
// standing queue, and follows the capacity down when it halves.
func TestBWEConvergesBelowCapacity(t *testing.T) {
	capacity := 1_500_000.0
	l := newBWELink(t, func(time.Duration) float64 { return capacity }, followTarget, 0)
	l.run(40 * time.Second)
	got := float64(l.b.targetBitrate())
	t.Logf("after 40 s: target %.0f bit/s, queue %v", got, l.queueDelay())
	assert.Greater(t, got, 0.6*capacity, "the estimate uses most of the capacity")
	assert.Less(t, got, 1.3*capacity, "the estimate stays near the capacity")
	assert.Less(t, l.queueDelay(), 300*time.Millisecond, "no standing queue")
	assert.Positive(t, l.targets, "the estimate changes are reported")

	capacity = 750_000
	l.run(20 * time.Second)
	got = float64(l.b.targetBitrate())
	t.Logf("20 s after the capacity halved: target %.0f bit/s, queue %v", got, l.queueDelay())
	assert.Less(t, got, 1.3*capacity, "the estimate follows the capacity down")
	assert.Greater(t, got, 0.4*capacity)
	assert.Less(t, l.queueDelay(), 300*time.Millisecond, "no standing queue")
}

// TestBWEGrowsWithHeadroom: a 2 Mbit/s stream that the estimator does not
// control (forwarded), over a 20 Mbit/s path, raises the estimate above
// the stream's rate, and no further than GCC's margin over what arrives.
func TestBWEGrowsWithHeadroom(t *testing.T) {
	l := newBWELink(t, constant(20_000_000), func(float64) float64 { return 2_000_000 }, 0)
	l.run(20 * time.Second)
	got := l.b.targetBitrate()
	t.Logf("target %d bit/s", got)
	assert.Greater(t, got, 2_000_000)
	assert.LessOrEqual(t, got, 3_300_000)
}

// TestBWEAnnouncesTheFirstEstimate: a stream well below the initial
// estimate leaves it where it is, and the first feedback announces it all
// the same (the bitrate hint a source waits for), once.
func TestBWEAnnouncesTheFirstEstimate(t *testing.T) {
	l := newBWELink(t, constant(20_000_000), func(float64) float64 { return 400_000 }, 0)
	l.run(5 * time.Second)
	assert.Equal(t, 1_000_000, l.b.targetBitrate(), "no reason to move")
	assert.Equal(t, 1, l.targets, "announced once")
}

// TestBWEBacksOffOnLoss: 20% random loss with no queueing, after ten
// loss-free seconds, brings the estimate down at once, then to its floor,
// whatever the delay says.
func TestBWEBacksOffOnLoss(t *testing.T) {
	l := newBWELink(t, constant(100_000_000), followTarget, 0)
	l.run(10 * time.Second)
	clean := l.b.targetBitrate()
	l.loss = 0.2
	l.run(2 * time.Second)
	soon := l.b.targetBitrate()
	l.run(8 * time.Second)
	got := l.b.targetBitrate()
	t.Logf("target %d bit/s without loss, %d 2 s into the loss, %d 10 s into it", clean, soon, got)
	assert.Less(t, float64(soon), 0.7*float64(clean))
	assert.Less(t, got, 300_000)
}

// TestBWESendPathAllocs: numbering and noting a packet costs the
// extension's two bytes and nothing else.
func TestBWESendPathAllocs(t *testing.T) {
	b := newBWE(100_000, 1_000_000, 10_000_000)
	info := &interceptor.StreamInfo{SSRC: 7, MimeType: "video/VP8", RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: bweTestExtID}}}
	w := b.BindLocalStream(info, interceptor.RTPWriterFunc(func(_ *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) { return len(p), nil }))
	payload := make([]byte, 1000)
	h := rtp.Header{Version: 2, SSRC: 7, Extensions: make([]rtp.Extension, 0, 4)}
	allocs := testing.AllocsPerRun(1000, func() {
		h.Extension, h.Extensions = false, h.Extensions[:0]
		_, _ = w.Write(&h, payload, nil)
	})
	assert.LessOrEqual(t, allocs, 1.0)
}

func TestHasTransportCC(t *testing.T) {
	rec := twcc.NewRecorder(1)
	rec.Record(7, 1, 1000)
	rec.Record(7, 3, 2000)
	fb := rec.BuildFeedbackPacket()
	require.Len(t, fb, 1)
	withTCC, err := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1}, fb[0]})
	require.NoError(t, err)
	without, err := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1}, &rtcp.PictureLossIndication{MediaSSRC: 1}})
	require.NoError(t, err)
	assert.True(t, hasTransportCC(withTCC))
	assert.False(t, hasTransportCC(without))
	assert.False(t, hasTransportCC(withTCC[:10]), "a truncated packet")
}

// BenchmarkBWESend: the estimator's cost per packet sent.
func BenchmarkBWESend(b *testing.B) {
	e := newBWE(100_000, 1_000_000, 10_000_000)
	info := &interceptor.StreamInfo{SSRC: 7, MimeType: "video/VP8", RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: bweTestExtID}}}
	w := e.BindLocalStream(info, interceptor.RTPWriterFunc(func(_ *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) { return len(p), nil }))
	payload := make([]byte, 1200)
	h := rtp.Header{Version: 2, SSRC: 7, Extensions: make([]rtp.Extension, 0, 4)}
	b.ReportAllocs()
	for b.Loop() {
		h.Extension, h.Extensions = false, h.Extensions[:0]
		_, _ = w.Write(&h, payload, nil)
	}
}
