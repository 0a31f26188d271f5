package endpoint_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// GStreamer as the RTP peer of the RTP endpoint. A pipeline in gst-launch
// syntax runs in /usr/bin/python3 through python3-gi (Gst.parse_launch, what
// gst-launch-1.0 runs), which gst-launch-1.0 itself cannot do: count the
// buffers reaching named sinks while it runs, set the RTCP interval of
// rtpbin's sessions, and print rtpbin's session statistics (the sender and
// receiver reports each side saw) when it stops.

// gstHarness is the Python side. It prints "ready" once the pipeline plays
// (its sockets are bound), a JSON line {"counts": ...} every 100 ms, and
// when its stdin closes (or after max_seconds) a JSON line {"final": true,
// ...} with the counts, the caps the counted sinks got, the error and
// warning messages of the bus, and each rtpbin session's source stats.
const gstHarness = `
import gi, json, sys, threading, time
gi.require_version('Gst', '1.0')
from gi.repository import Gst
Gst.init(None)
cfg = json.loads(sys.argv[1])
pipe = Gst.parse_launch(cfg['pipeline'])
rtpbin = pipe.get_by_name('rtpbin')
sessions = {}
for i in cfg.get('sessions') or []:
    s = rtpbin.emit('get-internal-session', i)
    s.set_property('rtcp-min-interval', int(cfg['rtcp_ms']) * Gst.MSECOND)
    sessions[i] = s
counts, pads = {}, {}
def count(name):
    counts[name] = 0
    pad = pipe.get_by_name(name).get_static_pad('sink')
    pads[name] = pad
    def probe(pad, info):
        counts[name] += 1
        return Gst.PadProbeReturn.OK
    pad.add_probe(Gst.PadProbeType.BUFFER, probe)
for n in cfg.get('count') or []:
    count(n)
stop = threading.Event()
def wait_stdin():
    sys.stdin.read()
    stop.set()
threading.Thread(target=wait_stdin, daemon=True).start()
def plain(st):
    d = {}
    for k in range(st.n_fields()):
        name = st.nth_field_name(k)
        v = st.get_value(name)
        if isinstance(v, (bool, int, float, str)):
            d[name] = v
    return d
messages = []
bus = pipe.get_bus()
if pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
    messages.append('set_state PLAYING failed')
print('ready', flush=True)
deadline = time.monotonic() + float(cfg['max_seconds'])
last = 0
while not stop.is_set() and time.monotonic() < deadline:
    msg = bus.timed_pop_filtered(20 * Gst.MSECOND, Gst.MessageType.ERROR | Gst.MessageType.WARNING | Gst.MessageType.EOS)
    if msg is not None:
        if msg.type == Gst.MessageType.EOS:
            messages.append('eos')
        else:
            err, dbg = msg.parse_error() if msg.type == Gst.MessageType.ERROR else msg.parse_warning()
            messages.append('%s from %s: %s (%s)' % (msg.type.first_value_nick, msg.src.get_name(), err.message, dbg))
    if time.monotonic() - last > 0.1:
        last = time.monotonic()
        print(json.dumps({'counts': counts}), flush=True)
stats = {}
for i, s in sessions.items():
    st = s.get_property('stats')
    stats[str(i)] = [plain(x) for x in st.get_value('source-stats')]
caps = {}
for n, pad in pads.items():
    c = pad.get_current_caps()
    caps[n] = c.to_string() if c else ''
pipe.set_state(Gst.State.NULL)
print(json.dumps({'final': True, 'counts': counts, 'caps': caps, 'messages': messages, 'stats': stats}), flush=True)
`

// gstSource is one source's stats in an rtpbin session (GStreamer's
// application/x-rtp-source-stats: ssrc, internal, is-sender, have-sr,
// sr-ntptime, have-rb, rb-packetslost, ...).
type gstSource map[string]any

func (s gstSource) uint(key string) uint64 {
	switch v := s[key].(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return uint64(n)
		}
		f, _ := v.Float64()
		return uint64(f)
	case bool:
		if v {
			return 1
		}
	}
	return 0
}

func (s gstSource) int(key string) int64 {
	if v, ok := s[key].(json.Number); ok {
		n, _ := v.Int64()
		return n
	}
	return 0
}

func (s gstSource) bool(key string) bool { b, _ := s[key].(bool); return b }

// gstResult is what the harness printed when it stopped.
type gstResult struct {
	Final    bool                   `json:"final"`
	Counts   map[string]int         `json:"counts"`
	Caps     map[string]string      `json:"caps"`
	Messages []string               `json:"messages"`
	Stats    map[string][]gstSource `json:"stats"`
}

// source returns the stats of ssrc in session i.
func (r *gstResult) source(i string, ssrc uint32) (gstSource, bool) {
	for _, s := range r.Stats[i] {
		if s.uint("ssrc") == uint64(ssrc) {
			return s, true
		}
	}
	return nil, false
}

// internal returns the stats of the session's own source (GStreamer's SSRC
// in session i).
func (r *gstResult) internal(i string) (gstSource, bool) {
	for _, s := range r.Stats[i] {
		if s.bool("internal") {
			return s, true
		}
	}
	return nil, false
}

// gstPeer is a running harness.
type gstPeer struct {
	t      *testing.T
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  interface{ Close() error }
	mu     sync.Mutex
	counts map[string]int
	final  *gstResult
	lines  []string // what it printed that was not JSON, for failures
	ended  chan struct{}
	stderr lockedBuffer
}

// lockedBuffer is a strings.Builder that the process's stderr copier and
// the test may use at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startGst runs pipeline (gst-launch syntax, its rtpbin named "rtpbin")
// with the RTCP interval of sessions set to rtcp, counting the buffers
// that reach the sink pads of the elements named in count. It returns once
// the pipeline plays; the process is killed at cleanup if still running.
func startGst(t *testing.T, pipeline string, sessions []int, rtcp time.Duration, count ...string) *gstPeer {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	if out, err := exec.Command(py, "-c", "import gi; gi.require_version('Gst', '1.0')").CombinedOutput(); err != nil {
		t.Skipf("python3-gi with GStreamer not installed: %s", out)
	}
	script := filepath.Join(t.TempDir(), "gst_harness.py")
	require.NoError(t, os.WriteFile(script, []byte(gstHarness), 0o600))
	cfg, err := json.Marshal(map[string]any{"pipeline": pipeline, "sessions": sessions,
		"rtcp_ms": rtcp.Milliseconds(), "count": count, "max_seconds": 30})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	g := &gstPeer{t: t, cancel: cancel, counts: map[string]int{}, ended: make(chan struct{})}
	g.cmd = exec.CommandContext(ctx, py, script, string(cfg))
	g.cmd.Stderr = &g.stderr
	stdin, err := g.cmd.StdinPipe()
	require.NoError(t, err)
	g.stdin = stdin
	stdout, err := g.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, g.cmd.Start())
	t.Cleanup(func() {
		g.cancel()
		<-g.ended
	})
	ready := make(chan struct{})
	go func() {
		defer close(g.ended)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<22)
		once := sync.OnceFunc(func() { close(ready) })
		defer once()
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" {
				once()
				continue
			}
			var r gstResult
			d := json.NewDecoder(strings.NewReader(line))
			d.UseNumber()
			g.mu.Lock()
			if err := d.Decode(&r); err != nil {
				g.lines = append(g.lines, line)
			} else if r.Final {
				g.final = &r
			} else {
				g.counts = r.Counts
			}
			g.mu.Unlock()
		}
		_ = g.cmd.Wait()
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatalf("GStreamer did not start: %s", g.stderr.String())
	}
	select {
	case <-g.ended:
		t.Fatalf("GStreamer exited: %s", g.stderr.String())
	default:
	}
	return g
}

// count returns the buffers the sink named name counted so far.
func (g *gstPeer) count(name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.counts[name]
}

// stop ends the pipeline and returns what it reported.
func (g *gstPeer) stop() *gstResult {
	g.t.Helper()
	_ = g.stdin.Close()
	select {
	case <-g.ended:
	case <-time.After(10 * time.Second):
		g.cancel()
		<-g.ended
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	require.NotNil(g.t, g.final, "GStreamer's report; stderr: %s; output: %v", g.stderr.String(), g.lines)
	return g.final
}
