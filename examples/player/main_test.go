package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
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

// The test media: 3 s of 640x480 at 30 fps (a keyframe a second) and a
// 440 Hz tone.
const (
	mediaSeconds = 3
	mediaFrames  = 30 * mediaSeconds
)

// makeMedia writes test files with the ffmpeg CLI, each encoded with its
// arguments, all at once; it returns their paths.
func makeMedia(t *testing.T, files map[string][]string) map[string]string {
	t.Helper()
	d := fmt.Sprint(mediaSeconds)
	dir := t.TempDir()
	type job struct {
		cmd *exec.Cmd
		out bytes.Buffer
	}
	jobs := map[string]*job{}
	paths := map[string]string{}
	for name, codecArgs := range files {
		paths[name] = filepath.Join(dir, name)
		args := append([]string{"-hide_banner", "-loglevel", "error", "-y",
			"-f", "lavfi", "-i", "testsrc2=size=640x480:rate=30:duration=" + d,
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=" + d,
			"-g", "30", "-pix_fmt", "yuv420p"}, codecArgs...)
		j := &job{cmd: exec.Command("ffmpeg", append(args, paths[name])...)}
		j.cmd.Stdout, j.cmd.Stderr = &j.out, &j.out
		require.NoError(t, j.cmd.Start())
		jobs[name] = j
	}
	for name, j := range jobs {
		assert.NoError(t, j.cmd.Wait(), "ffmpeg %s: %s", name, j.out.String())
	}
	require.False(t, t.Failed())
	return paths
}

// The encoders of the test files.
var (
	vp8Opus = []string{"-c:v", "libvpx", "-b:v", "1M", "-deadline", "realtime", "-cpu-used", "16", "-c:a", "libopus"}
	// Constrained baseline: no B-frames.
	h264Opus = []string{"-c:v", "libx264", "-profile:v", "baseline", "-preset", "ultrafast", "-c:a", "libopus"}
	// High profile with B-frames, libx264's default.
	h264BFramesOpus = []string{"-c:v", "libx264", "-profile:v", "high", "-bf", "2", "-preset", "veryfast", "-c:a", "libopus"}
	h264HighAAC     = []string{"-c:v", "libx264", "-profile:v", "high", "-bf", "0", "-preset", "veryfast", "-c:a", "aac"}
)

// TestPlayInChromium runs the example on inputs of each kind it takes and
// plays them in headless Chromium's page: a VP8 + Opus WebM file, an H.264
// constrained baseline + Opus MP4 over HTTP, a VP8 + Opus RTSP camera
// (gst-rtsp-server), an H.264 high profile MP4 with B-frames transcoded to
// VP8 (-codecs video/VP8,audio/opus), and an H.264 high profile + AAC MP4
// file, whose AAC audio medley cannot send to a browser (no AAC decoder
// among the converters): its video plays alone. Each checks from getStats that the
// page decoded at least 60 video frames (and a second of audio), and for
// the files, at the end, at least 90% of their 90 frames.
func TestPlayInChromium(t *testing.T) {
	setup := time.Now()
	media := makeMedia(t, map[string][]string{
		"vp8-opus.webm":             vp8Opus,
		"h264-opus.mp4":             h264Opus,
		"h264high-bframes-opus.mp4": h264BFramesOpus,
		"h264high-aac.mp4":          h264HighAAC,
	})
	webm, bframes, aac := media["vp8-opus.webm"], media["h264high-bframes-opus.mp4"], media["h264high-aac.mp4"]
	files := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(webm)))) // on 127.0.0.1
	defer files.Close()
	camera := rtspCamera(t)
	browser, _ := browsertest.Browser(t)
	t.Logf("set-up (media files, RTSP camera, Chromium) took %v", time.Since(setup).Round(time.Millisecond))

	cases := []struct {
		name, input          string
		codecs               []string // -codecs
		videoMIME, audioMIME string   // "" audio: none expected
		live                 bool
		wantError            string // in the server's output, or none
	}{
		{"webm-file", webm, nil, "video/VP8", "audio/opus", false, ""},
		{"mp4-http", files.URL + "/h264-opus.mp4", nil, "video/H264", "audio/opus", false, ""},
		{"rtsp", camera, nil, "video/VP8", "audio/opus", true, ""},
		// H.264 with B-frames is transcoded to VP8 (-codecs): Chromium's
		// WebRTC receiver does not reorder frames, and decodes few of them
		// sent as they are.
		{"mp4-bframes-to-vp8", bframes, []string{"video/VP8", "audio/opus"}, "video/VP8", "audio/opus", false, ""},
		// AAC cannot be sent: the audio link fails, the video plays.
		{"mp4-aac", aac, nil, "video/H264", "", false, "player-"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url, out := browsertest.Server(t, func(ctx context.Context, out *browsertest.Buffer, ready func(string)) error {
				return run(ctx, out, options{Addr: "127.0.0.1:0", ICELoopback: true, Input: c.input, Codecs: c.codecs}, ready)
			})
			ctx, cancel := context.WithTimeout(browser, 40*time.Second)
			defer cancel()
			tab, closeTab := chromedp.NewContext(ctx)
			defer closeTab()
			require.NoError(t, chromedp.Do(tab,
				chromedp.Navigate(url),
				chromedp.WaitVisible(chromedp.CSS("#play")),
				chromedp.Click(chromedp.CSS("#play")),
			), "open the page and press Play")
			start := time.Now()
			r, ok, err := browsertest.Poll(tab, `receivedStats()`, 15*time.Second, func(r browsertest.Received) bool {
				return r.VideoFrames >= 60 && (c.audioMIME == "" || r.AudioSamples >= 48000)
			})
			require.NoError(t, err)
			t.Logf("%s: after %v the page got %+v", c.name, time.Since(start).Round(time.Millisecond), r)
			if !ok {
				status, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS("#status")))
				t.Fatalf("%s did not play: %+v; the page's status: %s", c.input, r, status)
			}
			assert.Equal(t, "connected", r.State)
			assert.Equal(t, c.videoMIME, r.VideoCodec)
			assert.Equal(t, [2]int{640, 480}, [2]int{r.Width, r.Height})
			assert.Equal(t, c.audioMIME, r.AudioCodec)

			if !c.live {
				// To the end: the page decodes (nearly) every frame.
				r, err = browsertest.Drained(tab, start.Add(mediaSeconds*time.Second), time.Second, 10*time.Second)
				require.NoError(t, err)
				t.Logf("%s: at the end, after %v, the page had decoded %d of %d video frames and %.2f s of %d s of audio",
					c.name, time.Since(start).Round(time.Millisecond), r.VideoFrames, mediaFrames, float64(r.AudioSamples)/48000, mediaSeconds)
				assert.GreaterOrEqual(t, r.VideoFrames, mediaFrames*9/10)
				assert.LessOrEqual(t, r.VideoFrames, mediaFrames)
				if c.audioMIME != "" {
					assert.GreaterOrEqual(t, r.AudioSamples, 48000*mediaSeconds*9/10)
				}
			}

			// Stop: the page DELETEs its session; the server removes it.
			require.NoError(t, chromedp.Do(tab, chromedp.Click(chromedp.CSS("#stop"))))
			closed := regexp.MustCompile(`ConnectionStateChanged +play-[0-9a-f]+ closed`)
			require.Eventually(t, func() bool { return closed.MatchString(out.String()) },
				10*time.Second, 50*time.Millisecond, "the endpoint closes when the page stops")
			text := out.String()
			assert.Contains(t, text, "ElementConnected         player-")
			if c.wantError == "" {
				assert.NotContains(t, text, "Error ")
			} else {
				t.Logf("%s: the server said:\n%s", c.name, grep(text, "Error "))
				assert.Contains(t, text, "Error                    "+c.wantError)
			}
		})
	}
}

// grep returns the lines of text that hold s.
func grep(text, s string) string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// rtspServer is gst-rtsp-server serving a live VP8 + Opus test camera at
// rtsp://127.0.0.1:PORT/cam; argv[1] is the port.
const rtspServer = `
import sys, gi
gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import Gst, GstRtspServer, GLib
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service(sys.argv[1])
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch('( videotestsrc is-live=true pattern=ball'
    ' ! video/x-raw,width=640,height=480,framerate=30/1'
    ' ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay name=pay0 pt=96'
    ' audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=48000,channels=2'
    ' ! opusenc ! rtpopuspay name=pay1 pt=97 )')
factory.set_shared(True)
server.get_mount_points().add_factory('/cam', factory)
if server.attach(None) == 0:
    sys.exit('cannot listen on port ' + sys.argv[1])
print('ready', flush=True)
GLib.MainLoop().run()
`

// rtspCamera starts gst-rtsp-server (through /usr/bin/python3, which has
// python3-gi) on a free port of 127.0.0.1 and returns the camera's URL; it
// stops at the end of the test.
func rtspCamera(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	cmd := exec.Command("/usr/bin/python3", "-c", rtspServer, fmt.Sprint(port))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), "start gst-rtsp-server (make deps installs gir1.2-gst-rtsp-server-1.0 and python3-gi)")
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
	}()
	select {
	case ok := <-ready:
		require.True(t, ok, "gst-rtsp-server did not start")
	case <-time.After(10 * time.Second):
		t.Fatal("gst-rtsp-server did not start within 10 s")
	}
	return fmt.Sprintf("rtsp://127.0.0.1:%d/cam", port)
}

// TestSignalling drives the server with a pion peer in the JSON form of
// the signalling: it gets the file's VP8 and Opus, and DELETE of the
// Location ends the session. A missing file stops the program at once.
func TestSignalling(t *testing.T) {
	err := run(context.Background(), io.Discard, options{Addr: "127.0.0.1:0", Input: filepath.Join(t.TempDir(), "none.webm")}, nil)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Error(t, run(context.Background(), io.Discard, options{Addr: "127.0.0.1:0"}, nil), "no input")

	in := makeMedia(t, map[string][]string{"vp8-opus.webm": vp8Opus})["vp8-opus.webm"]
	url, out := browsertest.Server(t, func(ctx context.Context, out *browsertest.Buffer, ready func(string)) error {
		return run(ctx, out, options{Addr: "127.0.0.1:0", ICELoopback: true, Input: in}, ready)
	})
	pc := browsertest.PionPeer(t)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		_, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		require.NoError(t, err)
	}
	got := make(chan string, 2)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		n := 0
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			if n++; n == 20 {
				got <- tr.Codec().MimeType
			}
		}
	})
	session := browsertest.PostJSONOffer(t, pc, url+"play")
	require.Regexp(t, `^/play/[0-9a-f]+$`, session)
	var mimes []string
	for len(mimes) < 2 {
		select {
		case m := <-got:
			mimes = append(mimes, m)
		case <-time.After(10 * time.Second):
			t.Fatalf("the pion peer got 20 packets of %v only", mimes)
		}
	}
	assert.ElementsMatch(t, []string{webrtc.MimeTypeVP8, webrtc.MimeTypeOpus}, mimes)

	status, _ := browsertest.Do(t, http.MethodDelete, strings.TrimSuffix(url, "/")+session)
	assert.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool {
		return strings.Contains(out.String(), "ConnectionStateChanged   play-"+strings.TrimPrefix(session, "/play/")+" closed")
	}, 10*time.Second, 50*time.Millisecond, "DELETE closes the endpoint")
	status, _ = browsertest.Do(t, http.MethodDelete, strings.TrimSuffix(url, "/")+session)
	assert.Equal(t, http.StatusNotFound, status, "a second DELETE")

	status, page := browsertest.Do(t, http.MethodGet, url)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, page, "receivedStats")
	assert.NotContains(t, page, "<script src=", "the page loads no external script")
}
