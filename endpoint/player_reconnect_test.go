package endpoint_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
)

// TestPlayerLiveOptions: the live options reject what they cannot mean.
func TestPlayerLiveOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  endpoint.PlayerOption
		ok   bool
	}{
		{"reconnect", endpoint.WithReconnect(100*time.Millisecond, time.Second, 0), true},
		{"reconnect-zero-wait", endpoint.WithReconnect(0, time.Second, 0), false},
		{"reconnect-max-below-initial", endpoint.WithReconnect(time.Second, time.Millisecond, 3), false},
		{"reconnect-negative-attempts", endpoint.WithReconnect(time.Second, time.Second, -1), false},
		{"jitter-zero", endpoint.WithJitterBuffer(0), true},
		{"jitter-negative", endpoint.WithJitterBuffer(-time.Millisecond), false},
		{"rtsp-tcp", endpoint.WithRTSPTransport("tcp"), true},
		{"rtsp-udp", endpoint.WithRTSPTransport("udp"), true},
		{"rtsp-sctp", endpoint.WithRTSPTransport("sctp"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := endpoint.NewPlayer("player", "rtsp://127.0.0.1:1/x", c.opt)
			if c.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

// deadURL returns an HTTP URL of 127.0.0.1 where nothing listens.
func deadURL(t *testing.T) string {
	return fmt.Sprintf("http://127.0.0.1:%d/live.ts", freePort(t))
}

// TestPlayerReconnectGivesUp: a network input that cannot be opened is
// tried again with waits doubling up to the longest, each attempt a
// PlayerReconnecting message, and after the last attempt an Error.
func TestPlayerReconnectGivesUp(t *testing.T) {
	url := deadURL(t)
	pl, err := endpoint.NewPlayer("player", url, endpoint.WithReconnect(10*time.Millisecond, 40*time.Millisecond, 4))
	require.NoError(t, err)
	vs := newCollector("vsink", element.KindVideo)
	_, bus := playInto(t, pl, vs)
	select {
	case <-pl.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the player did not give up")
	}
	e := bus.waitFor(isType[*element.Error])
	require.NotNil(t, e, "an Error")
	assert.Contains(t, e.(*element.Error).Err.Error(), url)
	assert.Contains(t, e.(*element.Error).Err.Error(), "gave up reconnecting after 4 attempts")
	var waits []time.Duration
	for i, m := range bus.all(isType[*endpoint.PlayerReconnecting]) {
		r := m.(*endpoint.PlayerReconnecting)
		assert.Equal(t, i+1, r.Attempt)
		assert.Equal(t, url, r.URL)
		assert.Error(t, r.Err)
		waits = append(waits, r.Wait)
	}
	assert.Equal(t, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}, waits)
	assert.Empty(t, bus.all(isType[*endpoint.PlayerReconnected]))
	vs.waitEOS(t)
}

// TestPlayerReconnectWaitStops: closing the pipeline ends a player that
// waits a minute to try again at once; Seek meanwhile says it is
// reconnecting. Without WithReconnect the same input is an Error at once.
func TestPlayerReconnectWaitStops(t *testing.T) {
	url := deadURL(t)
	pl, err := endpoint.NewPlayer("player", url, endpoint.WithReconnect(time.Minute, time.Minute, 0))
	require.NoError(t, err)
	vs := newCollector("vsink", element.KindVideo)
	p, bus := playInto(t, pl, vs)
	require.NotNil(t, bus.waitFor(isType[*endpoint.PlayerReconnecting]))
	assert.ErrorIs(t, pl.Seek(0), endpoint.ErrPlayerReconnecting)
	start := time.Now()
	require.NoError(t, p.Close())
	select {
	case <-pl.Done():
	case <-time.After(time.Second):
		t.Fatal("Close did not end the wait")
	}
	t.Logf("Close returned after %v", time.Since(start).Round(time.Microsecond))
	assert.Less(t, time.Since(start), 500*time.Millisecond)
	assert.Empty(t, bus.all(isType[*element.Error]), "no Error: the player was closed while waiting")

	pl, err = endpoint.NewPlayer("player", url)
	require.NoError(t, err)
	_, bus = playInto(t, pl, newCollector("vsink", element.KindVideo))
	require.NotNil(t, bus.waitFor(isType[*element.Error]))
	assert.Empty(t, bus.all(isType[*endpoint.PlayerReconnecting]))
}

// TestPlayerReconnectLiveEnd: a live HTTP stream that ends (the server
// closes it after 1 s) is opened again; the second round's frames follow
// the first's with increasing timestamps, the first of them a keyframe
// flagged a discontinuity. A file with WithReconnect ends at its end as
// without it.
func TestPlayerReconnectLiveEnd(t *testing.T) {
	frames := liveTS(t, time.Second, 30)
	srv := newLiveServer(t, frames)
	pl, err := endpoint.NewPlayer("player", srv.URL+"/live.ts", endpoint.WithPlayerTracks(element.KindVideo),
		endpoint.WithReconnect(50*time.Millisecond, time.Second, 0))
	require.NoError(t, err)
	vs := newArrivalSink("vsink")
	_, bus := playInto(t, pl, vs)
	require.Eventually(t, func() bool { return vs.count() >= len(frames)*19/10 }, 10*time.Second, 5*time.Millisecond,
		"nearly two rounds of frames")
	pts, _, flags := vs.snapshot()
	for i := 1; i < len(pts); i++ {
		require.Greater(t, pts[i], pts[i-1], "PTS of frame %d", i)
	}
	var disconts []int
	for i, f := range flags {
		if f&element.FlagDiscont != 0 {
			disconts = append(disconts, i)
			assert.True(t, f&element.FlagKeyframe != 0, "frame %d", i)
		}
	}
	require.NotEmpty(t, disconts)
	assert.InDelta(t, len(frames), disconts[0], 3, "the first round's frames")
	m := bus.waitFor(isType[*endpoint.PlayerReconnecting])
	require.NotNil(t, m)
	t.Logf("the end of the stream: %v; first round %d frames, PTS %v -> %v after the reconnection",
		m.(*endpoint.PlayerReconnecting).Err, disconts[0], pts[disconts[0]-1], pts[disconts[0]])
	require.NotNil(t, bus.waitFor(isType[*endpoint.PlayerReconnected]))
	assert.Empty(t, bus.all(isType[*element.Error]))

	path, _ := writeMedia(t, "webm", "a.webm", time.Second, codec.MIMEVP8)
	pl, err = endpoint.NewPlayer("player", path, endpoint.WithoutPacing(), endpoint.WithReconnect(time.Millisecond, time.Millisecond, 0))
	require.NoError(t, err)
	fs := newCollector("vsink", element.KindVideo)
	_, bus = playInto(t, pl, fs)
	fs.waitEOS(t)
	assert.Empty(t, bus.all(isType[*endpoint.PlayerReconnecting]), "a file is not reopened")
}

// TestPlayerKeyframeRequests: keyframe requests from a sink reach the
// player, which counts them (it cannot make keyframes: see Player).
func TestPlayerKeyframeRequests(t *testing.T) {
	path, _ := writeMedia(t, "webm", "a.webm", 2*time.Second, codec.MIMEVP8)
	pl, err := endpoint.NewPlayer("player", path, endpoint.WithPlayerTracks(element.KindVideo))
	require.NoError(t, err)
	vs := newCollector("vsink", element.KindVideo)
	playInto(t, pl, vs)
	waitSamples(t, vs, 1)
	require.True(t, vs.RequestKeyframe())
	require.Eventually(t, func() bool { return pl.Stats().KeyframeRequests == 1 }, 2*time.Second, time.Millisecond)
}

// TestPlayerReconnectStall: a live HTTP stream that stops sending without
// closing (a camera gone from the network) fails after the I/O timeout
// and is opened again.
func TestPlayerReconnectStall(t *testing.T) {
	frames := liveTS(t, 2*time.Second, 30)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/mp2t")
		first := requests.Add(1) == 1
		start := time.Now()
		for _, f := range frames {
			if first && f.pts >= 500*time.Millisecond {
				<-r.Context().Done() // stalled
				return
			}
			select {
			case <-time.After(time.Until(start.Add(f.pts))):
			case <-r.Context().Done():
				return
			}
			if _, err := w.Write(f.data); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	pl, err := endpoint.NewPlayer("player", srv.URL+"/live.ts", endpoint.WithPlayerTracks(element.KindVideo),
		endpoint.WithInputOptions(map[string]string{"rw_timeout": "300000"}),
		endpoint.WithReconnect(50*time.Millisecond, time.Second, 0))
	require.NoError(t, err)
	vs := newArrivalSink("vsink")
	_, bus := playInto(t, pl, vs)
	require.Eventually(t, func() bool { return vs.count() >= 10 }, 5*time.Second, 5*time.Millisecond)
	stalled := time.Now()
	m := bus.waitFor(isType[*endpoint.PlayerReconnecting])
	require.NotNil(t, m, "PlayerReconnecting")
	t.Logf("the stall: %v, %v after the 10th frame", m.(*endpoint.PlayerReconnecting).Err, time.Since(stalled).Round(time.Millisecond))
	require.NotNil(t, bus.waitFor(isType[*endpoint.PlayerReconnected]))
	n := vs.count()
	require.Eventually(t, func() bool { return vs.count() >= n+30 }, 5*time.Second, 5*time.Millisecond, "frames after the stall")
	assert.EqualValues(t, 2, requests.Load())
}
