package codec_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/medley-go/medley/codec"
)

func randFor(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

// vp8Key is a VP8 keyframe's first bytes: frame tag (P=0), start code,
// 640x360.
var vp8Key = []byte{0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 0xaa}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestKeyframeDetection(t *testing.T) {
	cases := []struct {
		name    string
		detect  func([]byte) bool
		payload []byte
		want    bool
	}{
		// VP8, RFC 7741 section 4.
		{"vp8/key, short descriptor", codec.VP8Keyframe, cat([]byte{0x10}, vp8Key), true},
		{"vp8/key, picture ID", codec.VP8Keyframe, cat([]byte{0x90, 0x80, 0x81, 0x23}, vp8Key), true},
		{"vp8/key, all extensions", codec.VP8Keyframe, cat([]byte{0x90, 0xf0, 0x12, 0x34, 0x40}, vp8Key), true},
		{"vp8/delta", codec.VP8Keyframe, cat([]byte{0x10}, []byte{0x51}, vp8Key[1:]), false},
		{"vp8/continuation", codec.VP8Keyframe, cat([]byte{0x00}, vp8Key), false},
		{"vp8/partition 1", codec.VP8Keyframe, cat([]byte{0x11}, vp8Key), false},
		{"vp8/no start code", codec.VP8Keyframe, []byte{0x10, 0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2b, 0, 0, 0, 0}, false},
		{"vp8/truncated frame", codec.VP8Keyframe, []byte{0x10, 0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a}, false},
		{"vp8/truncated descriptor", codec.VP8Keyframe, []byte{0x90, 0x80}, false},
		{"vp8/empty", codec.VP8Keyframe, nil, false},

		// H.264, RFC 6184 section 5.
		{"h264/IDR", codec.H264Keyframe, []byte{0x65, 0x88, 0x84}, true},
		{"h264/SPS", codec.H264Keyframe, []byte{0x67, 0x42, 0xe0, 0x1f}, true},
		{"h264/PPS", codec.H264Keyframe, []byte{0x68, 0xce}, false},
		{"h264/slice", codec.H264Keyframe, []byte{0x41, 0x9a}, false},
		{"h264/STAP-A SPS PPS", codec.H264Keyframe, []byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce}, true},
		{"h264/STAP-A SEI IDR", codec.H264Keyframe, []byte{0x78, 0, 2, 0x06, 0x05, 0, 2, 0x65, 0x88}, true},
		{"h264/STAP-A SEI slice", codec.H264Keyframe, []byte{0x78, 0, 2, 0x06, 0x05, 0, 2, 0x41, 0x9a}, false},
		{"h264/STAP-A bad size", codec.H264Keyframe, []byte{0x78, 0, 9, 0x65, 0x88}, false},
		{"h264/FU-A IDR start", codec.H264Keyframe, []byte{0x7c, 0x85, 0x88}, true},
		{"h264/FU-A IDR middle", codec.H264Keyframe, []byte{0x7c, 0x05, 0x88}, false},
		{"h264/FU-A IDR end", codec.H264Keyframe, []byte{0x7c, 0x45, 0x88}, false},
		{"h264/FU-A slice start", codec.H264Keyframe, []byte{0x5c, 0x81, 0x9a}, false},
		{"h264/FU-A short", codec.H264Keyframe, []byte{0x7c}, false},
		{"h264/empty", codec.H264Keyframe, nil, false},

		// VP9, RFC 9628 section 4.2.
		{"vp9/key", codec.VP9Keyframe, []byte{0x08, 0x82}, true},
		{"vp9/key, picture ID and SS", codec.VP9Keyframe, []byte{0x8b, 0x81, 0x23, 0x18, 0x02, 0x80, 0x01, 0x68, 0x01, 0x14, 0x01, 0x82}, true},
		{"vp9/inter", codec.VP9Keyframe, []byte{0xc8, 0x81, 0x23, 0x86}, false},
		{"vp9/not the beginning", codec.VP9Keyframe, []byte{0x80, 0x81, 0x23, 0x82}, false},
		{"vp9/layer 0", codec.VP9Keyframe, []byte{0x28, 0x00, 0x00, 0x82}, true},
		{"vp9/layer 1", codec.VP9Keyframe, []byte{0x28, 0x02, 0x00, 0x82}, false},
		{"vp9/truncated picture ID", codec.VP9Keyframe, []byte{0x88, 0x81}, false},
		{"vp9/truncated SS", codec.VP9Keyframe, []byte{0x0a, 0x18, 0x02}, false},
		{"vp9/empty", codec.VP9Keyframe, nil, false},

		// AV1, RTP payload format section 4.4.
		{"av1/N", codec.AV1Keyframe, []byte{0x18, 0x08, 0x00}, true},
		{"av1/sequence header, W=1", codec.AV1Keyframe, []byte{0x10, 0x08, 0x00}, true},
		{"av1/sequence header, W=0", codec.AV1Keyframe, []byte{0x00, 0x02, 0x08, 0x00}, true},
		{"av1/frame", codec.AV1Keyframe, []byte{0x10, 0x30, 0x00}, false},
		{"av1/continuation", codec.AV1Keyframe, []byte{0x90, 0x08, 0x00}, false},
		{"av1/bad length", codec.AV1Keyframe, []byte{0x00, 0x80}, false},
		{"av1/short", codec.AV1Keyframe, []byte{0x08}, false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, tc.detect(tc.payload), tc.name)
	}
}

// TestKeyframeOfPayloaders: the detectors see keyframes in what the
// payloaders make, on a keyframe's first packet and nowhere else but
// where its later packets carry parameter sets (H.264's STAP-A).
func TestKeyframeOfPayloaders(t *testing.T) {
	for _, tc := range codecCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := codec.Lookup(tc.caps.Codec)
			samples := tc.gen(randFor(9), 20, 5)
			pkts := payloadAll(t, tc.caps, samples, payOpts(codec.DefaultMTU)...)
			for i, p := range pkts {
				if p.Keyframe() {
					assert.True(t, c.IsKeyframe(p.Data), "packet %d", i)
				} else if tc.name == "vp8" || tc.name == "vp9" || !tc.video {
					assert.False(t, c.IsKeyframe(p.Data), "packet %d", i)
				}
			}
		})
	}
}

func TestIndexStartCode(t *testing.T) {
	for _, b := range [][]byte{
		nil, {1}, {0, 1}, {0, 0, 1}, {1, 0, 0, 1}, {0, 0, 0, 1}, {0, 1, 0, 0, 2, 0, 0, 1, 9},
		{1, 1, 1, 0, 1, 0, 0, 3, 0, 0, 1}, {0, 0}, {5, 0, 0, 1, 0, 0, 1},
	} {
		assert.Equal(t, bytes.Index(b, []byte{0, 0, 1}), codec.IndexStartCode(b), "%v", b)
	}
}
