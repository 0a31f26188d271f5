package codec

import (
	"testing"

	"github.com/pion/rtp/codecs"
	"github.com/stretchr/testify/assert"
)

// TestVP8DescriptorMatchesPion: our descriptor parser agrees with pion's
// VP8Packet on every descriptor layout.
func TestVP8DescriptorMatchesPion(t *testing.T) {
	for b0 := range 256 {
		for _, x := range []byte{0x00, 0x80, 0x40, 0x20, 0x10, 0xf0, 0xc0, 0x90} {
			for _, pid := range []byte{0x00, 0x7f, 0x80, 0xff} {
				for _, tail := range [][]byte{nil, {0xaa}, {0xaa, 0xbb, 0xcc, 0xdd}} {
					p := append([]byte{byte(b0), x, pid, 0x12}, tail...)
					for l := range len(p) + 1 {
						var pkt codecs.VP8Packet
						data, perr := pkt.Unmarshal(p[:l])
						n, start, err := parseVP8Descriptor(p[:l])
						if perr != nil {
							assert.Error(t, err, "% x", p[:l])
							continue
						}
						if !assert.NoError(t, err, "% x", p[:l]) {
							continue
						}
						assert.Equal(t, len(p[:l])-len(data), n, "% x", p[:l])
						assert.Equal(t, pkt.S == 1 && pkt.PID == 0, start, "% x", p[:l])
					}
				}
			}
		}
	}
}

func BenchmarkVP8Descriptor(b *testing.B) {
	p := []byte{0x90, 0x80, 0x81, 0x23, 0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a}
	b.Run("pion", func(b *testing.B) {
		var pkt codecs.VP8Packet
		for b.Loop() {
			if _, err := pkt.Unmarshal(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("medley", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := parseVP8Descriptor(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
