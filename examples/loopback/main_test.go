package main

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/medley-go/medley/internal/browsertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer runs the example on a free port of 127.0.0.1 with
// -ice-loopback; it stops at the end of the test.
func startServer(t *testing.T) (string, *browsertest.Buffer) {
	return browsertest.Server(t, func(ctx context.Context, out *browsertest.Buffer, ready func(string)) error {
		return run(ctx, out, options{Addr: "127.0.0.1:0", ICELoopback: true}, ready)
	})
}

// TestChromium opens the page in headless Chromium with its fake camera
// and microphone, presses Start, and checks from getStats of the page's
// peer connection that at least 100 video frames and 2 s of audio were
// decoded from what came back through the pipeline; then Stop ends the
// session on the server.
func TestChromium(t *testing.T) {
	url, out := startServer(t)
	browser, stopBrowser := browsertest.Browser(t)
	ctx, cancel := context.WithTimeout(browser, 30*time.Second)
	defer cancel()

	start := time.Now()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#start")),
		chromedp.Click(chromedp.CSS("#start")),
	), "open the page and press Start")

	got, ok, err := browsertest.Poll(ctx, `receivedStats()`, 20*time.Second, func(r browsertest.Received) bool {
		return r.VideoFrames >= 100 && r.AudioSeconds >= 2
	})
	require.NoError(t, err)
	if !ok {
		status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
		t.Fatalf("after %v the page got back %+v; its status: %s", time.Since(start).Round(time.Millisecond), got, status)
	}
	t.Logf("after %v the page got back %+v", time.Since(start).Round(time.Millisecond), got)
	assert.Equal(t, "connected", got.State)
	assert.Positive(t, got.Width)
	assert.Positive(t, got.Height)
	assert.Contains(t, []string{"video/VP8", "video/VP9", "video/H264", "video/AV1"}, got.VideoCodec)
	assert.Equal(t, "audio/opus", got.AudioCodec)

	// Stop: the page DELETEs its session; the server removes the endpoint.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#stop"))))
	closed := regexp.MustCompile(`ConnectionStateChanged +loopback-[0-9a-f]+ closed`)
	require.Eventually(t, func() bool { return closed.MatchString(out.String()) },
		10*time.Second, 50*time.Millisecond, "the endpoint closes when the page stops")

	cancel()
	stopBrowser()
	text := out.String()
	for _, want := range []string{
		".video_0 -> loopback-",
		"MediaFlowInStateChanged  loopback-",
		"ConnectionStateChanged   loopback-",
		" connected",
		"NewCandidatePairSelected",
		"127.0.0.1",
	} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "Error ")
}

// TestJSONSignalling drives the server with a pion peer using the JSON
// form of the signalling: the answer comes back in JSON with a Location,
// and DELETE of the Location ends the session.
func TestJSONSignalling(t *testing.T) {
	url, out := startServer(t)
	pc := browsertest.PionPeer(t)
	_, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	require.NoError(t, err)
	connected := browsertest.Connected(pc)
	session := browsertest.PostJSONOffer(t, pc, url+"loopback")
	require.True(t, strings.HasPrefix(session, "/loopback/"), "Location %q", session)
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the pion peer did not connect")
	}

	status, _ := browsertest.Do(t, http.MethodDelete, strings.TrimSuffix(url, "/")+session)
	assert.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool {
		return strings.Contains(out.String(), "ConnectionStateChanged   loopback-"+strings.TrimPrefix(session, "/loopback/")+" closed")
	}, 10*time.Second, 50*time.Millisecond, "DELETE closes the endpoint")

	// The page is served, embedded.
	status, page := browsertest.Do(t, http.MethodGet, url)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, page, "receivedStats")
	assert.NotContains(t, page, "<script src=", "the page loads no external script")
}
