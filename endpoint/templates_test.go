package endpoint_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/pipeline"
)

// relabelConverter stands for a transcoder in a registry given to the
// pipeline: it turns in into out by relabelling the buffers.
type relabelConverter struct{ in, out element.Caps }

func (c relabelConverter) Name() string { return "fake-transcoder" }

func (c relabelConverter) Outputs(in element.Caps) []element.Caps {
	if in == c.in {
		return []element.Caps{c.out}
	}
	return nil
}

func (c relabelConverter) New(name string, in, out element.Caps) (element.Element, error) {
	if in != c.in || out != c.out {
		return nil, errors.New("fake transcoder: asked for caps it does not make")
	}
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
	return e, nil
}

type relabel struct {
	element.Base
	sink, src *element.Pad
}

func rtpCaps(t *testing.T, mime string) element.Caps {
	t.Helper()
	cd, ok := codec.Lookup(mime)
	require.True(t, ok, mime)
	return cd.Caps(element.FormatRTP)
}

// TestSinkTemplatesFollowNegotiation: a video sink pad takes every codec
// the endpoint offers until the peer, which takes only VP8, has answered;
// then it takes VP8 only, and the pipeline renegotiates the H.264 source
// connected to it before: with no transcoder it undoes the link and says
// why on the bus; with one it inserts it, and the peer receives VP8.
func TestSinkTemplatesFollowNegotiation(t *testing.T) {
	h264, vp8 := rtpCaps(t, codec.MIMEH264), rtpCaps(t, codec.MIMEVP8)
	for _, tc := range []struct {
		name      string
		registry  func() *pipeline.Registry
		transcode bool
	}{
		{name: "no transcoder", registry: pipeline.NewRegistry},
		{name: "transcoder", transcode: true, registry: func() *pipeline.Registry {
			r := pipeline.NewRegistry()
			r.Register(relabelConverter{in: h264, out: vp8})
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ep, err := endpoint.NewWebRTC("ep", loopbackOptions(endpoint.WithCompleteSDP())...)
			require.NoError(t, err)
			sink := ep.Pad("video_sink_0")
			_, ok := sink.Templates().Accepts(h264)
			require.True(t, ok, "before negotiation the sink takes H.264: %v", sink.Templates())

			p, err := pipeline.New(pipeline.WithRegistry(tc.registry()))
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, p.Close()) })
			bus := newBusLog(t, p.Subscribe(1024), nil)
			src := element.NewAppSource("h264", element.CapsList{h264})
			require.NoError(t, p.Add(ep, src))
			require.NoError(t, p.ConnectPads(src.SrcPad(), sink))
			assert.Same(t, src.SrcPad(), sink.Peer(), "linked directly while the sink takes H.264")
			require.NoError(t, p.Start(ctx))

			peer := newPeer(t, peerConfig{video: []string{webrtc.MimeTypeVP8}})
			answer, err := ep.ProcessOffer(ctx, peer.offer(ctx))
			require.NoError(t, err)
			assert.Equal(t, element.CapsList{{Kind: element.KindVideo, Format: element.FormatRTP, Codec: vp8.Codec, ClockRate: 90000}},
				sink.Templates(), "after negotiation the sink takes what the peer accepted")
			ac, ok := ep.Pad("audio_sink_0").Templates().Accepts(rtpCaps(t, codec.MIMEOpus))
			assert.True(t, ok && ac.Codec == codec.MIMEOpus, "the audio sink takes Opus: %v", ep.Pad("audio_sink_0").Templates())
			assert.Len(t, ep.Pad("audio_sink_0").Templates(), 1)

			if !tc.transcode {
				require.Eventually(t, func() bool {
					return len(bus.find(func(m element.Message) bool {
						e, ok := m.(*element.Error)
						return ok && e.Pad == "h264.src" && errors.Is(e.Err, element.ErrIncompatibleCaps)
					})) > 0
				}, waitFor, tick, "an element.Error names the link negotiation undid")
				e := bus.find(func(m element.Message) bool { _, ok := m.(*element.Error); return ok })[0].(*element.Error)
				msg := e.Err.Error()
				for _, want := range []string{"negotiate", "ep.video_sink_0", "video/H264", "video/VP8"} {
					assert.Contains(t, msg, want)
				}
				assert.Nil(t, sink.Peer(), "the H.264 source is no longer linked")
				return
			}

			require.Eventually(t, func() bool {
				return len(bus.find(func(m element.Message) bool {
					c, ok := m.(*element.TranscodingStateChanged)
					return ok && c.State == element.Transcoding && c.Sink == "ep.video_sink_0" && strings.EqualFold(c.To.Codec, vp8.Codec)
				})) > 0
			}, waitFor, tick, "a transcoder is inserted before the sink")
			require.NotNil(t, sink.Peer())
			assert.True(t, strings.HasPrefix(sink.Peer().FullName(), "h264-fake-transcoder"), "the sink is fed by %s", sink.Peer().FullName())

			require.NoError(t, peer.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 7, Marker: true}, Payload: make([]byte, 100)}
			require.Eventually(t, func() bool {
				pkt.SequenceNumber++
				pkt.Timestamp += 3000
				src.PushRTP(pkt, true)
				return peer.videoIn.Load() >= 10
			}, waitFor, tick, "the peer receives the transcoded video")
			assert.Empty(t, bus.find(func(m element.Message) bool { _, ok := m.(*element.Error); return ok }), "no errors")
		})
	}
}
