package codec_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
)

// rig wires one element between a src pad the test pushes into and an
// inline sink pad that keeps what comes out.
type rig struct {
	in, out  *element.Pad
	keep     bool
	bufs     []*element.Buffer // Ref'd, released by Cleanup
	events   []element.Event   // downstream events at out
	upstream []element.Event   // upstream events that reached in
	count    int
	// onBuffer, if set, sees every buffer that comes out.
	onBuffer func(*element.Buffer)
}

func newRig(tb testing.TB, el element.Element, inCaps element.Caps, keep bool) *rig {
	tb.Helper()
	r := &rig{keep: keep}
	r.in = element.NewSrcPad("in", element.CapsList{inCaps},
		element.WithEventHandler(func(ev element.Event) { r.upstream = append(r.upstream, ev) }),
		element.WithKeyframeInterval(0))
	require.NoError(tb, r.in.SetCaps(inCaps))
	var sink, src *element.Pad
	for _, p := range el.Pads() {
		if p.Direction() == element.Sink {
			sink = p
		} else {
			src = p
		}
	}
	require.NotNil(tb, sink)
	require.NotNil(tb, src)
	require.NoError(tb, r.in.Link(sink))
	r.out = element.NewSinkPad("out", src.Templates(), r.chain, element.Inline(),
		element.WithEventHandler(func(ev element.Event) { r.events = append(r.events, ev) }))
	require.NoError(tb, src.Link(r.out))
	tb.Cleanup(func() {
		r.release()
		if c, ok := el.(element.Closer); ok {
			require.NoError(tb, c.Close())
		}
	})
	return r
}

func (r *rig) chain(b *element.Buffer) error {
	r.count++
	if r.onBuffer != nil {
		r.onBuffer(b)
	}
	if r.keep {
		r.bufs = append(r.bufs, b.Ref())
	}
	return nil
}

func (r *rig) release() {
	for _, b := range r.bufs {
		b.Unref()
	}
	r.bufs = nil
}

// keyframeRequests counts the keyframe requests that reached the rig's
// src pad.
func (r *rig) keyframeRequests() int {
	n := 0
	for _, ev := range r.upstream {
		if _, ok := ev.(element.KeyframeRequest); ok {
			n++
		}
	}
	return n
}

// sample is one access unit of a test stream.
type sample struct {
	data []byte
	key  bool
	pts  time.Duration
	dur  time.Duration // expected from the depayloader (audio)
}

func (s sample) buffer() *element.Buffer {
	b := &element.Buffer{Data: s.data, PTS: s.pts}
	if s.key {
		b.Flags = element.FlagKeyframe
	}
	return b
}

// payloadAll runs samples through a payloader for RTP caps out and returns
// the packets (Ref'd until the test ends).
func payloadAll(tb testing.TB, out element.Caps, samples []sample, opts ...codec.Option) []*element.Buffer {
	tb.Helper()
	p, err := codec.NewPayloader("pay", out, opts...)
	require.NoError(tb, err)
	c, _ := codec.Lookup(out.Codec)
	r := newRig(tb, p, c.Caps(element.FormatSample), true)
	for _, s := range samples {
		r.in.Push(s.buffer())
	}
	pkts := append([]*element.Buffer(nil), r.bufs...)
	for _, b := range pkts {
		b.Ref()
	}
	tb.Cleanup(func() {
		for _, b := range pkts {
			b.Unref()
		}
	})
	return pkts
}

// depayloadAll runs packets through a depayloader for RTP caps in and
// returns its rig (with the samples in bufs) and the depayloader.
func depayloadAll(tb testing.TB, in element.Caps, pkts []*element.Buffer) (*rig, *codec.Depayloader) {
	tb.Helper()
	d, err := codec.NewDepayloader("depay", in)
	require.NoError(tb, err)
	r := newRig(tb, d, in, true)
	for _, b := range pkts {
		r.in.Push(b)
	}
	return r, d
}

func rtpCaps(tb testing.TB, mime string) element.Caps {
	tb.Helper()
	c, ok := codec.Lookup(mime)
	require.True(tb, ok, mime)
	return c.Caps(element.FormatRTP)
}

// randBytes returns n random bytes, none zero, so that no Annex B start
// code appears by chance.
func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(1 + r.IntN(255))
	}
	return b
}

// framePTS is the PTS of frame i at fps frames per second, as a duration
// the RTP clock can represent.
func framePTS(i int, fps int) time.Duration {
	return time.Duration(i) * time.Second / time.Duration(fps)
}

// A stream generator makes n samples; every keyEvery-th is a keyframe
// (the first always).
type streamGen func(r *rand.Rand, n, keyEvery int) []sample

func videoStream(frame func(r *rand.Rand, i int, key bool) []byte) streamGen {
	return func(r *rand.Rand, n, keyEvery int) []sample {
		out := make([]sample, n)
		for i := range out {
			key := i%keyEvery == 0
			out[i] = sample{data: frame(r, i, key), key: key, pts: framePTS(i, 30)}
		}
		return out
	}
}

// videoSizeCap, when set, makes videoSize pick small frames (fuzz seeds,
// which the fuzzer minimizes faster when small).
var videoSizeCap int

// videoSize picks a frame size: keyframes large, deltas from tiny to
// several packets.
func videoSize(r *rand.Rand, i int, key bool) int {
	if videoSizeCap > 0 {
		return 12 + r.IntN(videoSizeCap)
	}
	if key {
		return 4000 + r.IntN(6000)
	}
	switch i % 4 {
	case 0:
		return 12 + r.IntN(40)
	case 1:
		return 300 + r.IntN(800)
	default:
		return 1000 + r.IntN(4000)
	}
}

// vp8Frame makes a VP8 frame: a frame tag whose P bit says key or not,
// and for keyframes the start code and a size (RFC 6386 section 9.1).
func vp8Frame(r *rand.Rand, i int, key bool) []byte {
	b := randBytes(r, videoSize(r, i, key))
	if key {
		b[0] &^= 1
		copy(b[3:], []byte{0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01})
	} else {
		b[0] |= 1
	}
	return b
}

// h264NAL makes a NAL unit of type typ and size bytes; a slice says in
// first_mb_in_slice whether it is the picture's first.
func h264NAL(r *rand.Rand, typ byte, size int, firstSlice bool) []byte {
	b := randBytes(r, size)
	var nri byte
	switch typ {
	case 5, 7, 8:
		nri = 0x60
	case 1:
		nri = 0x40
	}
	b[0] = nri | typ
	if (typ == 1 || typ == 5) && size > 1 {
		if firstSlice {
			b[1] |= 0x80
		} else {
			b[1] = b[1]&^0x80 | 0x01
		}
	}
	return b
}

func annexB(nals ...[]byte) []byte {
	var out []byte
	for _, n := range nals {
		out = append(out, 0, 0, 0, 1)
		out = append(out, n...)
	}
	return out
}

// h264Frame makes an access unit: keyframes SPS, PPS and an IDR slice
// (STAP-A, then FU-A); deltas one slice, an SEI and a small slice
// (STAP-A), or two slices.
func h264Frame(r *rand.Rand, i int, key bool) []byte {
	size := videoSize(r, i, key)
	if key {
		return annexB(h264NAL(r, 7, 12, false), h264NAL(r, 8, 4, false), h264NAL(r, 5, size, true))
	}
	switch i % 3 {
	case 0:
		return annexB(h264NAL(r, 6, 20, false), h264NAL(r, 1, 30+size%200, true))
	case 1:
		return annexB(h264NAL(r, 1, size, true))
	default:
		return annexB(h264NAL(r, 1, size/2+2, true), h264NAL(r, 1, size/2+2, false))
	}
}

// bitWriter writes big-endian bit fields.
type bitWriter struct {
	b []byte
	n int
}

func (w *bitWriter) put(v uint32, bits int) {
	for i := bits - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte(v>>i&1) << (7 - w.n%8)
		w.n++
	}
}

// vp9Frame makes a VP9 frame with an uncompressed header the payloader
// reads (VP9 bitstream section 6.2): profile 0, and for keyframes the sync
// code, color config and a 640x360 size.
func vp9Frame(r *rand.Rand, i int, key bool) []byte {
	var w bitWriter
	w.put(2, 2) // frame_marker
	w.put(0, 2) // profile 0
	w.put(0, 1) // show_existing_frame
	if key {
		w.put(0, 1) // frame_type KEY_FRAME
		w.put(1, 1) // show_frame
		w.put(0, 1) // error_resilient_mode
		w.put(0x498342, 24)
		w.put(1, 3) // color_space BT.601
		w.put(0, 1) // color_range
		w.put(640-1, 16)
		w.put(360-1, 16)
	} else {
		w.put(1, 1)
		w.put(1, 1)
		w.put(0, 1)
	}
	size := max(videoSize(r, i, key), len(w.b)+1)
	return append(w.b, randBytes(r, size-len(w.b))...)
}

func leb128(v int) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// av1OBU makes an OBU with obu_size (and an extension byte if ext).
func av1OBU(typ byte, payload []byte, ext bool) []byte {
	hdr := typ<<3 | 0x02
	b := []byte{hdr}
	if ext {
		b[0] |= 0x04
		b = append(b, 0x08)
	}
	b = append(b, leb128(len(payload))...)
	return append(b, payload...)
}

// av1Frame makes a temporal unit: a temporal delimiter, then for keyframes
// a sequence header and a frame, for deltas one frame (with an extension
// header every fifth), or a frame header and a tile group.
func av1Frame(r *rand.Rand, i int, key bool) []byte {
	out := []byte{0x12, 0x00}
	size := videoSize(r, i, key)
	if key {
		out = append(out, av1OBU(1, randBytes(r, 11), false)...)
		return append(out, av1OBU(6, randBytes(r, size), false)...)
	}
	switch i % 5 {
	case 0:
		return append(out, av1OBU(6, randBytes(r, size), true)...)
	case 1:
		out = append(out, av1OBU(3, randBytes(r, 20), false)...)
		return append(out, av1OBU(4, randBytes(r, size), false)...)
	}
	return append(out, av1OBU(6, randBytes(r, size), false)...)
}

func audioStream(frame func(r *rand.Rand) []byte, dur time.Duration) streamGen {
	return func(r *rand.Rand, n, _ int) []sample {
		out := make([]sample, n)
		for i := range out {
			out[i] = sample{data: frame(r), key: true, pts: time.Duration(i) * dur, dur: dur}
		}
		return out
	}
}

// opusFrame makes an Opus packet of one 20 ms hybrid frame (TOC config 15,
// code 0).
func opusFrame(r *rand.Rand) []byte {
	b := randBytes(r, 40+r.IntN(200))
	b[0] = 15 << 3
	return b
}

// byteAudioFrame makes 20 ms of G.711 or G.722 (160 bytes).
func byteAudioFrame(r *rand.Rand) []byte { return randBytes(r, 160) }

// codecCase is one codec of the shared tables.
type codecCase struct {
	name  string
	caps  element.Caps // RTP caps
	gen   streamGen
	video bool
	// check looks at the packets of a round trip (optional).
	check func(t *testing.T, pkts []*element.Buffer)
}

func codecCases(tb testing.TB) []codecCase {
	h264Mode0 := rtpCaps(tb, codec.MIMEH264)
	h264Mode0.Fmtp = "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"
	return []codecCase{
		{name: "vp8", caps: rtpCaps(tb, codec.MIMEVP8), gen: videoStream(vp8Frame), video: true},
		{name: "h264", caps: rtpCaps(tb, codec.MIMEH264), gen: videoStream(h264Frame), video: true, check: checkH264Aggregation},
		{name: "h264-mode0", caps: h264Mode0, gen: videoStream(func(r *rand.Rand, i int, key bool) []byte {
			// Mode 0 sends single NAL units only: keep them under the MTU.
			if key {
				return annexB(h264NAL(r, 7, 12, false), h264NAL(r, 8, 4, false), h264NAL(r, 5, 200+r.IntN(100), true))
			}
			return annexB(h264NAL(r, 1, 20+r.IntN(200), true), h264NAL(r, 1, 20+r.IntN(200), false))
		}), video: true, check: checkH264SingleNAL},
		{name: "vp9", caps: rtpCaps(tb, codec.MIMEVP9), gen: videoStream(vp9Frame), video: true},
		{name: "av1", caps: rtpCaps(tb, codec.MIMEAV1), gen: videoStream(av1Frame), video: true},
		{name: "opus", caps: rtpCaps(tb, codec.MIMEOpus), gen: audioStream(opusFrame, 20*time.Millisecond)},
		{name: "pcmu", caps: rtpCaps(tb, codec.MIMEPCMU), gen: audioStream(byteAudioFrame, 20*time.Millisecond)},
		{name: "pcma", caps: rtpCaps(tb, codec.MIMEPCMA), gen: audioStream(byteAudioFrame, 20*time.Millisecond)},
		{name: "g722", caps: rtpCaps(tb, codec.MIMEG722), gen: audioStream(byteAudioFrame, 20*time.Millisecond)},
	}
}

// checkH264Aggregation asserts the H.264 payloader used STAP-A and FU-A.
func checkH264Aggregation(t *testing.T, pkts []*element.Buffer) {
	var stapA, fuA int
	for _, p := range pkts {
		switch p.Data[0] & 0x1f {
		case 24:
			stapA++
		case 28:
			fuA++
		}
	}
	require.Positive(t, stapA, "STAP-A packets")
	require.Positive(t, fuA, "FU-A packets")
}

func checkH264SingleNAL(t *testing.T, pkts []*element.Buffer) {
	for _, p := range pkts {
		typ := p.Data[0] & 0x1f
		require.True(t, typ >= 1 && typ <= 23, "NAL type %d in packetization-mode 0", typ)
	}
}
