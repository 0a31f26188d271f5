package ffmpeg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemuxerFileInterrupt: a local file read packet after packet (as the
// Player does: ReadPacketRef, back to the start at the end) while the
// context is cancelled, or Close is called, from another goroutine at
// random moments. Every packet read is whole (the bytes, flags and times
// of a plain read), the read that fails fails with the context's error or
// ErrClosed, those after it too (and Seek), and FFmpeg logs no error:
// cutting a read of the file short made FFmpeg return a truncated packet,
// flagged corrupt, which its H.264 parser complained about ("Invalid NAL
// unit size").
func TestDemuxerFileInterrupt(t *testing.T) {
	checkNoLiveObjects(t)
	requireTool(t, "ffmpeg")
	// 720p H.264 (packets of tens of kB, more than FFmpeg's IO buffer
	// takes at once) and AAC in MP4.
	path := filepath.Join(t.TempDir(), "in.mp4")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=1",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", path).CombinedOutput()
	require.NoError(t, err, "%s", out)

	d, err := OpenDemuxer(context.Background(), path, DemuxerConfig{})
	require.NoError(t, err)
	want := readAll(t, d)
	require.NoError(t, d.Close())
	require.NotEmpty(t, want[0])

	rec := &recorder{}
	SetLogger(slog.New(rec), slog.LevelError)
	t.Cleanup(func() { SetLogger(nil, 0) })

	p, err := NewDemuxedPacket()
	require.NoError(t, err)
	defer p.Free()
	for i := range 24 {
		ctx, cancel := context.WithCancel(context.Background())
		d, err := OpenDemuxer(ctx, path, DemuxerConfig{})
		require.NoError(t, err)
		require.True(t, d.IsFile())
		byClose := i%2 == 1
		done := make(chan error, 1)
		go func() {
			next := map[int]int{}
			for {
				err := d.ReadPacketRef(p)
				if errors.Is(err, io.EOF) {
					if err = d.Seek(0); err == nil {
						clear(next)
						continue
					}
				}
				if err != nil {
					done <- err
					return
				}
				n, ok := next[p.Stream]
				if !ok {
					// After the start or a seek back to it: the
					// seek may land past a stream's first packets
					// (AAC's priming packet, before 0).
					for n < 2 && n+1 < len(want[p.Stream]) && want[p.Stream][n].PTS != p.PTS {
						n++
					}
				}
				next[p.Stream] = n + 1
				if n >= len(want[p.Stream]) {
					done <- errors.New("more packets than the file has")
					return
				}
				w, got := want[p.Stream][n], p.StreamPacket
				if !bytes.Equal(w.Data, got.Data) || w.PTS != got.PTS || w.DTS != got.DTS || w.Keyframe != got.Keyframe {
					done <- fmt.Errorf("stream %d packet %d differs from the plain read's: %d bytes, want %d", p.Stream, n, len(got.Data), len(w.Data))
					return
				}
			}
		}()
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		if byClose {
			require.NoError(t, d.Close())
		} else {
			cancel()
		}
		err = <-done
		if byClose {
			assert.ErrorIs(t, err, ErrClosed, "run %d", i)
		} else {
			assert.ErrorIs(t, err, context.Canceled, "run %d", i)
			// No read starts after the cancel, nor a seek.
			assert.ErrorIs(t, d.ReadPacketRef(p), context.Canceled)
			assert.Nil(t, p.Data)
			var sp StreamPacket
			assert.ErrorIs(t, d.ReadPacket(&sp), context.Canceled)
			assert.ErrorIs(t, d.Seek(0), context.Canceled)
			require.NoError(t, d.Close())
		}
		cancel()
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.records {
		t.Errorf("FFmpeg logged an error: %s", r.Message)
	}
}
