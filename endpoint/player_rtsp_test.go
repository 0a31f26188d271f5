package endpoint_test

import (
	"bufio"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
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

// rtspCameraScript is gst-rtsp-server serving a live 320x240 30 fps VP8
// camera with Opus audio at rtsp://127.0.0.1:PORT/cam, shared by its
// clients; argv[1] is the port. It prints "ready" once it listens. With
// argv[2] "timed", the camera is video only and each client gets its own
// (so that its first frame is the first the client gets), and it prints
// "SENT pts wall" for each frame's RTP packets as the payloader sends
// them: the frame's running time and the wall clock, in nanoseconds.
const rtspCameraScript = `
import sys, time, gi
gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import Gst, GstRtspServer, GLib
Gst.init(None)
timed = len(sys.argv) > 2 and sys.argv[2] == 'timed'
server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service(sys.argv[1])
factory = GstRtspServer.RTSPMediaFactory()
launch = ('( videotestsrc is-live=true pattern=ball'
    ' ! video/x-raw,width=320,height=240,framerate=30/1'
    ' ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay name=pay0 pt=96')
if not timed:
    launch += (' audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=48000,channels=2'
        ' ! opusenc ! rtpopuspay name=pay1 pt=97')
factory.set_launch(launch + ' )')
factory.set_shared(not timed)
def sent(pad, info):
    if info.type & Gst.PadProbeType.BUFFER_LIST:
        buf = info.get_buffer_list().get(0)
    else:
        buf = info.get_buffer()
    print('SENT %d %d' % (buf.pts, time.time_ns()), flush=True)
    return Gst.PadProbeReturn.OK
def configured(factory, media):
    pay = media.get_element().get_by_name('pay0')
    pay.get_static_pad('src').add_probe(Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, sent)
if timed:
    factory.connect('media-configure', configured)
server.get_mount_points().add_factory('/cam', factory)
if server.attach(None) == 0:
    sys.exit('cannot listen on port ' + sys.argv[1])
print('ready', flush=True)
GLib.MainLoop().run()
`

// rtspCamera is a gst-rtsp-server process (through /usr/bin/python3,
// which has python3-gi).
type rtspCamera struct {
	cmd  *exec.Cmd
	url  string
	once sync.Once
	// sent is, for a timed camera, when the last RTP packet of each frame
	// left the payloader, by the frame's running time.
	mu   sync.Mutex
	sent map[time.Duration]time.Time
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// startRTSPCamera starts the camera on port (timed: see
// rtspCameraScript) and waits (up to 10 s) until it listens; it is killed
// at the end of the test if still running.
func startRTSPCamera(t *testing.T, port int, timed ...bool) *rtspCamera {
	t.Helper()
	args := []string{"-c", rtspCameraScript, fmt.Sprint(port)}
	if len(timed) > 0 && timed[0] {
		args = append(args, "timed")
	}
	cmd := exec.Command("/usr/bin/python3", args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), "start gst-rtsp-server (make deps installs gir1.2-gst-rtsp-server-1.0 and python3-gi)")
	c := &rtspCamera{cmd: cmd, url: fmt.Sprintf("rtsp://127.0.0.1:%d/cam", port), sent: map[time.Duration]time.Time{}}
	t.Cleanup(c.kill)
	ready := make(chan bool, 1)
	go func() {
		// Ends when the process does (its stdout closes).
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() {
			ready <- false
			return
		}
		ready <- strings.TrimSpace(sc.Text()) == "ready"
		for sc.Scan() {
			var pts, wall int64
			if _, err := fmt.Sscanf(sc.Text(), "SENT %d %d", &pts, &wall); err == nil {
				c.mu.Lock()
				c.sent[time.Duration(pts)] = time.Unix(0, wall)
				c.mu.Unlock()
			}
		}
	}()
	select {
	case ok := <-ready:
		require.True(t, ok, "gst-rtsp-server did not start")
	case <-time.After(10 * time.Second):
		c.kill()
		<-ready
		t.Fatal("gst-rtsp-server did not start within 10 s")
	}
	return c
}

// sentTimes returns a copy of what a timed camera sent.
func (c *rtspCamera) sentTimes() map[time.Duration]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.sent)
}

// kill kills the camera (SIGKILL: its sockets close as a crash closes
// them) and waits for it.
func (c *rtspCamera) kill() {
	c.once.Do(func() {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	})
}

// TestPlayerRTSP: a live VP8 + Opus camera from gst-rtsp-server plays for
// 5 s over each RTSP transport: at least 90% of its 150 frames arrive in
// those 5 s, the first within 2 s of Start, with increasing timestamps,
// and none later than the jitter buffer (plus 150 ms) behind the pace of
// the earliest one (arrival minus PTS stays within that of its minimum).
func TestPlayerRTSP(t *testing.T) {
	const fps, seconds = 30, 5
	camera := startRTSPCamera(t, freePort(t))
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			pl, err := endpoint.NewPlayer("player", camera.url, endpoint.WithRTSPTransport(transport))
			require.NoError(t, err)
			vs := newArrivalSink("vsink")
			as := newCollector("asink", element.KindAudio)
			start := time.Now()
			_, bus := playInto(t, pl, vs, as)
			require.Eventually(t, func() bool { return vs.count() > 0 }, 5*time.Second, 5*time.Millisecond, "a first frame")
			_, at, _ := vs.snapshot()
			firstAfter := at[0].Sub(start)
			time.Sleep(time.Until(at[0].Add(seconds * time.Second)))
			pts, at, flags := vs.snapshot()
			end := at[0].Add(seconds * time.Second)
			n := 0
			for n < len(at) && !at[n].After(end) {
				n++
			}
			pts, at, flags = pts[:n], at[:n], flags[:n]
			lag := make([]time.Duration, n)
			for i := range n {
				lag[i] = at[i].Sub(at[0]) - (pts[i] - pts[0])
			}
			low := slices.Min(lag)
			spread := slices.Max(lag) - low
			audio, acaps := as.got()
			t.Logf("%s: first frame after %v; %d frames in %d s (%d audio samples), arrival behind PTS pace by at most %v over its minimum; caps %v",
				transport, firstAfter.Round(time.Millisecond), n, seconds, len(audio), spread.Round(time.Millisecond), acaps)
			assert.GreaterOrEqual(t, n, seconds*fps*9/10, "frames")
			assert.Less(t, firstAfter, 2*time.Second, "the first frame after Start")
			for i := 1; i < n; i++ {
				require.Greater(t, pts[i], pts[i-1], "PTS of frame %d", i)
			}
			assert.Less(t, spread, endpoint.DefaultJitterBuffer+150*time.Millisecond, "arrivals keep pace")
			assert.NotEmpty(t, audio, "audio")
			assert.Empty(t, bus.all(isType[*element.Error]), "no error")
		})
	}
}

// TestPlayerRTSPReconnect: with WithReconnect, a camera killed while it
// plays and started again on the same port plays again: the player posts
// PlayerReconnecting for each attempt and PlayerReconnected, the first
// frame after is a keyframe flagged a discontinuity after a DiscontEvent,
// and timestamps go on increasing, by about the time the camera was away.
func TestPlayerRTSPReconnect(t *testing.T) {
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			port := freePort(t)
			camera := startRTSPCamera(t, port)
			pl, err := endpoint.NewPlayer("player", camera.url, endpoint.WithRTSPTransport(transport),
				endpoint.WithReconnect(100*time.Millisecond, time.Second, 0), endpoint.WithPlayerTracks(element.KindVideo))
			require.NoError(t, err)
			vs := newArrivalSink("vsink")
			p, bus := playInto(t, pl, vs)
			require.Eventually(t, func() bool { return vs.count() >= 30 }, 10*time.Second, 5*time.Millisecond, "frames before the kill")

			camera.kill()
			killed := time.Now()
			m := bus.waitFor(isType[*endpoint.PlayerReconnecting])
			require.NotNil(t, m, "PlayerReconnecting")
			noticed := time.Since(killed)
			first := m.(*endpoint.PlayerReconnecting)
			assert.Equal(t, 1, first.Attempt)
			assert.Error(t, first.Err)
			time.Sleep(500 * time.Millisecond) // some attempts fail
			restarted := time.Now()
			startRTSPCamera(t, port)
			ready := time.Now()
			m = bus.waitFor(isType[*endpoint.PlayerReconnected])
			require.NotNil(t, m, "PlayerReconnected")
			back := m.(*endpoint.PlayerReconnected)
			var pts []time.Duration
			var at []time.Time
			var flags []element.Flags
			// before: the frames before the break; the first after it is
			// the first flagged a discontinuity.
			before := -1
			require.Eventually(t, func() bool {
				pts, at, flags = vs.snapshot()
				before = slices.IndexFunc(flags, func(f element.Flags) bool { return f&element.FlagDiscont != 0 })
				return before >= 0 && len(pts) >= before+30
			}, 10*time.Second, 5*time.Millisecond, "30 frames after the restart")
			require.GreaterOrEqual(t, before, 30)
			attempts := bus.all(isType[*endpoint.PlayerReconnecting])
			t.Logf("%s: break noticed %v after the kill (%v); camera restarted %v after the kill, listening %v later; "+
				"reconnected after %d attempts, downtime %v; first new frame %v after the camera listened; %d frames before, PTS %v -> %v",
				transport, noticed.Round(time.Millisecond), first.Err, restarted.Sub(killed).Round(time.Millisecond),
				ready.Sub(restarted).Round(time.Millisecond), back.Attempts, back.Downtime.Round(time.Millisecond),
				at[before].Sub(ready).Round(time.Millisecond), before, pts[before-1], pts[before])
			assert.Less(t, noticed, 2*time.Second, "the break is noticed")
			assert.Equal(t, len(attempts), back.Attempts)
			assert.GreaterOrEqual(t, back.Attempts, 2, "attempts failed while the camera was down")
			for i, a := range attempts {
				assert.Equal(t, i+1, a.(*endpoint.PlayerReconnecting).Attempt)
			}
			assert.Less(t, at[before].Sub(ready), 3*time.Second, "frames flow again soon after the camera is back")
			for i := 1; i < len(pts); i++ {
				require.Greater(t, pts[i], pts[i-1], "PTS of frame %d", i)
			}
			for i, f := range flags {
				assert.Equal(t, i == before, f&element.FlagDiscont != 0, "discont flag of frame %d", i)
			}
			assert.True(t, flags[before]&element.FlagKeyframe != 0, "the first frame after is a keyframe")
			gap := pts[before] - pts[before-1]
			assert.InDelta(t, at[before].Sub(at[before-1]).Seconds(), gap.Seconds(), 0.5,
				"the PTS gap follows the time away")
			vs.mu.Lock()
			disconts := vs.disconts
			vs.mu.Unlock()
			assert.Equal(t, 1, disconts, "DiscontEvents")
			assert.Equal(t, uint64(1), pl.Stats().Reconnects)
			assert.Empty(t, bus.all(isType[*element.Error]), "no error")
			require.NoError(t, p.Close())
		})
	}
}

// TestPlayerRTSPLatency: from a camera of its own (gst-rtsp-server, VP8
// over RTP in the RTSP connection), whose first frame is the player's
// first, each frame reaches the pipeline within the jitter buffer plus
// 150 ms of the moment its last RTP packet left the payloader, the first
// within a second of Start.
func TestPlayerRTSPLatency(t *testing.T) {
	camera := startRTSPCamera(t, freePort(t), true)
	pl, err := endpoint.NewPlayer("player", camera.url, endpoint.WithRTSPTransport("tcp"))
	require.NoError(t, err)
	vs := newArrivalSink("vsink")
	start := time.Now()
	playInto(t, pl, vs)
	require.Eventually(t, func() bool { return vs.count() >= 90 }, 10*time.Second, 5*time.Millisecond, "3 s of frames")
	pts, at, _ := vs.snapshot()
	sent := camera.sentTimes()
	// The camera's running time of the player's PTS 0: its first frame.
	first := slices.Min(slices.Collect(maps.Keys(sent)))
	var delays []time.Duration
	for i, p := range pts {
		w, ok := sent[first+p]
		if !ok {
			// FFmpeg's PTS come from 90 kHz RTP timestamps: look within
			// a tick.
			for rt, wt := range sent {
				if d := rt - first - p; d > -20*time.Microsecond && d < 20*time.Microsecond {
					w, ok = wt, true
					break
				}
			}
		}
		require.True(t, ok, "frame %d, PTS %v, was not sent at running time %v", i, p, first+p)
		delays = append(delays, at[i].Sub(w))
	}
	sorted := slices.Sorted(slices.Values(delays))
	worst := sorted[len(sorted)-1]
	t.Logf("%d frames; the first after %v; delay from the payloader to the pipeline: min %v, median %v, p90 %v, max %v",
		len(pts), at[0].Sub(start).Round(time.Millisecond), sorted[0].Round(time.Millisecond),
		sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)*9/10].Round(time.Millisecond), worst.Round(time.Millisecond))
	assert.Less(t, at[0].Sub(start), time.Second, "the first frame after Start")
	assert.Less(t, worst, endpoint.DefaultJitterBuffer+150*time.Millisecond, "the longest delay")
}
