package pipeline_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
	"github.com/medley-go/medley/pipeline"
)

// Must hold 1: pads advertise caps lists; Connect links equal caps
// directly, fails with element.ErrIncompatibleCaps (naming both pads and
// caps) where caps cannot meet, negotiates late when the source's caps
// are not known yet, and inserts the registry's shortest converter chain.

// Fixed caps used by these tests.
var (
	capsVP8RTP  = element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/VP8", ClockRate: 90000}
	capsH264RTP = element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/H264", ClockRate: 90000}
	capsOpusRTP = element.Caps{Kind: element.KindAudio, Format: element.FormatRTP, Codec: "audio/opus", ClockRate: 48000, Channels: 2}
	capsDataMsg = element.Caps{Kind: element.KindData, Format: element.FormatMessage}
	// Intermediate codecs the fake converters pass through.
	capsMidRTP = element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/x-mid", ClockRate: 90000}
	capsAltA   = element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/x-alt-a", ClockRate: 90000}
	capsAltB   = element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/x-alt-b", ClockRate: 90000}
	// An RTP video template whose codec is not known yet (a WebRTC
	// endpoint before SDP negotiation).
	capsVideoRTPAny = element.Caps{Kind: element.KindVideo, Format: element.FormatRTP}
)

// fakeConverter turns caps in into caps out with an element that rewrites
// nothing: enough to prove that negotiation finds and inserts a chain.
type fakeConverter struct {
	name    string
	in, out element.Caps
	mu      sync.Mutex
	made    []string // names of the elements New made
}

func newFakeConverter(name string, in, out element.Caps) *fakeConverter {
	return &fakeConverter{name: name, in: in, out: out}
}

func (c *fakeConverter) Name() string { return c.name }

func (c *fakeConverter) Outputs(in element.Caps) []element.Caps {
	if in == c.in {
		return []element.Caps{c.out}
	}
	return nil
}

func (c *fakeConverter) New(name string, in, out element.Caps) (element.Element, error) {
	if in != c.in || out != c.out {
		return nil, errors.New("fake converter: asked for caps it does not make")
	}
	c.mu.Lock()
	c.made = append(c.made, name)
	c.mu.Unlock()
	return newRelabel(name, in, out), nil
}

func (c *fakeConverter) madeNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.made...)
}

// relabel is the fake converter's element: buffers pass unchanged from an
// inline sink pad accepting in to a src pad announcing out.
type relabel struct {
	element.Base
	sink, src *element.Pad
}

func newRelabel(name string, in, out element.Caps) *relabel {
	e := &relabel{Base: element.NewBase(name)}
	e.src = element.NewSrcPad("src", element.CapsList{out},
		element.WithEventHandler(func(ev element.Event) { e.sink.SendUpstream(ev) }))
	e.sink = element.NewSinkPad("sink", element.CapsList{in}, func(b *element.Buffer) error {
		e.src.Push(b)
		return nil
	}, element.Inline(), element.WithEventHandler(func(ev element.Event) {
		if _, isCaps := ev.(element.CapsEvent); !isCaps {
			_ = e.src.PushEvent(ev)
		}
	}))
	e.AddPad(e.sink, e.src)
	return e
}

// converterStats returns the stats of the elements negotiation inserted.
func converterStats(p *pipeline.Pipeline) []pipeline.ElementStats {
	var out []pipeline.ElementStats
	for _, e := range p.Stats().Elements {
		if e.Converter {
			out = append(out, e)
		}
	}
	return out
}

func isCapsEvent(ev element.Event) bool { _, ok := ev.(element.CapsEvent); return ok }

// firstCaps returns the caps of the first CapsEvent a sink got.
func firstCaps(t *testing.T, s *elementtest.Sink) element.Caps {
	t.Helper()
	ev, err := s.WaitEvent(testCtx(t), isCapsEvent)
	require.NoError(t, err)
	return ev.(element.CapsEvent).Caps
}

func TestConnectIncompatibleCaps(t *testing.T) {
	type connectFunc func(p *pipeline.Pipeline, src *element.AppSource, sink *elementtest.Sink) error
	connects := map[string]connectFunc{
		"ConnectPads": func(p *pipeline.Pipeline, src *element.AppSource, sink *elementtest.Sink) error {
			return p.ConnectPads(src.SrcPad(), sink.SinkPad())
		},
		"Connect/all": func(p *pipeline.Pipeline, src *element.AppSource, sink *elementtest.Sink) error {
			return p.Connect(src, sink, element.KindAll)
		},
		"Connect/src kind": func(p *pipeline.Pipeline, src *element.AppSource, sink *elementtest.Sink) error {
			return p.Connect(src, sink, src.SrcPad().Kind())
		},
	}
	withConverter := func() *pipeline.Registry {
		r := pipeline.NewRegistry()
		r.Register(newFakeConverter("vp8-to-h264", capsVP8RTP, capsH264RTP))
		return r
	}
	cases := []struct {
		name     string
		src      element.Caps
		sink     element.Caps
		registry *pipeline.Registry
		opts     []pipeline.Option
	}{
		{name: "audio into video", src: capsOpusRTP, sink: element.AnyVideo},
		{name: "data into audio", src: capsDataMsg, sink: element.AnyAudio},
		{name: "video into data", src: capsVP8RTP, sink: element.AnyData},
		{name: "video into audio", src: capsVP8RTP, sink: capsOpusRTP},
		{name: "codecs differ, no converter", src: capsVP8RTP, sink: capsH264RTP, registry: pipeline.NewRegistry()},
		{name: "formats differ, no converter", src: capsVP8RTP, sink: element.Caps{Kind: element.KindVideo, Format: element.FormatSample}, registry: pipeline.NewRegistry()},
		{name: "converter but WithoutTranscoding", src: capsVP8RTP, sink: capsH264RTP, registry: withConverter(), opts: []pipeline.Option{pipeline.WithoutTranscoding()}},
	}
	for _, tc := range cases {
		for cname, connect := range connects {
			t.Run(tc.name+"/"+cname, func(t *testing.T) {
				reg := tc.registry
				if reg == nil {
					reg = pipeline.NewRegistry()
				}
				p := newTestPipeline(t, append([]pipeline.Option{pipeline.WithRegistry(reg)}, tc.opts...)...)
				bus := recordBus(p, 0)
				src := element.NewAppSource("from", element.CapsList{tc.src})
				sink := elementtest.NewSink("to", element.CapsList{tc.sink})
				require.NoError(t, p.Add(src, sink))

				err := connect(p, src, sink)
				require.Error(t, err)
				assert.ErrorIs(t, err, element.ErrIncompatibleCaps)
				var lerr *element.LinkError
				assert.ErrorAs(t, err, &lerr, "a link failure is a *element.LinkError")
				msg := err.Error()
				for _, want := range []string{"from.src", "to.sink", tc.src.String(), tc.sink.String()} {
					assert.Contains(t, msg, want, "the error must name both pads and both caps")
				}

				assert.Nil(t, sink.SinkPad().Peer(), "a failed Connect must link nothing")
				assert.Empty(t, src.SrcPad().Sinks(), "a failed Connect must link nothing")
				assert.Empty(t, converterStats(p), "a failed Connect must insert no converter")
				require.NoError(t, p.Close())
				bus.waitClosed(t)
				assert.Empty(t, msgsOf[*element.ElementConnected](bus), "a failed Connect must not announce a connection")
			})
		}
	}
}

func TestConnectEqualCapsLinksDirectly(t *testing.T) {
	cases := []struct {
		name string
		src  element.Caps
		sink element.CapsList
	}{
		{"same fixed caps", capsVP8RTP, element.CapsList{capsVP8RTP}},
		{"any video", capsVP8RTP, element.CapsList{element.AnyVideo}},
		{"codec differing in case", capsVP8RTP, element.CapsList{{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/vp8"}}},
		{"second choice of a list", capsVP8RTP, element.CapsList{capsH264RTP, capsVP8RTP}},
		{"audio", capsOpusRTP, element.CapsList{element.AnyAudio}},
		{"data", capsDataMsg, element.CapsList{element.AnyData}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The registry could turn VP8 into H.264; it must not be used
			// when the caps meet.
			reg := pipeline.NewRegistry()
			reg.Register(newFakeConverter("vp8-to-h264", capsVP8RTP, capsH264RTP))
			p := newTestPipeline(t, pipeline.WithRegistry(reg))
			bus := recordBus(p, 0)
			src := element.NewAppSource("from", element.CapsList{tc.src})
			sink := elementtest.NewSink("to", tc.sink)
			require.NoError(t, p.Add(src, sink))
			require.NoError(t, p.Connect(src, sink, element.KindAll))

			assert.Same(t, src.SrcPad(), sink.SinkPad().Peer(), "equal caps link the pads directly")
			assert.Len(t, p.Stats().Elements, 2, "no element may be inserted")
			assert.Empty(t, converterStats(p))
			assert.NotContains(t, p.DOT(), "converter")

			require.NoError(t, p.Start(testCtx(t)))
			for i := range 3 {
				src.PushSample([]byte{0, 0, 0, byte(i), 0, 0, 0, 1}, 0, 0, element.FlagKeyframe)
			}
			require.NoError(t, sink.WaitCount(testCtx(t), 3))
			assert.Equal(t, tc.src, firstCaps(t, sink), "the sink gets the source's caps")

			require.NoError(t, p.Close())
			bus.waitClosed(t)
			assert.Len(t, msgsOf[*element.ElementConnected](bus), 1)
			for _, m := range msgsOf[*element.TranscodingStateChanged](bus) {
				assert.NotEqual(t, element.Transcoding, m.State, "a direct link must not announce transcoding")
			}
		})
	}
}

// TestConnectBeforeCapsKnown connects a source whose codec is not known
// yet (as a WebRTC endpoint before SDP negotiation): Connect succeeds, and
// negotiation happens at SetCaps; caps the sink refuses, with no converter,
// surface as an Error naming the link, and caps it accepts link.
func TestConnectBeforeCapsKnown(t *testing.T) {
	start := time.Now()
	p := newTestPipeline(t, pipeline.WithRegistry(pipeline.NewRegistry()))
	bus := recordBus(p, 0)
	cam := element.NewAppSource("cam", element.CapsList{capsVideoRTPAny})
	player := elementtest.NewSink("player", element.CapsList{capsH264RTP})
	require.NoError(t, p.Add(cam, player))
	_, known := cam.SrcPad().Caps()
	require.False(t, known, "precondition: the source's caps are not known")
	require.NoError(t, p.Connect(cam, player, element.KindVideo), "Connect must succeed before the source knows its caps")
	awaitMsg[*element.ElementConnected](t, bus, nil)
	require.NoError(t, p.Start(testCtx(t)))

	// VP8: the sink takes only H.264, and nothing converts.
	require.NoError(t, cam.SetCaps(capsVP8RTP))
	e := awaitMsg[*element.Error](t, bus, nil)
	assertStamped(t, e, "cam", start)
	assert.ErrorIs(t, e.Err, element.ErrIncompatibleCaps)
	assert.Contains(t, e.Pad+" "+e.Err.Error(), "cam.src", "the Error must name the link's src pad")
	assert.Contains(t, e.Err.Error(), "player.sink", "the Error must name the link's sink pad")
	assert.Contains(t, e.Err.Error(), capsVP8RTP.String(), "the Error must name the caps refused")
	assert.Nil(t, player.SinkPad().Peer(), "a link that failed to negotiate must carry nothing")

	// H.264: now the caps meet and the link carries media.
	require.NoError(t, cam.SetCaps(capsH264RTP))
	assert.Same(t, cam.SrcPad(), player.SinkPad().Peer(), "H.264 links directly")
	for i := range 3 {
		cam.PushSample([]byte{0, 0, 0, byte(i), 0, 0, 0, 1}, 0, 0, 0)
	}
	require.NoError(t, player.WaitCount(testCtx(t), 3))
	assert.Equal(t, capsH264RTP, firstCaps(t, player))
	assert.Equal(t, 3, player.Count(), "no VP8 buffer may have reached the H.264 sink")
}

// TestConnectInsertsConverter connects a VP8 source to an H.264-only sink
// with a fake VP8→H.264 converter registered.
func TestConnectInsertsConverter(t *testing.T) {
	start := time.Now()
	conv := newFakeConverter("vp8-to-h264", capsVP8RTP, capsH264RTP)
	reg := pipeline.NewRegistry()
	reg.Register(conv)
	p := newTestPipeline(t, pipeline.WithRegistry(reg))
	bus := recordBus(p, 0)
	cam := elementtest.NewSource("cam", elementtest.SourceConfig{Caps: capsVP8RTP, Manual: true, FrameSize: 1000})
	player := elementtest.NewSink("player", element.CapsList{capsH264RTP})
	require.NoError(t, p.Add(cam, player))
	require.NoError(t, p.Connect(cam, player, element.KindVideo))

	m := awaitMsg(t, bus, func(m *element.TranscodingStateChanged) bool { return m.State == element.Transcoding })
	assertStamped(t, m, "cam", start)
	assert.Equal(t, "cam.src", m.Source)
	assert.Equal(t, "player.sink", m.Sink)
	assert.Equal(t, capsVP8RTP, m.From)
	assert.Equal(t, capsH264RTP, m.To)
	require.Len(t, m.Chain, 1)
	assert.Equal(t, conv.madeNames(), m.Chain, "the chain names the converter element made")
	name := m.Chain[0]

	convs := converterStats(p)
	require.Len(t, convs, 1, "the converter appears in Stats")
	assert.Equal(t, name, convs[0].Name)
	el := p.Element(name)
	require.NotNil(t, el, "the converter is an element of the pipeline")
	assert.Same(t, cam.SrcPad(), el.ElementBase().Pad("sink").Peer(), "source → converter")
	assert.Same(t, el.ElementBase().Pad("src"), player.SinkPad().Peer(), "converter → sink")
	dot := p.DOT()
	assert.Contains(t, dot, name, "the converter appears in DOT")
	assert.Contains(t, dot, "converter", "DOT marks inserted converters")

	require.NoError(t, p.Start(testCtx(t)))
	cam.Emit(10)
	require.NoError(t, player.WaitCount(testCtx(t), 10), "buffers must reach the sink through the converter")
	assert.Equal(t, capsH264RTP, firstCaps(t, player), "the sink sees the converter's caps")
	for i, r := range player.Received() {
		assert.Equal(t, uint32(i), r.Frame, "buffers in order")
	}
	cs, ok := p.Stats().Element(name)
	require.True(t, ok)
	assert.Equal(t, uint64(10), cs.PacketsIn)
	assert.Equal(t, uint64(10), cs.PacketsOut)
	assert.Equal(t, uint64(10*1000), cs.BytesIn)
}

// TestConnectShortestChain registers two routes from VP8 to H.264, of three
// steps and of two; the shorter must be chosen, whatever the order of
// registration.
func TestConnectShortestChain(t *testing.T) {
	long := []*fakeConverter{
		newFakeConverter("vp8-to-alt-a", capsVP8RTP, capsAltA),
		newFakeConverter("alt-a-to-alt-b", capsAltA, capsAltB),
		newFakeConverter("alt-b-to-h264", capsAltB, capsH264RTP),
	}
	short := []*fakeConverter{
		newFakeConverter("vp8-to-mid", capsVP8RTP, capsMidRTP),
		newFakeConverter("mid-to-h264", capsMidRTP, capsH264RTP),
	}
	reg := pipeline.NewRegistry()
	for _, c := range append(append([]*fakeConverter(nil), long...), short...) {
		reg.Register(c)
	}
	p := newTestPipeline(t, pipeline.WithRegistry(reg))
	bus := recordBus(p, 0)
	cam := elementtest.NewSource("cam", elementtest.SourceConfig{Caps: capsVP8RTP, Manual: true, FrameSize: 1000})
	player := elementtest.NewSink("player", element.CapsList{capsH264RTP})
	require.NoError(t, p.Add(cam, player))
	require.NoError(t, p.Connect(cam, player, element.KindVideo))

	m := awaitMsg(t, bus, func(m *element.TranscodingStateChanged) bool { return m.State == element.Transcoding })
	require.Len(t, m.Chain, 2, "the two-step chain is the shortest")
	assert.Equal(t, short[0].madeNames(), m.Chain[:1])
	assert.Equal(t, short[1].madeNames(), m.Chain[1:])
	for _, c := range long {
		assert.Empty(t, c.madeNames(), "converter %s of the longer chain must not be used", c.Name())
	}
	assert.Len(t, converterStats(p), 2)
	first, second := p.Element(m.Chain[0]), p.Element(m.Chain[1])
	require.NotNil(t, first)
	require.NotNil(t, second)
	assert.Same(t, cam.SrcPad(), first.ElementBase().Pad("sink").Peer())
	assert.Same(t, first.ElementBase().Pad("src"), second.ElementBase().Pad("sink").Peer())
	assert.Same(t, second.ElementBase().Pad("src"), player.SinkPad().Peer())
	dot := p.DOT()
	for _, n := range m.Chain {
		assert.Contains(t, dot, n)
	}

	require.NoError(t, p.Start(testCtx(t)))
	cam.Emit(5)
	require.NoError(t, player.WaitCount(testCtx(t), 5))
	assert.Equal(t, capsH264RTP, firstCaps(t, player))
}

// TestConnectLateNegotiationInsertsConverter: the source's caps become
// known after Connect, while running; the chain is inserted then, and
// removed when the source switches to caps the sink takes.
func TestConnectLateNegotiationInsertsConverter(t *testing.T) {
	conv := newFakeConverter("vp8-to-h264", capsVP8RTP, capsH264RTP)
	reg := pipeline.NewRegistry()
	reg.Register(conv)
	p := newTestPipeline(t, pipeline.WithRegistry(reg))
	bus := recordBus(p, 0)
	cam := element.NewAppSource("cam", element.CapsList{capsVideoRTPAny})
	player := elementtest.NewSink("player", element.CapsList{capsH264RTP})
	require.NoError(t, p.Add(cam, player))
	require.NoError(t, p.Connect(cam, player, element.KindVideo))
	assert.Empty(t, converterStats(p), "no converter while the caps are unknown")
	require.NoError(t, p.Start(testCtx(t)))

	require.NoError(t, cam.SetCaps(capsVP8RTP))
	m := awaitMsg(t, bus, func(m *element.TranscodingStateChanged) bool { return m.State == element.Transcoding })
	assert.Equal(t, "cam", m.Element)
	assert.Equal(t, "cam.src", m.Source)
	assert.Equal(t, "player.sink", m.Sink)
	assert.Equal(t, capsVP8RTP, m.From)
	assert.Equal(t, capsH264RTP, m.To)
	require.Len(t, m.Chain, 1)
	assert.Equal(t, conv.madeNames(), m.Chain)
	convs := converterStats(p)
	require.Len(t, convs, 1)
	assert.Equal(t, m.Chain[0], convs[0].Name)
	assert.Contains(t, p.DOT(), m.Chain[0])

	for i := range 4 {
		cam.PushSample([]byte{0, 0, 0, byte(i), 0, 0, 0, 1}, 0, 0, 0)
	}
	require.NoError(t, player.WaitCount(testCtx(t), 4), "buffers must reach the sink through the late-inserted converter")
	assert.Equal(t, capsH264RTP, firstCaps(t, player))
	cs, ok := p.Stats().Element(m.Chain[0])
	require.True(t, ok)
	assert.Equal(t, uint64(4), cs.PacketsIn, "the buffers went through the converter")

	// The source switches to H.264: the converter goes, the link is direct.
	require.NoError(t, cam.SetCaps(capsH264RTP))
	off := awaitMsg(t, bus, func(m *element.TranscodingStateChanged) bool { return m.State == element.NotTranscoding })
	assert.Equal(t, "cam.src", off.Source)
	assert.Equal(t, "player.sink", off.Sink)
	assert.Empty(t, off.Chain)
	assert.Empty(t, converterStats(p), "the converter is removed")
	assert.Same(t, cam.SrcPad(), player.SinkPad().Peer())
	for i := range 4 {
		cam.PushSample([]byte{0, 0, 0, byte(4 + i), 0, 0, 0, 1}, 0, 0, 0)
	}
	require.NoError(t, player.WaitCount(testCtx(t), 8))
}

// TestConnectNegotiatesThroughPassThrough: caps learnt late travel down
// through an element (a PassThrough forwards the CapsEvent by SetCaps on
// its src pad), and the link after it is negotiated then.
func TestConnectNegotiatesThroughPassThrough(t *testing.T) {
	conv := newFakeConverter("vp8-to-h264", capsVP8RTP, capsH264RTP)
	reg := pipeline.NewRegistry()
	reg.Register(conv)
	p := newTestPipeline(t, pipeline.WithRegistry(reg))
	bus := recordBus(p, 0)
	cam := element.NewAppSource("cam", element.CapsList{capsVideoRTPAny})
	pass := element.NewPassThrough("pass", element.AnyVideo)
	player := elementtest.NewSink("player", element.CapsList{capsH264RTP})
	require.NoError(t, p.Add(cam, pass, player))
	require.NoError(t, p.Connect(cam, pass, element.KindVideo))
	require.NoError(t, p.Connect(pass, player, element.KindVideo))
	require.NoError(t, p.Start(testCtx(t)))

	require.NoError(t, cam.SetCaps(capsVP8RTP))
	for i := range 3 {
		cam.PushSample([]byte{0, 0, 0, byte(i), 0, 0, 0, 1}, 0, 0, 0)
	}
	m := awaitMsg(t, bus, func(m *element.TranscodingStateChanged) bool { return m.State == element.Transcoding })
	assert.Equal(t, "pass", m.Element)
	assert.Equal(t, "pass.src", m.Source)
	assert.Equal(t, "player.sink", m.Sink)
	assert.Equal(t, capsVP8RTP, m.From)
	assert.Equal(t, conv.madeNames(), m.Chain)
	require.NoError(t, player.WaitCount(testCtx(t), 3), "every buffer, the first included, goes through the converter")
	assert.Equal(t, capsH264RTP, firstCaps(t, player))
}

func TestRegistryChain(t *testing.T) {
	// A line of converters v0 → v1 → … → v8, each one step.
	step := func(i int) element.Caps {
		return element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/x-step" + string(rune('0'+i)), ClockRate: 90000}
	}
	line := func(r *pipeline.Registry, n int) {
		for i := range n {
			r.Register(newFakeConverter("step"+string(rune('0'+i)), step(i), step(i+1)))
		}
	}
	cases := []struct {
		name  string
		setup func(r *pipeline.Registry)
		from  element.Caps
		to    element.CapsList
		want  []string // converter names, nil: no chain
	}{
		{
			name:  "empty registry",
			setup: func(*pipeline.Registry) {},
			from:  capsVP8RTP, to: element.CapsList{capsH264RTP},
		},
		{
			name:  "one step",
			setup: func(r *pipeline.Registry) { r.Register(newFakeConverter("vp8-to-h264", capsVP8RTP, capsH264RTP)) },
			from:  capsVP8RTP, to: element.CapsList{capsH264RTP},
			want: []string{"vp8-to-h264"},
		},
		{
			name: "one step beats two registered first",
			setup: func(r *pipeline.Registry) {
				r.Register(newFakeConverter("vp8-to-mid", capsVP8RTP, capsMidRTP))
				r.Register(newFakeConverter("mid-to-h264", capsMidRTP, capsH264RTP))
				r.Register(newFakeConverter("vp8-to-h264", capsVP8RTP, capsH264RTP))
			},
			from: capsVP8RTP, to: element.CapsList{capsH264RTP},
			want: []string{"vp8-to-h264"},
		},
		{
			name: "two steps beat three registered first",
			setup: func(r *pipeline.Registry) {
				r.Register(newFakeConverter("vp8-to-alt-a", capsVP8RTP, capsAltA))
				r.Register(newFakeConverter("alt-a-to-alt-b", capsAltA, capsAltB))
				r.Register(newFakeConverter("alt-b-to-h264", capsAltB, capsH264RTP))
				r.Register(newFakeConverter("vp8-to-mid", capsVP8RTP, capsMidRTP))
				r.Register(newFakeConverter("mid-to-h264", capsMidRTP, capsH264RTP))
			},
			from: capsVP8RTP, to: element.CapsList{capsH264RTP},
			want: []string{"vp8-to-mid", "mid-to-h264"},
		},
		{
			name: "target list: any template will do",
			setup: func(r *pipeline.Registry) {
				r.Register(newFakeConverter("vp8-to-mid", capsVP8RTP, capsMidRTP))
			},
			from: capsVP8RTP, to: element.CapsList{capsH264RTP, {Kind: element.KindVideo, Codec: "video/x-mid"}},
			want: []string{"vp8-to-mid"},
		},
		{
			name:  "a chain of MaxChain steps is found",
			setup: func(r *pipeline.Registry) { line(r, pipeline.MaxChain) },
			from:  step(0), to: element.CapsList{step(pipeline.MaxChain)},
			want: func() []string {
				var n []string
				for i := range pipeline.MaxChain {
					n = append(n, "step"+string(rune('0'+i)))
				}
				return n
			}(),
		},
		{
			name:  "no chain longer than MaxChain",
			setup: func(r *pipeline.Registry) { line(r, pipeline.MaxChain+1) },
			from:  step(0), to: element.CapsList{step(pipeline.MaxChain + 1)},
		},
		{
			name: "converters never change the media kind",
			setup: func(r *pipeline.Registry) {
				r.Register(newFakeConverter("video-to-audio", capsVP8RTP, capsOpusRTP))
			},
			from: capsVP8RTP, to: element.CapsList{element.AnyAudio},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := pipeline.NewRegistry()
			tc.setup(r)
			steps, ok := r.Chain(tc.from, tc.to)
			if tc.want == nil {
				assert.False(t, ok, "no chain expected, got %d steps", len(steps))
				return
			}
			require.True(t, ok, "a chain exists")
			var names []string
			for _, s := range steps {
				names = append(names, s.Converter.Name())
			}
			assert.Equal(t, tc.want, names)
			// The steps join up: from → … → a caps the target accepts.
			in := tc.from
			for _, s := range steps {
				assert.Equal(t, in, s.In)
				in = s.Out
			}
			_, accepted := tc.to.Accepts(in)
			assert.True(t, accepted, "the chain ends in caps %v the target does not accept", in)
		})
	}
}

// TestConnectErrorNamesCaps checks the wording of a link error in full,
// so that a host can log it as is.
func TestConnectErrorNamesCaps(t *testing.T) {
	p := newTestPipeline(t)
	mic := element.NewAppSource("mic", element.CapsList{capsOpusRTP})
	screen := elementtest.NewSink("screen", element.CapsList{capsH264RTP})
	require.NoError(t, p.Add(mic, screen))
	err := p.ConnectPads(mic.SrcPad(), screen.SinkPad())
	require.ErrorIs(t, err, element.ErrIncompatibleCaps)
	msg := err.Error()
	iSrc, iSink := strings.Index(msg, "mic.src"), strings.Index(msg, "screen.sink")
	assert.True(t, iSrc >= 0 && iSink > iSrc, "the error names the src pad, then the sink pad: %q", msg)
	assert.Contains(t, msg, capsOpusRTP.String())
	assert.Contains(t, msg, capsH264RTP.String())
}

// A sink pad that narrows its templates after it was connected (a WebRTC
// endpoint once the peer has chosen its codec) gets a converter chain where
// its source no longer fits, and loses it when the templates widen again.
func TestSetTemplatesRenegotiates(t *testing.T) {
	conv := newFakeConverter("vp8-to-h264", capsVP8RTP, capsH264RTP)
	reg := pipeline.NewRegistry()
	reg.Register(conv)
	p := newTestPipeline(t, pipeline.WithRegistry(reg))
	bus := recordBus(p, 0)
	cam := element.NewAppSource("cam", element.CapsList{capsVP8RTP})
	peer := elementtest.NewSink("peer", element.CapsList{capsVideoRTPAny})
	require.NoError(t, p.Add(cam, peer))
	require.NoError(t, p.Connect(cam, peer, element.KindVideo))
	require.NoError(t, p.Start(testCtx(t)))
	assert.Same(t, cam.SrcPad(), peer.SinkPad().Peer(), "any RTP video: linked directly")

	require.NoError(t, peer.SinkPad().SetTemplates(element.CapsList{capsH264RTP}))
	m := awaitMsg(t, bus, func(m *element.TranscodingStateChanged) bool { return m.State == element.Transcoding })
	assert.Equal(t, "peer.sink", m.Sink)
	assert.Equal(t, capsH264RTP, m.To)
	require.Len(t, converterStats(p), 1)
	cam.PushSample([]byte{0, 0, 0, 1, 0, 0, 0, 1}, 0, 0, 0)
	require.NoError(t, peer.WaitCount(testCtx(t), 1))
	assert.Equal(t, capsH264RTP, firstCaps(t, peer), "the sink sees what the converter makes")

	require.NoError(t, peer.SinkPad().SetTemplates(element.CapsList{capsVideoRTPAny}))
	awaitMsg(t, bus, func(m *element.TranscodingStateChanged) bool { return m.State == element.NotTranscoding })
	assert.Empty(t, converterStats(p))
	assert.Same(t, cam.SrcPad(), peer.SinkPad().Peer())

	err := peer.SinkPad().SetTemplates(element.CapsList{{Kind: element.KindAudio}})
	require.ErrorIs(t, err, element.ErrIncompatibleCaps, "a pad keeps its kind")
}
