package endpoint_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
)

// FuzzPlayer feeds random bytes as a file to a Player (unpaced, into
// sinks through a pipeline, with a Seek halfway when it has a duration):
// whatever they are, the player finishes, with an Error message or an
// end of stream, and never crashes or hangs. Run it with
// -fuzzminimizetime 0 (or small): minimizing an interesting input of a few
// KB, at milliseconds an execution, otherwise holds a worker for a minute
// with no executions reported.
func FuzzPlayer(f *testing.F) {
	dir := f.TempDir()
	for _, c := range []struct{ name, vcodec, acodec string }{
		{"seed.mp4", "libx264", "aac"},
		{"seed.webm", "libvpx", "libopus"},
		{"seed.mkv", "libx264", "libopus"},
	} {
		path := ffmpegMedia(f, dir, c.name, "64x48", 10, 5, 500*time.Millisecond, c.vcodec, c.acodec)
		data, err := os.ReadFile(path)
		require.NoError(f, err)
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte{})
	f.Add([]byte("\x1aE\xdf\xa3"))
	f.Add(bytes.Repeat([]byte("not a media file "), 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "in")
		require.NoError(t, os.WriteFile(path, data, 0o644))
		pl, err := endpoint.NewPlayer("player", path, endpoint.WithoutPacing(),
			// Only files: random bytes that look like a playlist must not
			// go to the network.
			endpoint.WithInputOptions(map[string]string{"protocol_whitelist": "file"}))
		require.NoError(t, err)
		vs := element.NewAppSink("vsink", element.CapsList{{Kind: element.KindVideo, Format: element.FormatSample}},
			element.WithSinkQueue(1024, element.Block), element.WithBufferFunc(func(*element.Buffer) {}))
		as := element.NewAppSink("asink", element.CapsList{{Kind: element.KindAudio, Format: element.FormatSample}},
			element.WithSinkQueue(1024, element.Block), element.WithBufferFunc(func(*element.Buffer) {}))
		playInto(t, pl, vs, as)
		if d := pl.Duration(); d > 0 {
			_ = pl.Seek(d / 2)
		}
		select {
		case <-pl.Done():
		case <-time.After(20 * time.Second):
			t.Fatalf("the player did not finish with %d bytes", len(data))
		}
	})
}
