package endpoint_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/internal/ffmpeg"
	"github.com/medley-go/medley/pipeline"
)

// writeMedia writes the synthetic media of the codecs (MIME types), up to
// length, into a file of a container; it returns the path and the number
// of samples of each codec.
func writeMedia(t *testing.T, format, name string, length time.Duration, mimes ...string) (string, map[string]int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	m, err := ffmpeg.CreateMuxer(path, ffmpeg.MuxerConfig{Format: format})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	counts := map[string]int{}
	type item struct {
		stream int
		s      ffmpeg.Sample
	}
	var items []item
	for _, mime := range mimes {
		c, _ := codec.Lookup(mime)
		i, err := m.AddStream(ffmpeg.StreamConfig{Codec: c.Name, TimeBase: ffmpeg.Nanoseconds})
		require.NoError(t, err)
		for _, s := range media(t, mime) {
			if s.PTS < length {
				items = append(items, item{i, s})
				counts[mime]++
			}
		}
	}
	for n := 0; len(items) > 0; n++ {
		// Merge by time.
		best := 0
		for j := range items {
			if items[j].s.PTS < items[best].s.PTS {
				best = j
			}
		}
		it := items[best]
		items = append(items[:best], items[best+1:]...)
		require.NoError(t, m.WritePacket(&ffmpeg.StreamPacket{Stream: it.stream, Data: it.s.Data,
			PTS: int64(it.s.PTS), DTS: ffmpeg.NoTimestamp, Duration: int64(it.s.Duration), Keyframe: it.s.Keyframe}))
	}
	require.NoError(t, m.Close())
	return path, counts
}

// collector is an AppSink that keeps what a player sends.
type collector struct {
	*element.AppSink
	mu      sync.Mutex
	samples []*element.Buffer
	caps    element.Caps
	eos     chan struct{}
}

func newCollector(name string, k element.Kind) *collector {
	c := &collector{eos: make(chan struct{})}
	c.AppSink = element.NewAppSink(name, element.CapsList{{Kind: k, Format: element.FormatSample}},
		element.WithSinkQueue(1<<14, element.Block),
		element.WithBufferFunc(func(b *element.Buffer) {
			c.mu.Lock()
			c.samples = append(c.samples, b.Clone())
			c.mu.Unlock()
		}),
		element.WithEventFunc(func(ev element.Event) {
			switch e := ev.(type) {
			case element.CapsEvent:
				c.mu.Lock()
				c.caps = e.Caps
				c.mu.Unlock()
			case element.EOSEvent:
				close(c.eos)
			}
		}))
	return c
}

func (c *collector) got() ([]*element.Buffer, element.Caps) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*element.Buffer(nil), c.samples...), c.caps
}

func (c *collector) waitEOS(t *testing.T) {
	t.Helper()
	select {
	case <-c.eos:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no end of stream", c.Name())
	}
}

// playInto starts a pipeline of a player and sinks, connected by kind.
// When the test ends it closes the pipeline and checks that every FFmpeg
// object the player made (demuxer, packets, still referenced by sinks
// until then) has been freed.
func playInto(t *testing.T, pl *endpoint.Player, sinks ...element.Element) (*pipeline.Pipeline, *recBus) {
	t.Helper()
	before := ffmpeg.LiveObjects()
	p, err := pipeline.New()
	require.NoError(t, err)
	bus := newRecBus(p.Subscribe(1 << 12))
	require.NoError(t, p.Add(pl))
	for _, s := range sinks {
		require.NoError(t, p.Add(s))
		require.NoError(t, p.Connect(pl, s, element.KindAll))
	}
	require.NoError(t, p.Start(context.Background()))
	t.Cleanup(func() {
		require.NoError(t, p.Close())
		bus.wait()
		assert.Equal(t, before, ffmpeg.LiveObjects(), "FFmpeg objects alive after Close")
	})
	return p, bus
}

// TestPlayerFiles: files of each container play to the end, as fast as
// possible, with every sample, in order, with caps of their codec, H.264
// in Annex B with its parameter sets on keyframes, and an EndOfStream per
// pad.
func TestPlayerFiles(t *testing.T) {
	for _, c := range []struct {
		format, name string
		video, audio string
	}{
		{"webm", "a.webm", codec.MIMEVP8, codec.MIMEOpus},
		{"mkv", "a.mkv", codec.MIMEH264, codec.MIMEOpus},
		{"mp4", "a.mp4", codec.MIMEH264, codec.MIMEAAC},
	} {
		t.Run(c.format, func(t *testing.T) {
			path, counts := writeMedia(t, c.format, c.name, mediaLength, c.video, c.audio)
			pl, err := endpoint.NewPlayer("player", path, endpoint.WithoutPacing())
			require.NoError(t, err)
			vs, as := newCollector("vsink", element.KindVideo), newCollector("asink", element.KindAudio)
			_, bus := playInto(t, pl, vs, as)
			vs.waitEOS(t)
			as.waitEOS(t)
			<-pl.Done()
			assert.InDelta(t, mediaLength.Seconds(), pl.Duration().Seconds(), 0.1)

			video, vcaps := vs.got()
			audio, acaps := as.got()
			assert.Equal(t, c.video, vcaps.Codec)
			assert.Equal(t, mediaWidth, vcaps.Width)
			assert.Equal(t, c.audio, acaps.Codec)
			assert.Len(t, video, counts[c.video])
			assert.Len(t, audio, counts[c.audio])
			require.NotEmpty(t, video)
			assert.True(t, video[0].Keyframe())
			assert.InDelta(t, 0, video[0].PTS.Seconds(), 0.01)
			src := media(t, c.video)
			for i, b := range video {
				assert.InDelta(t, src[i].PTS.Seconds(), b.PTS.Seconds(), 0.002, "frame %d", i)
				assert.Equal(t, src[i].Keyframe, b.Keyframe(), "frame %d", i)
			}
			if c.video == codec.MIMEH264 {
				assert.True(t, bytes.HasPrefix(video[0].Data, []byte{0, 0, 0, 1, 0x67}), "Annex B, SPS first")
				assert.Equal(t, src[5].Data[:4], video[5].Data[:4])
			} else {
				assert.Equal(t, src[5].Data, video[5].Data)
			}
			for _, pad := range []string{"player.video", "player.audio"} {
				require.NotNil(t, bus.waitFor(func(m element.Message) bool {
					e, ok := m.(*element.EndOfStream)
					return ok && e.Pad == pad
				}), "EndOfStream on %s", pad)
			}
			assert.Empty(t, bus.all(isType[*element.Error]))
			s := pl.Stats()
			assert.EqualValues(t, counts[c.video], s.VideoFrames)
			assert.Zero(t, s.Malformed)
		})
	}
}

// TestPlayerToRecorder: a WebM file played as fast as possible into a
// Matroska recorder (samples straight through, no converter) comes out
// with the same media.
func TestPlayerToRecorder(t *testing.T) {
	src, _ := writeMedia(t, "webm", "in.webm", mediaLength, codec.MIMEVP8, codec.MIMEOpus)
	pl, err := endpoint.NewPlayer("player", src, endpoint.WithoutPacing())
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), "out.mkv")
	rec, err := endpoint.NewRecorder("rec", dst, endpoint.WithRecorderQueue(4096, element.Block))
	require.NoError(t, err)
	_, bus := playInto(t, pl, rec)
	select {
	case <-rec.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the recording did not end with the file")
	}
	assert.Empty(t, bus.all(isType[*element.TranscodingStateChanged]), "no converter between player and recorder")
	probe(t, dst, mediaLength, "vp8", "opus")
}

// TestPlayerRealTime: paced, a 2 s file takes 2 s to play.
func TestPlayerRealTime(t *testing.T) {
	path, _ := writeMedia(t, "webm", "a.webm", 2*time.Second, codec.MIMEVP8, codec.MIMEOpus)
	pl, err := endpoint.NewPlayer("player", path)
	require.NoError(t, err)
	vs := newCollector("vsink", element.KindVideo)
	start := time.Now()
	playInto(t, pl, vs)
	vs.waitEOS(t)
	elapsed := time.Since(start)
	assert.Greater(t, elapsed, 1900*time.Millisecond)
	assert.Less(t, elapsed, 3*time.Second)
}

// TestPlayerLoop: a looping player goes on past the file's end with
// timestamps that keep increasing.
func TestPlayerLoop(t *testing.T) {
	path, counts := writeMedia(t, "webm", "a.webm", time.Second, codec.MIMEVP8)
	pl, err := endpoint.NewPlayer("player", path, endpoint.WithLoop(), endpoint.WithoutPacing(),
		endpoint.WithPlayerTracks(element.KindVideo))
	require.NoError(t, err)
	vs := newCollector("vsink", element.KindVideo)
	p, _ := playInto(t, pl, vs)
	require.Eventually(t, func() bool { v, _ := vs.got(); return len(v) > 3*counts[codec.MIMEVP8] },
		10*time.Second, 5*time.Millisecond)
	require.NoError(t, p.Close())
	video, _ := vs.got()
	for i := 1; i < len(video); i++ {
		require.Greater(t, video[i].PTS, video[i-1].PTS, "frame %d", i)
	}
	n := counts[codec.MIMEVP8]
	assert.InDelta(t, time.Second.Seconds(), video[n].PTS.Seconds(), 0.001, "the second round starts where the first ended")
	assert.True(t, video[n].Keyframe())
}

// TestPlayerBadInput: a missing file, garbage and a truncated file are
// Error messages (or, truncated, what could be read and an end of
// stream), never a crash.
func TestPlayerBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.webm")
	require.NoError(t, os.WriteFile(garbage, bytes.Repeat([]byte("not a media file "), 4096), 0o644))
	good, _ := writeMedia(t, "webm", "a.webm", 2*time.Second, codec.MIMEVP8, codec.MIMEOpus)
	data, err := os.ReadFile(good)
	require.NoError(t, err)
	truncated := filepath.Join(dir, "truncated.webm")
	require.NoError(t, os.WriteFile(truncated, data[:len(data)/2], 0o644))
	mangled := filepath.Join(dir, "mangled.webm")
	bad := append([]byte(nil), data...)
	for i := 300; i < len(bad); i += 11 {
		bad[i] ^= 0xa5
	}
	require.NoError(t, os.WriteFile(mangled, bad, 0o644))

	for _, c := range []struct {
		name, path string
		wantError  bool
	}{
		{"missing", filepath.Join(dir, "missing.webm"), true},
		{"garbage", garbage, true},
		{"truncated", truncated, false},
		{"mangled", mangled, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			pl, err := endpoint.NewPlayer("player", c.path, endpoint.WithoutPacing())
			require.NoError(t, err)
			vs := newCollector("vsink", element.KindVideo)
			_, bus := playInto(t, pl, vs)
			select {
			case <-pl.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the player did not finish")
			}
			vs.waitEOS(t)
			if c.wantError {
				e := bus.waitFor(isType[*element.Error])
				require.NotNil(t, e, "an Error message")
				assert.Equal(t, "player", e.Origin().Element)
				assert.Contains(t, e.(*element.Error).Err.Error(), c.path)
			}
			if c.name == "truncated" {
				v, _ := vs.got()
				assert.NotEmpty(t, v, "what the file holds is played")
			}
		})
	}
}

// TestPlayerStalledStream: from a stream (HTTP) that stalls halfway, the
// player sends what it has read at once, not holding it back to hand over
// in batches as it does from a local file, and closing the pipeline ends
// the read it waits in.
func TestPlayerStalledStream(t *testing.T) {
	const fps = 30
	path := ffmpegMedia(t, t.TempDir(), "s.webm", "320x240", fps, fps, 3*time.Second, "libvpx", "")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/webm")
		_, _ = w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	pl, err := endpoint.NewPlayer("player", srv.URL+"/s.webm", endpoint.WithoutPacing(),
		endpoint.WithProbe(32<<10, 100*time.Millisecond), endpoint.WithPlayerTracks(element.KindVideo))
	require.NoError(t, err)
	vs := newCollector("vsink", element.KindVideo)
	playInto(t, pl, vs)
	// Half the file holds about 45 frames, fewer than a batch; some stay
	// in FFmpeg's buffers.
	require.Eventually(t, func() bool { v, _ := vs.got(); return len(v) >= fps }, 10*time.Second, 5*time.Millisecond)
	select {
	case <-pl.Done():
		t.Fatal("the player finished on a stalled stream")
	default:
	}
}
