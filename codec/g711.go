package codec

import (
	"errors"
	"time"
)

// G.711 (PCMU, PCMA) and G.722 over RTP, RFC 3551 section 4.5: one byte
// per sample and channel (G.722: one byte per two 16 kHz samples, which
// its 8000 Hz RTP clock counts as one tick), any number of samples per
// packet.

var errG711Channels = errors.New("g711: payload not a whole number of samples")

// byteAudioDepacketizer passes each payload on as one sample.
type byteAudioDepacketizer struct {
	channels int
}

func (d *byteAudioDepacketizer) append(au, payload []byte) ([]byte, pktInfo, error) {
	if len(payload) == 0 || len(payload)%max(d.channels, 1) != 0 {
		return au, 0, errG711Channels
	}
	return append(au, payload...), infoStart | infoKey, nil
}

func (d *byteAudioDepacketizer) finish(au []byte) ([]byte, time.Duration, error) {
	ticks := len(au) / max(d.channels, 1)
	return au, time.Duration(ticks) * time.Second / 8000, nil
}

func (d *byteAudioDepacketizer) reset() {}

// byteAudioPacketizer cuts a sample into packets of as many whole samples
// as fit, each stamped with the time of its first sample.
type byteAudioPacketizer struct {
	channels int
}

func (k byteAudioPacketizer) packetize(p *Payloader, au []byte, _ bool) error {
	ch := max(k.channels, 1)
	if len(au) == 0 || len(au)%ch != 0 {
		return errG711Channels
	}
	per := p.budget / ch * ch
	for off := 0; off < len(au); off += per {
		end := min(off+per, len(au))
		p.commit(append(p.packet(), au[off:end]...), uint32(off/ch))
	}
	return nil
}
