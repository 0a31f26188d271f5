package codec_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
)

// TestDepayloaderSenderClock: a SenderClockEvent goes through the
// depayloader with the samples, its PTS on their timeline: as it came
// while the first source sends, and shifted as the samples are once a new
// source (SSRC) takes over, whose packets' PTS jump where the samples'
// go on.
func TestDepayloaderSenderClock(t *testing.T) {
	in := rtpCaps(t, codec.MIMEOpus)
	d, err := codec.NewDepayloader("depay", in)
	require.NoError(t, err)
	r := newRig(t, d, in, true)
	ntp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const base = 5 * time.Second
	seq := uint16(100)
	push := func(ssrc, ts uint32, pts time.Duration) {
		seq++
		b := &element.Buffer{Data: []byte{0xf8, 0xff, 0xfe}, PTS: pts}
		b.RTP.SSRC, b.RTP.SequenceNumber, b.RTP.Timestamp, b.RTP.Marker = ssrc, seq, ts, true
		r.in.Push(b)
	}
	clocks := func() []element.SenderClockEvent {
		var l []element.SenderClockEvent
		for _, ev := range r.events {
			if e, ok := ev.(element.SenderClockEvent); ok {
				l = append(l, e)
			}
		}
		return l
	}
	// First source: 20 ms packets from timestamp 1000, PTS from base.
	for i := range 10 {
		push(1, 1000+uint32(i)*960, base+time.Duration(i)*20*time.Millisecond)
	}
	require.NoError(t, r.in.PushEvent(element.SenderClockEvent{PTS: base + 100*time.Millisecond, NTP: ntp}))
	// A new source: its packets' PTS jump 7 s (a receiver counting its
	// timestamps on from the old ones'); the samples go on 20 ms later.
	for i := range 10 {
		push(2, 9_000_000+uint32(i)*960, base+7*time.Second+time.Duration(i)*20*time.Millisecond)
	}
	require.NoError(t, r.in.PushEvent(element.SenderClockEvent{PTS: base + 7*time.Second + 100*time.Millisecond, NTP: ntp.Add(time.Second)}))
	require.Equal(t, 20, r.count)
	got := clocks()
	require.Len(t, got, 2)
	assert.Equal(t, element.SenderClockEvent{PTS: base + 100*time.Millisecond, NTP: ntp}, got[0], "the first source's, as it came")
	// 100 ms after the second source's first sample, the 11th, wherever
	// the depayloader put it.
	require.Len(t, r.bufs, 20)
	at := r.bufs[10].PTS
	assert.Less(t, at, base+time.Second, "the samples go on, not jump")
	assert.Equal(t, element.SenderClockEvent{PTS: at + 100*time.Millisecond, NTP: ntp.Add(time.Second)}, got[1], "the second's, on the samples' timeline")
}
