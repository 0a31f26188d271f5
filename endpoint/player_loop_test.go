package endpoint_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/internal/ffmpeg"
	"github.com/medley-go/medley/pipeline"
)

// ffmpegErrors records the error lines FFmpeg logs while a test runs
// (SetLogger is global to the process: the test must not run in
// parallel).
type ffmpegErrors struct {
	mu    sync.Mutex
	lines []string
}

func (e *ffmpegErrors) Enabled(context.Context, slog.Level) bool { return true }
func (e *ffmpegErrors) WithAttrs([]slog.Attr) slog.Handler       { return e }
func (e *ffmpegErrors) WithGroup(string) slog.Handler            { return e }
func (e *ffmpegErrors) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "component" {
			line = "[" + a.Value.String() + "] " + line
		}
		return true
	})
	e.mu.Lock()
	e.lines = append(e.lines, line)
	e.mu.Unlock()
	return nil
}

func (e *ffmpegErrors) got() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.lines...)
}

func recordFFmpegErrors(t *testing.T) *ffmpegErrors {
	t.Helper()
	e := &ffmpegErrors{}
	ffmpeg.SetLogger(slog.New(e), slog.LevelError)
	t.Cleanup(func() { ffmpeg.SetLogger(nil, 0) })
	return e
}

// refPacket is a packet as ReadPacket copies it, in the form the Player
// sends (H.264 in Annex B with the parameter sets before keyframes).
type refPacket struct {
	data     []byte
	keyframe bool
}

// referencePackets reads every packet of path with ReadPacket (a copy
// each) and returns them by kind, converted as the Player converts them.
func referencePackets(t *testing.T, path string) map[element.Kind][]refPacket {
	t.Helper()
	d, err := ffmpeg.OpenDemuxer(context.Background(), path, ffmpeg.DemuxerConfig{})
	require.NoError(t, err)
	defer d.Close()
	var avc *ffmpeg.AVCConfig
	kinds := map[int]element.Kind{}
	for _, s := range d.Streams() {
		switch {
		case s.IsVideo():
			kinds[s.Index] = element.KindVideo
			require.Equal(t, "h264", s.Codec)
			c, err := ffmpeg.ParseAVCC(s.ExtraData)
			require.NoError(t, err)
			avc = &c
		case s.IsAudio():
			kinds[s.Index] = element.KindAudio
		}
	}
	require.NotNil(t, avc)
	out := map[element.Kind][]refPacket{}
	var p ffmpeg.StreamPacket
	for {
		err := d.ReadPacket(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		k := kinds[p.Stream]
		r := refPacket{data: append([]byte(nil), p.Data...), keyframe: p.Keyframe || k == element.KindAudio}
		if k == element.KindVideo {
			var pre []byte
			if p.Keyframe {
				pre = avc.ParameterSets
			}
			r.data, err = ffmpeg.AppendAnnexB(append([]byte(nil), pre...), p.Data, avc.LengthSize)
			require.NoError(t, err)
		}
		out[k] = append(out[k], r)
	}
	return out
}

// playLooped plays path unpaced and looping into a video and an audio
// sink that hand each sample's bytes (copied, the sample dropped at once,
// so that the player reuses it) to got, until stop says so; it returns
// once the pipeline is closed.
func playLooped(t *testing.T, path string, got func(element.Kind, *element.Buffer) (stop bool)) {
	t.Helper()
	before := ffmpeg.LiveObjects()
	p, err := pipeline.New()
	require.NoError(t, err)
	defer p.Close()
	pl, err := endpoint.NewPlayer("player", path, endpoint.WithoutPacing(), endpoint.WithLoop())
	require.NoError(t, err)
	require.NoError(t, p.Add(pl))
	done := make(chan struct{})
	var once sync.Once
	for _, k := range []element.Kind{element.KindVideo, element.KindAudio} {
		s := element.NewAppSink(k.String()+"sink", element.CapsList{{Kind: k, Format: element.FormatSample}},
			element.WithSinkQueue(1024, element.Block),
			element.WithBufferFunc(func(b *element.Buffer) {
				if got(k, b) {
					once.Do(func() { close(done) })
				}
			}))
		require.NoError(t, p.Add(s))
		require.NoError(t, p.Connect(pl, s, k))
	}
	require.NoError(t, p.Start(context.Background()))
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the player did not send what was wanted within a minute")
	}
	require.NoError(t, p.Close())
	assert.Equal(t, before, ffmpeg.LiveObjects(), "FFmpeg objects alive after Close")
}

// TestPlayerLoopedPayloads: a 720p H.264 + AAC MP4 played unpaced and
// looping, three times over, sends every packet of each round with the
// bytes and keyframe flag that a plain ReadPacket copy (converted to
// Annex B) has: the zero-copy reading, the reuse of samples and the
// in-place conversion corrupt nothing, across the loop's seeks. And
// FFmpeg logs no error meanwhile, nor when the pipeline is closed in the
// middle of the reading (stopping used to cut a read short: FFmpeg's
// H.264 parser then logged "Invalid NAL unit size" for the truncated
// packet).
func TestPlayerLoopedPayloads(t *testing.T) {
	path := ffmpegMedia(t, t.TempDir(), "in.mp4", "1280x720", 30, 30, 2*time.Second, "libx264", "aac")
	ref := referencePackets(t, path)
	require.NotEmpty(t, ref[element.KindVideo])
	require.NotEmpty(t, ref[element.KindAudio])
	logged := recordFFmpegErrors(t)

	// Each kind's samples must be ref's, round after round. A round
	// after the first starts where FFmpeg's seek to the start lands,
	// which may be after the first packets: the AAC encoder's priming
	// packet (pts < 0, all discarded by decoders) is not seeked to.
	const rounds, skippable = 3, 2
	var mu sync.Mutex
	var bad []string
	type cursor struct{ next, round, sent int }
	cur := map[element.Kind]*cursor{element.KindVideo: {}, element.KindAudio: {}}
	playLooped(t, path, func(k element.Kind, b *element.Buffer) bool {
		mu.Lock()
		defer mu.Unlock()
		c, r := cur[k], ref[k]
		if c.round < rounds {
			same := func(i int) bool { return bytes.Equal(r[i].data, b.Data) && r[i].keyframe == b.Keyframe() }
			i := c.next
			if c.round > 0 && i == 0 {
				for i < skippable && i+1 < len(r) && !same(i) {
					i++
				}
			}
			if !same(i) {
				if len(bad) < 10 {
					bad = append(bad, sprintf("%s sample %d of round %d: %d bytes, keyframe %v; want %d bytes, keyframe %v",
						k, i, c.round, len(b.Data), b.Keyframe(), len(r[i].data), r[i].keyframe))
				}
			}
			c.sent++
			if c.next = i + 1; c.next == len(r) {
				c.next = 0
				c.round++
			}
		}
		return cur[element.KindVideo].round >= rounds && cur[element.KindAudio].round >= rounds
	})
	for k, c := range cur {
		assert.GreaterOrEqual(t, c.sent, rounds*(len(ref[k])-skippable), "%s samples sent", k)
	}
	assert.Empty(t, bad)
	errs := logged.got()
	assert.Empty(t, errs, "FFmpeg errors while playing (and closing)")

	// Stopped in the middle of reading, again and again: nothing logged.
	total := len(ref[element.KindVideo]) + len(ref[element.KindAudio])
	for i := range 8 {
		want := int64(total/2 + i*(total/3))
		var count atomic.Int64
		playLooped(t, path, func(element.Kind, *element.Buffer) bool { return count.Add(1) == want })
	}
	assert.Empty(t, logged.got()[len(errs):], "FFmpeg errors while stopping")
}
