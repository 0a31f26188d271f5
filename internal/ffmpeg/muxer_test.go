package ffmpeg

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// synthCache encodes each synthetic stream once per test binary.
var synthCache sync.Map // string -> func() ([]Sample, error)

const synthLength = 2 * time.Second

// synth returns synthLength of a synthetic stream of codec (vp8, vp9,
// h264, av1, opus, aac, pcmu), 320x240 at 30 fps for video.
func synth(t *testing.T, codec string) []Sample {
	t.Helper()
	if _, ok := HasEncoder(codec); !ok {
		t.Skipf("no %s encoder in this FFmpeg", codec)
	}
	fn, _ := synthCache.LoadOrStore(codec, sync.OnceValues(func() ([]Sample, error) {
		switch codec {
		case "opus", "aac", "pcmu", "pcma", "g722":
			return SynthesizeAudio(EncoderConfig{Codec: codec, BitRate: 64000}, synthLength)
		}
		return SynthesizeVideo(EncoderConfig{Codec: codec, Width: 320, Height: 240, BitRate: 500_000,
			KeyframeInterval: 15}, 30, synthLength)
	}))
	s, err := fn.(func() ([]Sample, error))()
	require.NoError(t, err)
	return s
}

// isVideo reports whether a short codec name is a video codec.
func isVideo(codec string) bool {
	switch codec {
	case "vp8", "vp9", "h264", "av1":
		return true
	}
	return false
}

// muxAll writes the samples of each codec into m as streams of their own,
// in order of time across streams, with times in nanoseconds; skip drops
// a stream's first samples. It returns the stream indexes.
func muxAll(t *testing.T, m *Muxer, codecs []string, skip map[string]int) {
	t.Helper()
	type item struct {
		stream int
		s      Sample
	}
	var items []item
	for _, c := range codecs {
		i, err := m.AddStream(StreamConfig{Codec: c, TimeBase: nanosecond})
		require.NoError(t, err)
		for _, s := range synth(t, c)[skip[c]:] {
			items = append(items, item{i, s})
		}
	}
	sort.SliceStable(items, func(a, b int) bool { return items[a].s.PTS < items[b].s.PTS })
	for _, it := range items {
		require.NoError(t, m.WritePacket(&StreamPacket{
			Stream: it.stream, Data: it.s.Data,
			PTS: int64(it.s.PTS), DTS: NoTimestamp, Duration: int64(it.s.Duration),
			Keyframe: it.s.Keyframe,
		}))
	}
}

var execLookPath = exec.LookPath

// requireTool fails (not skips) the test when an FFmpeg tool is missing.
func requireTool(t *testing.T, name string) {
	t.Helper()
	_, err := execLookPath(name)
	require.NoError(t, err, "%s is needed to check what medley writes", name)
}

// checkFile runs ffprobe and ffmpeg on a written file: the codecs, a
// duration near want, streams starting together and a clean decode.
func checkFile(t *testing.T, path string, codecs []string, want time.Duration) *ProbeResult {
	t.Helper()
	requireTool(t, "ffprobe")
	requireTool(t, "ffmpeg")
	ctx := context.Background()
	r, err := Probe(ctx, path)
	require.NoError(t, err)
	require.Len(t, r.Streams, len(codecs))
	for i, c := range codecs {
		want := map[string]string{"pcmu": "pcm_mulaw", "pcma": "pcm_alaw", "g722": "adpcm_g722"}[c]
		if want == "" {
			want = c
		}
		assert.Equal(t, want, r.Streams[i].Codec, "stream %d", i)
		if isVideo(c) {
			assert.Equal(t, 320, r.Streams[i].Width, "stream %d width", i)
			assert.Equal(t, 240, r.Streams[i].Height, "stream %d height", i)
		}
	}
	spans, err := ProbePackets(ctx, path)
	require.NoError(t, err)
	for i, s := range spans {
		assert.InDelta(t, want.Seconds(), s.Duration().Seconds(), 0.15, "stream %d span %v-%v", i, s.Start, s.End)
		assert.InDelta(t, 0, s.Start.Seconds(), 0.05, "stream %d start", i)
	}
	errs, err := DecodeErrors(ctx, path)
	require.NoError(t, err)
	assert.Empty(t, errs, "ffmpeg decoding %s", filepath.Base(path))
	return r
}

// TestMuxerContainers: 2 s of synthetic video and audio in each container
// medley records, H.264 without global headers (its SPS and PPS in band,
// trap 4), come out with the right codecs, the video's size, the length
// and a clean decode, as ffprobe and ffmpeg see them.
func TestMuxerContainers(t *testing.T) {
	cases := []struct {
		name, format string
		codecs       []string
		fragment     time.Duration
	}{
		{"webm-vp8-opus", "webm", []string{"vp8", "opus"}, 0},
		{"webm-vp9-opus", "webm", []string{"vp9", "opus"}, 0},
		{"webm-av1-opus", "webm", []string{"av1", "opus"}, 0},
		{"mkv-h264-opus", "mkv", []string{"h264", "opus"}, time.Second},
		{"mkv-h264-aac", "matroska", []string{"h264", "aac"}, 0},
		{"mkv-vp8-pcmu", "mkv", []string{"vp8", "pcmu"}, 0},
		{"mkv-g722", "mkv", []string{"g722"}, 0},
		{"mp4-h264-aac", "mp4", []string{"h264", "aac"}, 0},
		{"mp4-h264-opus", "mp4", []string{"h264", "opus"}, 0},
		{"fmp4-h264-aac", "fmp4", []string{"h264", "aac"}, time.Second},
		{"mp4-audio", "mp4", []string{"aac"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkNoLiveObjects(t)
			path := filepath.Join(t.TempDir(), "out."+strings.TrimPrefix(c.format, "f"))
			m, err := CreateMuxer(path, MuxerConfig{Format: c.format, FragmentDuration: c.fragment})
			require.NoError(t, err)
			t.Cleanup(func() { m.Close() })
			muxAll(t, m, c.codecs, nil)
			require.NoError(t, m.Close())
			require.NoError(t, m.Close(), "Close is idempotent")
			assert.Zero(t, LiveFormatContexts())
			info, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, info.Size(), m.Bytes())
			checkFile(t, path, c.codecs, synthLength)
		})
	}
}

// nonSeeker hides a writer's Seek.
type nonSeeker struct{ w io.Writer }

func (n nonSeeker) Write(p []byte) (int, error) { return n.w.Write(p) }

// TestMuxerToWriter: to an io.Writer that cannot seek, WebM is written
// live and MP4 fragmented, and both play.
func TestMuxerToWriter(t *testing.T) {
	for _, format := range []string{"webm", "mp4", "mkv"} {
		t.Run(format, func(t *testing.T) {
			checkNoLiveObjects(t)
			codecs := []string{"vp8", "opus"}
			if format != "webm" {
				codecs = []string{"h264", "opus"}
			}
			var buf bytes.Buffer
			m, err := NewMuxer(nonSeeker{&buf}, MuxerConfig{Format: format})
			require.NoError(t, err)
			t.Cleanup(func() { m.Close() })
			muxAll(t, m, codecs, nil)
			require.NoError(t, m.Close())
			assert.EqualValues(t, buf.Len(), m.Bytes())
			path := filepath.Join(t.TempDir(), "out."+format)
			require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
			checkFile(t, path, codecs, synthLength)
		})
	}
}

// TestMuxerWaitsForKeyframe: a video stream that starts mid-GOP is written
// from its first keyframe (with its SPS and PPS for H.264); the audio
// written meanwhile is kept.
func TestMuxerWaitsForKeyframe(t *testing.T) {
	for _, codec := range []string{"h264", "vp8"} {
		t.Run(codec, func(t *testing.T) {
			checkNoLiveObjects(t)
			video := synth(t, codec)
			next := 1
			for !video[next].Keyframe {
				next++
			}
			path := filepath.Join(t.TempDir(), "out.mkv")
			m, err := CreateMuxer(path, MuxerConfig{Format: "mkv"})
			require.NoError(t, err)
			t.Cleanup(func() { m.Close() })
			muxAll(t, m, []string{codec, "opus"}, map[string]int{codec: 1})
			require.NoError(t, m.Close())
			assert.EqualValues(t, next-1, m.Dropped())
			spans, err := ProbePackets(context.Background(), path)
			require.NoError(t, err)
			assert.InDelta(t, video[next].PTS.Seconds(), spans[0].Start.Seconds(), 0.001)
			assert.Equal(t, len(video)-next, spans[0].Packets)
			assert.InDelta(t, 0, spans[1].Start.Seconds(), 0.001)
			errs, err := DecodeErrors(context.Background(), path)
			require.NoError(t, err)
			assert.Empty(t, errs)
		})
	}
}

// failingWriter fails every write after the first n bytes.
type failingWriter struct{ n int }

var errDiskFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		n := w.n
		w.n = 0
		return n, errDiskFull
	}
	w.n -= len(p)
	return len(p), nil
}

// TestMuxerErrors: unknown containers, codecs and options are refused; a
// writer's failure comes back as itself from WritePacket or Close; packets
// after Close fail with ErrClosed; nothing is left allocated.
func TestMuxerErrors(t *testing.T) {
	checkNoLiveObjects(t)
	_, err := NewMuxer(io.Discard, MuxerConfig{Format: "nonsense"})
	assert.ErrorIs(t, err, ErrFormat)

	m, err := NewMuxer(io.Discard, MuxerConfig{Format: "webm"})
	require.NoError(t, err)
	_, err = m.AddStream(StreamConfig{Codec: "no-such-codec"})
	assert.ErrorIs(t, err, ErrUnknownCodec)
	_, err = m.AddStream(StreamConfig{Codec: "opus"})
	require.NoError(t, err)
	assert.Error(t, m.WritePacket(&StreamPacket{Stream: 3, Data: []byte{1}}))
	require.NoError(t, m.Close())
	assert.ErrorIs(t, m.WritePacket(&StreamPacket{Data: []byte{1}}), ErrClosed)

	m, err = NewMuxer(io.Discard, MuxerConfig{Format: "webm", Options: map[string]string{"no_such_option": "1"}})
	require.NoError(t, err)
	muxErr := func() error {
		_, err := m.AddStream(StreamConfig{Codec: "opus", TimeBase: nanosecond})
		require.NoError(t, err)
		return m.WritePacket(&StreamPacket{Data: synth(t, "opus")[0].Data, PTS: 0, DTS: NoTimestamp})
	}()
	assert.ErrorIs(t, muxErr, ErrUnknownOption)
	assert.ErrorIs(t, m.Close(), ErrUnknownOption)

	m, err = NewMuxer(&failingWriter{n: 10_000}, MuxerConfig{Format: "webm"})
	require.NoError(t, err)
	_, err = m.AddStream(StreamConfig{Codec: "vp8", TimeBase: nanosecond})
	require.NoError(t, err)
	for _, s := range synth(t, "vp8") {
		if err = m.WritePacket(&StreamPacket{Data: s.Data, PTS: int64(s.PTS), DTS: NoTimestamp, Keyframe: s.Keyframe}); err != nil {
			break
		}
	}
	if err == nil {
		err = m.Close()
	} else {
		assert.ErrorIs(t, m.Close(), errDiskFull)
	}
	assert.ErrorIs(t, err, errDiskFull)

	// An H.264 stream whose keyframes never carry SPS and PPS cannot start.
	m, err = NewMuxer(io.Discard, MuxerConfig{Format: "mkv"})
	require.NoError(t, err)
	_, err = m.AddStream(StreamConfig{Codec: "h264"})
	require.NoError(t, err)
	require.NoError(t, m.WritePacket(&StreamPacket{Data: []byte{0, 0, 0, 1, 0x65, 0x88, 0x84}, Keyframe: true}))
	assert.False(t, m.Started())
	assert.NoError(t, m.Close(), "nothing to write is not an error")
	assert.Zero(t, LiveFormatContexts())
}

// TestH264ParameterSets finds SPS and PPS behind 3- and 4-byte start codes.
func TestH264ParameterSets(t *testing.T) {
	au := []byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 9, 9}
	assert.Equal(t, []byte{0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3}, h264ParameterSets(au))
	assert.Nil(t, h264ParameterSets([]byte{0, 0, 1, 0x65, 1}))
	assert.Nil(t, h264ParameterSets(nil))
}

// TestAACConfig: the AudioSpecificConfig of AAC-LC 48 kHz stereo is 0x1190,
// and an ADTS header implies the same.
func TestAACConfig(t *testing.T) {
	assert.Equal(t, []byte{0x11, 0x90}, AACConfig(48000, 2))
	assert.Nil(t, AACConfig(12345, 2))
	n, asc, ok := adtsHeader([]byte{0xff, 0xf1, 0x4c, 0x80, 0x01, 0x3f, 0xfc, 0xaa})
	require.True(t, ok)
	assert.Equal(t, 7, n)
	assert.Equal(t, []byte{0x11, 0x90}, asc)
}
