package endpoint

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
)

// fakeWriter stands for pion's write stream: it records what it is given
// and, as the TWCC interceptor does, adds a header extension.
type fakeWriter struct {
	hdrs     []rtp.Header
	payloads [][]byte
	ext      []byte
	keep     bool
}

func (w *fakeWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if err := h.SetExtension(3, w.ext); err != nil {
		return 0, err
	}
	if w.keep {
		w.hdrs = append(w.hdrs, h.Clone())
		w.payloads = append(w.payloads, payload)
	}
	return len(payload), nil
}

func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }

// fakeContext is the TrackLocalContext pion gives Bind.
type fakeContext struct {
	codecs []webrtc.RTPCodecParameters
	w      webrtc.TrackLocalWriter
}

func (c fakeContext) CodecParameters() []webrtc.RTPCodecParameters           { return c.codecs }
func (c fakeContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (c fakeContext) SSRC() webrtc.SSRC                                      { return 0xabcdef }
func (c fakeContext) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (c fakeContext) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (c fakeContext) WriteStream() webrtc.TrackLocalWriter                   { return c.w }
func (c fakeContext) ID() string                                             { return "binding" }
func (c fakeContext) RTCPReader() interceptor.RTCPReader                     { return nil }

var negotiated = []webrtc.RTPCodecParameters{
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "video/H264", ClockRate: 90000, SDPFmtpLine: "packetization-mode=1"}, PayloadType: 104},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "video/VP8", ClockRate: 90000}, PayloadType: 100},
}

func newTestSender(t testing.TB) (*sender, *fakeWriter) {
	t.Helper()
	cfg := defaultConfig()
	require.NoError(t, cfg.validate())
	e := &WebRTC{Base: element.NewBase("ep"), cfg: cfg}
	s := newSender(e, element.KindVideo, "video_sink_0")
	w := &fakeWriter{ext: []byte{0, 1}, keep: true}
	vp8, _ := codec.Lookup(codec.MIMEVP8)
	s.event(element.CapsEvent{Caps: vp8.Caps(element.FormatRTP)})
	_, err := s.Bind(fakeContext{codecs: negotiated, w: w})
	require.NoError(t, err)
	return s, w
}

// packet returns a buffer of source ssrc, with a header extension of its
// own, flagged keyframe if key.
func packet(ssrc uint32, seq uint16, ts uint32, key bool) *element.Buffer {
	b := &element.Buffer{Data: []byte{0x10, 1, 2, 3}}
	h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc, Marker: true}
	_ = h.SetExtension(1, []byte{0xaa})
	b.SetRTPHeader(&h)
	if key {
		b.Flags |= element.FlagKeyframe
	}
	return b
}

func TestSenderRewritesACopy(t *testing.T) {
	s, w := newTestSender(t)
	in := []*element.Buffer{
		packet(1, 100, 9000, false), // dropped: waiting for a keyframe
		packet(1, 101, 9000, true),
		packet(1, 102, 12000, false),
		packet(2, 7, 500, false), // new source: dropped until its keyframe
		packet(2, 8, 3500, true),
		packet(2, 9, 6500, false),
	}
	for _, b := range in {
		require.NoError(t, s.chain(b))
	}
	require.Len(t, w.hdrs, 4)
	for i, h := range w.hdrs {
		assert.Equal(t, uint32(0xabcdef), h.SSRC, "packet %d: the binding's SSRC", i)
		assert.Equal(t, uint8(100), h.PayloadType, "packet %d: VP8's negotiated payload type", i)
		assert.Equal(t, []uint8{3}, h.GetExtensionIDs(), "packet %d: only this link's extensions", i)
	}
	seqs := []uint16{w.hdrs[0].SequenceNumber, w.hdrs[1].SequenceNumber, w.hdrs[2].SequenceNumber, w.hdrs[3].SequenceNumber}
	assert.Equal(t, []uint16{101, 102, 103, 104}, seqs, "numbering continues across the source switch")
	assert.Greater(t, w.hdrs[2].Timestamp, w.hdrs[1].Timestamp)
	assert.Equal(t, w.hdrs[2].Timestamp+3000, w.hdrs[3].Timestamp, "the new source's timing is kept")
	for _, b := range in {
		assert.Equal(t, uint8(96), b.RTP.PayloadType, "the shared buffer is not modified")
		assert.Equal(t, []uint8{1}, b.RTP.GetExtensionIDs())
		assert.Contains(t, []uint32{1, 2}, b.RTP.SSRC)
	}
	assert.Equal(t, uint64(2), s.drops.Load())
}

func TestSenderDropsWhatThePeerRefused(t *testing.T) {
	s, w := newTestSender(t)
	vp9, _ := codec.Lookup(codec.MIMEVP9)
	s.event(element.CapsEvent{Caps: vp9.Caps(element.FormatRTP)})
	require.NoError(t, s.chain(packet(1, 1, 1, true)))
	assert.Empty(t, w.hdrs)
	assert.Equal(t, uint64(1), s.drops.Load())

	// Unbound: dropped too.
	s2, _ := newTestSender(t)
	require.NoError(t, s2.Unbind(fakeContext{}))
	require.NoError(t, s2.chain(packet(1, 1, 1, true)))
	assert.Equal(t, uint64(1), s2.drops.Load())
}

func TestSenderBindPicksTheSinkCodec(t *testing.T) {
	s, _ := newTestSender(t)
	// The pad has no caps (no source linked yet): Bind takes the peer's
	// first codec.
	c, err := s.Bind(fakeContext{codecs: negotiated, w: &fakeWriter{}})
	require.NoError(t, err)
	assert.Equal(t, "video/H264", c.MimeType)
	_, err = s.Bind(fakeContext{})
	assert.ErrorIs(t, err, webrtc.ErrUnsupportedCodec)

	h264 := element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/H264", ClockRate: 90000, Fmtp: "packetization-mode=0"}
	p := matchCodec(h264, append(negotiated, webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "video/H264", ClockRate: 90000, SDPFmtpLine: "profile-level-id=42e01f;packetization-mode=0"}, PayloadType: 106}))
	require.NotNil(t, p)
	assert.Equal(t, webrtc.PayloadType(106), p.PayloadType, "H.264 of the same packetization mode")
}

// TestSenderAllocs: sending allocates nothing per packet in steady state.
func TestSenderAllocs(t *testing.T) {
	s, w := newTestSender(t)
	w.keep = false
	b := packet(1, 1, 1, true)
	require.NoError(t, s.chain(b))
	allocs := testing.AllocsPerRun(1000, func() {
		b.RTP.SequenceNumber++
		_ = s.chain(b)
	})
	assert.Zero(t, allocs)
}
