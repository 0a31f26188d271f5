package endpoint_test

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/internal/ffmpeg"
)

// clockTap is a sink of a src pad of the RTP endpoint that keeps each
// SenderClockEvent with the PTS of the packet before it and when that
// packet reached the tap.
type clockTap struct {
	*element.AppSink
	mu            sync.Mutex
	pts, firstPTS time.Duration
	at, firstAt   time.Time
	clocks        []tappedClock
}

type tappedClock struct {
	ev     element.SenderClockEvent
	pts    time.Duration // of the packet before
	at, to time.Time     // when that packet and the event came
}

func newClockTap(name string, c codec.Codec) *clockTap {
	tp := &clockTap{}
	caps := c.Caps(element.FormatRTP)
	caps.Fmtp = ""
	tp.AppSink = element.NewAppSink(name, element.CapsList{caps},
		element.WithBufferFunc(func(b *element.Buffer) {
			now := time.Now()
			tp.mu.Lock()
			if tp.firstAt.IsZero() {
				tp.firstPTS, tp.firstAt = b.PTS, now
			}
			tp.pts, tp.at = b.PTS, now
			tp.mu.Unlock()
		}),
		element.WithEventFunc(func(ev element.Event) {
			if e, ok := ev.(element.SenderClockEvent); ok {
				now := time.Now()
				tp.mu.Lock()
				tp.clocks = append(tp.clocks, tappedClock{ev: e, pts: tp.pts, at: tp.at, to: now})
				tp.mu.Unlock()
			}
		}))
	return tp
}

func (tp *clockTap) events() []tappedClock {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return slices.Clone(tp.clocks)
}

// delay is how long after its capture, by the sender clock, the packet
// before the event reached the tap.
func (c tappedClock) delay() time.Duration {
	return c.at.Sub(c.ev.NTP.Add(c.pts - c.ev.PTS))
}

// firstDelay is how long after its capture, by the sender clock of c, the
// stream's first packet reached the tap.
func (tp *clockTap) firstDelay(c tappedClock) time.Duration {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.firstAt.Sub(c.ev.NTP.Add(tp.firstPTS - c.ev.PTS))
}

// TestRTPSenderClock: GStreamer's rtpbin sends VP8 and Opus with sender
// reports, the first 500 ms of its audio RTP held on the way and then
// sent at once (as a sender may burst at the start); the RTP
// endpoint pushes a SenderClockEvent on each src pad for each report:
// NTP times near now, and the capture times they give the packets just
// before them a plausible delay before their arrival. A Recorder fed by
// the endpoint lines the audio up by them: as the PTS of each stream count
// from its first packet's arrival, the audio's are 500 ms late against
// the video's; the recorder moves it back by how much later after its
// capture the audio's first packet came than the video's, as the taps
// measure it on the wall clock.
func TestRTPSenderClock(t *testing.T) {
	const late = 500 * time.Millisecond
	ga, gv := freePortPair(t), freePortPair(t)
	offer := gstSDPHeader + gstSDPSection("audio", ga, 111, "opus/48000/2", "sendonly", nil) +
		gstSDPSection("video", gv, 96, "VP8/90000", "sendonly", nil)
	ep, err := endpoint.NewRTP("rtp", endpoint.WithRTCPInterval(gstRTCP))
	require.NoError(t, err)
	answer, err := ep.ProcessOffer(offer)
	require.NoError(t, err)
	asec, vsec := sdpSection(t, answer, "audio"), sdpSection(t, answer, "video")

	vp8, _ := codec.Lookup(codec.MIMEVP8)
	opus, _ := codec.Lookup(codec.MIMEOpus)
	vtap, atap := newClockTap("vtap", vp8), newClockTap("atap", opus)
	path := filepath.Join(t.TempDir(), "rtp.webm")
	rec, err := endpoint.NewRecorder("rec", path)
	require.NoError(t, err)
	p := rtpPipeline(t, ep, vtap, atap, rec)
	log := newRecBus(p.Subscribe(1 << 12))
	t.Cleanup(func() { _ = p.Close(); log.wait() })
	require.NoError(t, p.ConnectPads(ep.Pad("video"), vtap.SinkPad()))
	require.NoError(t, p.ConnectPads(ep.Pad("audio"), atap.SinkPad()))
	require.NoError(t, p.Connect(ep, rec, element.KindVideo))
	require.NoError(t, p.Connect(ep, rec, element.KindAudio))
	require.NoError(t, p.Start(context.Background()))

	video := "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! " +
		"vp8enc deadline=1 keyframe-max-dist=30 target-bitrate=300000 ! rtpvp8pay pt=96"
	audio := "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111"
	// The audio RTP goes through a relay that holds its first 500 ms.
	relayed := asec
	relayed.port = holdRelay(t, late, asec.port)
	desc := "rtpbin name=rtpbin " + gstSendSession(0, video, vsec, gv+1, nil) + gstSendSession(1, audio, relayed, ga+1, nil)
	g := startGst(t, desc, []int{0, 1}, gstRTCP)

	rm := log.waitFor(isType[*endpoint.Recording])
	ok := assert.NotNil(t, rm, "the recording started")
	if ok {
		// Three reports each after the start.
		ok = assert.Eventually(t, func() bool {
			return len(vtap.events()) >= 4 && len(atap.events()) >= 4
		}, 10*time.Second, 20*time.Millisecond)
	}
	res := g.stop()
	assert.Empty(t, res.Messages, "GStreamer's errors and warnings")
	require.True(t, ok, "stats %+v, recorder %+v", ep.Stats(), rec.Stats())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, rec.Stop(ctx))

	st := ep.Stats()
	var delays, firsts [2][]time.Duration
	for i, c := range []struct {
		tap  *clockTap
		ss   endpoint.RTPStreamStats
		kind string
	}{{vtap, st.Video, "video"}, {atap, st.Audio, "audio"}} {
		evs := c.tap.events()
		assert.GreaterOrEqual(t, c.ss.SenderClocks, uint64(len(evs)), "%s: the endpoint's count", c.kind)
		for _, e := range evs {
			assert.WithinDuration(t, e.to, e.ev.NTP, 3*time.Second, "%s: %v: NTP like our clock", c.kind, e.ev)
			d := e.delay()
			delays[i] = append(delays[i], d)
			// Capture to arrival: encoding, the path, the queues.
			assert.Greater(t, d, -50*time.Millisecond, "%s: %v: a packet does not come before it was captured", c.kind, e.ev)
			assert.Less(t, d, time.Second, "%s: %v", c.kind, e.ev)
			firsts[i] = append(firsts[i], c.tap.firstDelay(e))
		}
		t.Logf("%s: %d sender clocks, delays capture to arrival %v, of the first packet %v", c.kind, len(evs), delays[i], firsts[i])
	}
	median := func(l []time.Duration) time.Duration {
		l = slices.Clone(l)
		slices.Sort(l)
		return l[len(l)/2]
	}
	apart := median(delays[1]) - median(delays[0])
	assert.InDelta(t, 0, apart.Seconds(), 0.150, "the audio comes about as soon after capture as the video")

	// The first reports may be off (rtpbin dates the packet last sent,
	// late while vp8enc starts): the later ones, as the recorder's.
	firstApart := median(firsts[1][1:]) - median(firsts[0][1:])
	assert.InDelta(t, late.Seconds(), firstApart.Seconds(), 0.150, "the audio's first packet comes about 500 ms later after its capture than the video's")
	rs := rec.Stats()
	t.Logf("recorder %+v; the audio comes %v later after capture than the video; its first packet %v later", rs, apart, firstApart)
	assert.True(t, rs.SenderClock, "the recorder lined the tracks up by the sender's clock")
	assert.InDelta(t, (-firstApart).Seconds(), rs.AudioShift.Seconds(), 0.030, "the audio moved back by how much later after capture its first packet came")
	assert.Empty(t, log.all(isType[*element.Warning]))
	pr, err := ffmpeg.Probe(ctx, path)
	require.NoError(t, err)
	assert.Len(t, pr.Streams, 2)
}

// holdRelay forwards the UDP datagrams reaching a port of its own to
// 127.0.0.1:to, but holds those of the first d after the first until then,
// and returns its port. It stops at the test's cleanup.
func holdRelay(t *testing.T, d time.Duration, to int) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: to}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		var first time.Time
		var held [][]byte
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if first.IsZero() {
				first = time.Now()
			}
			if time.Since(first) < d {
				held = append(held, append([]byte(nil), buf[:n]...))
				continue
			}
			for _, p := range held {
				_, _ = c.WriteToUDP(p, dst)
			}
			held = nil
			_, _ = c.WriteToUDP(buf[:n], dst)
		}
	}()
	t.Cleanup(func() {
		_ = c.Close()
		<-done
	})
	return c.LocalAddr().(*net.UDPAddr).Port
}
