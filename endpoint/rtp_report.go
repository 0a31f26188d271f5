package endpoint

import (
	"math/rand/v2"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/medley-go/medley/element"
)

// RTCP sender and receiver reports of the RTP endpoint (RFC 3550, sections
// 6.4 and appendix A). pion/interceptor's report package computes the same
// numbers for pion's own transports, but it does not fit here: its receiver
// reports go out under a random SSRC of their own, one packet per source,
// without the SDES CNAME a compound packet must carry (RFC 3550, section
// 6.1), and it keeps neither the peer's reports on what we send nor the
// NTP/RTP mapping of the peer's sender reports where a host could read them.

const (
	// maxRTPSources bounds the remote SSRCs a section keeps reception
	// statistics for (a peer sends one, two while it restarts); a new one
	// beyond it replaces the one heard from least recently, so a stream of
	// spoofed SSRCs cannot grow the state.
	maxRTPSources = 8
	// maxDropout and maxMisorder are RFC 3550 appendix A.1's bounds: a
	// sequence number further ahead than maxDropout, or further behind
	// than maxMisorder, is a jump; two in a row restart the count.
	maxDropout  = 3000
	maxMisorder = 100
	// defaultRTCPInterval is the mean time between two reports of a
	// section: pion's and browsers' one second, rather than RFC 3550's five
	// (section 6.2), so that loss and jitter show within seconds.
	defaultRTCPInterval = time.Second
)

// ntpEpochOffset is the number of seconds from 1900 (NTP's era 0) to 1970.
const ntpEpochOffset = 2208988800

// toNTP returns t as a 64-bit NTP timestamp (RFC 3550, section 4).
func toNTP(t time.Time) uint64 {
	ns := t.UnixNano()
	sec := uint64(ns/1e9) + ntpEpochOffset
	frac := (uint64(ns%1e9) << 32) / 1e9
	return sec<<32 | frac
}

// fromNTP returns the time of a 64-bit NTP timestamp (era 0, up to 2036).
func fromNTP(ntp uint64) time.Time {
	sec := int64(ntp>>32) - ntpEpochOffset
	ns := (int64(ntp&0xffffffff) * 1e9) >> 32
	return time.Unix(sec, ns)
}

// RTPSenderReport is the last RTCP sender report (RFC 3550, section 6.4.1)
// the peer sent in one section: the wall-clock time of its NTP timestamp
// and the RTP timestamp of the same instant on the stream's clock. Two
// sections' reports of one peer put its audio and video on one timeline
// (lip sync): Time maps an RTP timestamp to the peer's wall clock.
type RTPSenderReport struct {
	// SSRC is the source the report is about.
	SSRC uint32
	// NTPTime is the report's 64-bit NTP timestamp, Wallclock the same
	// time.
	NTPTime   uint64
	Wallclock time.Time
	// RTPTime is the RTP timestamp of Wallclock.
	RTPTime uint32
	// ClockRate is the RTP clock rate of the section's negotiated codec
	// (0 when nothing has been negotiated to receive).
	ClockRate uint32
	// PacketCount and OctetCount are the sender's totals.
	PacketCount, OctetCount uint32
	// Received is when the report arrived, on the local clock.
	Received time.Time
}

// Time returns the peer's wall-clock time of RTP timestamp ts, taken as the
// nearer of the two instants it may denote around RTPTime (the timestamp
// wraps every 2^32 ticks). It returns the zero time when ClockRate is 0.
func (r RTPSenderReport) Time(ts uint32) time.Time {
	if r.ClockRate == 0 {
		return time.Time{}
	}
	d := int64(int32(ts - r.RTPTime))
	return r.Wallclock.Add(time.Duration(d * int64(time.Second) / int64(r.ClockRate)))
}

// RTPStreamStats are the RTCP statistics of one section (audio or video).
type RTPStreamStats struct {
	// SSRC is the endpoint's SSRC in the section.
	SSRC uint32
	// ReportsSent counts the compound RTCP reports (SR or RR, with SDES)
	// the endpoint sent; ReportsReceived the SR and RR the peer sent.
	ReportsSent, ReportsReceived uint64

	// Reception, as the endpoint's receiver reports state it, of the
	// peer's source heard from last (RemoteSSRC): packets expected but not
	// received since the first (PacketsLost, negative when duplicates
	// outnumber losses), the fraction lost in the last report interval,
	// and the interarrival jitter (RFC 3550, section 6.4.1).
	RemoteSSRC   uint32
	PacketsLost  int64
	FractionLost float64
	Jitter       time.Duration

	// What the peer's last report block about the endpoint's SSRC said of
	// what the endpoint sends (zero until one arrives), and the round trip
	// time computed from its LSR and DLSR fields (zero until the peer echoes
	// one of the endpoint's sender reports).
	PeerReports      uint64
	PeerPacketsLost  int64
	PeerFractionLost float64
	PeerJitter       time.Duration
	RoundTripTime    time.Duration

	// SenderClocks counts the element.SenderClockEvents pushed on the
	// section's src pad, one for each of the peer's sender reports once
	// its stream has started.
	SenderClocks uint64
}

// rtpSource is the reception state of one remote SSRC (RFC 3550, appendix
// A.1, A.3 and A.8), under the stream's recvMu.
type rtpSource struct {
	ssrc      uint32
	clockRate uint32
	started   bool // an RTP packet has come
	heard     bool // an RTP packet came since the last report
	lastHeard time.Time

	maxSeq        uint16
	cycles        uint32 // sequence number wraps, shifted 16 bits
	baseSeq       uint32
	badSeq        uint32
	received      uint32
	expectedPrior uint32
	receivedPrior uint32
	transit       uint32
	jitter        float64 // in timestamp units
	lost          int64
	fraction      uint8

	lsr    uint32    // middle 32 bits of the last SR's NTP timestamp
	lsrAt  time.Time // when it came
	haveSR bool
}

func (r *rtpSource) initSeq(seq uint16) {
	r.baseSeq, r.maxSeq, r.badSeq = uint32(seq), seq, 1<<16+1
	r.cycles, r.received, r.expectedPrior, r.receivedPrior = 0, 0, 0, 0
}

// updateSeq is RFC 3550 appendix A.1's update_seq without probation: it
// counts seq and reports whether it belongs to the stream.
func (r *rtpSource) updateSeq(seq uint16) bool {
	udelta := seq - r.maxSeq
	switch {
	case udelta < maxDropout:
		if seq < r.maxSeq {
			r.cycles += 1 << 16
		}
		r.maxSeq = seq
	case udelta <= 1<<16-maxMisorder:
		if uint32(seq) != r.badSeq {
			r.badSeq = (uint32(seq) + 1) & 0xffff
			return false
		}
		// Two sequential packets after a jump: the source restarted.
		r.initSeq(seq)
	default:
		// Duplicate or reordered.
	}
	r.received++
	return true
}

// packet counts an RTP packet that arrived at arrival (the time since the
// endpoint's epoch) for the reports.
func (r *rtpSource) packet(seq uint16, ts uint32, clockRate uint32, arrival time.Duration, now time.Time) {
	r.lastHeard, r.heard = now, true
	if !r.started || clockRate != r.clockRate {
		r.started, r.clockRate = true, clockRate
		r.initSeq(seq)
		r.received = 1
		r.transit = uint32(rtpUnits(arrival, clockRate)) - ts
		r.jitter = 0
		return
	}
	if !r.updateSeq(seq) {
		return
	}
	// Interarrival jitter, RFC 3550 appendix A.8.
	transit := uint32(rtpUnits(arrival, clockRate)) - ts
	d := int32(transit - r.transit)
	r.transit = transit
	if d < 0 {
		d = -d
	}
	r.jitter += (float64(d) - r.jitter) / 16
}

// rtpUnits returns d in ticks of a clock of rate, without overflow.
func rtpUnits(d time.Duration, rate uint32) int64 {
	return int64(d/time.Second)*int64(rate) + int64(d%time.Second)*int64(rate)/int64(time.Second)
}

// block returns the source's reception report block (RFC 3550, appendix
// A.3) and starts a new report interval.
func (r *rtpSource) block(now time.Time) rtcp.ReceptionReport {
	extMax := r.cycles + uint32(r.maxSeq)
	expected := extMax - r.baseSeq + 1
	lost := int64(expected) - int64(r.received)
	lost = min(max(lost, -0x800000), 0x7fffff)
	expInterval := expected - r.expectedPrior
	r.expectedPrior = expected
	recvInterval := r.received - r.receivedPrior
	r.receivedPrior = r.received
	lostInterval := int64(expInterval) - int64(recvInterval)
	r.fraction = 0
	if expInterval != 0 && lostInterval > 0 {
		r.fraction = uint8(min(lostInterval<<8/int64(expInterval), 255))
	}
	r.lost = lost
	b := rtcp.ReceptionReport{
		SSRC:               r.ssrc,
		FractionLost:       r.fraction,
		TotalLost:          uint32(lost) & 0xffffff,
		LastSequenceNumber: extMax,
		Jitter:             uint32(r.jitter),
	}
	if r.haveSR {
		b.LastSenderReport = r.lsr
		b.Delay = uint32(now.Sub(r.lsrAt) * 65536 / time.Second)
	}
	return b
}

// sourceLocked returns the reception state of ssrc, making it if need be
// (replacing the source heard from least recently when there are
// maxRTPSources).
func (s *rtpStream) sourceLocked(ssrc uint32) *rtpSource {
	if r := s.lastSource; r != nil && r.ssrc == ssrc {
		return r
	}
	r, ok := s.sources[ssrc]
	if !ok {
		if len(s.sources) >= maxRTPSources {
			var old *rtpSource
			for _, x := range s.sources {
				if old == nil || x.lastHeard.Before(old.lastHeard) {
					old = x
				}
			}
			delete(s.sources, old.ssrc)
		}
		r = &rtpSource{ssrc: ssrc}
		s.sources[ssrc] = r
	}
	s.lastSource = r
	return r
}

// countReceived counts a received RTP packet for the receiver reports, on
// the RTP read goroutine.
func (s *rtpStream) countReceived(h *rtp.Header, clockRate uint32) {
	now := time.Now()
	s.countReceivedAt(h, clockRate, now.Sub(s.ep.epoch), now)
}

func (s *rtpStream) countReceivedAt(h *rtp.Header, clockRate uint32, arrival time.Duration, now time.Time) {
	s.recvMu.Lock()
	s.sourceLocked(h.SSRC).packet(h.SequenceNumber, h.Timestamp, clockRate, arrival, now)
	s.recvMu.Unlock()
}

// countSent counts a sent RTP packet for the sender reports, on the sink
// pad's goroutine.
func (s *rtpStream) countSent(h *rtp.Header, payload int) {
	s.sendMu.Lock()
	s.sentPackets++
	s.sentOctets += uint32(payload)
	s.sentSinceReport = true
	if !s.haveSentTS || h.Timestamp != s.lastTS {
		// The first packet of a frame dates its timestamp: the later
		// ones of a large frame leave later.
		s.haveSentTS, s.lastTS, s.lastTSAt = true, h.Timestamp, time.Now()
	}
	s.sendMu.Unlock()
}

// report returns the section's compound RTCP report (RFC 3550, section
// 6.4): an SR when it sent RTP since the last report, else an RR; with a
// block for each source heard from since the last report; then its SDES
// CNAME.
func (s *rtpStream) report(n *rtpNeg, now time.Time) []rtcp.Packet {
	s.recvMu.Lock()
	var blocks []rtcp.ReceptionReport
	for _, r := range s.sources {
		if r.heard {
			r.heard = false
			blocks = append(blocks, r.block(now))
		}
	}
	s.recvMu.Unlock()

	var first rtcp.Packet = &rtcp.ReceiverReport{SSRC: s.ssrc, Reports: blocks}
	s.sendMu.Lock()
	if s.sentSinceReport && n.sendCaps.ClockRate > 0 {
		s.sentSinceReport = false
		first = &rtcp.SenderReport{
			SSRC:        s.ssrc,
			NTPTime:     toNTP(now),
			RTPTime:     s.lastTS + uint32(rtpUnits(now.Sub(s.lastTSAt), n.sendCaps.ClockRate)),
			PacketCount: s.sentPackets,
			OctetCount:  s.sentOctets,
			Reports:     blocks,
		}
	}
	s.sendMu.Unlock()
	return []rtcp.Packet{first, rtcp.NewCNAMESourceDescription(s.ssrc, s.ep.Name())}
}

// processReports takes the SR and RR of a compound RTCP packet the peer
// sent in this section.
func (s *rtpStream) processReports(pkts []rtcp.Packet, now time.Time) {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	for _, p := range pkts {
		var blocks []rtcp.ReceptionReport
		switch p := p.(type) {
		case *rtcp.SenderReport:
			s.reportsReceived++
			r := s.sourceLocked(p.SSRC)
			r.lsr, r.lsrAt, r.haveSR = uint32(p.NTPTime>>16), now, true
			clockRate := r.clockRate
			if !r.started {
				clockRate = s.recvClockRate()
			}
			s.lastSR = RTPSenderReport{SSRC: p.SSRC, NTPTime: p.NTPTime, Wallclock: fromNTP(p.NTPTime),
				RTPTime: p.RTPTime, ClockRate: clockRate, PacketCount: p.PacketCount, OctetCount: p.OctetCount, Received: now}
			s.haveLastSR = true
			s.srPending.Store(true)
			blocks = p.Reports
		case *rtcp.ReceiverReport:
			s.reportsReceived++
			blocks = p.Reports
		case *rtcp.Goodbye:
			for _, ssrc := range p.Sources {
				if r, ok := s.sources[ssrc]; ok {
					delete(s.sources, ssrc)
					if s.lastSource == r {
						s.lastSource = nil
					}
				}
			}
		}
		for _, b := range blocks {
			if b.SSRC != s.ssrc {
				continue
			}
			s.peerReports++
			lost := int64(b.TotalLost & 0xffffff)
			if lost >= 0x800000 {
				lost -= 0x1000000
			}
			s.peerLost, s.peerFraction = lost, float64(b.FractionLost)/256
			s.peerJitter = 0
			if rate := s.sendClockRate(); rate > 0 {
				s.peerJitter = time.Duration(int64(b.Jitter) * int64(time.Second) / int64(rate))
			}
			if b.LastSenderReport != 0 {
				// RFC 3550, section 6.4.1: arrival - LSR - DLSR, in 1/65536 s.
				rtt := uint32(toNTP(now)>>16) - b.LastSenderReport - b.Delay
				if int32(rtt) >= 0 {
					s.rtt = time.Duration(int64(rtt) * int64(time.Second) >> 16)
				}
			}
		}
	}
}

// recvClockRate returns the clock rate of the payload types the peer may
// send, 0 if they have several (PCMU and Opus) or none.
func (s *rtpStream) recvClockRate() uint32 {
	var rate uint32
	if n := s.neg.Load(); n != nil {
		for _, pt := range n.recvPTs {
			if rate != 0 && pt.caps.ClockRate != rate {
				return 0
			}
			rate = pt.caps.ClockRate
		}
	}
	return rate
}

func (s *rtpStream) sendClockRate() uint32 {
	if n := s.neg.Load(); n != nil {
		return n.sendCaps.ClockRate
	}
	return 0
}

// streamStats returns the section's RTCP statistics.
func (s *rtpStream) streamStats() RTPStreamStats {
	st := RTPStreamStats{SSRC: s.ssrc, ReportsSent: s.reportsSent.Load(), SenderClocks: s.senderClocks.Load()}
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	st.ReportsReceived = s.reportsReceived
	if r := s.lastSource; r != nil && r.started {
		st.RemoteSSRC, st.PacketsLost, st.FractionLost = r.ssrc, r.lost, float64(r.fraction)/256
		if r.clockRate > 0 {
			st.Jitter = time.Duration(r.jitter * float64(time.Second) / float64(r.clockRate))
		}
	}
	st.PeerReports, st.PeerPacketsLost, st.PeerFractionLost = s.peerReports, s.peerLost, s.peerFraction
	st.PeerJitter, st.RoundTripTime = s.peerJitter, s.rtt
	return st
}

// RemoteSenderReport returns the last RTCP sender report the peer sent in
// kind k's section, false if none came yet.
func (e *RTP) RemoteSenderReport(k element.Kind) (RTPSenderReport, bool) {
	s := e.stream(k)
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	return s.lastSR, s.haveLastSR
}

// reportLoop sends each negotiated section's report about every
// cfg.rtcpInterval, randomised over [0.5, 1.5] times it (RFC 3550, section
// 6.3.1) so that endpoints do not synchronise, until stop closes.
func (e *RTP) reportLoop(stop <-chan struct{}) {
	next := func() time.Duration {
		return time.Duration(float64(e.cfg.rtcpInterval) * (0.5 + rand.Float64()))
	}
	t := time.NewTimer(next())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now()
		for _, s := range e.streams {
			n := s.neg.Load()
			if n == nil || n.rtcp == nil || (!n.send && !n.recv) {
				continue
			}
			if err := s.writeRTCP(n, s.report(n, now)); err == nil {
				s.reportsSent.Add(1)
			}
		}
		t.Reset(next())
	}
}
