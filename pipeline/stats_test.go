package pipeline_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
	"github.com/medley-go/medley/pipeline"
)

// Must hold 8: per element and per pad counts of packets, bytes, drops and
// keyframe requests; DOT() renders with Graphviz.

func padStats(t *testing.T, s pipeline.Stats, elementName, pad string) element.PadStats {
	t.Helper()
	e, ok := s.Element(elementName)
	require.True(t, ok, "Stats lacks element %s", elementName)
	ps, ok := e.Pad(pad)
	require.True(t, ok, "Stats lacks pad %s.%s", elementName, pad)
	return ps
}

func elementStats(t *testing.T, s pipeline.Stats, name string) pipeline.ElementStats {
	t.Helper()
	e, ok := s.Element(name)
	require.True(t, ok, "Stats lacks element %s", name)
	return e
}

func TestStatsCountPacketsAndBytes(t *testing.T) {
	cases := []struct {
		name                 string
		cfg                  elementtest.SourceConfig
		wantPackets, wantLen uint64
	}{
		{
			name:        "RTP video, 3 packets a frame",
			cfg:         elementtest.SourceConfig{Caps: capsVP8RTP, Frames: 10, FrameSize: 3000, MTU: 1200},
			wantPackets: 30, wantLen: 30000, // 1200+1200+600 a frame
		},
		{
			name:        "RTP video, 1 packet a frame",
			cfg:         elementtest.SourceConfig{Caps: capsVP8RTP, Frames: 12, FrameSize: 1000, MTU: 1200},
			wantPackets: 12, wantLen: 12000,
		},
		{
			name:        "RTP audio",
			cfg:         elementtest.SourceConfig{Caps: capsOpusRTP, Frames: 25, FrameSize: 160},
			wantPackets: 25, wantLen: 4000,
		},
		{
			name:        "encoded samples",
			cfg:         elementtest.SourceConfig{Caps: element.Caps{Kind: element.KindVideo, Format: element.FormatSample, Codec: "video/VP8"}, Frames: 7, FrameSize: 5000},
			wantPackets: 7, wantLen: 35000,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPipeline(t)
			tc.cfg.Rate = -1
			src := elementtest.NewSource("src", tc.cfg)
			kind := tc.cfg.Caps.Kind
			anyCaps := element.Caps{Kind: kind}
			a := elementtest.NewSink("a", element.CapsList{anyCaps})
			b := elementtest.NewSink("b", element.CapsList{anyCaps}, elementtest.WithInline())
			require.NoError(t, p.Add(src, a, b))
			require.NoError(t, p.Connect(src, a, kind))
			require.NoError(t, p.Connect(src, b, kind))
			require.NoError(t, p.Start(testCtx(t)))
			for _, s := range []*elementtest.Sink{a, b} {
				_, err := s.WaitEvent(testCtx(t), func(ev element.Event) bool { _, ok := ev.(element.EOSEvent); return ok })
				require.NoError(t, err)
			}
			require.Equal(t, int(tc.wantPackets), src.Packets(), "precondition: what the source sent")

			st := p.Stats()
			require.Len(t, st.Elements, 3)
			sp := padStats(t, st, "src", "src")
			assert.Equal(t, "src.src", sp.Pad)
			assert.Equal(t, element.Src, sp.Direction)
			assert.Equal(t, kind, sp.Kind)
			assert.True(t, sp.HasCaps)
			assert.Equal(t, tc.cfg.Caps, sp.Caps)
			assert.Equal(t, tc.wantPackets, sp.Packets, "src pad packets")
			assert.Equal(t, tc.wantLen, sp.Bytes, "src pad bytes")
			se := elementStats(t, st, "src")
			assert.Equal(t, tc.wantPackets, se.PacketsOut)
			assert.Equal(t, tc.wantLen, se.BytesOut)
			assert.Zero(t, se.PacketsIn)
			assert.Zero(t, se.BytesIn)
			assert.False(t, se.Converter)

			for _, name := range []string{"a", "b"} {
				kp := padStats(t, st, name, "sink")
				assert.Equal(t, name+".sink", kp.Pad)
				assert.Equal(t, element.Sink, kp.Direction)
				assert.Equal(t, kind, kp.Kind)
				assert.True(t, kp.HasCaps, "a sink pad knows the caps delivered")
				assert.Equal(t, tc.cfg.Caps, kp.Caps)
				assert.Equal(t, tc.wantPackets, kp.Packets, "%s packets", kp.Pad)
				assert.Equal(t, tc.wantLen, kp.Bytes, "%s bytes", kp.Pad)
				assert.Zero(t, kp.Drops)
				assert.Zero(t, kp.Queued)
				assert.Zero(t, kp.KeyframeRequests)
				ke := elementStats(t, st, name)
				assert.Equal(t, tc.wantPackets, ke.PacketsIn)
				assert.Equal(t, tc.wantLen, ke.BytesIn)
				assert.Zero(t, ke.PacketsOut)
				assert.Zero(t, ke.Drops)
			}
		})
	}
}

// TestStatsCountDrops fills a sink's queue in a pipeline that is not
// started, so that nothing drains it and the numbers are exact.
func TestStatsCountDrops(t *testing.T) {
	cases := []struct {
		name string
		caps element.Caps
		// what a queue of 4 does with 10 one-packet frames
		wantDrops, wantKeyframeRequests uint64
	}{
		// Audio: the newest buffer is dropped, no keyframe asked.
		{"audio", capsOpusRTP, 6, 0},
		// Video: the 5th packet finds the queue full and asks for a
		// keyframe, once; the rest are dropped waiting for it.
		{"video", capsVP8RTP, 6, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPipeline(t)
			src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: tc.caps, Manual: true, FrameSize: 100})
			sink := elementtest.NewSink("sink", element.CapsList{{Kind: tc.caps.Kind}}, elementtest.WithQueue(4, element.Live))
			require.NoError(t, p.Add(src, sink))
			require.NoError(t, p.Connect(src, sink, tc.caps.Kind))
			src.Emit(10)

			st := p.Stats()
			kp := padStats(t, st, "sink", "sink")
			assert.Equal(t, tc.wantDrops, kp.Drops, "sink pad drops")
			assert.Equal(t, 4, kp.Queued, "sink pad queued")
			assert.Zero(t, kp.Packets, "nothing delivered: the pipeline is not running")
			assert.Equal(t, tc.wantKeyframeRequests, kp.KeyframeRequests, "keyframe requests the sink pad sent")
			ke := elementStats(t, st, "sink")
			assert.Equal(t, tc.wantDrops, ke.Drops, "element drops")
			assert.Equal(t, tc.wantKeyframeRequests, ke.KeyframeRequests, "element keyframe requests")

			sp := padStats(t, st, "src", "src")
			assert.Equal(t, uint64(10), sp.Packets)
			assert.Equal(t, uint64(1000), sp.Bytes)
			assert.Zero(t, sp.Drops)
			assert.Equal(t, tc.wantKeyframeRequests, sp.KeyframeRequests, "keyframe requests the src pad passed on")
			assert.Equal(t, int(tc.wantKeyframeRequests), src.KeyframeRequests(), "keyframe requests that reached the source")
		})
	}
}

func TestStatsCountKeyframeRequests(t *testing.T) {
	cases := []struct {
		name       string
		perSink    []int // requests each sink sends, within one interval
		wantPassed uint64
	}{
		{"one sink, one request", []int{1}, 1},
		{"one sink, five requests", []int{5}, 1},
		{"three sinks", []int{3, 2, 4}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPipeline(t)
			src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: capsVP8RTP, Manual: true, KeyframeRequestInterval: 1 << 62})
			require.NoError(t, p.Add(src))
			var sinks []*elementtest.Sink
			var total uint64
			for i, n := range tc.perSink {
				s := elementtest.NewSink("sink"+string(rune('a'+i)), element.CapsList{element.AnyVideo})
				require.NoError(t, p.Add(s))
				require.NoError(t, p.Connect(src, s, element.KindVideo))
				sinks = append(sinks, s)
				total += uint64(n)
			}
			require.NoError(t, p.Start(testCtx(t)))
			for i, n := range tc.perSink {
				for range n {
					require.True(t, sinks[i].RequestKeyframe())
				}
			}

			st := p.Stats()
			for i, n := range tc.perSink {
				name := sinks[i].Name()
				assert.Equal(t, uint64(n), padStats(t, st, name, "sink").KeyframeRequests, "requests %s sent", name)
				assert.Equal(t, uint64(n), elementStats(t, st, name).KeyframeRequests)
			}
			sp := padStats(t, st, "src", "src")
			assert.Equal(t, tc.wantPassed, sp.KeyframeRequests, "requests the src pad passed to its element")
			assert.Equal(t, total-tc.wantPassed, sp.KeyframeRequestsMerged, "requests merged")
			assert.Equal(t, tc.wantPassed, elementStats(t, st, "src").KeyframeRequests)
			assert.Equal(t, int(tc.wantPassed), src.KeyframeRequests())
		})
	}
}

// renderDOT runs Graphviz on a DOT text. It fails the test, never skips it,
// when dot is missing: `make test` installs graphviz.
func renderDOT(t *testing.T, dot, format string) ([]byte, error) {
	t.Helper()
	path, err := exec.LookPath("dot")
	require.NoError(t, err, "Graphviz's dot is needed (make test installs graphviz)")
	cmd := exec.Command(path, "-T"+format)
	cmd.Stdin = strings.NewReader(dot)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New(err.Error() + ": " + stderr.String())
	}
	if stderr.Len() > 0 {
		return out.Bytes(), errors.New("dot warned: " + stderr.String())
	}
	return out.Bytes(), nil
}

// svgTexts returns the text lines of an SVG drawing.
func svgTexts(t *testing.T, svg []byte) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	d.Strict = false
	var texts []string
	in := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "dot made malformed SVG")
		switch tok := tok.(type) {
		case xml.StartElement:
			in = tok.Name.Local == "text"
			if in {
				texts = append(texts, "")
			}
		case xml.EndElement:
			in = false
		case xml.CharData:
			if in {
				texts[len(texts)-1] += string(tok)
			}
		}
	}
	return texts
}

// dotGraph is what `dot -Tjson0` says of a graph.
type dotGraph struct {
	Objects []struct {
		GVID  int    `json:"_gvid"`
		Name  string `json:"name"`
		Label string `json:"label"`
		Nodes []int  `json:"nodes"`
	} `json:"objects"`
	Edges []struct {
		Tail  int    `json:"tail"`
		Head  int    `json:"head"`
		Label string `json:"label"`
	} `json:"edges"`
}

// dotEnd is a pad as the rendered graph shows it.
type dotEnd struct{ element, pad, caps string }

// dotLink is an edge of the rendered graph.
type dotLink struct {
	from, to dotEnd
	caps     string
}

// lines splits a Graphviz label at its \n line breaks.
func lines(label string) []string { return strings.Split(label, `\n`) }

// parseDOTGraph reads pads (with their element, from the cluster holding
// them) and links from dot's JSON, and the cluster labels by element.
func parseDOTGraph(t *testing.T, js []byte) (pads map[int]dotEnd, links []dotLink, clusters map[string]string) {
	t.Helper()
	var g dotGraph
	require.NoError(t, json.Unmarshal(js, &g))
	pads = make(map[int]dotEnd)
	clusters = make(map[string]string)
	owner := make(map[int]string)
	for _, o := range g.Objects {
		if strings.HasPrefix(o.Name, "cluster") {
			name := lines(o.Label)[0]
			clusters[name] = o.Label
			for _, n := range o.Nodes {
				owner[n] = name
			}
		}
	}
	for _, o := range g.Objects {
		if strings.HasPrefix(o.Name, "cluster") {
			continue
		}
		l := lines(o.Label)
		require.Len(t, l, 2, "a pad's label is its name and caps: %q", o.Label)
		pads[o.GVID] = dotEnd{element: owner[o.GVID], pad: l[0], caps: l[1]}
	}
	for _, e := range g.Edges {
		links = append(links, dotLink{from: pads[e.Tail], to: pads[e.Head], caps: e.Label})
	}
	return pads, links, clusters
}

// TestDOTRendersGraph renders a running graph (fan-out, a converter, two
// kinds) with Graphviz and checks that the drawing shows every element,
// every pad with its caps, and every link with its caps.
func TestDOTRendersGraph(t *testing.T) {
	conv := newFakeConverter("vp8-to-h264", capsVP8RTP, capsH264RTP)
	reg := pipeline.NewRegistry()
	reg.Register(conv)
	p := newTestPipeline(t, pipeline.WithRegistry(reg), pipeline.WithName("call"))
	cam := elementtest.NewSource("cam", elementtest.SourceConfig{Caps: capsVP8RTP, Manual: true, FrameSize: 500})
	mic := elementtest.NewSource("mic", elementtest.SourceConfig{Caps: capsOpusRTP, Manual: true})
	screen := elementtest.NewSink("screen", element.CapsList{element.AnyVideo})
	player := elementtest.NewSink("player", element.CapsList{capsH264RTP})
	speaker := elementtest.NewSink("speaker", element.CapsList{element.AnyAudio})
	require.NoError(t, p.Add(cam, mic, screen, player, speaker))
	require.NoError(t, p.Connect(cam, screen, element.KindVideo))
	require.NoError(t, p.Connect(cam, player, element.KindVideo))
	require.NoError(t, p.Connect(mic, speaker, element.KindAudio))
	require.Len(t, conv.madeNames(), 1, "precondition: a converter was inserted")
	convName := conv.madeNames()[0]
	require.NoError(t, p.Start(testCtx(t)))
	cam.Emit(2)
	mic.Emit(2)
	for _, s := range []*elementtest.Sink{screen, player, speaker} {
		require.NoError(t, s.WaitCount(testCtx(t), 2))
	}

	dot := p.DOT()
	svg, err := renderDOT(t, dot, "svg")
	require.NoError(t, err, "dot -Tsvg must accept DOT():\n%s", dot)
	require.Contains(t, string(svg), "<svg")
	texts := svgTexts(t, svg)
	for _, el := range p.Elements() {
		assert.Contains(t, dot, el.Name())
		assert.Contains(t, texts, el.Name(), "the drawing shows element %s", el.Name())
		for _, pad := range el.Pads() {
			c, ok := pad.Caps()
			require.True(t, ok, "precondition: %s knows its caps", pad.FullName())
			assert.Contains(t, texts, c.String(), "the drawing shows the caps of %s", pad.FullName())
		}
	}
	for _, want := range []string{"src", "sink", capsVP8RTP.String(), capsH264RTP.String(), capsOpusRTP.String()} {
		assert.Contains(t, texts, want)
	}

	js, err := renderDOT(t, dot, "json0")
	require.NoError(t, err)
	pads, links, clusters := parseDOTGraph(t, js)
	var gotPads []dotEnd
	for _, pd := range pads {
		gotPads = append(gotPads, pd)
	}
	vp8, h264, opus := capsVP8RTP.String(), capsH264RTP.String(), capsOpusRTP.String()
	assert.ElementsMatch(t, []dotEnd{
		{"cam", "src", vp8},
		{"mic", "src", opus},
		{"screen", "sink", vp8},
		{"player", "sink", h264},
		{"speaker", "sink", opus},
		{convName, "sink", vp8},
		{convName, "src", h264},
	}, gotPads, "every pad, in its element, with its caps")
	assert.ElementsMatch(t, []dotLink{
		{dotEnd{"cam", "src", vp8}, dotEnd{"screen", "sink", vp8}, vp8},
		{dotEnd{"cam", "src", vp8}, dotEnd{convName, "sink", vp8}, vp8},
		{dotEnd{convName, "src", h264}, dotEnd{"player", "sink", h264}, h264},
		{dotEnd{"mic", "src", opus}, dotEnd{"speaker", "sink", opus}, opus},
	}, links, "every link, with its caps")
	assert.Contains(t, clusters[convName], "converter", "the converter is marked as one")
	for _, name := range []string{"cam", "mic", "screen", "player", "speaker"} {
		assert.NotContains(t, clusters[name], "converter", "%s is no converter", name)
	}

	// Before Start, and after Close, DOT renders too.
	require.NoError(t, p.Close())
	_, err = renderDOT(t, p.DOT(), "svg")
	assert.NoError(t, err, "DOT after Close")
	empty := newTestPipeline(t)
	_, err = renderDOT(t, empty.DOT(), "svg")
	assert.NoError(t, err, "DOT of an empty pipeline")
}

// TestDOTQuotesNames gives elements and the pipeline names that DOT must
// quote; the drawing must still render and show them as they are.
func TestDOTQuotesNames(t *testing.T) {
	cases := []struct {
		name         string
		pipelineName string
		elementName  string
	}{
		{"spaces and quotes", "my call", `cam "front"`},
		{"DOT punctuation", "a;b{c}", `x -> y; [z]`},
		{"markup", "<b>&amp;", `<i>peer</i> & co`},
		{"unicode", "réunion", "caméra 東京"},
		{"backslash", `C:\calls`, `C:\media\cam`},
		{"trailing backslash", `room\`, `peer\`},
		{"escaped quote", `a\"b`, `c\"d`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPipeline(t, pipeline.WithName(tc.pipelineName))
			src := elementtest.NewSource(tc.elementName, elementtest.SourceConfig{Caps: capsVP8RTP, Manual: true})
			sink := elementtest.NewSink("sink", element.CapsList{element.AnyVideo})
			require.NoError(t, p.Add(src, sink))
			require.NoError(t, p.Connect(src, sink, element.KindVideo))
			dot := p.DOT()
			svg, err := renderDOT(t, dot, "svg")
			require.NoError(t, err, "dot -Tsvg must accept DOT():\n%s", dot)
			assert.Contains(t, svgTexts(t, svg), tc.elementName, "the drawing shows the element's name as it is; DOT:\n%s", dot)
		})
	}
}
