package elementtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
	"github.com/medley-go/medley/pipeline"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	vp8RTP    = element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/VP8", ClockRate: 90000}
	vp8Sample = element.Caps{Kind: element.KindVideo, Format: element.FormatSample, Codec: "video/VP8"}
	opusRTP   = element.Caps{Kind: element.KindAudio, Format: element.FormatRTP, Codec: "audio/opus", ClockRate: 48000, Channels: 2}
)

// run connects src to sink in a new pipeline, starts it and closes it when
// the test ends. The returned context ends after a few seconds.
func run(t *testing.T, src *elementtest.Source, sink *elementtest.Sink) context.Context {
	t.Helper()
	p, err := pipeline.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	require.NoError(t, p.Add(src, sink))
	require.NoError(t, p.Connect(src, sink, element.KindAll))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	require.NoError(t, p.Start(ctx))
	return ctx
}

func waitEOS(ctx context.Context, t *testing.T, s *elementtest.Sink) {
	t.Helper()
	_, err := s.WaitEvent(ctx, func(ev element.Event) bool { _, ok := ev.(element.EOSEvent); return ok })
	require.NoError(t, err)
}

func TestSourceEmitsRTPFrames(t *testing.T) {
	const (
		frames = 12
		rate   = 200
	)
	src := elementtest.NewSource("src", elementtest.SourceConfig{
		Caps: vp8RTP, Rate: rate, Frames: frames, FrameSize: 3000, MTU: 1200,
		KeyframeEvery: 5, SSRC: 0xabcd, PayloadType: 100,
	})
	sink := elementtest.NewSink("sink", element.CapsList{element.AnyVideo}, elementtest.WithKeep())
	ctx := run(t, src, sink)
	waitEOS(ctx, t, sink)

	assert.Equal(t, frames, src.Frames())
	assert.Equal(t, frames*3, src.Packets())
	got := sink.Received()
	bufs := sink.Buffers()
	require.Len(t, got, frames*3)
	require.Len(t, bufs, frames*3)
	for i, r := range got {
		f, k := i/3, i%3
		assert.Equal(t, uint32(f), r.Frame, "buffer %d", i)
		assert.Equal(t, uint16(k), r.Packet, "buffer %d", i)
		assert.Equal(t, uint16(3), r.Packets, "buffer %d", i)
		assert.Equal(t, uint16(i), r.Seq, "buffer %d", i)
		assert.Equal(t, uint32(f*90000/rate), r.Timestamp, "buffer %d", i)
		assert.Equal(t, time.Duration(f)*time.Second/rate, r.PTS, "buffer %d", i)
		assert.Equal(t, []int{1200, 1200, 600}[k], r.Size, "buffer %d", i)
		assert.Equal(t, k == 0 && f%5 == 0, r.Keyframe(), "buffer %d: keyframes are frames 0, 5, 10, on their first packet", i)
		assert.Equal(t, k == 2, r.Flags&element.FlagEndOfFrame != 0, "buffer %d", i)
		assert.False(t, r.At.IsZero())

		b := bufs[i]
		assert.Equal(t, uint32(0xabcd), b.RTP.SSRC)
		assert.Equal(t, uint8(100), b.RTP.PayloadType)
		assert.Equal(t, uint8(2), b.RTP.Version)
		assert.Equal(t, k == 2, b.RTP.Marker, "buffer %d: marker on the last packet of a frame", i)
		assert.Equal(t, time.Second/rate, b.Duration)
	}
	ev := sink.Events()
	require.NotEmpty(t, ev)
	assert.Equal(t, element.CapsEvent{Caps: vp8RTP}, ev[0], "caps come before the first buffer")
	assert.Equal(t, element.EOSEvent{}, ev[len(ev)-1])
}

func TestSourceEmitsSamples(t *testing.T) {
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: vp8Sample, Rate: 100, Frames: 5})
	sink := elementtest.NewSink("sink", element.CapsList{element.AnyVideo}, elementtest.WithInline(), elementtest.WithKeep())
	ctx := run(t, src, sink)
	waitEOS(ctx, t, sink)

	assert.Equal(t, 5, src.Frames())
	assert.Equal(t, 5, src.Packets())
	got := sink.Received()
	require.Len(t, got, 5)
	for i, r := range got {
		assert.Equal(t, uint32(i), r.Frame)
		assert.Equal(t, uint16(0), r.Packet)
		assert.Equal(t, uint16(1), r.Packets)
		assert.Equal(t, 3000, r.Size, "default video frame size")
		assert.Equal(t, time.Duration(i)*10*time.Millisecond, r.PTS)
		assert.Equal(t, i == 0, r.Keyframe(), "without KeyframeEvery only the first frame is a keyframe")
		assert.Equal(t, 10*time.Millisecond, sink.Buffers()[i].Duration)
	}
}

func TestSourceAudioDefaults(t *testing.T) {
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: opusRTP, Frames: 3})
	sink := elementtest.NewSink("sink", element.CapsList{element.AnyAudio})
	ctx := run(t, src, sink)
	waitEOS(ctx, t, sink)

	got := sink.Received()
	require.Len(t, got, 3)
	for i, r := range got {
		assert.Equal(t, 160, r.Size, "default audio frame size: one packet a frame")
		assert.Equal(t, uint16(1), r.Packets)
		assert.Equal(t, time.Duration(i)*20*time.Millisecond, r.PTS, "default audio rate 50/s")
		assert.Equal(t, uint32(i*960), r.Timestamp, "48 kHz clock")
		assert.Equal(t, uint16(i), r.Seq)
	}
}

func TestSourceHonoursKeyframeRequest(t *testing.T) {
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: vp8RTP, FrameSize: 100, Manual: true, KeyframeRequestInterval: 50 * time.Millisecond})
	sink := elementtest.NewSink("sink", element.CapsList{element.AnyVideo}, elementtest.WithInline())
	run(t, src, sink)

	keyframes := func() []uint32 {
		var ks []uint32
		for _, r := range sink.Received() {
			if r.Keyframe() {
				ks = append(ks, r.Frame)
			}
		}
		return ks
	}
	src.Emit(4)
	assert.Equal(t, []uint32{0}, keyframes())
	assert.Zero(t, src.KeyframeRequests())

	require.True(t, sink.RequestKeyframe())
	assert.Equal(t, 1, src.KeyframeRequests())
	src.Emit(2)
	assert.Equal(t, []uint32{0, 4}, keyframes(), "the frame after the request is a keyframe, the next is not")

	// Within the interval a request is merged into the one already passed.
	start := time.Now()
	require.True(t, sink.RequestKeyframe())
	if time.Since(start) < 40*time.Millisecond {
		assert.Equal(t, 1, src.KeyframeRequests())
		src.Emit(1)
		assert.Equal(t, []uint32{0, 4}, keyframes())
	}

	time.Sleep(60 * time.Millisecond)
	require.True(t, sink.RequestKeyframe())
	assert.GreaterOrEqual(t, src.KeyframeRequests(), 2)
	n := src.Frames()
	src.Emit(1)
	assert.Contains(t, keyframes(), uint32(n), "a request after the interval passes")
	assert.Equal(t, []element.Event{element.KeyframeRequest{}, element.KeyframeRequest{}, element.KeyframeRequest{}}, sink.UpstreamSent())
	assert.Equal(t, uint64(3), sink.SinkPad().Stats().KeyframeRequests)
}

func TestSourceReceivesBitrateHints(t *testing.T) {
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: vp8RTP, Manual: true})
	sink := elementtest.NewSink("sink", element.CapsList{element.AnyVideo})
	run(t, src, sink)
	require.True(t, sink.SendBitrateHint(1_000_000))
	require.True(t, sink.SendBitrateHint(300_000))
	assert.Equal(t, []int64{1_000_000, 300_000}, src.BitrateHints())
	assert.Equal(t, []element.Event{element.BitrateHint{BitsPerSecond: 1_000_000}, element.BitrateHint{BitsPerSecond: 300_000}}, sink.UpstreamSent())
}

func TestSinkUnlinkedSendsNothing(t *testing.T) {
	sink := elementtest.NewSink("sink", element.CapsList{element.AnyVideo})
	assert.False(t, sink.RequestKeyframe(), "no source to send to")
	assert.Equal(t, []element.Event{element.KeyframeRequest{}}, sink.UpstreamSent(), "still recorded")
}

func TestSinkBlockUnblock(t *testing.T) {
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: vp8Sample, Manual: true})
	sink := elementtest.NewSink("sink", element.CapsList{element.AnyVideo}, elementtest.WithQueue(16, element.Block))
	ctx := run(t, src, sink)

	src.Emit(2)
	require.NoError(t, sink.WaitCount(ctx, 2))
	sink.Block()
	sink.Block() // idempotent
	src.Emit(3)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err := sink.WaitCount(short, 3)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "2 of 3")
	assert.Equal(t, 2, sink.Count(), "a blocked sink records nothing")

	sink.Unblock()
	sink.Unblock() // idempotent
	require.NoError(t, sink.WaitCount(ctx, 5))
	for i, r := range sink.Received() {
		assert.Equal(t, uint32(i), r.Frame)
	}
}

func TestSinkWaitEvent(t *testing.T) {
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: vp8RTP, Rate: -1, Frames: 2})
	sink := elementtest.NewSink("sink", element.CapsList{element.AnyVideo})
	ctx := run(t, src, sink)
	ev, err := sink.WaitEvent(ctx, func(ev element.Event) bool { _, ok := ev.(element.CapsEvent); return ok })
	require.NoError(t, err)
	assert.Equal(t, element.CapsEvent{Caps: vp8RTP}, ev)
	waitEOS(ctx, t, sink)

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = sink.WaitEvent(short, func(ev element.Event) bool { _, ok := ev.(element.DiscontEvent); return ok })
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// A sink blocked when the pipeline closes lets go, so its goroutine ends
// (goleak checks it in TestMain).
func TestSinkBlockedAtClose(t *testing.T) {
	p, err := pipeline.New()
	require.NoError(t, err)
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: vp8RTP, Rate: 200})
	sink := elementtest.NewSink("sink", element.CapsList{element.AnyVideo}, elementtest.WithKeep())
	require.NoError(t, p.Add(src, sink))
	require.NoError(t, p.Connect(src, sink, element.KindVideo))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, p.Start(ctx))
	require.NoError(t, sink.WaitCount(ctx, 3))
	sink.Block()
	time.Sleep(30 * time.Millisecond)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = p.Close()
	}()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("Close hangs on a blocked sink")
	}
	assert.Empty(t, sink.Buffers(), "Close releases kept buffers")
}
