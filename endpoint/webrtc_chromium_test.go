package endpoint_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/internal/browsertest"
)

// chromiumPage is the page the Chromium tests drive: a peer connection
// with the fake camera and microphone and a data channel, that either
// answers the endpoint's offer or makes its own, and sums up what it
// decoded and what came back on the channel.
const chromiumPage = `<!doctype html><meta charset="utf-8"><title>medley endpoint test</title>
<script>
let pc, dc, stream;
const echoed = [];
function bind(ch) { dc = ch; ch.onmessage = e => echoed.push(typeof e.data === 'string' ? e.data : 'binary:' + e.data.byteLength); }
function gathered() {
  return new Promise(resolve => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
  });
}
async function start() {
  stream = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 640, height: 480}});
  pc = new RTCPeerConnection();
  pc.ondatachannel = e => bind(e.channel);
  // Chromium pulls received audio out of its jitter buffer only for a
  // media element that plays it.
  pc.ontrack = e => {
    const el = document.createElement(e.track.kind);
    el.srcObject = new MediaStream([e.track]);
    el.muted = e.track.kind === 'video';
    document.body.appendChild(el);
    el.play();
  };
}
async function answer(offer) {
  await start();
  await pc.setRemoteDescription({type: 'offer', sdp: offer});
  for (const t of stream.getTracks()) {
    const tr = pc.getTransceivers().find(x => x.receiver.track.kind === t.kind && !x.sender.track);
    await tr.sender.replaceTrack(t);
    tr.direction = 'sendrecv';
  }
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered();
  return pc.localDescription.sdp;
}
async function offer() {
  await start();
  for (const t of stream.getTracks()) pc.addTrack(t, stream);
  bind(pc.createDataChannel('chat'));
  await pc.setLocalDescription(await pc.createOffer());
  await gathered();
  return pc.localDescription.sdp;
}
async function accept(sdp) { await pc.setRemoteDescription({type: 'answer', sdp}); }
function ping(n) {
  for (let i = 0; i < n; i++) dc.send('ping ' + i);
  dc.send(new Uint8Array(1000));
}
async function status() {
  const r = {state: pc ? pc.connectionState : 'none', channel: dc ? dc.readyState : 'none', echoed: echoed, videoFrames: 0, audioSamples: 0};
  if (!pc) return r;
  (await pc.getStats()).forEach(s => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'video') r.videoFrames += s.framesDecoded || 0;
    if (s.kind === 'audio') r.audioSamples += (s.totalSamplesReceived || 0) - (s.concealedSamples || 0);
  });
  return r;
}
</script>`

// chromiumStatus is what the page's status() returns.
type chromiumStatus struct {
	State        string   `json:"state"`
	Channel      string   `json:"channel"`
	Echoed       []string `json:"echoed"`
	VideoFrames  int      `json:"videoFrames"`
	AudioSamples int      `json:"audioSamples"`
}

// TestChromium connects headless Chromium (its fake camera and microphone,
// and a data channel) to a looped-back endpoint, with the offer from either
// side: the page decodes the video and audio it sent, back through the
// pipeline, and gets back every message it sent on the channel, in order.
func TestChromium(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = fmt.Fprint(w, chromiumPage)
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	browser, stop := browsertest.Browser(t)
	defer stop()

	for _, who := range []string{"chromium-offers", "medley-offers"} {
		t.Run(who, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tab, closeTab := browsertest.Tab(browser)
			defer closeTab()
			require.NoError(t, chromedp.Do(tab, chromedp.Navigate(srv.URL)))

			ep, err := endpoint.NewWebRTC("ep", loopbackOptions(endpoint.WithCompleteSDP(), endpoint.WithDataChannel("chat"))...)
			require.NoError(t, err)
			_, sub := loopback(t, ep)
			bus := newBusLog(t, sub, nil)

			if who == "chromium-offers" {
				offer, err := chromedp.Run(tab, chromedp.Evaluate[string](`offer()`, chromedp.EvalAwaitPromise))
				require.NoError(t, err)
				answer, err := ep.ProcessOffer(ctx, offer)
				require.NoError(t, err)
				_, err = chromedp.Run(tab, chromedp.Evaluate[any](`accept(`+strconv.Quote(answer)+`)`, chromedp.EvalAwaitPromise))
				require.NoError(t, err)
			} else {
				offer, err := ep.GenerateOffer(ctx)
				require.NoError(t, err)
				answer, err := chromedp.Run(tab, chromedp.Evaluate[string](`answer(`+strconv.Quote(offer)+`)`, chromedp.EvalAwaitPromise))
				require.NoError(t, err)
				require.NoError(t, ep.ProcessAnswer(ctx, answer))
			}

			open := func(s chromiumStatus) bool { return s.State == "connected" && s.Channel == "open" }
			got, ok, err := browsertest.Poll(tab, `status()`, 15*time.Second, open)
			require.NoError(t, err)
			require.True(t, ok, "connected with the channel open: %+v", got)
			_, err = chromedp.Run(tab, chromedp.Evaluate[any](`ping(20)`))
			require.NoError(t, err)

			want := make([]string, 0, 21)
			for i := range 20 {
				want = append(want, "ping "+strconv.Itoa(i))
			}
			want = append(want, "binary:1000")
			enough := func(s chromiumStatus) bool {
				return s.VideoFrames >= 60 && s.AudioSamples >= 48000 && len(s.Echoed) >= len(want)
			}
			got, ok, err = browsertest.Poll(tab, `status()`, 15*time.Second, enough)
			require.NoError(t, err)
			t.Logf("the page decoded %d video frames and %d audio samples and got %d messages back", got.VideoFrames, got.AudioSamples, len(got.Echoed))
			assert.True(t, ok, "60 frames, 1 s of audio and the echo: %+v", got)
			assert.Equal(t, want, got.Echoed)
			assert.NotEmpty(t, bus.find(connState("ep", webrtc.PeerConnectionStateConnected)))
			assert.Empty(t, bus.find(func(m element.Message) bool { _, ok := m.(*element.Error); return ok }))
		})
	}
}
