package endpoint_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
)

// TestPlayerLoopSeek: seeks into a looping, unpaced player, which goes
// back to the start by itself at each end while the end is still being
// sent, all land: after each the player goes on sending, however the
// seek falls among the reader's own returns to the start (a reader and
// loop that disagreed on the epoch would drop everything after).
func TestPlayerLoopSeek(t *testing.T) {
	path, _ := writeMedia(t, "webm", "a.webm", time.Second, codec.MIMEVP8)
	pl, err := endpoint.NewPlayer("player", path, endpoint.WithLoop(), endpoint.WithoutPacing(),
		endpoint.WithPlayerTracks(element.KindVideo))
	require.NoError(t, err)
	var n atomic.Int64
	vs := element.NewAppSink("vsink", element.CapsList{{Kind: element.KindVideo, Format: element.FormatSample}},
		element.WithSinkQueue(64, element.Block),
		element.WithBufferFunc(func(*element.Buffer) {
			n.Add(1)
		}))
	p, _ := playInto(t, pl, vs)
	for i := range 40 {
		seen := n.Load()
		require.Eventually(t, func() bool { return n.Load() > seen+3 }, 10*time.Second, time.Millisecond,
			"nothing sent after seek %d", i)
		require.NoError(t, pl.Seek(time.Duration(i%10)*100*time.Millisecond))
	}
	seen := n.Load()
	require.Eventually(t, func() bool { return n.Load() > seen+3 }, 10*time.Second, time.Millisecond)
	require.NoError(t, p.Close())
}
