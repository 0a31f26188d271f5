package endpoint_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
)

// TestPlayerDeadRTSP: an RTSP address where nothing listens is an Error
// message naming it within a few seconds, and end of stream on the pads,
// never a hang or a crash, with either transport.
func TestPlayerDeadRTSP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	url := fmt.Sprintf("rtsp://127.0.0.1:%d/x", port)

	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			pl, err := endpoint.NewPlayer("player", url,
				endpoint.WithInputOptions(map[string]string{"rtsp_transport": transport, "timeout": "2000000"}),
				endpoint.WithProbe(32<<10, 200*time.Millisecond))
			require.NoError(t, err)
			vs := newCollector("vsink", element.KindVideo)
			start := time.Now()
			_, bus := playInto(t, pl, vs)
			select {
			case <-pl.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the player hung on a dead RTSP address")
			}
			elapsed := time.Since(start)
			vs.waitEOS(t)
			e := bus.waitFor(isType[*element.Error])
			require.NotNil(t, e, "an Error message")
			assert.Equal(t, "player", e.Origin().Element)
			assert.Contains(t, e.(*element.Error).Err.Error(), url)
			assert.Less(t, elapsed, 3*time.Second)
			t.Logf("%s: Error after %v: %v", transport, elapsed.Round(time.Millisecond), e.(*element.Error).Err)
			assert.ErrorIs(t, pl.Seek(0), endpoint.ErrPlayerDone)
		})
	}
}
