package element_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/medley-go/medley/element"
)

// TestEventStrings: each event names itself, and those that carry values
// print them.
func TestEventStrings(t *testing.T) {
	ntp := time.Date(2026, 11, 26, 1, 2, 3, 456789000, time.FixedZone("CET", 3600))
	sc := element.SenderClockEvent{PTS: 1500 * time.Millisecond, NTP: ntp}
	assert.Equal(t, "sender-clock", sc.EventName())
	assert.Equal(t, "sender-clock pts=1.5s ntp=2026-11-26T00:02:03.456789000Z", sc.String())
	var ev element.Event = sc
	assert.Equal(t, "sender-clock", ev.EventName())

	assert.Equal(t, "discont dropped=3", element.DiscontEvent{Dropped: 3}.String())
	assert.Equal(t, "bitrate-hint 300000bps", element.BitrateHint{BitsPerSecond: 300000}.String())
	for _, c := range []struct {
		ev   element.Event
		name string
	}{
		{element.CapsEvent{}, "caps"},
		{element.EOSEvent{}, "eos"},
		{element.DiscontEvent{}, "discont"},
		{element.KeyframeRequest{}, "keyframe-request"},
		{element.BitrateHint{}, "bitrate-hint"},
		{element.ReconfigureEvent{}, "reconfigure"},
		{element.SenderClockEvent{}, "sender-clock"},
	} {
		assert.Equal(t, c.name, c.ev.EventName())
	}
}
