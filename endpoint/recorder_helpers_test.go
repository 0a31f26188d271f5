package endpoint_test

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/internal/ffmpeg"
	"github.com/medley-go/medley/pipeline"
)

// Synthetic media for the recorder and player tests: a moving picture and
// a tone, encoded once per test binary, then cut into RTP by codec's
// payloaders.

const (
	mediaLength = 10 * time.Second
	mediaWidth  = 320
	mediaHeight = 240
	mediaFPS    = 30
)

var mediaCache sync.Map // mime -> func() ([]ffmpeg.Sample, error)

// media returns mediaLength of synthetic samples of a codec (MIME type),
// with a keyframe every second for video.
func media(t testing.TB, mime string) []ffmpeg.Sample {
	t.Helper()
	c, ok := codec.Lookup(mime)
	require.True(t, ok, mime)
	fn, _ := mediaCache.LoadOrStore(c.MIME, sync.OnceValues(func() ([]ffmpeg.Sample, error) {
		if c.Kind == element.KindAudio {
			return ffmpeg.SynthesizeAudio(ffmpeg.EncoderConfig{Codec: c.Name, BitRate: 48000}, mediaLength)
		}
		cfg := ffmpeg.EncoderConfig{Codec: c.Name, Width: mediaWidth, Height: mediaHeight,
			BitRate: 400_000, KeyframeInterval: mediaFPS}
		if c.MIME == codec.MIMEH264 {
			cfg.Profile, cfg.Preset = "constrained_baseline", "ultrafast"
		}
		return ffmpeg.SynthesizeVideo(cfg, mediaFPS, mediaLength)
	}))
	s, err := fn.(func() ([]ffmpeg.Sample, error))()
	require.NoError(t, err)
	return s
}

// rtpPacket is one packet of a synthetic RTP stream, with the PTS of the
// sample it carries.
type rtpPacket struct {
	pkt rtp.Packet
	key bool
	pts time.Duration
}

var rtpCache sync.Map // mime -> func() ([]rtpPacket, error)

// rtpStream returns the synthetic media of a codec as RTP, payloaded by
// the pipeline's own converter (AppSource of samples into an AppSink of
// RTP).
func rtpStream(t testing.TB, mime string) []rtpPacket {
	t.Helper()
	samples := media(t, mime)
	fn, _ := rtpCache.LoadOrStore(mime, sync.OnceValues(func() ([]rtpPacket, error) {
		return payload(mime, samples)
	}))
	pkts, err := fn.(func() ([]rtpPacket, error))()
	require.NoError(t, err)
	return pkts
}

func payload(mime string, samples []ffmpeg.Sample) ([]rtpPacket, error) {
	c, _ := codec.Lookup(mime)
	p, err := pipeline.New()
	if err != nil {
		return nil, err
	}
	defer p.Close()
	src := element.NewAppSource("samples", element.CapsList{c.Caps(element.FormatSample)})
	var mu sync.Mutex
	var out []rtpPacket
	eos := make(chan struct{})
	sink := element.NewAppSink("rtp", element.CapsList{{Kind: c.Kind, Format: element.FormatRTP, Codec: c.MIME}},
		element.WithSinkQueue(1<<14, element.Block),
		element.WithBufferFunc(func(b *element.Buffer) {
			mu.Lock()
			defer mu.Unlock()
			out = append(out, rtpPacket{
				pkt: rtp.Packet{Header: b.RTP.Clone(), Payload: append([]byte(nil), b.Data...)},
				key: b.Keyframe(), pts: b.PTS,
			})
		}),
		element.WithEventFunc(func(ev element.Event) {
			if _, ok := ev.(element.EOSEvent); ok {
				close(eos)
			}
		}))
	if err := p.Add(src, sink); err != nil {
		return nil, err
	}
	if err := p.Connect(src, sink, c.Kind); err != nil {
		return nil, err
	}
	if err := p.Start(context.Background()); err != nil {
		return nil, err
	}
	for _, s := range samples {
		var flags element.Flags
		if s.Keyframe {
			flags |= element.FlagKeyframe
		}
		src.PushSample(s.Data, s.PTS, s.Duration, flags)
	}
	if err := src.EndOfStream(); err != nil {
		return nil, err
	}
	<-eos
	mu.Lock()
	defer mu.Unlock()
	return out, nil
}

// feed is one source of a recording test: an AppSource and what it sends.
type feed struct {
	src  *element.AppSource
	kind element.Kind
	rtp  []rtpPacket     // RTP packets, or
	smp  []ffmpeg.Sample // samples
}

// rtpFeed is an AppSource of a codec's RTP stream.
func rtpFeed(t testing.TB, name, mime string) *feed {
	c, _ := codec.Lookup(mime)
	return &feed{
		src:  element.NewAppSource(name, element.CapsList{c.Caps(element.FormatRTP)}),
		kind: c.Kind,
		rtp:  rtpStream(t, mime),
	}
}

// sampleFeed is an AppSource of a codec's samples.
func sampleFeed(t testing.TB, name, mime string) *feed {
	c, _ := codec.Lookup(mime)
	return &feed{
		src:  element.NewAppSource(name, element.CapsList{c.Caps(element.FormatSample)}),
		kind: c.Kind,
		smp:  media(t, mime),
	}
}

// recording is a started pipeline of feeds connected to a recorder.
type recording struct {
	t     testing.TB
	p     *pipeline.Pipeline
	rec   *endpoint.Recorder
	feeds []*feed
	log   *recBus
	// throttle, if set, is called before each send: a test slows its
	// pushes there to what a slow branch (a transcoder) keeps up with.
	throttle func(f *feed, pts time.Duration)
}

// startRecording adds the feeds and rec to a new pipeline, connects each
// feed to the recorder (the pipeline inserts depayloaders) and starts it.
func startRecording(t testing.TB, rec *endpoint.Recorder, feeds ...*feed) *recording {
	t.Helper()
	p, err := pipeline.New()
	require.NoError(t, err)
	r := &recording{t: t, p: p, rec: rec, feeds: feeds, log: newRecBus(p.Subscribe(1 << 14))}
	require.NoError(t, p.Add(rec))
	for _, f := range feeds {
		require.NoError(t, p.Add(f.src))
		require.NoError(t, p.Connect(f.src, rec, f.kind))
	}
	require.NoError(t, p.Start(context.Background()))
	t.Cleanup(func() {
		require.NoError(t, p.Close())
		r.log.wait()
	})
	return r
}

// push sends every feed's media with PTS in [from, to), in time order
// across the feeds.
func (r *recording) push(from, to time.Duration) {
	type item struct {
		f   *feed
		i   int
		pts time.Duration
	}
	var items []item
	for _, f := range r.feeds {
		for i, p := range f.rtp {
			if p.pts >= from && p.pts < to {
				items = append(items, item{f, i, p.pts})
			}
		}
		for i, s := range f.smp {
			if s.PTS >= from && s.PTS < to {
				items = append(items, item{f, i, s.PTS})
			}
		}
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(a.pts, b.pts) })
	for _, it := range items {
		if r.throttle != nil {
			r.throttle(it.f, it.pts)
		}
		it.f.send(it.i)
	}
}

// samples counts the samples of every feed with PTS in [from, to).
func (r *recording) samples(from, to time.Duration) int {
	n := 0
	for _, f := range r.feeds {
		seen := map[time.Duration]bool{}
		for _, p := range f.rtp {
			if p.pts >= from && p.pts < to && !seen[p.pts] {
				seen[p.pts] = true
				n++
			}
		}
		for _, s := range f.smp {
			if s.PTS >= from && s.PTS < to {
				n++
			}
		}
	}
	return n
}

func (f *feed) send(i int) {
	if f.rtp != nil {
		f.src.PushRTP(&f.rtp[i].pkt, f.rtp[i].key)
		return
	}
	s := f.smp[i]
	var flags element.Flags
	if s.Keyframe {
		flags |= element.FlagKeyframe
	}
	f.src.PushSample(s.Data, s.PTS, s.Duration, flags)
}

// end sends end of stream on every feed.
func (r *recording) end() {
	for _, f := range r.feeds {
		require.NoError(r.t, f.src.EndOfStream())
	}
}

// waitDone waits for the recorder to stop and returns its Stopped message.
func (r *recording) waitDone() *endpoint.Stopped {
	r.t.Helper()
	select {
	case <-r.rec.Done():
	case <-time.After(20 * time.Second):
		r.t.Fatalf("the recorder did not stop; stats %+v", r.rec.Stats())
	}
	m := r.log.waitFor(func(m element.Message) bool { _, ok := m.(*endpoint.Stopped); return ok })
	return m.(*endpoint.Stopped)
}

// recBus collects a subscription's messages and lets tests wait for one.
type recBus struct {
	mu   sync.Mutex
	cond *sync.Cond
	msgs []element.Message
	done chan struct{}
}

func newRecBus(sub *pipeline.Subscription) *recBus {
	b := &recBus{done: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	go func() {
		for m := range sub.C() {
			b.mu.Lock()
			b.msgs = append(b.msgs, m)
			b.cond.Broadcast()
			b.mu.Unlock()
		}
		b.mu.Lock()
		close(b.done)
		b.cond.Broadcast()
		b.mu.Unlock()
	}()
	return b
}

func (b *recBus) wait() { <-b.done }

// all returns the messages so far that match.
func (b *recBus) all(match func(element.Message) bool) []element.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []element.Message
	for _, m := range b.msgs {
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}

// waitFor waits (up to 10 s) for a message that matches; nil if none came.
func (b *recBus) waitFor(match func(element.Message) bool) element.Message {
	deadline := time.AfterFunc(10*time.Second, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer deadline.Stop()
	start := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for _, m := range b.msgs {
			if match(m) {
				return m
			}
		}
		if time.Since(start) >= 10*time.Second {
			return nil
		}
		select {
		case <-b.done:
			return nil
		default:
		}
		b.cond.Wait()
	}
}

func isType[T element.Message](m element.Message) bool {
	_, ok := m.(T)
	return ok
}
