package element_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/medley-go/medley/element"
)

var (
	vp8RTP  = element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/VP8", ClockRate: 90000}
	h264RTP = element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/H264", ClockRate: 90000, Fmtp: "packetization-mode=1"}
	opusRTP = element.Caps{Kind: element.KindAudio, Format: element.FormatRTP, Codec: "audio/opus", ClockRate: 48000, Channels: 2}
	rawI420 = element.Caps{Kind: element.KindVideo, Format: element.FormatRaw, Width: 640, Height: 480, PixelFormat: "yuv420p"}
	dataMsg = element.Caps{Kind: element.KindData, Format: element.FormatMessage}
)

func TestCapsIntersect(t *testing.T) {
	cases := []struct {
		name string
		a, b element.Caps
		want element.Caps
		ok   bool
	}{
		{"equal fixed caps", vp8RTP, vp8RTP, vp8RTP, true},
		{"any video takes the other side", element.AnyVideo, vp8RTP, vp8RTP, true},
		{"any audio takes the other side", element.AnyAudio, opusRTP, opusRTP, true},
		{"any data takes the other side", element.AnyData, dataMsg, dataMsg, true},
		{"audio and video", element.AnyAudio, element.AnyVideo, element.Caps{}, false},
		{"audio into video caps", opusRTP, vp8RTP, element.Caps{}, false},
		{"data and audio", dataMsg, element.AnyAudio, element.Caps{}, false},
		{"kind set narrows to the common kind", element.Caps{Kind: element.KindAll}, opusRTP, opusRTP, true},
		{"kind sets with one kind in common", element.Caps{Kind: element.KindAudio | element.KindVideo}, element.Caps{Kind: element.KindVideo | element.KindData}, element.AnyVideo, true},
		{"format set on one side", element.Caps{Kind: element.KindVideo, Codec: "video/VP8"}, element.Caps{Kind: element.KindVideo, Format: element.FormatRTP}, element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/VP8"}, true},
		{"formats differ", vp8RTP, element.Caps{Kind: element.KindVideo, Format: element.FormatSample, Codec: "video/VP8"}, element.Caps{}, false},
		{"codecs differ", vp8RTP, h264RTP, element.Caps{}, false},
		{"clock rates differ", vp8RTP, element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/VP8", ClockRate: 48000}, element.Caps{}, false},
		{"channels differ", opusRTP, element.Caps{Kind: element.KindAudio, Channels: 1}, element.Caps{}, false},
		{"channels set on one side", element.Caps{Kind: element.KindAudio, Format: element.FormatRTP, Codec: "audio/opus", ClockRate: 48000}, element.Caps{Kind: element.KindAudio, Channels: 2}, opusRTP, true},
		{"sizes differ", rawI420, element.Caps{Kind: element.KindVideo, Width: 1280}, element.Caps{}, false},
		{"size taken from the other side", element.Caps{Kind: element.KindVideo, Format: element.FormatRaw, PixelFormat: "yuv420p"}, element.Caps{Kind: element.KindVideo, Width: 640, Height: 480}, rawI420, true},
		{"pixel formats differ", rawI420, element.Caps{Kind: element.KindVideo, PixelFormat: "nv12"}, element.Caps{}, false},
		{"sample formats differ", element.Caps{Kind: element.KindAudio, SampleFormat: "s16"}, element.Caps{Kind: element.KindAudio, SampleFormat: "fltp"}, element.Caps{}, false},
		{"fmtp set on one side", element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/H264", ClockRate: 90000}, element.Caps{Kind: element.KindVideo, Fmtp: "packetization-mode=1"}, h264RTP, true},
		{"fmtp differs", h264RTP, element.Caps{Kind: element.KindVideo, Fmtp: "packetization-mode=0"}, element.Caps{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Intersection is symmetric: run every case both ways.
			for _, dir := range []struct {
				name string
				a, b element.Caps
			}{{"a∩b", tc.a, tc.b}, {"b∩a", tc.b, tc.a}} {
				got, ok := dir.a.Intersect(dir.b)
				assert.Equal(t, tc.ok, ok, "%s: %v ∩ %v", dir.name, dir.a, dir.b)
				assert.Equal(t, tc.want, got, "%s: %v ∩ %v", dir.name, dir.a, dir.b)
				assert.Equal(t, tc.ok, dir.a.CanIntersect(dir.b), "%s: CanIntersect", dir.name)
			}
		})
	}
}

func TestCapsIntersectCodecIgnoresCase(t *testing.T) {
	lower := element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/vp8"}
	for _, pair := range [][2]element.Caps{{lower, vp8RTP}, {vp8RTP, lower}} {
		got, ok := pair[0].Intersect(pair[1])
		assert.True(t, ok, "%v ∩ %v", pair[0], pair[1])
		assert.True(t, strings.EqualFold("video/VP8", got.Codec), "codec %q", got.Codec)
		assert.Equal(t, uint32(90000), got.ClockRate)
	}
}

func TestCapsIsFixed(t *testing.T) {
	cases := []struct {
		name string
		c    element.Caps
		want bool
	}{
		{"zero", element.Caps{}, false},
		{"any video", element.AnyVideo, false},
		{"any audio", element.AnyAudio, false},
		{"RTP without codec", element.Caps{Kind: element.KindVideo, Format: element.FormatRTP}, false},
		{"codec without format", element.Caps{Kind: element.KindVideo, Codec: "video/VP8"}, false},
		{"format and codec without kind", element.Caps{Format: element.FormatRTP, Codec: "video/VP8"}, false},
		{"two kinds", element.Caps{Kind: element.KindAudio | element.KindVideo, Format: element.FormatRTP, Codec: "video/VP8"}, false},
		{"all kinds", element.Caps{Kind: element.KindAll, Format: element.FormatMessage}, false},
		{"RTP VP8", vp8RTP, true},
		{"RTP opus", opusRTP, true},
		{"encoded sample", element.Caps{Kind: element.KindVideo, Format: element.FormatSample, Codec: "video/H264"}, true},
		{"sample without codec", element.Caps{Kind: element.KindAudio, Format: element.FormatSample}, false},
		{"raw video needs no codec", element.Caps{Kind: element.KindVideo, Format: element.FormatRaw}, true},
		{"raw video with details", rawI420, true},
		{"data message", dataMsg, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.c.IsFixed(), "%v", tc.c)
		})
	}
}

func TestCapsListKind(t *testing.T) {
	cases := []struct {
		name string
		l    element.CapsList
		want element.Kind
	}{
		{"empty", nil, 0},
		{"one", element.CapsList{vp8RTP}, element.KindVideo},
		{"same kind", element.CapsList{h264RTP, vp8RTP, element.AnyVideo}, element.KindVideo},
		{"audio", element.CapsList{opusRTP}, element.KindAudio},
		{"mixed kinds", element.CapsList{vp8RTP, opusRTP}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.l.Kind())
		})
	}
}

func TestCapsListAccepts(t *testing.T) {
	vp8Sample := element.Caps{Kind: element.KindVideo, Format: element.FormatSample, Codec: "video/VP8"}
	cases := []struct {
		name string
		l    element.CapsList
		c    element.Caps
		want element.Caps
		ok   bool
	}{
		{"empty list accepts nothing", nil, vp8RTP, element.Caps{}, false},
		{"exact", element.CapsList{vp8RTP}, vp8RTP, vp8RTP, true},
		{"any of the kind", element.CapsList{element.AnyVideo}, vp8RTP, vp8RTP, true},
		{"second template", element.CapsList{h264RTP, vp8RTP}, vp8RTP, vp8RTP, true},
		{"first acceptable template wins", element.CapsList{vp8Sample, h264RTP, element.AnyVideo}, element.Caps{Kind: element.KindVideo, Format: element.FormatRTP}, h264RTP, true},
		{"template narrows the caps", element.CapsList{{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/VP8", ClockRate: 90000}}, element.Caps{Kind: element.KindVideo, Codec: "video/VP8"}, vp8RTP, true},
		{"no template fits", element.CapsList{h264RTP, vp8Sample}, vp8RTP, element.Caps{}, false},
		{"other kind", element.CapsList{element.AnyAudio}, vp8RTP, element.Caps{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.l.Accepts(tc.c)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCapsListIntersects(t *testing.T) {
	cases := []struct {
		name string
		a, b element.CapsList
		want bool
	}{
		{"empty", nil, element.CapsList{vp8RTP}, false},
		{"both empty", nil, nil, false},
		{"same", element.CapsList{vp8RTP}, element.CapsList{vp8RTP}, true},
		{"one pair in common", element.CapsList{h264RTP, vp8RTP}, element.CapsList{{Kind: element.KindVideo, Format: element.FormatSample}, element.AnyVideo}, true},
		{"unfixed RTP meets any RTP codec", element.CapsList{{Kind: element.KindVideo, Format: element.FormatRTP}}, element.CapsList{h264RTP}, true},
		{"codecs differ", element.CapsList{vp8RTP}, element.CapsList{h264RTP}, false},
		{"kinds differ", element.CapsList{opusRTP, element.AnyAudio}, element.CapsList{element.AnyVideo, vp8RTP}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.a.Intersects(tc.b), "a.Intersects(b)")
			assert.Equal(t, tc.want, tc.b.Intersects(tc.a), "b.Intersects(a)")
		})
	}
}

func TestCapsString(t *testing.T) {
	cases := []struct {
		c    element.Caps
		want string
	}{
		{vp8RTP, "video/rtp,codec=video/VP8,rate=90000"},
		{opusRTP, "audio/rtp,codec=audio/opus,rate=48000,channels=2"},
		{rawI420, "video/raw,size=640x480,pix=yuv420p"},
		{h264RTP, "video/rtp,codec=video/H264,rate=90000,fmtp=packetization-mode=1"},
		{dataMsg, "data/message"},
		{element.AnyVideo, "video/any"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, tc.c.String())
	}
	assert.Equal(t, "[video/rtp,codec=video/VP8,rate=90000; data/message]", element.CapsList{vp8RTP, dataMsg}.String())
}

func TestKind(t *testing.T) {
	assert.True(t, element.KindAll.Has(element.KindVideo))
	assert.True(t, element.KindAll.Has(element.KindAudio|element.KindData))
	assert.False(t, element.KindAudio.Has(element.KindVideo))
	assert.False(t, element.KindAudio.Has(0), "the empty set is no kind")
	for k, want := range map[element.Kind]string{
		element.KindAudio:                     "audio",
		element.KindVideo:                     "video",
		element.KindData:                      "data",
		element.KindAll:                       "all",
		element.KindAudio | element.KindVideo: "audio+video",
		0:                                     "none",
	} {
		assert.Equal(t, want, k.String())
	}
}
