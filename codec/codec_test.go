package codec_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
)

func TestLookup(t *testing.T) {
	cases := []struct {
		mime      string
		want      string
		kind      element.Kind
		clock     uint32
		channels  uint16
		pt        uint8
		static    bool
		keyframes bool
		rtp       bool
	}{
		{"video/VP8", codec.MIMEVP8, element.KindVideo, 90000, 0, 96, false, true, true},
		{"VIDEO/vp8", codec.MIMEVP8, element.KindVideo, 90000, 0, 96, false, true, true},
		{"video/vp9", codec.MIMEVP9, element.KindVideo, 90000, 0, 98, false, true, true},
		{"video/h264", codec.MIMEH264, element.KindVideo, 90000, 0, 102, false, true, true},
		{"video/av1", codec.MIMEAV1, element.KindVideo, 90000, 0, 45, false, true, true},
		{"audio/OPUS", codec.MIMEOpus, element.KindAudio, 48000, 2, 111, false, false, true},
		{"audio/pcmu", codec.MIMEPCMU, element.KindAudio, 8000, 1, 0, true, false, true},
		{"audio/pcma", codec.MIMEPCMA, element.KindAudio, 8000, 1, 8, true, false, true},
		{"audio/g722", codec.MIMEG722, element.KindAudio, 8000, 1, 9, true, false, true},
		{"audio/aac", codec.MIMEAAC, element.KindAudio, 48000, 2, 97, false, false, false},
		{"audio/mpeg4-generic", codec.MIMEAAC, element.KindAudio, 48000, 2, 97, false, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.mime, func(t *testing.T) {
			c, ok := codec.Lookup(tc.mime)
			require.True(t, ok)
			assert.Equal(t, tc.want, c.MIME)
			assert.Equal(t, tc.kind, c.Kind)
			assert.Equal(t, tc.clock, c.ClockRate)
			assert.Equal(t, tc.channels, c.Channels)
			assert.Equal(t, tc.pt, c.PayloadType)
			assert.Equal(t, tc.static, c.StaticPayloadType)
			assert.Equal(t, tc.keyframes, c.Keyframes)
			assert.Equal(t, tc.keyframes, c.MarkerEndsFrame)
			assert.Equal(t, tc.rtp, c.RTP)
			require.NotEmpty(t, c.FmtpVariants)
			assert.Equal(t, c.Fmtp, c.FmtpVariants[0])
			for _, f := range []element.Format{element.FormatRTP, element.FormatSample, element.FormatRaw} {
				caps := c.Caps(f)
				assert.True(t, caps.IsFixed(), "%v", caps)
				assert.Equal(t, tc.kind, caps.Kind)
				assert.Equal(t, f, caps.Format)
			}
			assert.Equal(t, c.Fmtp, c.Caps(element.FormatRTP).Fmtp)
			assert.Empty(t, c.Caps(element.FormatSample).Fmtp)
			assert.True(t, c.Matches(c.Caps(element.FormatRTP)))
		})
	}
	_, ok := codec.Lookup("video/nope")
	assert.False(t, ok)
	assert.Len(t, codec.Codecs(), len(cases)-2)
}

func TestH264Variants(t *testing.T) {
	c, _ := codec.Lookup(codec.MIMEH264)
	modes := map[string][]int{}
	for _, f := range c.FmtpVariants {
		p, ok := codec.FmtpParam(f, "profile-level-id")
		require.True(t, ok)
		modes[p] = append(modes[p], codec.H264PacketizationMode(f))
	}
	assert.Equal(t, map[string][]int{"42e01f": {1, 0}, "64001f": {1, 0}}, modes, "constrained baseline and high, modes 1 and 0")
	assert.Equal(t, 1, codec.H264PacketizationMode(c.Fmtp))
}

func TestFmtp(t *testing.T) {
	cases := []struct {
		fmtp, key, val string
		ok             bool
		mode           int
	}{
		{"packetization-mode=1;profile-level-id=42e01f", "packetization-mode", "1", true, 1},
		{"profile-level-id=42e01f; Packetization-Mode=0", "packetization-mode", "0", true, 0},
		{"profile-level-id=42e01f", "packetization-mode", "", false, 0},
		{"", "packetization-mode", "", false, 0},
		{"packetization-mode=2", "packetization-mode", "2", true, 2},
		{"minptime=10;useinbandfec=1", "useinbandfec", "1", true, 0},
	}
	for _, tc := range cases {
		v, ok := codec.FmtpParam(tc.fmtp, tc.key)
		assert.Equal(t, tc.ok, ok, tc.fmtp)
		assert.Equal(t, tc.val, v, tc.fmtp)
		assert.Equal(t, tc.mode, codec.H264PacketizationMode(tc.fmtp), tc.fmtp)
	}
}

func TestOpusDuration(t *testing.T) {
	cases := []struct {
		name   string
		packet []byte
		want   time.Duration
		err    bool
	}{
		{"SILK NB 10 ms", []byte{0 << 3}, 10 * time.Millisecond, false},
		{"SILK WB 60 ms", []byte{11 << 3}, 60 * time.Millisecond, false},
		{"hybrid FB 20 ms", []byte{15 << 3}, 20 * time.Millisecond, false},
		{"CELT FB 2.5 ms", []byte{28 << 3}, 2500 * time.Microsecond, false},
		{"two frames, code 1", []byte{31<<3 | 1}, 40 * time.Millisecond, false},
		{"two frames, code 2", []byte{31<<3 | 2, 1}, 40 * time.Millisecond, false},
		{"code 3, 6 frames of 20 ms", []byte{31<<3 | 3, 6}, 120 * time.Millisecond, false},
		{"code 3, too long", []byte{31<<3 | 3, 7}, 0, true},
		{"code 3, no count", []byte{31<<3 | 3}, 0, true},
		{"code 3, zero frames", []byte{31<<3 | 3, 0}, 0, true},
		{"empty", nil, 0, true},
	}
	for _, tc := range cases {
		d, err := codec.OpusDuration(tc.packet)
		if tc.err {
			assert.Error(t, err, tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, d, tc.name)
	}
}

func TestNewErrors(t *testing.T) {
	aac, _ := codec.Lookup(codec.MIMEAAC)
	_, err := codec.NewDepayloader("d", aac.Caps(element.FormatRTP))
	assert.ErrorIs(t, err, codec.ErrUnknownCodec)
	_, err = codec.NewPayloader("p", aac.Caps(element.FormatRTP))
	assert.ErrorIs(t, err, codec.ErrUnknownCodec)
	_, err = codec.NewDepayloader("d", element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/x-nope"})
	assert.ErrorIs(t, err, codec.ErrUnknownCodec)

	vp8 := rtpCaps(t, codec.MIMEVP8)
	_, err = codec.NewPayloader("p", vp8, codec.WithMTU(10))
	assert.Error(t, err)
	_, err = codec.NewPayloader("p", vp8, codec.WithPayloadType(128))
	assert.Error(t, err)
	_, err = codec.NewDepayloader("d", vp8, codec.WithMaxFrameSize(0))
	assert.Error(t, err)
	c, _ := codec.Lookup(codec.MIMEVP8)
	_, err = codec.NewPayloader("p", c.Caps(element.FormatSample))
	assert.Error(t, err, "a payloader makes RTP caps")
	h264 := rtpCaps(t, codec.MIMEH264)
	h264.Fmtp = "packetization-mode=2"
	_, err = codec.NewPayloader("p", h264)
	assert.Error(t, err, "interleaved mode")
}

func TestElementPads(t *testing.T) {
	vp8 := rtpCaps(t, codec.MIMEVP8)
	d, err := codec.NewDepayloader("d", vp8)
	require.NoError(t, err)
	assert.True(t, d.SinkPad().IsInline())
	caps, ok := d.SrcPad().Caps()
	require.True(t, ok)
	c, _ := codec.Lookup(codec.MIMEVP8)
	assert.Equal(t, c.Caps(element.FormatSample), caps)
	assert.Equal(t, codec.MIMEVP8, d.Codec().MIME)

	p, err := codec.NewPayloader("p", vp8, codec.WithQueue(8, element.Live), codec.WithSSRC(7), codec.WithPayloadType(101))
	require.NoError(t, err)
	assert.False(t, p.SinkPad().IsInline())
	caps, ok = p.SrcPad().Caps()
	require.True(t, ok)
	assert.Equal(t, vp8, caps)
	assert.Equal(t, uint32(7), p.SSRC())
	assert.Equal(t, uint8(101), p.PayloadType())
	p.SinkPad().Close()
}

// TestPayloaderMode0Oversize: in packetization-mode 0 a NAL unit larger
// than a packet cannot be sent; the sample is refused whole.
func TestPayloaderMode0Oversize(t *testing.T) {
	h264 := rtpCaps(t, codec.MIMEH264)
	h264.Fmtp = "packetization-mode=0"
	p, err := codec.NewPayloader("p", h264)
	require.NoError(t, err)
	c, _ := codec.Lookup(codec.MIMEH264)
	r := newRig(t, p, c.Caps(element.FormatSample), true)
	au := annexB([]byte{0x67, 1, 2}, make([]byte, 3000))
	au[len(au)-3000] = 0x65
	for i := len(au) - 2999; i < len(au); i++ {
		au[i] = 0xaa
	}
	r.in.Push(&element.Buffer{Data: au, Flags: element.FlagKeyframe})
	assert.Empty(t, r.bufs)
	assert.Equal(t, codec.PayloaderStats{Errors: 1}, p.Stats())
}

// TestKeyframeRequestsPassUpstream: a keyframe request from downstream
// crosses a depayloader and a payloader to their source.
func TestKeyframeRequestsPassUpstream(t *testing.T) {
	vp8 := rtpCaps(t, codec.MIMEVP8)
	d, err := codec.NewDepayloader("d", vp8)
	require.NoError(t, err)
	r := newRig(t, d, vp8, false)
	r.out.RequestKeyframe()
	r.out.SendUpstream(element.BitrateHint{BitsPerSecond: 1e6})
	assert.Equal(t, []element.Event{element.KeyframeRequest{}, element.BitrateHint{BitsPerSecond: 1e6}}, r.upstream)

	p, err := codec.NewPayloader("p", vp8)
	require.NoError(t, err)
	c, _ := codec.Lookup(codec.MIMEVP8)
	r = newRig(t, p, c.Caps(element.FormatSample), false)
	r.out.RequestKeyframe()
	assert.Equal(t, []element.Event{element.KeyframeRequest{}}, r.upstream)
}

// TestDepayloaderWaitsForKeyframe: a stream joined on delta frames yields
// nothing until its first keyframe, which it asks for.
func TestDepayloaderWaitsForKeyframe(t *testing.T) {
	for _, tc := range videoCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			samples := tc.gen(randFor(1), 12, 6)
			pkts := payloadAll(t, tc.caps, samples, payOpts(codec.DefaultMTU)...)
			frames := frameOf(pkts)
			start := 0
			for frames[start] < 2 {
				start++
			}
			r, d := depayloadAll(t, tc.caps, pkts[start:])
			// The first packet carries sample 2's PTS: the depayloader's
			// PTS go on from it, so they are the samples' own.
			assertSubset(t, samples, []int{6, 7, 8, 9, 10, 11}, r.bufs, 0)
			assert.Equal(t, uint64(4), d.Stats().DroppedFrames)
			assert.Positive(t, r.keyframeRequests())
		})
	}
}

// TestDepayloaderLateAndDuplicate: a packet repeated or arriving after a
// later one is ignored, not taken for a loss.
func TestDepayloaderLateAndDuplicate(t *testing.T) {
	tc := codecCases(t)[0]
	samples := tc.gen(randFor(2), 10, 10)
	pkts := payloadAll(t, tc.caps, samples, payOpts(codec.DefaultMTU)...)
	var feed []*element.Buffer
	for i, p := range pkts {
		feed = append(feed, p)
		if i%3 == 2 {
			feed = append(feed, p, pkts[i-1])
		}
	}
	r, d := depayloadAll(t, tc.caps, feed)
	assertSame(t, samples, r.bufs, tc.caps.ClockRate)
	st := d.Stats()
	assert.Zero(t, st.LostPackets)
	assert.Equal(t, uint64(2*(len(pkts)/3)), st.LatePackets)
}

// TestDepayloaderEOS: EOS drops a frame whose end never came and goes on
// downstream.
func TestDepayloaderEOS(t *testing.T) {
	tc := codecCases(t)[0]
	samples := tc.gen(randFor(3), 3, 10)
	pkts := payloadAll(t, tc.caps, samples, payOpts(codec.DefaultMTU)...)
	require.Greater(t, len(pkts), 3)
	d, err := codec.NewDepayloader("d", tc.caps)
	require.NoError(t, err)
	r := newRig(t, d, tc.caps, true)
	for _, p := range pkts[:len(pkts)-1] {
		r.in.Push(p)
	}
	require.NoError(t, r.in.PushEvent(element.EOSEvent{}))
	assert.Len(t, r.bufs, 2)
	assert.Contains(t, r.events, element.Event(element.EOSEvent{}))
	assert.Equal(t, uint64(1), d.Stats().DroppedFrames)
}

// TestDepayloaderPTSWrap: PTS keeps growing across an RTP timestamp wrap.
func TestDepayloaderPTSWrap(t *testing.T) {
	caps := rtpCaps(t, codec.MIMEPCMU)
	d, err := codec.NewDepayloader("d", caps)
	require.NoError(t, err)
	r := newRig(t, d, caps, true)
	ts := uint32(0xffffff00)
	for i := range 4 {
		b := &element.Buffer{Data: make([]byte, 160)}
		b.RTP.SequenceNumber, b.RTP.Timestamp = uint16(i), ts+uint32(i*160)
		r.in.Push(b)
	}
	require.Len(t, r.bufs, 4)
	for i, b := range r.bufs {
		assert.Equal(t, time.Duration(i)*20*time.Millisecond, b.PTS)
		assert.Equal(t, 20*time.Millisecond, b.Duration)
	}
}

// TestDepayloaderNewSSRC: a new SSRC is a new stream: what was in progress
// is dropped, and its frames come out from its first keyframe on.
func TestDepayloaderNewSSRC(t *testing.T) {
	tc := codecCases(t)[0]
	a := tc.gen(randFor(5), 5, 10)
	b := tc.gen(randFor(6), 5, 10)
	pa := payloadAll(t, tc.caps, a, payOpts(codec.DefaultMTU)...)
	pb := payloadAll(t, tc.caps, b, codec.WithSSRC(99), codec.WithSequenceNumber(7))
	// Stream a stops inside frame 3.
	frames := frameOf(pa)
	cut := slices.Index(frames, 3) + 1
	require.Equal(t, 3, frames[cut], "frame 3 has several packets")
	feed := append(append([]*element.Buffer(nil), pa[:cut]...), pb...)
	r, d := depayloadAll(t, tc.caps, feed)
	require.Len(t, r.bufs, 3+5)
	for i, s := range append(a[:3:3], b...) {
		assert.Equal(t, s.data, r.bufs[i].Data, "sample %d", i)
	}
	assert.NotZero(t, r.bufs[3].Flags&element.FlagDiscont)
	assert.Equal(t, uint64(1), d.Stats().DroppedFrames)
	assert.Zero(t, d.Stats().LostPackets)
}
