package endpoint_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/internal/ffmpeg"
	"github.com/medley-go/medley/pipeline"
)

// layerFeed is a src pad standing for one simulcast layer of a receiving
// endpoint, with the upstream events that reach it.
type layerFeed struct {
	pad *element.Pad
	seq uint16
	mu  sync.Mutex
	up  []element.Event
}

func newLayerFeed(t *testing.T, sel *endpoint.SimulcastSelector, rid string) *layerFeed {
	t.Helper()
	f := &layerFeed{}
	caps := element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: codec.MIMEVP8, ClockRate: 90000}
	f.pad = element.NewSrcPad(rid, element.CapsList{caps}, element.WithKeyframeInterval(time.Nanosecond),
		element.WithEventHandler(func(ev element.Event) {
			f.mu.Lock()
			f.up = append(f.up, ev)
			f.mu.Unlock()
		}))
	require.NoError(t, f.pad.SetCaps(caps))
	require.NoError(t, f.pad.Link(sel.SinkPad(rid)))
	return f
}

// push sends one packet of frame ts; key marks a keyframe's first packet,
// last the frame's end.
func (f *layerFeed) push(ts uint32, key, last bool, size int) {
	b := &element.Buffer{RTP: rtp.Header{Version: 2, PayloadType: 96, SSRC: 0x1000 + uint32(len(f.pad.Name())), SequenceNumber: f.seq, Timestamp: ts, Marker: last}, Data: make([]byte, size)}
	f.seq++
	if key {
		b.Flags |= element.FlagKeyframe
	}
	if last {
		b.Flags |= element.FlagEndOfFrame
	}
	f.pad.Push(b)
}

func (f *layerFeed) keyframeRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, ev := range f.up {
		if _, ok := ev.(element.KeyframeRequest); ok {
			n++
		}
	}
	return n
}

// selectorOut collects what a selector forwards.
type selectorOut struct {
	pad  *element.Pad
	mu   sync.Mutex
	pkts []*element.Buffer
}

func newSelectorOut(t *testing.T, sel *endpoint.SimulcastSelector) *selectorOut {
	t.Helper()
	o := &selectorOut{}
	o.pad = element.NewSinkPad("out", sel.SrcPad().Templates(), func(b *element.Buffer) error {
		o.mu.Lock()
		o.pkts = append(o.pkts, b.Clone())
		o.mu.Unlock()
		return nil
	}, element.Inline())
	require.NoError(t, sel.SrcPad().Link(o.pad))
	return o
}

func (o *selectorOut) all() []*element.Buffer {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*element.Buffer(nil), o.pkts...)
}

// TestSimulcastSelectorSwitchesOnKeyframe: the selector starts at the
// first layer's first keyframe, and a switch waits for the new layer's
// keyframe (which it asks for) while the old layer goes on; the output is
// one stream (one SSRC, sequence numbers without a jump except the one
// that marks the old layer's unfinished frame as lost, timestamps that
// go forward).
func TestSimulcastSelectorSwitchesOnKeyframe(t *testing.T) {
	sel, err := endpoint.NewSimulcastSelector("sel", []string{"h", "l"})
	require.NoError(t, err)
	h, l := newLayerFeed(t, sel, "h"), newLayerFeed(t, sel, "l")
	out := newSelectorOut(t, sel)

	// Before h's first keyframe nothing goes out, and h is asked for one.
	h.push(0, false, false, 1000)
	h.push(0, false, true, 1000)
	l.push(0, true, true, 300)
	assert.Empty(t, out.all())
	assert.Equal(t, 1, h.keyframeRequests())
	assert.Zero(t, l.keyframeRequests())

	// h's keyframe starts the output.
	h.push(3000, true, false, 1000)
	h.push(3000, false, true, 1000)
	l.push(3000, false, true, 300)
	h.push(6000, false, false, 1000)
	cur, next := sel.Layer()
	assert.Equal(t, [2]string{"h", "h"}, [2]string{cur, next})
	require.Len(t, out.all(), 3)

	// Select l: l is asked for a keyframe; until it comes h goes on and l's
	// other packets are dropped.
	require.NoError(t, sel.Select("l"))
	assert.Equal(t, 1, l.keyframeRequests())
	cur, next = sel.Layer()
	assert.Equal(t, [2]string{"h", "l"}, [2]string{cur, next})
	l.push(6000, false, true, 300)
	assert.Len(t, out.all(), 3)
	// l's keyframe comes while h's frame at 6000 is unfinished.
	l.push(9000, true, false, 300)
	l.push(9000, false, true, 300)
	h.push(6000, false, true, 1000) // the rest of h's frame: dropped now
	h.push(9000, true, true, 1000)  // and h's keyframes too
	l.push(12000, false, true, 300)
	cur, next = sel.Layer()
	assert.Equal(t, [2]string{"l", "l"}, [2]string{cur, next})

	pkts := out.all()
	require.Len(t, pkts, 6)
	sizes := make([]int, len(pkts))
	for i, p := range pkts {
		sizes[i] = len(p.Data)
		assert.Equal(t, pkts[0].RTP.SSRC, p.RTP.SSRC, "one SSRC")
		if i > 0 {
			assert.GreaterOrEqual(t, int32(p.RTP.Timestamp-pkts[i-1].RTP.Timestamp), int32(0), "timestamps go forward")
		}
	}
	assert.Equal(t, []int{1000, 1000, 1000, 300, 300, 300}, sizes)
	assert.True(t, pkts[3].Keyframe(), "the switch is at l's keyframe")
	assert.Greater(t, int32(pkts[3].RTP.Timestamp-pkts[2].RTP.Timestamp), int32(0))
	seqs := []uint16{}
	for _, p := range pkts {
		seqs = append(seqs, p.RTP.SequenceNumber-pkts[0].RTP.SequenceNumber)
	}
	// h's unfinished frame ends in a gap of one: the depayloader drops it.
	assert.Equal(t, []uint16{0, 1, 2, 4, 5, 6}, seqs)

	// A keyframe request from downstream goes to the layer forwarded.
	before := l.keyframeRequests()
	require.True(t, out.pad.RequestKeyframe())
	assert.Equal(t, before+1, l.keyframeRequests())

	err = sel.Select("m")
	require.ErrorIs(t, err, endpoint.ErrUnknownLayer)
	assert.ErrorContains(t, err, `"m"`)
	_, err = endpoint.NewSimulcastSelector("sel", nil)
	require.Error(t, err)
	_, err = endpoint.NewSimulcastSelector("sel", []string{"a", "a"})
	require.Error(t, err)
}

// TestSimulcastSelectorFollowsBitrateHints: with WithAutoSelect, a hint
// under the high layer's measured bitrate moves to the low layer, and a
// hint lifted moves back, each at the layer's keyframe.
func TestSimulcastSelectorFollowsBitrateHints(t *testing.T) {
	sel, err := endpoint.NewSimulcastSelector("sel", []string{"h", "l"}, endpoint.WithAutoSelect())
	require.NoError(t, err)
	h, l := newLayerFeed(t, sel, "h"), newLayerFeed(t, sel, "l")
	out := newSelectorOut(t, sel)

	// About 800 and 80 kbit/s for 1.2 s, keyframes at the start only.
	ts := uint32(0)
	for i := range 12 {
		for p := range 10 {
			h.push(ts, i == 0 && p == 0, p == 9, 1000)
		}
		l.push(ts, i == 0, true, 1000)
		ts += 9000
		time.Sleep(100 * time.Millisecond)
	}
	rates := sel.Bitrates()
	t.Logf("measured bitrates: %v", rates)
	require.Greater(t, rates["h"], int64(400_000))
	require.Less(t, rates["l"], int64(200_000))
	cur, _ := sel.Layer()
	require.Equal(t, "h", cur)

	// 300 kbit/s: only l fits.
	require.True(t, out.pad.SendUpstream(element.BitrateHint{BitsPerSecond: 300_000}))
	_, next := sel.Layer()
	assert.Equal(t, "l", next)
	assert.Equal(t, 1, l.keyframeRequests())
	l.push(ts, true, true, 1000)
	cur, _ = sel.Layer()
	assert.Equal(t, "l", cur)

	// No limit: back to h at its keyframe.
	require.True(t, out.pad.SendUpstream(element.BitrateHint{BitsPerSecond: 0}))
	_, next = sel.Layer()
	assert.Equal(t, "h", next)
	h.push(ts+9000, false, true, 1000)
	cur, _ = sel.Layer()
	assert.Equal(t, "l", cur, "no switch before h's keyframe")
	h.push(ts+18000, true, true, 1000)
	cur, _ = sel.Layer()
	assert.Equal(t, "h", cur)
}

// TestSimulcastSelectorFromPeer: a pion peer sends two simulcast layers of
// real VP8 (640x360 and 320x180, a keyframe every 10 frames) to a WebRTC
// endpoint; a selector behind its rid pads feeds a raw-video sink (the
// pipeline inserts the depayloader and decoder). Frames decode at the
// high size, then, after Select("l"), at the low one, none corrupt, and
// the bus tells each switch.
func TestSimulcastSelectorFromPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	layers := map[string][]ffmpeg.Sample{}
	for rid, size := range map[string][2]int{"h": {640, 360}, "l": {320, 180}} {
		s, err := ffmpeg.SynthesizeVideo(ffmpeg.EncoderConfig{Codec: "vp8", Width: size[0], Height: size[1], BitRate: 500_000, KeyframeInterval: 10}, 30, 2*time.Second)
		require.NoError(t, err)
		layers[rid] = s
	}

	ep, err := endpoint.NewWebRTC("ep", loopbackOptions(endpoint.WithCompleteSDP(), endpoint.WithoutMedia(), endpoint.WithVideo(endpoint.RecvOnly))...)
	require.NoError(t, err)
	sel, err := endpoint.NewSimulcastSelector("sel", []string{"h", "l"})
	require.NoError(t, err)
	var (
		mu      sync.Mutex
		sizes   []string
		corrupt int
	)
	sink := element.NewAppSink("frames", element.CapsList{codec.RawVideoCaps(0, 0, codec.PixelFormatI420)}, element.WithBufferFunc(func(b *element.Buffer) {
		f := b.Frame.(*codec.Frame)
		v := f.Video()
		mu.Lock()
		if n := len(sizes); n == 0 || sizes[n-1] != v.String() {
			sizes = append(sizes, v.String())
		}
		if f.Corrupt() {
			corrupt++
		}
		mu.Unlock()
	}))
	p, err := pipeline.New(pipeline.WithName("simulcast"))
	require.NoError(t, err)
	sub := p.Subscribe(256)
	require.NoError(t, p.Add(ep, sel, sink))
	require.NoError(t, p.Connect(sel, sink, element.KindVideo))
	bus := newBusLog(t, sub, func(m element.Message) {
		if pa, ok := m.(*endpoint.PadAdded); ok {
			pad := ep.Pad(pa.Pad[len("ep."):])
			rid := pad.Name()[len("video_0_"):]
			if err := p.ConnectPads(pad, sel.SinkPad(rid)); err != nil {
				t.Errorf("connect %s: %v", pa.Pad, err)
			}
		}
	})
	require.NoError(t, p.Start(ctx))
	defer func() { require.NoError(t, p.Close()) }()

	sp := newSimulcastPeer(ctx, t, ep, "h", "l")
	tracks := sp.layers

	// Send both layers at 30 fps, looping over the samples (each loop
	// starts on a keyframe), until ctx ends.
	var wg sync.WaitGroup
	defer wg.Wait()
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	wg.Add(1)
	go func() {
		defer wg.Done()
		pay := map[string]rtp.Packetizer{}
		for i, tr := range tracks {
			pay[tr.RID()] = rtp.NewPacketizer(1200, 96, uint32(i+1), &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
		}
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for f := 0; sendCtx.Err() == nil; f++ {
			for _, tr := range tracks {
				s := layers[tr.RID()]
				for _, pkt := range pay[tr.RID()].Packetize(s[f%len(s)].Data, 3000) {
					sp.write(tr, pkt)
				}
			}
			select {
			case <-sendCtx.Done():
			case <-tick.C:
			}
		}
	}()

	seen := func(size string, n int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(sizes) >= n && sizes[n-1] == size
		}
	}
	require.Eventually(t, seen("640x360 yuv420p", 1), 10*time.Second, 20*time.Millisecond, "frames of the high layer")
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, sel.Select("l"))
	require.Eventually(t, seen("320x180 yuv420p", 2), 5*time.Second, 20*time.Millisecond, "frames of the low layer after the switch")
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, sel.Select("h"))
	require.Eventually(t, seen("640x360 yuv420p", 3), 5*time.Second, 20*time.Millisecond, "back to the high layer")
	stopSending()

	mu.Lock()
	assert.Equal(t, []string{"640x360 yuv420p", "320x180 yuv420p", "640x360 yuv420p"}, sizes)
	assert.Zero(t, corrupt, "corrupt frames")
	mu.Unlock()
	changes := bus.find(func(m element.Message) bool { _, ok := m.(*endpoint.SimulcastLayerChanged); return ok })
	require.Len(t, changes, 3)
	var got []string
	for _, c := range changes {
		c := c.(*endpoint.SimulcastLayerChanged)
		got = append(got, c.From+">"+c.To)
	}
	assert.Equal(t, []string{">h", "h>l", "l>h"}, got)
}

// simulcastPeer is a pion peer sending one video track in simulcast
// layers (VP8) to a WebRTC endpoint.
type simulcastPeer struct {
	pc     *webrtc.PeerConnection
	layers []*webrtc.TrackLocalStaticRTP
	// The header extensions that name a packet's layer, which pion leaves
	// to the writer of a simulcast track.
	midID, ridID uint8
	mid          string
}

// newSimulcastPeer connects a peer sending layers rids to ep, which takes
// its offer; the peer closes at the end of the test.
func newSimulcastPeer(ctx context.Context, t *testing.T, ep *endpoint.WebRTC, rids ...string) *simulcastPeer {
	t.Helper()
	m := &webrtc.MediaEngine{}
	require.NoError(t, m.RegisterDefaultCodecs())
	ir := &interceptor.Registry{}
	require.NoError(t, webrtc.RegisterDefaultInterceptors(m, ir))
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(loopbackSettings())).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pc.GracefulClose()) })
	sp := &simulcastPeer{pc: pc}
	for _, rid := range rids {
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "sim", webrtc.WithRTPStreamID(rid))
		require.NoError(t, err)
		sp.layers = append(sp.layers, tr)
	}
	snd, err := pc.AddTrack(sp.layers[0])
	require.NoError(t, err)
	for _, l := range sp.layers[1:] {
		require.NoError(t, snd.AddEncoding(l))
	}
	go func() { // PLIs, reports: read and dropped
		for {
			if _, _, err := snd.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	o, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(o))
	<-gathered
	answer, err := ep.ProcessOffer(ctx, pc.LocalDescription().SDP)
	require.NoError(t, err)
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	for _, h := range snd.GetParameters().HeaderExtensions {
		switch h.URI {
		case sdp.SDESMidURI:
			sp.midID = uint8(h.ID)
		case sdp.SDESRTPStreamIDURI:
			sp.ridID = uint8(h.ID)
		}
	}
	require.NotZero(t, sp.midID)
	require.NotZero(t, sp.ridID)
	sp.mid = pc.GetTransceivers()[0].Mid()
	return sp
}

// write sends pkt on layer l, named by the mid and rid extensions.
func (sp *simulcastPeer) write(l *webrtc.TrackLocalStaticRTP, pkt *rtp.Packet) {
	_ = pkt.Header.SetExtension(sp.midID, []byte(sp.mid))
	_ = pkt.Header.SetExtension(sp.ridID, []byte(l.RID()))
	_ = l.WriteRTP(pkt)
}
