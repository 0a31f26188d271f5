package ffmpeg

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is a slog.Handler that keeps records.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
	panics  bool
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	if r.panics {
		panic("handler panic")
	}
	r.mu.Lock()
	r.records = append(r.records, rec.Clone())
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) find(substr string) (slog.Record, map[string]slog.Value, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		if strings.Contains(rec.Message, substr) {
			attrs := map[string]slog.Value{}
			rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
			return rec, attrs, true
		}
	}
	return slog.Record{}, nil, false
}

func TestLogBridge(t *testing.T) {
	checkNoLiveObjects(t)
	rec := &recorder{}
	SetLogger(slog.New(rec), slog.LevelWarn)
	t.Cleanup(func() { SetLogger(nil, 0) })

	// A codec's error names the codec.
	_, err := NewEncoder(EncoderConfig{Codec: "h264", Width: 320, Height: 180, Profile: "no-such-profile"})
	require.Error(t, err)
	r, attrs, ok := rec.find("Error setting profile no-such-profile")
	require.True(t, ok, "FFmpeg's error line reached slog")
	assert.Equal(t, slog.LevelError, r.Level)
	assert.Equal(t, "libx264", attrs["component"].String())

	// Below the level: dropped. Warnings pass.
	astiav.Log(nil, astiav.LogLevelInfo, "medley info %s", "line")
	astiav.Log(nil, astiav.LogLevelWarning, "medley warning %s\n", "line")
	_, _, ok = rec.find("medley info line")
	assert.False(t, ok)
	r, _, ok = rec.find("medley warning line")
	require.True(t, ok)
	assert.Equal(t, slog.LevelWarn, r.Level)
	assert.Equal(t, "medley warning line", r.Message, "trailing newline trimmed")

	// A line longer than astiav's 1024-byte buffer (trap 2) is cut, not
	// overflowed.
	long := strings.Repeat("x", 5000)
	astiav.Log(nil, astiav.LogLevelError, "long %s", long)
	r, attrs, ok = rec.find("long xxx")
	require.True(t, ok)
	assert.Len(t, r.Message, 1023)
	assert.True(t, attrs["truncated"].Bool())

	// A panicking handler loses the line, not the process.
	rec.panics = true
	before := logDropped.Load()
	astiav.Log(nil, astiav.LogLevelError, "boom %s", "line")
	assert.Equal(t, before+1, logDropped.Load())
	rec.panics = false

	// Debug level lets verbose lines through, from codec threads too.
	SetLogger(slog.New(rec), slog.LevelDebug)
	enc, err := NewEncoder(EncoderConfig{Codec: "h264", Width: 320, Height: 180, Threads: 2})
	require.NoError(t, err)
	enc.Close()
	_, attrs, ok = rec.find("using cpu capabilities")
	require.True(t, ok, "x264's info line")
	assert.Equal(t, "libx264", attrs["component"].String())

	// Lines logged on FFmpeg's own threads: a frame-threaded decoder's
	// workers report damaged frames.
	SetLogger(slog.New(rec), slog.LevelWarn)
	pool := NewFramePool()
	defer pool.Close()
	v := VideoFormat{Width: 320, Height: 180, PixelFormat: astiav.PixelFormatYuv420P}
	enc, err = NewEncoder(EncoderConfig{Codec: "h264", Width: v.Width, Height: v.Height, BitRate: 500_000})
	require.NoError(t, err)
	defer enc.Close()
	dec, err := NewDecoder(DecoderConfig{Codec: "h264", Threads: 2, FrameThreads: true}, pool)
	require.NoError(t, err)
	defer dec.Close()
	for n := range 30 {
		f := patternFrame(t, pool, v, n)
		err := enc.Encode(f, func(p *Packet) error {
			data := append([]byte(nil), p.Data...)
			if n > 0 && len(data) > 40 {
				for i := len(data) / 2; i < len(data); i += 7 {
					data[i] ^= 0x5a
				}
			}
			dec.Decode(data, p.PTS, p.Keyframe, nil) // damaged: errors expected
			return nil
		})
		f.Unref()
		require.NoError(t, err)
	}
	require.NoError(t, dec.Flush(nil))
	rec.mu.Lock()
	var fromH264 int
	for _, r := range rec.records {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "component" && a.Value.String() == "h264" {
				fromH264++
			}
			return true
		})
	}
	rec.mu.Unlock()
	t.Logf("%d lines from the h264 decoder", fromH264)
	assert.NotZero(t, fromH264, "the decoder's complaints reached slog")

	// nil restores FFmpeg's logger at error level.
	SetLogger(nil, 0)
	assert.Equal(t, astiav.LogLevelError, astiav.GetLogLevel())
	n := len(rec.records)
	astiav.Log(nil, astiav.LogLevelWarning, "after reset %s", "x")
	assert.Len(t, rec.records, n)
}
