package endpoint_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
)

// ffmpegMedia makes a file in dir with the ffmpeg CLI from testsrc2 (and
// a sine for audio when acodec is set), with a keyframe every gop frames.
func ffmpegMedia(tb testing.TB, dir, name, size string, fps, gop int, length time.Duration, vcodec, acodec string) string {
	tb.Helper()
	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		tb.Skip("no ffmpeg CLI")
	}
	path := filepath.Join(dir, name)
	secs := length.Seconds()
	args := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", sprintf("testsrc2=size=%s:rate=%d:duration=%g", size, fps, secs)}
	if acodec != "" {
		args = append(args, "-f", "lavfi", "-i", sprintf("sine=frequency=440:sample_rate=48000:duration=%g", secs))
	}
	args = append(args, "-c:v", vcodec, "-g", sprintf("%d", gop), "-keyint_min", sprintf("%d", gop), "-pix_fmt", "yuv420p")
	switch vcodec {
	case "libx264":
		args = append(args, "-preset", "ultrafast", "-x264-params", "scenecut=0")
	case "libvpx":
		args = append(args, "-deadline", "realtime", "-cpu-used", "8", "-b:v", "500k")
	}
	if acodec != "" {
		args = append(args, "-c:a", acodec)
	}
	args = append(args, path)
	out, err := exec.Command(ff, args...).CombinedOutput()
	require.NoError(tb, err, "%s", out)
	return path
}

// waitSamples waits until the collector holds more than n video samples.
func waitSamples(t *testing.T, c *collector, n int) []*element.Buffer {
	t.Helper()
	var v []*element.Buffer
	require.Eventually(t, func() bool { v, _ = c.got(); return len(v) > n }, 10*time.Second, 2*time.Millisecond)
	return v
}

// TestPlayerSeek: on MP4 (H.264 + AAC) and WebM (VP8 + Opus) files with a
// 1 s GOP, a paused player stops sending, and after a Seek the first video
// sample is a keyframe at or before the target, within one GOP of it,
// flagged a discontinuity; Position and Duration follow. A Seek before
// Run sets where the player starts.
func TestPlayerSeek(t *testing.T) {
	const gop = time.Second
	dir := t.TempDir()
	for _, c := range []struct{ name, vcodec, acodec string }{
		{"seek.mp4", "libx264", "aac"},
		{"seek.webm", "libvpx", "libopus"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := ffmpegMedia(t, dir, c.name, "320x240", 30, 30, 10*time.Second, c.vcodec, c.acodec)

			t.Run("running", func(t *testing.T) {
				pl, err := endpoint.NewPlayer("player", path)
				require.NoError(t, err)
				vs := newCollector("vsink", element.KindVideo)
				as := newCollector("asink", element.KindAudio)
				_, bus := playInto(t, pl, vs, as)
				waitSamples(t, vs, 5)
				assert.InDelta(t, 10, pl.Duration().Seconds(), 0.1)

				pl.Pause()
				assert.True(t, pl.Paused())
				time.Sleep(300 * time.Millisecond)
				before, _ := vs.got()
				pos := pl.Position()
				time.Sleep(300 * time.Millisecond)
				after, _ := vs.got()
				assert.Len(t, after, len(before), "nothing sent while paused")
				assert.Equal(t, pos, pl.Position())

				for _, to := range []time.Duration{6500 * time.Millisecond, 2200 * time.Millisecond, 8 * time.Second} {
					n := len(after)
					require.NoError(t, pl.Seek(to))
					assert.Equal(t, to, pl.Position())
					pl.Resume()
					v := waitSamples(t, vs, n)
					first := v[n]
					assert.True(t, first.Keyframe(), "seek to %v: a keyframe first", to)
					assert.NotZero(t, first.Flags&element.FlagDiscont, "seek to %v: discontinuity", to)
					assert.LessOrEqual(t, first.PTS, to+time.Millisecond, "seek to %v: at or before", to)
					assert.Less(t, to-first.PTS, gop+time.Millisecond, "seek to %v: within one GOP (landed at %v)", to, first.PTS)
					// Paced again from there.
					time.Sleep(200 * time.Millisecond)
					assert.InDelta(t, first.PTS.Seconds()+0.2, pl.Position().Seconds(), 0.15)
					pl.Pause()
					time.Sleep(200 * time.Millisecond)
					after, _ = vs.got()
				}
				assert.Error(t, pl.Seek(-time.Second))
				assert.Error(t, pl.Seek(time.Minute))
				assert.Empty(t, bus.all(isType[*element.Error]))
			})

			t.Run("before-run", func(t *testing.T) {
				pl, err := endpoint.NewPlayer("player", path, endpoint.WithoutPacing())
				require.NoError(t, err)
				require.NoError(t, pl.Seek(4200*time.Millisecond))
				vs := newCollector("vsink", element.KindVideo)
				playInto(t, pl, vs)
				vs.waitEOS(t)
				v, _ := vs.got()
				require.NotEmpty(t, v)
				assert.True(t, v[0].Keyframe())
				assert.InDelta(t, 4.0, v[0].PTS.Seconds(), 0.05, "the keyframe at 4 s")
				assert.InDelta(t, 6*30, len(v), 1)
				assert.ErrorIs(t, pl.Seek(time.Second), endpoint.ErrPlayerDone)
			})
		})
	}
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

// TestPlayerSeekUnpaced: a Seek on an unpaced player, which has read
// ahead of what its slow sink took, drops what it read before: after the
// samples sent before the Seek (from 0, none missing) comes a keyframe at
// the target, flagged a discontinuity, then the rest of the file, none
// from before the target.
func TestPlayerSeekUnpaced(t *testing.T) {
	const fps = 30
	path := ffmpegMedia(t, t.TempDir(), "u.mp4", "320x240", fps, fps, 10*time.Second, "libx264", "")
	pl, err := endpoint.NewPlayer("player", path, endpoint.WithoutPacing(), endpoint.WithPlayerTracks(element.KindVideo))
	require.NoError(t, err)
	var mu sync.Mutex
	var got []*element.Buffer
	eos := make(chan struct{})
	vs := element.NewAppSink("vsink", element.CapsList{{Kind: element.KindVideo, Format: element.FormatSample}},
		element.WithSinkQueue(2, element.Block),
		element.WithBufferFunc(func(b *element.Buffer) {
			time.Sleep(time.Millisecond)
			mu.Lock()
			got = append(got, b.Clone())
			mu.Unlock()
		}),
		element.WithEventFunc(func(ev element.Event) {
			if _, ok := ev.(element.EOSEvent); ok {
				close(eos)
			}
		}))
	playInto(t, pl, vs)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	require.Eventually(t, func() bool { return count() >= fps }, 10*time.Second, time.Millisecond)
	const to = 6 * time.Second
	require.NoError(t, pl.Seek(to))
	select {
	case <-eos:
	case <-time.After(20 * time.Second):
		t.Fatal("no end of stream")
	}
	mu.Lock()
	defer mu.Unlock()
	k := slices.IndexFunc(got, func(b *element.Buffer) bool { return b.Flags&element.FlagDiscont != 0 })
	require.GreaterOrEqual(t, k, fps, "a discontinuity after what was sent before the Seek")
	for i, b := range got[:k] {
		assert.InDelta(t, float64(i)/fps, b.PTS.Seconds(), 0.002, "sample %d, before the Seek", i)
	}
	assert.True(t, got[k].Keyframe())
	assert.InDelta(t, to.Seconds(), got[k].PTS.Seconds(), 0.002, "the keyframe at the target")
	for i, b := range got[k:] {
		assert.InDelta(t, to.Seconds()+float64(i)/fps, b.PTS.Seconds(), 0.002, "sample %d after the Seek", i)
	}
	assert.Len(t, got[k:], int(10*time.Second-to)*fps/int(time.Second))
}
