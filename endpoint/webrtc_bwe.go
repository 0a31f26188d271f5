package endpoint

import (
	"encoding/binary"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// bwe is the send-side bandwidth estimator of one peer connection: Google
// congestion control (draft-ietf-rmcat-gcc-02), its delay-based controller
// (a trendline of the one-way delay variation, an adaptive overuse
// threshold, AIMD rate control) and its loss-based one, fed by the peer's
// transport-wide congestion control feedback
// (draft-holmer-rmcat-transport-wide-cc-extensions-01).
//
// It is a pion interceptor, the one closest to the network on the send
// path: it numbers every outgoing video packet with the transport-cc
// header extension and notes when it left and its size in a fixed ring,
// under a short lock and with no allocation but the extension's two bytes
// (BenchmarkBWESend); the feedback, ten or so RTCP packets a second, does
// the rest on the goroutine that reads the RTCP. It has no goroutine and
// no pacer: medley forwards what its sources send, and its queues already
// bound the latency. (pion's gcc.SendSideBWE, which it replaces, costs ten
// times as much per packet in its send hook, with seven allocations, two
// goroutine hand-offs per feedback and a new goroutine per estimate
// change.)
type bwe struct {
	interceptor.NoOp

	// now is the estimator's clock, since an arbitrary epoch; tests
	// replace it.
	now func() time.Duration
	// onTarget receives the target bitrate, in bits per second, with the
	// first feedback and whenever the estimate changes, on the goroutine
	// that read the feedback.
	onTarget func(bps int)

	// target is the estimate, in bits per second.
	target atomic.Int64
	// notifyMu orders the calls of onTarget, which two goroutines reading
	// feedback could otherwise make out of order; notified is the last
	// target they passed, 0 before the first feedback (which announces
	// the estimate, changed or not).
	notifyMu sync.Mutex
	notified int

	// sendMu guards the send side: the next transport-wide sequence number
	// and what was sent under the last bweHistory of them.
	sendMu  sync.Mutex
	nextSeq uint16
	sent    [bweHistory]sentPacket

	// mu guards the feedback side.
	mu               sync.Mutex
	minRate, maxRate float64
	// ref is the last feedback's reference time, unwrapped, in 64 ms
	// units.
	ref     int64
	refInit bool
	acks    []ack
	rate    ackedRate

	group, prev      pktGroup
	inGroup, hasPrev bool
	trend            trendline
	state            rateState
	delayRate        float64
	lastIncrease     time.Duration
	lastDecrease     time.Duration
	hasDecreased     bool

	lossRate   float64
	lastLossAt time.Duration
	hasLoss    bool
}

// bweHistory is how many sent packets the estimator remembers: feedback
// about older ones is ignored. A power of two dividing 1<<16; at 10 Mbit/s
// of 1200-byte packets, four seconds.
const bweHistory = 1 << 12

type sentPacket struct {
	at    time.Duration
	size  int32
	seq   uint16
	valid bool
	acked bool
}

// ack is one packet the feedback reports on, in sequence order.
type ack struct {
	sent, arrival time.Duration
	size          int
	received      bool
	timed         bool // received with an arrival time
}

// GCC's constants, as libwebrtc and the draft have them.
const (
	burstInterval     = 5 * time.Millisecond // packets sent closer belong to one group
	trendWindow       = 20                   // delay samples in the linear regression
	trendSmoothing    = 0.9
	trendGain         = 4.0
	initialThreshold  = 12.5 // ms
	thresholdUp       = 0.0087
	thresholdDown     = 0.039
	overuseTime       = 10.0 // ms over the threshold before overuse
	decreaseFactor    = 0.85 // of the acked rate, on overuse
	increasePerSecond = 1.08
	decreaseInterval  = 200 * time.Millisecond
	ackedWindow       = 500 * time.Millisecond
	lossHigh          = 0.10
	lossLow           = 0.02
	lossInterval      = 200 * time.Millisecond
)

type rateState uint8

const (
	rateHold rateState = iota
	rateIncrease
	rateDecrease
)

type usage uint8

const (
	usageNormal usage = iota
	usageOver
	usageUnder
)

func newBWE(min, initial, max int) *bwe {
	epoch := time.Now()
	b := &bwe{
		now:       func() time.Duration { return time.Since(epoch) },
		minRate:   float64(min),
		maxRate:   float64(max),
		delayRate: float64(initial),
		lossRate:  float64(initial),
		state:     rateIncrease,
	}
	b.trend.threshold = initialThreshold
	b.target.Store(int64(initial))
	return b
}

// bweFactory makes the estimator of the endpoint's peer connection (pion
// asks the registry once per connection) and hands it to onNew.
type bweFactory struct {
	min, initial, max int
	onTarget          func(bps int)
	onNew             func(*bwe)
}

// NewInterceptor implements interceptor.Factory.
func (f *bweFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	b := newBWE(f.min, f.initial, f.max)
	b.onTarget = f.onTarget
	if f.onNew != nil {
		f.onNew(b)
	}
	return b, nil
}

// targetBitrate returns the estimate in bits per second.
func (b *bwe) targetBitrate() int { return int(b.target.Load()) }

// BindLocalStream numbers the stream's packets and notes them, if it is
// video and the peer negotiated the transport-cc header extension for it.
//
// Audio goes unnumbered: a fifth of the packets of a 2 Mbit/s call and a
// few percent of its bytes, each of which would cost the peer a feedback
// record. The delay the video packets see tells the congestion all the
// same, and the estimate, the acknowledged video rate with GCC's margin,
// is then the video's share of the path (what the bitrate hints are for).
func (b *bwe) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	if !strings.HasPrefix(strings.ToLower(info.MimeType), "video/") {
		return w
	}
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.TransportCCURI && e.ID > 0 && e.ID < 256 {
			id = uint8(e.ID)
		}
	}
	if id == 0 {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		ext := make([]byte, 2)
		if err := h.SetExtension(id, ext); err != nil {
			return 0, err
		}
		size := int32(h.MarshalSize() + len(payload))
		now := b.now()
		b.sendMu.Lock()
		seq := b.nextSeq
		b.nextSeq++
		b.sent[seq%bweHistory] = sentPacket{at: now, size: size, seq: seq, valid: true}
		b.sendMu.Unlock()
		binary.BigEndian.PutUint16(ext, seq)
		return w.Write(h, payload, a)
	})
}

// BindRTCPReader feeds the estimator the transport-cc feedback among the
// RTCP read, parsed once for the interceptors after it.
func (b *bwe) BindRTCPReader(r interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(buf []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(buf, a)
		if err != nil || !hasTransportCC(buf[:n]) {
			return n, a, err
		}
		if a == nil {
			a = make(interceptor.Attributes)
		}
		pkts, perr := a.GetRTCPPackets(buf[:n])
		if perr != nil {
			return n, a, nil // the interceptors after this one report it
		}
		for _, p := range pkts {
			if fb, ok := p.(*rtcp.TransportLayerCC); ok {
				b.onFeedback(fb)
			}
		}
		return n, a, nil
	})
}

// hasTransportCC reports whether a compound RTCP packet holds
// transport-wide feedback (RTPFB, FMT 15), without parsing it.
func hasTransportCC(raw []byte) bool {
	for len(raw) >= 4 {
		if rtcp.PacketType(raw[1]) == rtcp.TypeTransportSpecificFeedback && raw[0]&0x1f == rtcp.FormatTCC {
			return true
		}
		l := (int(binary.BigEndian.Uint16(raw[2:])) + 1) * 4
		if l > len(raw) {
			return false
		}
		raw = raw[l:]
	}
	return false
}

// onFeedback takes one transport-cc feedback packet.
func (b *bwe) onFeedback(fb *rtcp.TransportLayerCC) {
	now := b.now()
	b.mu.Lock()
	ok := b.feedbackLocked(fb, now)
	b.mu.Unlock()
	if !ok || b.onTarget == nil {
		return
	}
	b.notifyMu.Lock()
	defer b.notifyMu.Unlock()
	if t := b.targetBitrate(); t != b.notified {
		b.notified = t
		b.onTarget(t)
	}
}

// feedbackLocked runs the controllers on one feedback packet and reports
// whether it was about any packet sent. b.mu is held.
func (b *bwe) feedbackLocked(fb *rtcp.TransportLayerCC, now time.Duration) bool {
	// The reference time counts 64 ms in 24 bits: take the nearest
	// unwrapping to the last one.
	ref := int64(fb.ReferenceTime & 0xffffff)
	if b.refInit {
		ref = b.ref + ((ref-b.ref+1<<23)&0xffffff - 1<<23)
	}
	b.ref, b.refInit = ref, true
	b.acks = b.acks[:0]
	arrival := time.Duration(ref) * 64 * time.Millisecond
	seq, left, deltas := fb.BaseSequenceNumber, int(fb.PacketStatusCount), fb.RecvDeltas
	take := func(sym uint16) bool {
		received := sym != rtcp.TypeTCCPacketNotReceived
		timed := sym == rtcp.TypeTCCPacketReceivedSmallDelta || sym == rtcp.TypeTCCPacketReceivedLargeDelta
		if timed {
			if len(deltas) == 0 {
				return false // malformed: fewer deltas than statuses
			}
			arrival += time.Duration(deltas[0].Delta) * time.Microsecond
			deltas = deltas[1:]
		}
		b.ack(seq, received, timed, arrival)
		seq++
		left--
		return true
	}
chunks:
	for _, c := range fb.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for range min(int(c.RunLength), left) {
				if !take(c.PacketStatusSymbol) {
					break chunks
				}
			}
		case *rtcp.StatusVectorChunk:
			for _, sym := range c.SymbolList[:min(len(c.SymbolList), left)] {
				if !take(sym) {
					break chunks
				}
			}
		}
		if left <= 0 {
			break
		}
	}
	if len(b.acks) == 0 {
		return false
	}
	b.updateLoss(now)
	for _, a := range b.acks {
		if a.timed {
			b.rate.add(a.arrival, a.size)
			b.addToGroup(a)
		}
	}
	b.updateDelayRate(now)
	// The loss-based rate moves from the target, not from where a long
	// loss-free run would have taken it alone: loss then bites at once.
	b.lossRate = min(b.lossRate, b.delayRate)
	b.target.Store(int64(max(b.minRate, min(b.maxRate, b.lossRate))))
	return true
}

// ack records the feedback about one sequence number, if the packet is
// known and not yet acknowledged.
func (b *bwe) ack(seq uint16, received, timed bool, arrival time.Duration) {
	b.sendMu.Lock()
	p := &b.sent[seq%bweHistory]
	if !p.valid || p.seq != seq || p.acked {
		b.sendMu.Unlock()
		return
	}
	if received {
		p.acked = true
	}
	s := *p
	b.sendMu.Unlock()
	b.acks = append(b.acks, ack{sent: s.at, arrival: arrival, size: int(s.size), received: received, timed: timed})
}

// updateLoss runs the loss-based controller on the feedback's acks:
// above 10% loss the rate falls by half the loss, below 2% it grows by
// 5%, each at most every 200 ms.
func (b *bwe) updateLoss(now time.Duration) {
	lost := 0
	for _, a := range b.acks {
		if !a.received {
			lost++
		}
	}
	loss := float64(lost) / float64(len(b.acks))
	if b.hasLoss && now-b.lastLossAt < lossInterval {
		return
	}
	switch {
	case loss > lossHigh:
		b.lossRate *= 1 - 0.5*loss
	case loss < lossLow:
		b.lossRate *= 1.05
	default:
		return
	}
	b.lossRate = max(b.minRate, min(b.maxRate, b.lossRate))
	b.lastLossAt, b.hasLoss = now, true
}

// pktGroup is a burst of packets sent within burstInterval of the first.
type pktGroup struct {
	firstSent, lastSent, lastArrival time.Duration
}

// addToGroup adds a received packet to the current group, or closes the
// group and feeds the delay variation between it and the one before to
// the trendline.
func (b *bwe) addToGroup(a ack) {
	if !b.inGroup {
		b.group, b.inGroup = pktGroup{a.sent, a.sent, a.arrival}, true
		return
	}
	if a.sent < b.group.firstSent {
		return // reordered, from before the group
	}
	if a.sent-b.group.firstSent <= burstInterval {
		b.group.lastSent = max(b.group.lastSent, a.sent)
		b.group.lastArrival = max(b.group.lastArrival, a.arrival)
		return
	}
	if b.hasPrev {
		sendDelta := b.group.lastSent - b.prev.lastSent
		arrivalDelta := b.group.lastArrival - b.prev.lastArrival
		if arrivalDelta >= 0 && sendDelta > 0 {
			b.trend.update(ms(arrivalDelta-sendDelta), ms(sendDelta), ms(b.group.lastArrival))
		}
	}
	b.prev, b.hasPrev = b.group, true
	b.group = pktGroup{a.sent, a.sent, a.arrival}
}

// updateDelayRate moves the delay-based rate by the detector's signal
// (AIMD): multiplicative increase while the delay is steady, a drop to
// 85% of the acked rate on overuse, a hold on underuse.
func (b *bwe) updateDelayRate(now time.Duration) {
	switch b.trend.signal {
	case usageOver:
		b.state = rateDecrease
	case usageUnder:
		b.state = rateHold
	case usageNormal:
		switch b.state {
		case rateHold:
			b.state, b.lastIncrease = rateIncrease, now
		case rateDecrease:
			b.state = rateHold
		}
	}
	acked, known := b.rate.bitrate()
	switch b.state {
	case rateIncrease:
		dt := min((now - b.lastIncrease).Seconds(), 1)
		b.lastIncrease = now
		if !known || b.delayRate > 1.5*acked+10_000 {
			return // no rate to judge by yet, or one well below: no higher
		}
		b.delayRate += max(1000, b.delayRate*(math.Pow(increasePerSecond, dt)-1))
	case rateDecrease:
		if b.hasDecreased && now-b.lastDecrease < decreaseInterval {
			return
		}
		r := b.delayRate
		if known {
			r = min(r, acked)
		}
		b.delayRate = decreaseFactor * r
		b.lastDecrease, b.hasDecreased = now, true
		b.state = rateHold
	}
	b.delayRate = max(b.minRate, min(b.maxRate, b.delayRate))
}

// trendline is the delay-based detector: the slope of the smoothed
// accumulated delay variation over the last trendWindow groups, compared
// with an adaptive threshold.
type trendline struct {
	n            int // delay samples so far, up to 1000
	firstArrival float64
	acc, smooth  float64
	xs, ys       [trendWindow]float64
	count, head  int
	prevTrend    float64

	threshold    float64
	lastUpdate   float64
	updated      bool
	overusing    float64 // ms; -1: not over the threshold
	overuseCount int
	signal       usage
}

// update takes the delay variation of one group against the one before,
// in milliseconds, with the send time between them and the group's
// arrival time.
func (t *trendline) update(delta, sendDelta, arrival float64) {
	if t.n == 0 {
		t.firstArrival = arrival
		t.overusing = -1
	}
	t.n = min(t.n+1, 1000)
	t.acc += delta
	t.smooth = trendSmoothing*t.smooth + (1-trendSmoothing)*t.acc
	i := (t.head + t.count) % trendWindow
	if t.count == trendWindow {
		i = t.head
		t.head = (t.head + 1) % trendWindow
	} else {
		t.count++
	}
	t.xs[i], t.ys[i] = arrival-t.firstArrival, t.smooth
	trend := t.prevTrend
	if t.count == trendWindow {
		if s, ok := t.slope(); ok {
			trend = s
		}
	}
	t.detect(trend, sendDelta, arrival)
}

// slope is the least-squares slope of the window.
func (t *trendline) slope() (float64, bool) {
	var sx, sy float64
	for i := range t.count {
		sx += t.xs[i]
		sy += t.ys[i]
	}
	mx, my := sx/float64(t.count), sy/float64(t.count)
	var num, den float64
	for i := range t.count {
		dx := t.xs[i] - mx
		num += dx * (t.ys[i] - my)
		den += dx * dx
	}
	if den == 0 {
		return 0, false
	}
	return num / den, true
}

func (t *trendline) detect(trend, sendDelta, now float64) {
	if t.n < 2 {
		t.signal = usageNormal
		return
	}
	m := float64(min(t.n, 60)) * trend * trendGain
	switch {
	case m > t.threshold:
		if t.overusing < 0 {
			t.overusing = sendDelta / 2
		} else {
			t.overusing += sendDelta
		}
		t.overuseCount++
		if t.overusing > overuseTime && t.overuseCount > 1 && trend >= t.prevTrend {
			t.overusing, t.overuseCount = 0, 0
			t.signal = usageOver
		}
	case m < -t.threshold:
		t.overusing, t.overuseCount = -1, 0
		t.signal = usageUnder
	default:
		t.overusing, t.overuseCount = -1, 0
		t.signal = usageNormal
	}
	t.prevTrend = trend
	t.adapt(m, now)
}

// adapt moves the threshold towards the trend's size: fast down, slowly
// up, ignoring spikes, within [6, 600] ms.
func (t *trendline) adapt(m, now float64) {
	if !t.updated {
		t.lastUpdate, t.updated = now, true
	}
	abs := math.Abs(m)
	if abs > t.threshold+15 {
		t.lastUpdate = now
		return
	}
	k := thresholdUp
	if abs < t.threshold {
		k = thresholdDown
	}
	dt := min(now-t.lastUpdate, 100)
	t.threshold = max(6, min(600, t.threshold+k*(abs-t.threshold)*dt))
	t.lastUpdate = now
}

// ackedRate is the rate the peer received at over the last ackedWindow of
// arrivals.
type ackedRate struct {
	at    [512]time.Duration
	size  [512]int
	head  int
	count int
	sum   int
}

func (r *ackedRate) add(at time.Duration, size int) {
	if r.count > 0 {
		last := r.at[(r.head+r.count-1)%len(r.at)]
		if at < last-time.Second {
			*r = ackedRate{} // the peer's clock jumped back
		} else if at < last {
			at = last
		}
	}
	for r.count > 0 && (r.count == len(r.at) || at-r.at[r.head] > ackedWindow) {
		r.sum -= r.size[r.head]
		r.head = (r.head + 1) % len(r.at)
		r.count--
	}
	i := (r.head + r.count) % len(r.at)
	r.at[i], r.size[i] = at, size
	r.count++
	r.sum += size
}

// bitrate returns the acked rate in bits per second, and false before
// there are 100 ms of arrivals to judge from.
func (r *ackedRate) bitrate() (float64, bool) {
	if r.count < 2 {
		return 0, false
	}
	span := r.at[(r.head+r.count-1)%len(r.at)] - r.at[r.head]
	if span < 100*time.Millisecond {
		return 0, false
	}
	return float64(r.sum*8) / span.Seconds(), true
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
