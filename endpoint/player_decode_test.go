package endpoint_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
)

// frameSink counts the decoded frames (codec.Frame) a raw sink gets.
type frameSink struct {
	*element.AppSink
	mu      sync.Mutex
	frames  int
	samples int // audio samples per channel
	dropped int // as DiscontEvents said
	sizes   map[[2]int]int
	rates   map[int]int
	pts     []time.Duration
	eos     chan struct{}
}

func newFrameSink(t *testing.T, name string, caps element.Caps) *frameSink {
	s := &frameSink{sizes: map[[2]int]int{}, rates: map[int]int{}, eos: make(chan struct{})}
	s.AppSink = element.NewAppSink(name, element.CapsList{caps},
		element.WithSinkQueue(1024, element.Block),
		element.WithBufferFunc(func(b *element.Buffer) {
			f, ok := b.Frame.(*codec.Frame)
			if !assert.True(t, ok, "%s: a buffer without a frame: %T", name, b.Frame) {
				return
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.frames++
			s.pts = append(s.pts, b.PTS)
			if v := f.Video(); v.Width > 0 {
				s.sizes[[2]int{v.Width, v.Height}]++
			} else {
				s.samples += f.Samples()
				s.rates[f.Audio().SampleRate]++
			}
		}),
		element.WithEventFunc(func(ev element.Event) {
			switch e := ev.(type) {
			case element.EOSEvent:
				close(s.eos)
			case element.DiscontEvent:
				s.mu.Lock()
				s.dropped += e.Dropped
				s.mu.Unlock()
			}
		}))
	return s
}

func (s *frameSink) waitEOS(t *testing.T) {
	t.Helper()
	select {
	case <-s.eos:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no end of stream", s.Name())
	}
}

// TestPlayerDecoded: connected to sinks of raw video and audio, a Player
// of a VP8 + Opus file and of an H.264 + Opus file gets a decoder inserted
// on each link (TranscodingStateChanged), and the sinks get every frame
// decoded, at the file's size, and the file's length of audio.
func TestPlayerDecoded(t *testing.T) {
	const length, fps = 2 * time.Second, 30
	dir := t.TempDir()
	for _, c := range []struct{ name, vcodec, acodec string }{
		{"vp8-opus.webm", "libvpx", "libopus"},
		{"h264-opus.mkv", "libx264", "libopus"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := ffmpegMedia(t, dir, c.name, "320x240", fps, fps, length, c.vcodec, c.acodec)
			// Paced: unpaced, the player floods the converter chains,
			// whose queues then drop audio.
			pl, err := endpoint.NewPlayer("player", path)
			require.NoError(t, err)
			vs := newFrameSink(t, "vsink", codec.RawVideoCaps(0, 0, codec.PixelFormatI420))
			as := newFrameSink(t, "asink", codec.RawAudioCaps(48000, 2, "s16"))
			_, bus := playInto(t, pl, vs, as)
			vs.waitEOS(t)
			as.waitEOS(t)
			tr := bus.all(isType[*element.TranscodingStateChanged])
			for _, m := range tr {
				m := m.(*element.TranscodingStateChanged)
				t.Logf("%s -> %s: %v, chain %v", m.Source, m.Sink, m.State, m.Chain)
			}
			assert.Len(t, tr, 2, "a converter chain on each link")
			vs.mu.Lock()
			defer vs.mu.Unlock()
			as.mu.Lock()
			defer as.mu.Unlock()
			t.Logf("%s: %d video frames %v; %d audio frames, %d samples at %v; player %+v, dropped %d %d", c.name, vs.frames, vs.sizes, as.frames, as.samples, as.rates, pl.Stats(), vs.dropped, as.dropped)
			assert.Equal(t, map[[2]int]int{{320, 240}: fps * 2}, vs.sizes, "every frame, at the file's size")
			for i := 1; i < len(vs.pts); i++ {
				assert.Greater(t, vs.pts[i], vs.pts[i-1], "video PTS %d", i)
			}
			assert.Equal(t, int(pl.Stats().AudioSamples), as.frames, "a frame for each audio sample sent")
			assert.InDelta(t, 48000*length.Seconds(), float64(as.samples), 48000*0.05, "the file's length of audio")
			assert.Empty(t, bus.all(isType[*element.Error]))
		})
	}
}
