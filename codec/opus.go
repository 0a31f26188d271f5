package codec

import (
	"errors"
	"fmt"
	"time"
)

// Opus over RTP, RFC 7587: one Opus packet (one or more frames of 2.5 to
// 60 ms, RFC 6716 section 3) per RTP packet, never fragmented.

var errOpusPacket = errors.New("opus: malformed packet")

// opusFrameSizes are the frame durations of the 32 TOC configurations
// (RFC 6716 section 3.1, table 2), in microseconds.
var opusFrameSizes = [32]time.Duration{
	// SILK-only NB, MB, WB: 10, 20, 40, 60 ms each.
	10000, 20000, 40000, 60000, 10000, 20000, 40000, 60000, 10000, 20000, 40000, 60000,
	// Hybrid SWB, FB: 10, 20 ms each.
	10000, 20000, 10000, 20000,
	// CELT-only NB, WB, SWB, FB: 2.5, 5, 10, 20 ms each.
	2500, 5000, 10000, 20000, 2500, 5000, 10000, 20000, 2500, 5000, 10000, 20000, 2500, 5000, 10000, 20000,
}

// opusMaxDuration is the longest an Opus packet may last (RFC 6716
// section 3.2.5).
const opusMaxDuration = 120 * time.Millisecond

// OpusDuration returns how long an Opus packet lasts, from its TOC byte
// and, for code 3 packets, its frame count byte (RFC 6716 section 3.1).
func OpusDuration(packet []byte) (time.Duration, error) {
	if len(packet) == 0 {
		return 0, errOpusPacket
	}
	toc := packet[0]
	size := opusFrameSizes[toc>>3] * time.Microsecond
	var frames int
	switch toc & 3 {
	case 0:
		frames = 1
	case 1, 2:
		frames = 2
	case 3:
		if len(packet) < 2 {
			return 0, errOpusPacket
		}
		frames = int(packet[1] & 0x3f)
	}
	d := time.Duration(frames) * size
	if frames == 0 || d > opusMaxDuration {
		return 0, fmt.Errorf("%w: %d frames of %v", errOpusPacket, frames, size)
	}
	return d, nil
}

// opusDepacketizer passes each payload on as one sample.
type opusDepacketizer struct{}

func (opusDepacketizer) append(au, payload []byte) ([]byte, pktInfo, error) {
	if len(payload) == 0 {
		return au, 0, errOpusPacket
	}
	return append(au, payload...), infoStart | infoKey, nil
}

func (opusDepacketizer) finish(au []byte) ([]byte, time.Duration, error) {
	d, err := OpusDuration(au)
	return au, d, err
}

func (opusDepacketizer) reset() {}

// opusPacketizer sends each sample as one packet.
type opusPacketizer struct{}

func (opusPacketizer) packetize(p *Payloader, au []byte, _ bool) error {
	if len(au) == 0 {
		return errEmptyFrame
	}
	if len(au) > p.budget {
		return fmt.Errorf("opus: packet of %d bytes exceeds the %d-byte payload", len(au), p.budget)
	}
	p.commit(append(p.packet(), au...), 0)
	return nil
}
