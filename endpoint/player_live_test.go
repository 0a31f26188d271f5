package endpoint_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
)

// A tsFrame is one video frame of an MPEG-TS file: the bytes from its
// first TS packet up to the next frame's, and its PTS from the first
// frame's.
type tsFrame struct {
	data []byte
	pts  time.Duration
}

// liveTS makes an MPEG-TS of H.264 (no B-frames, a keyframe a second, as
// a camera sends) with the ffmpeg CLI and cuts it into frames.
func liveTS(t *testing.T, length time.Duration, fps int) []tsFrame {
	t.Helper()
	path := filepath.Join(t.TempDir(), "live.ts")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", sprintf("testsrc2=size=320x240:rate=%d:duration=%g", fps, length.Seconds()),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0",
		"-g", strconv.Itoa(fps), "-pix_fmt", "yuv420p", "-f", "mpegts", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	out, err = exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=pts,pos",
		"-of", "csv=p=0", path).Output()
	require.NoError(t, err)
	type pkt struct{ pts, pos int64 }
	var pkts []pkt
	for _, l := range strings.Fields(string(out)) {
		f := strings.Split(strings.TrimSuffix(l, ","), ",")
		require.Len(t, f, 2, "ffprobe line %q", l)
		pts, err := strconv.ParseInt(f[0], 10, 64)
		require.NoError(t, err)
		pos, err := strconv.ParseInt(f[1], 10, 64)
		require.NoError(t, err)
		pkts = append(pkts, pkt{pts, pos})
	}
	require.NotEmpty(t, pkts)
	frames := make([]tsFrame, len(pkts))
	for i, p := range pkts {
		from, to := p.pos, int64(len(data))
		if i == 0 {
			from = 0 // with the tables before it
		}
		if i+1 < len(pkts) {
			to = pkts[i+1].pos
		}
		frames[i] = tsFrame{data: data[from:to], pts: time.Duration((p.pts - pkts[0].pts) * int64(time.Second) / 90000)}
	}
	return frames
}

// liveServer serves frames over HTTP as a live stream (chunked, of
// unknown length and duration): each frame's bytes are written and
// flushed when it is due in real time from the request. It records when
// each frame was written, by PTS.
type liveServer struct {
	*httptest.Server
	mu      sync.Mutex
	written map[time.Duration]time.Time
}

func newLiveServer(t *testing.T, frames []tsFrame) *liveServer {
	s := &liveServer{written: map[time.Duration]time.Time{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/mp2t")
		start := time.Now()
		timer := time.NewTimer(0)
		defer timer.Stop()
		for _, f := range frames {
			timer.Reset(time.Until(start.Add(f.pts)))
			select {
			case <-timer.C:
			case <-r.Context().Done():
				return
			}
			if _, err := w.Write(f.data); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			s.mu.Lock()
			s.written[f.pts.Round(time.Millisecond)] = time.Now()
			s.mu.Unlock()
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *liveServer) writtenAt(pts time.Duration) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.written[pts.Round(time.Millisecond)]
	return at, ok
}

// arrivalSink records when each video sample arrives, by PTS, and the
// flags of each.
type arrivalSink struct {
	*element.AppSink
	mu       sync.Mutex
	pts      []time.Duration
	at       []time.Time
	flags    []element.Flags
	disconts int // DiscontEvents
	eos      chan struct{}
}

func newArrivalSink(name string) *arrivalSink {
	s := &arrivalSink{eos: make(chan struct{})}
	s.AppSink = element.NewAppSink(name, element.CapsList{{Kind: element.KindVideo, Format: element.FormatSample}},
		element.WithSinkQueue(1024, element.Block),
		element.WithBufferFunc(func(b *element.Buffer) {
			now := time.Now()
			s.mu.Lock()
			s.pts = append(s.pts, b.PTS)
			s.at = append(s.at, now)
			s.flags = append(s.flags, b.Flags)
			s.mu.Unlock()
		}),
		element.WithEventFunc(func(ev element.Event) {
			switch ev.(type) {
			case element.DiscontEvent:
				s.mu.Lock()
				s.disconts++
				s.mu.Unlock()
			case element.EOSEvent:
				close(s.eos)
			}
		}))
	return s
}

func (s *arrivalSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pts)
}

func (s *arrivalSink) snapshot() (pts []time.Duration, at []time.Time, flags []element.Flags) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pts), slices.Clone(s.at), slices.Clone(s.flags)
}

// TestPlayerLiveLatency: a live MPEG-TS (H.264, 30 fps) served over HTTP
// in real time, each frame written when it is due, reaches the pipeline
// within the jitter buffer plus 150 ms of its writing, every frame of it,
// and the first frame within a second of Start; the jitter buffer holds
// samples (the median delay is at least half of it). With FFmpeg's own
// probing (5 MB, 5 s), the first frames come later than that: what the
// short probing of a network input saves. (FFmpeg's MPEG-TS and H.264
// parsing adds two frames, 67 ms: a frame is known to be complete when
// the next one starts, in the PES layer and again in the parser.)
func TestPlayerLiveLatency(t *testing.T) {
	const fps = 30
	frames := liveTS(t, 3*time.Second, fps)
	for _, c := range []struct {
		name   string
		jitter time.Duration
		opts   []endpoint.PlayerOption
	}{
		{"default", endpoint.DefaultJitterBuffer, nil},
		{"jitter-50ms", 50 * time.Millisecond, []endpoint.PlayerOption{endpoint.WithJitterBuffer(50 * time.Millisecond)}},
		{"ffmpeg-probing", endpoint.DefaultJitterBuffer, []endpoint.PlayerOption{endpoint.WithProbe(5_000_000, 5*time.Second)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newLiveServer(t, frames)
			pl, err := endpoint.NewPlayer("player", srv.URL+"/live.ts",
				append([]endpoint.PlayerOption{endpoint.WithPlayerTracks(element.KindVideo)}, c.opts...)...)
			require.NoError(t, err)
			vs := newArrivalSink("vsink")
			start := time.Now()
			playInto(t, pl, vs)
			select {
			case <-vs.eos:
			case <-time.After(20 * time.Second):
				t.Fatal("no end of stream")
			}
			pts, at, _ := vs.snapshot()
			require.NotEmpty(t, pts)
			firstAfter := at[0].Sub(start)
			var delays []time.Duration
			for i, p := range pts {
				w, ok := srv.writtenAt(p)
				require.True(t, ok, "sample %d: PTS %v was never written", i, p)
				delays = append(delays, at[i].Sub(w))
			}
			sorted := slices.Sorted(slices.Values(delays))
			median, worst := sorted[len(sorted)/2], sorted[len(sorted)-1]
			t.Logf("%s: %d of %d frames; first after %v; delay from write to arrival: min %v, median %v, p90 %v, max %v",
				c.name, len(pts), len(frames), firstAfter.Round(time.Millisecond), sorted[0].Round(time.Millisecond),
				median.Round(time.Millisecond), sorted[len(sorted)*9/10].Round(time.Millisecond), worst.Round(time.Millisecond))
			for i := 1; i < len(pts); i++ {
				require.Greater(t, pts[i], pts[i-1], "PTS of frame %d", i)
			}
			if c.name == "ffmpeg-probing" {
				// What the test would catch: the first frames held while
				// FFmpeg probes for 20 frames.
				assert.Greater(t, worst, c.jitter+150*time.Millisecond, "FFmpeg's default probing holds the first frames")
				return
			}
			assert.GreaterOrEqual(t, len(pts), len(frames)*9/10, "frames")
			assert.Less(t, firstAfter, time.Second, "the first frame after Start")
			assert.Less(t, worst, c.jitter+150*time.Millisecond, "the longest delay")
			assert.GreaterOrEqual(t, median, c.jitter/2, "the jitter buffer holds samples")
		})
	}
}
