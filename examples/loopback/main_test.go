package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// chromium is Debian's Chromium binary, started directly: the
// /usr/bin/chromium wrapper misbehaves headless. `make test` installs it.
const chromium = "/usr/lib/chromium/chromium"

// server runs the example on a free port of 127.0.0.1 with -ice-loopback,
// and returns its URL and output; it stops at the end of the test.
func server(t *testing.T) (string, *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, out, options{Addr: "127.0.0.1:0", ICELoopback: true}, func(u string) { urls <- u })
	}()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
		if t.Failed() {
			t.Logf("server output:\n%s", out.String())
		}
	})
	select {
	case u := <-urls:
		return u, out
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not start")
	}
	return "", nil
}

// received is what the page's loopbackStats reports.
type received struct {
	State        string  `json:"state"`
	VideoFrames  int     `json:"videoFrames"`
	Width        int     `json:"width"`
	Height       int     `json:"height"`
	VideoCodec   string  `json:"videoCodec"`
	AudioSeconds float64 `json:"audioSeconds"`
	AudioCodec   string  `json:"audioCodec"`
}

// TestChromium opens the page in headless Chromium with its fake camera
// and microphone, presses Start, and checks from getStats of the page's
// peer connection that at least 100 video frames and 2 s of audio were
// decoded from what came back through the pipeline; then Stop ends the
// session on the server.
func TestChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s: %v: install Debian's chromium (make deps, or apt-get install chromium)", chromium, err)
	}
	url, out := server(t)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("use-fake-device-for-media-stream", "fps=30"),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer cancelCtx()
	require.NoError(t, chromedp.Do(ctx), "start Chromium") // the browser lives as long as ctx
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	start := time.Now()
	require.NoError(t, chromedp.Do(tctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#start")),
		chromedp.Click(chromedp.CSS("#start")),
	), "open the page and press Start")

	var got received
	for {
		var err error
		got, err = chromedp.Run(tctx, chromedp.Evaluate[received](`loopbackStats()`, chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		if got.VideoFrames >= 100 && got.AudioSeconds >= 2 {
			break
		}
		if time.Since(start) > 20*time.Second {
			status, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("#status")))
			t.Fatalf("after %v the page got back %+v; its status: %s", time.Since(start).Round(time.Millisecond), got, status)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("after %v the page got back %+v", time.Since(start).Round(time.Millisecond), got)
	assert.Equal(t, "connected", got.State)
	assert.Positive(t, got.Width)
	assert.Positive(t, got.Height)
	assert.Contains(t, []string{"video/VP8", "video/VP9", "video/H264", "video/AV1"}, got.VideoCodec)
	assert.Equal(t, "audio/opus", got.AudioCodec)

	// Stop: the page DELETEs its session; the server removes the endpoint.
	require.NoError(t, chromedp.Do(tctx, chromedp.Click(chromedp.CSS("#stop"))))
	closed := regexp.MustCompile(`ConnectionStateChanged +loopback-[0-9a-f]+ closed`)
	require.Eventually(t, func() bool { return closed.MatchString(out.String()) },
		10*time.Second, 50*time.Millisecond, "the endpoint closes when the page stops")

	cancel()
	cancelCtx()
	cancelAlloc() // kills Chromium and waits for it
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
	url, out := server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	m := &webrtc.MediaEngine{}
	require.NoError(t, m.RegisterDefaultCodecs())
	ir := &interceptor.Registry{}
	require.NoError(t, webrtc.RegisterDefaultInterceptors(m, ir))
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)).
		NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	defer func() { assert.NoError(t, pc.Close()) }()
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	require.NoError(t, err)
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	<-gathered
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})

	body, err := json.Marshal(map[string]string{"type": "offer", "sdp": pc.LocalDescription().SDP})
	require.NoError(t, err)
	resp, err := http.Post(url+"loopback", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	reply, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(reply))
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	session := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(session, "/loopback/"), "Location %q", session)
	var answer webrtc.SessionDescription
	require.NoError(t, json.Unmarshal(reply, &answer))
	assert.Equal(t, webrtc.SDPTypeAnswer, answer.Type)
	require.NoError(t, pc.SetRemoteDescription(answer))
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("the pion peer did not connect")
	}

	req, err := http.NewRequest(http.MethodDelete, strings.TrimSuffix(url, "/")+session, nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.Eventually(t, func() bool {
		return strings.Contains(out.String(), "ConnectionStateChanged   loopback-"+strings.TrimPrefix(session, "/loopback/")+" closed")
	}, 10*time.Second, 50*time.Millisecond, "DELETE closes the endpoint")

	// The page is served, embedded.
	resp, err = http.Get(url)
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(page), "loopbackStats")
	assert.NotContains(t, string(page), "<script src=", "the page loads no external script")
}

// lockedBuffer is a bytes.Buffer safe for one writer and readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
