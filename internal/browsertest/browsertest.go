package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Chromium is Debian's Chromium binary, started directly: the
// /usr/bin/chromium wrapper misbehaves headless. `make test` installs it.
const Chromium = "/usr/lib/chromium/chromium"

// RunFunc is an example's server: it serves until ctx ends, writes its log
// to out, and calls ready with its URL once it listens.
type RunFunc func(ctx context.Context, out *Buffer, ready func(url string)) error

// Server runs run and returns its URL and its output; the server stops at
// the end of the test, which fails if run returns an error. The output is
// logged when the test fails.
func Server(t *testing.T, run RunFunc) (string, *Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &Buffer{}
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, out, func(u string) { urls <- u })
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

// Browser starts headless Chromium with its fake camera (30 fps) and
// microphone granted to every page, loopback ICE candidates allowed and
// mDNS names off, and returns a context whose chromedp actions run in its
// first tab. Chromium is killed at the end of the test, or when stop is
// called.
func Browser(t *testing.T) (ctx context.Context, stop func()) {
	t.Helper()
	if _, err := os.Stat(Chromium); err != nil {
		t.Fatalf("%s: %v: install Debian's chromium (make deps, or apt-get install chromium)", Chromium, err)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(Chromium),
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
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancelCtx()
			cancelAlloc() // kills Chromium and waits for it
		})
	}
	t.Cleanup(stop)
	if err := chromedp.Do(ctx); err != nil { // the browser lives as long as ctx
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx, stop
}

// Tab opens a new tab in the browser of ctx (from Browser); it closes when
// the returned cancel is called.
func Tab(ctx context.Context) (context.Context, context.CancelFunc) {
	return chromedp.NewContext(ctx)
}

// Received is what a page decoded from a peer connection's inbound RTP,
// as the examples' pages sum it up from getStats: their receivedStats().
// AudioSamples counts the samples decoded from packets (inbound-rtp
// totalSamplesReceived less concealedSamples); AudioSeconds is
// totalSamplesDuration, which counts concealment (silence played when no
// packet came) too.
type Received struct {
	State        string  `json:"state"`
	VideoFrames  int     `json:"videoFrames"`
	Width        int     `json:"width"`
	Height       int     `json:"height"`
	VideoCodec   string  `json:"videoCodec"`
	AudioSamples int     `json:"audioSamples"`
	AudioSeconds float64 `json:"audioSeconds"`
	AudioCodec   string  `json:"audioCodec"`
}

// Poll evaluates the page expression expr (a promise is awaited) every
// 250 ms until done accepts its value or timeout passes, and returns the
// last value and whether done accepted it.
func Poll[T any](ctx context.Context, expr string, timeout time.Duration, done func(T) bool) (T, bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			return got, false, err
		}
		if done(got) {
			return got, true, nil
		}
		if time.Now().After(deadline) {
			return got, false, nil
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return got, false, ctx.Err()
		}
	}
}

// Buffer is a bytes.Buffer safe for one writer and readers: a server's
// output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// PionPeer returns a pion peer connection for the signalling tests, kept
// on loopback as the examples' tests must be: loopback candidates only, on
// both sides, UDP over IPv4, no mDNS, no STUN. It is closed at the end of
// the test.
func PionPeer(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
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
	t.Cleanup(func() { assert.NoError(t, pc.Close()) })
	return pc
}

// Connected returns a channel closed when pc's connection is up. Call it
// before the exchange.
func Connected(pc *webrtc.PeerConnection) <-chan struct{} {
	c := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(c) })
		}
	})
	return c
}

// PostJSONOffer makes pc's offer, waits for its candidates, POSTs it to
// url in the JSON form ({"type":"offer","sdp":...}), checks that the
// answer comes back in JSON with 201 Created, applies it, and returns the
// session's Location.
func PostJSONOffer(t *testing.T, pc *webrtc.PeerConnection, url string) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	<-gathered
	body, err := json.Marshal(map[string]string{"type": "offer", "sdp": pc.LocalDescription().SDP})
	require.NoError(t, err)
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	reply, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(reply))
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var answer webrtc.SessionDescription
	require.NoError(t, json.Unmarshal(reply, &answer))
	assert.Equal(t, webrtc.SDPTypeAnswer, answer.Type)
	require.NoError(t, pc.SetRemoteDescription(answer))
	return resp.Header.Get("Location")
}

// Do sends a request without a body and returns its status and body.
func Do(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode, string(b)
}

// Drained polls the page's receivedStats() until no video frame has been
// decoded for still and at least until after, and returns the last value:
// what the page decoded of a stream that has ended. It gives up after
// timeout, returning what it has.
func Drained(ctx context.Context, after time.Time, still, timeout time.Duration) (Received, error) {
	var last Received
	changed := time.Now()
	r, _, err := Poll(ctx, `receivedStats()`, timeout, func(r Received) bool {
		if r.VideoFrames != last.VideoFrames {
			last, changed = r, time.Now()
		}
		return time.Since(changed) >= still && time.Now().After(after)
	})
	return r, err
}
