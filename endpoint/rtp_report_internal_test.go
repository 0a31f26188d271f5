package endpoint

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
)

// TestRTPReportLoss: the reception block counts what RFC 3550 appendix A.3
// says of a stream with gaps, a wrap of the sequence number, duplicates,
// reordering and a restart.
func TestRTPReportLoss(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	r := &rtpSource{ssrc: 42}
	at := func(i int) (time.Duration, time.Time) {
		d := time.Duration(i) * 20 * time.Millisecond
		return d, t0.Add(d)
	}
	// 100 packets from 65500 (wrapping at 65536), every tenth missing.
	seq := uint16(65500)
	for i := range 100 {
		if i%10 != 5 {
			d, now := at(i)
			r.packet(seq, uint32(i*960), 48000, d, now)
		}
		seq++
	}
	b := r.block(t0.Add(2 * time.Second))
	assert.EqualValues(t, 42, b.SSRC)
	assert.EqualValues(t, 10, b.TotalLost)
	assert.EqualValues(t, 10*256/100, b.FractionLost)
	assert.EqualValues(t, 1<<16+uint32(seq-1), b.LastSequenceNumber, "one cycle, then the highest")
	assert.Zero(t, b.Jitter, "packets on time: no jitter")
	assert.Zero(t, b.LastSenderReport)

	// Next interval: 10 packets, the 3rd twice, the 5th and 6th swapped,
	// none lost.
	base := seq
	for _, k := range []uint16{0, 1, 2, 2, 3, 5, 4, 6, 7, 8, 9} {
		d, now := at(100 + int(k))
		r.packet(base+k, uint32((100+int(k))*960), 48000, d, now)
	}
	seq = base + 10
	b = r.block(t0.Add(3 * time.Second))
	assert.EqualValues(t, 9, b.TotalLost, "a duplicate counts as one more received")
	assert.Zero(t, b.FractionLost, "a negative loss in the interval is 0")

	// A jump of 20000: the first packet is dropped as a stray, the second
	// in sequence restarts the count.
	d, now := at(200)
	r.packet(seq+20000, 0, 48000, d, now)
	r.packet(seq+20001, 960, 48000, d, now)
	r.packet(seq+20002, 1920, 48000, d, now)
	b = r.block(now)
	assert.Zero(t, b.TotalLost)
	assert.EqualValues(t, seq+20002, b.LastSequenceNumber, "a new count, no cycle")
}

// TestRTPReportJitter: packets that arrive 0 and 10 ms late in turn have a
// mean transit difference of 10 ms, which the jitter estimate approaches
// (RFC 3550 appendix A.8).
func TestRTPReportJitter(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	r := &rtpSource{ssrc: 1}
	for i := range 500 {
		d := time.Duration(i) * 33 * time.Millisecond
		if i%2 == 1 {
			d += 10 * time.Millisecond
		}
		r.packet(uint16(i), uint32(i*33*90), 90000, d, t0.Add(d))
	}
	b := r.block(t0.Add(20 * time.Second))
	assert.InDelta(t, 900, b.Jitter, 2, "10 ms at 90 kHz")
	assert.Zero(t, b.TotalLost)
}

// TestRTPReportSR: a sender report's NTP time comes back as LSR with the
// delay since it came as DLSR, and the peer's echo of the endpoint's SR
// makes the round trip time.
func TestRTPReportSR(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 250_000_000, time.UTC)
	ntp := toNTP(now)
	assert.Equal(t, now, fromNTP(ntp).UTC().Round(time.Microsecond))
	assert.EqualValues(t, uint64(now.Unix()+ntpEpochOffset), ntp>>32)
	assert.InDelta(t, 1<<30, ntp&0xffffffff, 1, "a quarter second")

	ts := uint32(1000)
	sr := RTPSenderReport{Wallclock: now, RTPTime: ts, ClockRate: 90000}
	assert.Equal(t, now.Add(time.Second), sr.Time(ts+90000))
	assert.Equal(t, now.Add(-time.Second), sr.Time(ts-90000), "before the report, across the wrap")
	ts = 0xffffff00
	sr.RTPTime = ts
	assert.Equal(t, now.Add(time.Second), sr.Time(ts+90000), "across the wrap")
	assert.True(t, (RTPSenderReport{}).Time(5).IsZero())

	r := &rtpSource{ssrc: 7, lsr: uint32(ntp >> 16), lsrAt: now, haveSR: true}
	r.packet(1, 0, 90000, 0, now)
	b := r.block(now.Add(1500 * time.Millisecond))
	assert.Equal(t, uint32(ntp>>16), b.LastSenderReport)
	assert.EqualValues(t, 1.5*65536, b.Delay)
}

// TestRTPReportSourcesBounded: a stream of new SSRCs keeps maxRTPSources
// states, the one heard from last among them.
func TestRTPReportSourcesBounded(t *testing.T) {
	s := &rtpStream{sources: make(map[uint32]*rtpSource)}
	now := time.Now()
	for i := range 100 {
		s.sourceLocked(uint32(i)).packet(0, 0, 90000, 0, now.Add(time.Duration(i)))
	}
	require.Len(t, s.sources, maxRTPSources)
	_, ok := s.sources[99]
	assert.True(t, ok)
	_, ok = s.sources[0]
	assert.False(t, ok)
}

// TestRTPReportPeer: a report block about the stream's SSRC gives the
// peer's view (a negative loss decoded from 24 bits) and the round trip:
// arrival - LSR - DLSR; a sender report is kept as RemoteSenderReport.
func TestRTPReportPeer(t *testing.T) {
	s := &rtpStream{ep: &RTP{Base: element.NewBase("t")}, ssrc: 5, sources: make(map[uint32]*rtpSource)}
	n := &rtpNeg{sendCaps: element.Caps{ClockRate: 90000}, recvPTs: map[uint8]rtpPT{96: {caps: element.Caps{ClockRate: 90000}}}}
	s.neg.Store(n)
	now := time.Now()
	sentSR := uint32(toNTP(now.Add(-100*time.Millisecond)) >> 16)
	s.processReports([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: 9, Reports: []rtcp.ReceptionReport{
			{SSRC: 6, TotalLost: 50}, // about another source: ignored
			{SSRC: 5, FractionLost: 64, TotalLost: 0xffffff, Jitter: 900, LastSenderReport: sentSR, Delay: 40 * 65536 / 1000},
		}},
		&rtcp.SenderReport{SSRC: 9, NTPTime: toNTP(now.Add(-time.Second)), RTPTime: 1234, PacketCount: 10, OctetCount: 1000},
	}, now)
	st := s.streamStats()
	assert.EqualValues(t, 2, st.ReportsReceived)
	assert.EqualValues(t, 1, st.PeerReports)
	assert.EqualValues(t, -1, st.PeerPacketsLost)
	assert.InDelta(t, 0.25, st.PeerFractionLost, 1e-9)
	assert.Equal(t, 10*time.Millisecond, st.PeerJitter)
	assert.InDelta(t, 60*time.Millisecond, st.RoundTripTime, float64(50*time.Microsecond))

	sr := s.lastSR
	require.True(t, s.haveLastSR)
	assert.EqualValues(t, 9, sr.SSRC)
	assert.EqualValues(t, 1234, sr.RTPTime)
	assert.EqualValues(t, 90000, sr.ClockRate, "the one clock rate the section receives")
	assert.WithinDuration(t, now.Add(-time.Second), sr.Wallclock, time.Microsecond)
	assert.Equal(t, now, sr.Received)
	// The next reception block about source 9 echoes it.
	s.countReceivedAt(&rtp.Header{SSRC: 9, SequenceNumber: 1}, 90000, 0, now)
	blocks := s.report(n, now.Add(250*time.Millisecond))
	require.Len(t, blocks, 2)
	rr, ok := blocks[0].(*rtcp.ReceiverReport)
	require.True(t, ok, "nothing sent: an RR")
	require.Len(t, rr.Reports, 1)
	assert.Equal(t, uint32(sr.NTPTime>>16), rr.Reports[0].LastSenderReport)
	assert.EqualValues(t, 65536/4, rr.Reports[0].Delay)
}
