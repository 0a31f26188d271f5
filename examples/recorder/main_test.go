package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/medley-go/medley/internal/browsertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer runs the example with -ice-loopback on a free port, recording
// into dir.
func startServer(t *testing.T, dir string) (string, *browsertest.Buffer) {
	return browsertest.Server(t, func(ctx context.Context, out *browsertest.Buffer, ready func(string)) error {
		return run(ctx, out, options{Addr: "127.0.0.1:0", ICELoopback: true, Dir: dir}, ready)
	})
}

// recordFor is how long each test recording lasts.
const recordFor = 4 * time.Second

// TestRecordAndPlay drives the page in headless Chromium: for a WebM, an
// MP4 and a video-only fragmented MP4 profile it records the fake camera
// and microphone for 4 s, stops (DELETE, or for the last the page closing
// its peer connection without one), finds the file in GET /recordings and
// checks it with ffprobe (codecs, a duration of 4 s plus what the start and
// the stop took), then plays it in a second tab through the Player and
// checks from getStats that the tab decoded at least 60 video frames and a
// second of audio, and, at the end, at least 90% of the file's frames.
func TestRecordAndPlay(t *testing.T) {
	dir := t.TempDir()
	url, out := startServer(t, dir)
	browser, _ := browsertest.Browser(t)

	cases := []struct {
		profile                string
		format                 string // ffprobe's format_name holds it
		videoCodec, audioCodec string // ffprobe's codec names
		videoMIME              string // what the browser decodes in playback
		goAway                 bool   // end the recording by closing the peer connection, not by DELETE
	}{
		{"webm", "webm", "vp8", "opus", "video/VP8", false},
		{"mp4", "mp4", "h264", "opus", "video/H264", false},
		{"fmp4-video-only", "mp4", "h264", "", "video/H264", true},
	}
	for _, c := range cases {
		t.Run(c.profile, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(browser, 45*time.Second)
			defer cancel()
			rec, rctx := newTab(t, ctx)
			defer rec()

			// Record for 4 s, counted from the moment the recorder writes.
			require.NoError(t, chromedp.Do(rctx,
				chromedp.Navigate(url),
				chromedp.WaitVisible(chromedp.CSS("#record")),
				chromedp.SetValue(chromedp.CSS("#profile"), c.profile),
				chromedp.Click(chromedp.CSS("#record")),
			), "open the page and press Record")
			var name string
			var d0 float64 // the file's duration when first seen growing
			require.Eventually(t, func() bool {
				for _, r := range recordings(t, url) {
					if r.Recording && r.Duration > 0 && strings.HasSuffix(strings.TrimSuffix(r.Name, filepath.Ext(r.Name)), "-"+c.profile) {
						name, d0 = r.Name, r.Duration
						return true
					}
				}
				return false
			}, 10*time.Second, 50*time.Millisecond, "a %s recording starts", c.profile)
			started := time.Now()
			time.Sleep(recordFor)
			sent, err := chromedp.Run(rctx, chromedp.Evaluate[map[string]any](`sentStats()`, chromedp.EvalAwaitPromise))
			require.NoError(t, err)
			stopped := name + ": requested"
			if c.goAway {
				// The peer goes away without a DELETE: its endpoint
				// closes, its tracks end, the recorder completes the file.
				_, err := chromedp.Run(rctx, chromedp.Evaluate[any](`pub.close()`))
				require.NoError(t, err)
				stopped = name + ": end-of-stream"
			} else {
				require.NoError(t, chromedp.Do(rctx, chromedp.Click(chromedp.CSS("#stop"))), "press Stop")
			}

			// The DELETE has returned: the file is complete and listed.
			var got recording
			require.Eventually(t, func() bool {
				for _, r := range recordings(t, url) {
					if r.Name == name && !r.Recording {
						got = r
						return true
					}
				}
				return false
			}, 10*time.Second, 50*time.Millisecond, "%s is listed as complete", name)
			elapsed := time.Since(started)
			t.Logf("%s: recorded for %v: %+v; the page sent %v", c.profile, elapsed.Round(time.Millisecond), got, sent)
			assert.Equal(t, c.profile, got.Profile)
			assert.Contains(t, out.String(), stopped)
			assert.Positive(t, got.Size)
			// The file holds what was sent from d0 before started until the
			// stop, which came between recordFor and elapsed after started
			// (give or take the media in flight).
			lo, hi := recordFor.Seconds()-0.3, d0+elapsed.Seconds()+0.3
			assertBetween(t, got.Duration, lo, hi, "the file's duration, by the recorder")

			p := probe(t, filepath.Join(dir, name))
			t.Logf("ffprobe: %+v", p)
			assert.Contains(t, p.Format.FormatName, c.format)
			assertBetween(t, p.duration(t), lo, hi, "the file's duration, by ffprobe")
			want := []string{"video " + c.videoCodec}
			if c.audioCodec != "" {
				want = append(want, "audio "+c.audioCodec)
			}
			assert.ElementsMatch(t, want, p.codecs())

			// Play it in a second tab.
			play, pctx := newTab(t, ctx)
			defer play()
			require.NoError(t, chromedp.Do(pctx,
				chromedp.Navigate(url),
				chromedp.Click(chromedp.CSS(`button[data-name="`+name+`"]`)),
			), "open the page and press Play on %s", name)
			start := time.Now()
			r, ok, err := browsertest.Poll(pctx, `receivedStats()`, 15*time.Second, func(r browsertest.Received) bool {
				return r.VideoFrames >= 60 && (c.audioCodec == "" || r.AudioSamples >= 48000)
			})
			require.NoError(t, err)
			t.Logf("%s: the player's tab got %+v after %v", name, r, time.Since(start).Round(time.Millisecond))
			if !ok {
				status, _ := chromedp.Run(pctx, chromedp.Text(chromedp.CSS("#status")))
				t.Fatalf("the recording did not play: %+v; the page's status: %s", r, status)
			}
			assert.Equal(t, "connected", r.State)
			assert.Equal(t, c.videoMIME, r.VideoCodec)
			assert.Equal(t, [2]int{640, 480}, [2]int{r.Width, r.Height})
			if c.audioCodec != "" {
				assert.Equal(t, "audio/opus", r.AudioCodec)
			}
			// To the end: the tab decodes (nearly) every frame of the file.
			r, err = browsertest.Drained(pctx, start.Add(recordFor), time.Second, 10*time.Second)
			require.NoError(t, err)
			t.Logf("%s: at the end, after %v, the tab had decoded %d of the file's %d video frames and %.2f s of audio",
				name, time.Since(start).Round(time.Millisecond), r.VideoFrames, p.videoFrames, float64(r.AudioSamples)/48000)
			assert.GreaterOrEqual(t, r.VideoFrames, p.videoFrames*9/10)
			assert.LessOrEqual(t, r.VideoFrames, p.videoFrames)
			if c.audioCodec != "" {
				assert.GreaterOrEqual(t, float64(r.AudioSamples)/48000, 0.9*got.Duration, "seconds of audio decoded")
			}

			// Stop playing: the page DELETEs its session, the server ends it.
			require.NoError(t, chromedp.Do(pctx, chromedp.Click(chromedp.CSS("#stopplay"))))
			closed := regexp.MustCompile(`ConnectionStateChanged +play-[0-9a-f]+ closed`)
			require.Eventually(t, func() bool { return len(closed.FindAllString(out.String(), -1)) > 0 },
				10*time.Second, 50*time.Millisecond, "the playing endpoint closes when the page stops")
		})
	}
	text := out.String()
	for _, want := range []string{"Recording ", "Stopped ", "ElementConnected         player-", "127.0.0.1"} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "Error ")
}

func assertBetween(t *testing.T, v, lo, hi float64, what string) {
	t.Helper()
	assert.True(t, v >= lo && v <= hi, "%s: %.3f, not within [%.3f, %.3f]", what, v, lo, hi)
}

// newTab opens a tab of the browser of ctx; close closes it.
func newTab(t *testing.T, ctx context.Context) (close func(), tab context.Context) {
	tab, cancel := chromedp.NewContext(ctx)
	return cancel, tab
}

// recordings is GET /recordings.
func recordings(t *testing.T, url string) []recording {
	t.Helper()
	resp, err := http.Get(url + "recordings")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var list []recording
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	return list
}

// probed is what ffprobe says of a file.
type probed struct {
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Packets   string `json:"nb_read_packets"`
	} `json:"streams"`
	videoFrames int // the video stream's packets
}

func probe(t *testing.T, path string) probed {
	t.Helper()
	b, err := exec.Command("ffprobe", "-v", "error", "-of", "json", "-count_packets",
		"-show_entries", "format=format_name,duration:stream=codec_type,codec_name,nb_read_packets", path).Output()
	require.NoError(t, err, "ffprobe %s", path)
	var p probed
	require.NoError(t, json.Unmarshal(b, &p))
	for _, st := range p.Streams {
		if st.CodecType == "video" {
			p.videoFrames, err = strconv.Atoi(st.Packets)
			require.NoError(t, err, "ffprobe's packet count %q", st.Packets)
		}
	}
	return p
}

func (p probed) duration(t *testing.T) float64 {
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	require.NoError(t, err, "ffprobe's duration %q", p.Format.Duration)
	return d
}

// codecs lists the streams as "video vp8".
func (p probed) codecs() []string {
	var s []string
	for _, st := range p.Streams {
		s = append(s, st.CodecType+" "+st.CodecName)
	}
	return s
}

// TestSignalling drives the server with pion peers in the JSON form of the
// signalling: one publishes an audio-only Matroska recording of Opus
// silence for 1 s, which cannot be played while it records, then is
// listed and plays to a second peer. It checks the requests refused, too.
func TestSignalling(t *testing.T) {
	dir := t.TempDir()
	url, out := startServer(t, dir)
	base := strings.TrimSuffix(url, "/")

	for _, c := range []struct {
		method, path, contentType string
		want                      int
	}{
		{http.MethodPost, "/record?profile=avi", "application/sdp", http.StatusBadRequest},
		{http.MethodPost, "/record?profile=webm", "text/plain", http.StatusUnsupportedMediaType},
		{http.MethodDelete, "/record/0123456789abcdef", "", http.StatusNotFound},
		{http.MethodPost, "/recordings/none.webm/play", "application/sdp", http.StatusNotFound},
		{http.MethodPost, "/recordings/..%2Fmain.go/play", "application/sdp", http.StatusNotFound},
		{http.MethodGet, "/recordings/..%2Fmain.go", "", http.StatusNotFound},
		{http.MethodDelete, "/recordings/none.webm/play/0123456789abcdef", "", http.StatusNotFound},
	} {
		req, err := http.NewRequest(c.method, base+c.path, strings.NewReader("v=0\r\n"))
		require.NoError(t, err)
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, c.want, resp.StatusCode, "%s %s", c.method, c.path)
	}

	// Publish 1 s of Opus silence.
	pub := browsertest.PionPeer(t)
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "pion")
	require.NoError(t, err)
	_, err = pub.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	require.NoError(t, err)
	connected := browsertest.Connected(pub)
	session := browsertest.PostJSONOffer(t, pub, url+"record?profile=mkv-audio-only")
	require.Regexp(t, `^/record/[0-9a-f]+$`, session)
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the publishing peer did not connect")
	}
	silence := []byte{0xf8, 0xff, 0xfe} // an Opus frame of 20 ms of silence (RFC 6716)
	var name string
	for i := 0; i < 50; i++ {
		require.NoError(t, track.WriteSample(media.Sample{Data: silence, Duration: 20 * time.Millisecond}))
		time.Sleep(20 * time.Millisecond)
		if name == "" {
			for _, r := range recordings(t, url) {
				if r.Recording {
					name = r.Name
				}
			}
		}
	}
	require.NotEmpty(t, name, "GET /recordings lists the recording in progress")
	assert.True(t, strings.HasSuffix(name, "-mkv-audio-only.mka"), name)
	status, _ := browsertest.Do(t, http.MethodPost, url+"recordings/"+name+"/play")
	assert.Equal(t, http.StatusConflict, status, "a recording in progress cannot be played")

	status, _ = browsertest.Do(t, http.MethodDelete, base+session)
	assert.Equal(t, http.StatusOK, status)
	list := recordings(t, url)
	require.Len(t, list, 1)
	assert.Equal(t, name, list[0].Name)
	assert.False(t, list[0].Recording)
	assert.InDelta(t, 1.0, list[0].Duration, 0.3)
	p := probe(t, filepath.Join(dir, name))
	assert.Equal(t, []string{"audio opus"}, p.codecs())
	assert.Contains(t, p.Format.FormatName, "matroska")
	status, body := browsertest.Do(t, http.MethodGet, url+"recordings/"+name)
	assert.Equal(t, http.StatusOK, status)
	assert.EqualValues(t, list[0].Size, len(body), "GET /recordings/{name} serves the file")

	// Play it to a receiving peer, which counts the audio packets.
	sub := browsertest.PionPeer(t)
	_, err = sub.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	require.NoError(t, err)
	packets := make(chan int, 1)
	sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		n := 0
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				break
			}
			if n++; n == 25 {
				packets <- n
			}
		}
	})
	session = browsertest.PostJSONOffer(t, sub, url+"recordings/"+name+"/play")
	require.Equal(t, "/recordings/"+name+"/play/", session[:len(session)-16], "Location %q", session)
	select {
	case <-packets:
	case <-time.After(10 * time.Second):
		t.Fatal("the receiving peer got no 25 audio packets of the recording")
	}
	status, _ = browsertest.Do(t, http.MethodDelete, base+session)
	assert.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool {
		return strings.Contains(out.String(), "ConnectionStateChanged   play-"+session[len(session)-16:]+" closed")
	}, 10*time.Second, 50*time.Millisecond, "DELETE closes the playing endpoint")

	status, page := browsertest.Do(t, http.MethodGet, url)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, page, "receivedStats")
	assert.NotContains(t, page, "<script src=", "the page loads no external script")
}
