package endpoint

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRTPTimeline: a sender report's RTP timestamp gets the PTS the
// packets' formula gives it, across a timestamp wrap, before and after the
// packets seen, and only for the packets' SSRC once a packet came.
func TestRTPTimeline(t *testing.T) {
	var tl rtpTimeline
	sr := RTPSenderReport{SSRC: 7, RTPTime: 10, Wallclock: time.Unix(1_800_000_000, 0)}
	_, ok := senderClockEvent(&tl, 7, 90000, sr)
	assert.False(t, ok, "no packet yet")

	epoch := time.Now().Add(-3 * time.Second)
	first := uint32(1<<32 - 45000) // half a second before the wrap
	p0 := tl.Next(first, 90000, epoch)
	assert.InDelta(t, (3 * time.Second).Seconds(), p0.Seconds(), 0.5, "the first packet's arrival since the epoch")
	var last time.Duration
	for i := range 40 { // 40 frames of 3000 ticks: over the wrap
		last = tl.Next(first+uint32(i)*3000, 90000, epoch)
		assert.Equal(t, p0+time.Duration(i)*time.Second/30, last)
	}
	// Timestamps after the wrap, before the first packet, and the last
	// packet's own.
	for _, c := range []struct {
		ts   uint32
		want time.Duration
	}{
		{first + 39*3000, last},
		{first + 90000, p0 + time.Second},
		{first - 9000, p0 - 100*time.Millisecond},
		{90000, p0 + 1500*time.Millisecond},
	} {
		got, ok := tl.At(c.ts, 90000)
		require.True(t, ok)
		assert.Equal(t, c.want, got, "RTP %d", c.ts)
	}
	// The report's PTS and time.
	sr.RTPTime = first + 45000
	ev, ok := senderClockEvent(&tl, 7, 90000, sr)
	require.True(t, ok)
	assert.Equal(t, p0+500*time.Millisecond, ev.PTS)
	assert.Equal(t, sr.Wallclock, ev.NTP)
	_, ok = senderClockEvent(&tl, 8, 90000, sr)
	assert.False(t, ok, "another SSRC's report")
	_, ok = senderClockEvent(&tl, 7, 0, sr)
	assert.False(t, ok, "no clock rate")
	assert.Zero(t, tl.Next(first+40*3000, 0, epoch), "no clock rate, no PTS")
}
