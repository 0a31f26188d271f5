package endpoint

import (
	"time"

	"github.com/medley-go/medley/element"
)

// rtpTimeline is the PTS formula of a received RTP stream, shared by the
// RTP and WebRTC endpoints: a packet's PTS is the arrival of the stream's
// first packet, on the endpoint's clock (the time since its epoch), plus
// the progress of the RTP timestamps since that packet, extended past
// their wraps (each step taken as the nearer of the two ways round).
//
// The same formula gives the PTS of any RTP timestamp of the stream (At),
// such as a sender report's, which is how an RTCP sender report becomes an
// element.SenderClockEvent (senderClockEvent). One goroutine owns a
// timeline: the one that reads the stream's packets.
type rtpTimeline struct {
	started bool
	base    time.Duration // the PTS of the first packet: its arrival
	lastTS  uint32        // the timestamp of the packet last seen
	ext     int64         // lastTS less the first packet's, extended
}

// Next takes the timestamp of the next packet of the stream (in arrival
// order) and returns its PTS at clock rate rate; 0 when rate is 0. The
// first packet's arrival is taken as the time since epoch now.
func (tl *rtpTimeline) Next(ts, rate uint32, epoch time.Time) time.Duration {
	if !tl.started {
		tl.started, tl.base, tl.lastTS = true, time.Since(epoch), ts
	}
	tl.ext += int64(int32(ts - tl.lastTS))
	tl.lastTS = ts
	if rate == 0 {
		return 0
	}
	return tl.pts(tl.ext, rate)
}

// At returns the PTS that the stream's formula gives timestamp ts at rate,
// taken as the nearer of the two instants it may denote around the last
// packet's (timestamps wrap every 2^32 ticks), without advancing the
// timeline. It reports false before the first packet or when rate is 0.
func (tl *rtpTimeline) At(ts, rate uint32) (time.Duration, bool) {
	if !tl.started || rate == 0 {
		return 0, false
	}
	return tl.pts(tl.ext+int64(int32(ts-tl.lastTS)), rate), true
}

// pts is the formula itself, the same float arithmetic for packets and
// sender reports.
func (tl *rtpTimeline) pts(ext int64, rate uint32) time.Duration {
	return tl.base + time.Duration(float64(ext)/float64(rate)*float64(time.Second))
}

// senderClockEvent returns the element.SenderClockEvent of sender report sr
// for the stream of tl, whose packets carry SSRC ssrc at clock rate rate:
// the PTS of the report's RTP timestamp and the report's NTP time. It
// reports false when the report is about another source, or the timeline
// cannot date it yet (no packet, no clock rate).
func senderClockEvent(tl *rtpTimeline, ssrc, rate uint32, sr RTPSenderReport) (element.SenderClockEvent, bool) {
	if sr.SSRC != ssrc {
		return element.SenderClockEvent{}, false
	}
	pts, ok := tl.At(sr.RTPTime, rate)
	if !ok {
		return element.SenderClockEvent{}, false
	}
	return element.SenderClockEvent{PTS: pts, NTP: sr.Wallclock}, true
}
