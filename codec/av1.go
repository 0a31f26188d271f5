package codec

import (
	"errors"
	"time"
)

// AV1 over RTP, the AOMedia "RTP Payload Format For AV1" (v1.0.0). Samples
// are temporal units in the low overhead bitstream format (AV1 section
// 5.2): a temporal delimiter, then OBUs that all carry obu_size. The
// payloader drops temporal delimiters, tile lists and padding and removes
// obu_size, as the payload format asks (section 5); the depayloader puts
// them back, so a sample in that form survives a round trip unchanged.
// Every OBU element carries a length field (W=0).

// OBU types (AV1 section 6.2.2).
const (
	av1OBUSequenceHeader    = 1
	av1OBUTemporalDelimiter = 2
	av1OBUTileList          = 8
	av1OBUPadding           = 15
)

// The aggregation header bits (payload format section 4.4).
const (
	av1AggZ = 0x80 // the first OBU element continues the previous packet's last
	av1AggY = 0x40 // the last OBU element continues in the next packet
	av1AggN = 0x08 // first packet of a coded video sequence
)

// av1TemporalDelimiter is a temporal delimiter OBU with obu_size 0.
var av1TemporalDelimiter = [2]byte{av1OBUTemporalDelimiter<<3 | 0x02, 0}

var (
	errAV1Packet   = errors.New("av1: malformed payload")
	errAV1OBU      = errors.New("av1: malformed OBU")
	errAV1Fragment = errors.New("av1: OBU fragment out of order")
)

// AV1Keyframe reports whether an AV1 RTP payload starts a keyframe, in a
// basic way: its aggregation header has N set (the first packet of a
// coded video sequence), or its first OBU element, not a continuation,
// is a sequence header, which encoders send before each keyframe.
func AV1Keyframe(payload []byte) bool {
	if len(payload) < 2 {
		return false
	}
	agg := payload[0]
	if agg&av1AggN != 0 {
		return true
	}
	if agg&av1AggZ != 0 {
		return false
	}
	obu := payload[1:]
	if agg>>4&3 != 1 {
		_, k, ok := readLEB128(obu)
		if !ok || k >= len(obu) {
			return false
		}
		obu = obu[k:]
	}
	return obu[0]>>3&0x0f == av1OBUSequenceHeader
}

// readLEB128 reads an unsigned LEB128 value of at most 8 bytes that fits
// 32 bits (AV1 section 4.10.5) and returns it and its size.
func readLEB128(b []byte) (v, n int, ok bool) {
	var x uint64
	for i := 0; i < 8 && i < len(b); i++ {
		x |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if x > 1<<32-1 {
				return 0, 0, false
			}
			return int(x), i + 1, true
		}
	}
	return 0, 0, false
}

func appendLEB128(b []byte, v int) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func leb128Size(v int) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// av1Depacketizer rebuilds temporal units from OBU elements.
type av1Depacketizer struct {
	frag     []byte // the fragmented OBU so far
	fragOpen bool
}

func (d *av1Depacketizer) append(au, payload []byte) ([]byte, pktInfo, error) {
	if len(payload) < 2 {
		return au, 0, errAV1Packet
	}
	agg := payload[0]
	z, y, w := agg&av1AggZ != 0, agg&av1AggY != 0, int(agg>>4&3)
	if z != d.fragOpen {
		return au, 0, errAV1Fragment
	}
	if len(au) == 0 {
		au = append(au, av1TemporalDelimiter[:]...)
	}
	var info pktInfo
	if !z && agg&av1AggN != 0 {
		info |= infoStart | infoKey
	}
	var err error
	pos, count := 1, 0
	for pos < len(payload) {
		count++
		var elem []byte
		if w == 0 || count < w {
			n, k, ok := readLEB128(payload[pos:])
			if !ok || n == 0 || n > len(payload)-pos-k {
				return au, 0, errAV1Packet
			}
			pos += k
			elem = payload[pos : pos+n]
			pos += n
		} else {
			elem = payload[pos:]
			pos = len(payload)
		}
		last := pos == len(payload)
		if count == 1 && z {
			d.frag = append(d.frag, elem...)
			if last && y {
				continue
			}
			d.fragOpen = false
			if au, _, err = appendOBU(au, d.frag); err != nil {
				return au, 0, err
			}
			continue
		}
		if last && y {
			d.frag, d.fragOpen = append(d.frag[:0], elem...), true
			continue
		}
		var typ byte
		if au, typ, err = appendOBU(au, elem); err != nil {
			return au, 0, err
		}
		if count == 1 && typ == av1OBUSequenceHeader {
			info |= infoStart | infoKey
		}
	}
	if count == 0 || (w != 0 && count != w) {
		return au, 0, errAV1Packet
	}
	return au, info, nil
}

// appendOBU appends one whole OBU, as RTP carries it, to au with its
// obu_size field, dropping temporal delimiters, tile lists and padding.
func appendOBU(au, obu []byte) ([]byte, byte, error) {
	hdr := obu[0]
	typ := hdr >> 3 & 0x0f
	hlen := 1
	if hdr&0x04 != 0 {
		hlen = 2
	}
	if hdr&0x80 != 0 || len(obu) < hlen {
		return au, typ, errAV1OBU
	}
	switch typ {
	case av1OBUTemporalDelimiter, av1OBUTileList, av1OBUPadding:
		return au, typ, nil
	}
	if hdr&0x02 != 0 {
		// obu_size is there already: it must span the rest.
		n, k, ok := readLEB128(obu[hlen:])
		if !ok || hlen+k+n != len(obu) {
			return au, typ, errAV1OBU
		}
		return append(au, obu...), typ, nil
	}
	au = append(au, hdr|0x02)
	if hlen == 2 {
		au = append(au, obu[1])
	}
	au = appendLEB128(au, len(obu)-hlen)
	return append(au, obu[hlen:]...), typ, nil
}

func (d *av1Depacketizer) finish(au []byte) ([]byte, time.Duration, error) {
	if d.fragOpen || len(au) <= len(av1TemporalDelimiter) {
		return au, 0, errAV1Fragment
	}
	return au, 0, nil
}

func (d *av1Depacketizer) reset() {
	d.frag, d.fragOpen = d.frag[:0], false
}

// av1Element is one OBU as RTP carries it: its header without
// obu_has_size_field, the extension byte if any, the payload.
type av1Element struct {
	hdr, ext byte
	hasExt   bool
	data     []byte
}

func (e *av1Element) size() int {
	if e.hasExt {
		return 2 + len(e.data)
	}
	return 1 + len(e.data)
}

// appendRange appends bytes [from, to) of the element to b.
func (e *av1Element) appendRange(b []byte, from, to int) []byte {
	hlen := 1
	if e.hasExt {
		hlen = 2
	}
	for i := from; i < to && i < hlen; i++ {
		if i == 0 {
			b = append(b, e.hdr)
		} else {
			b = append(b, e.ext)
		}
	}
	if to > hlen {
		b = append(b, e.data[max(from-hlen, 0):to-hlen]...)
	}
	return b
}

// av1Packetizer packs OBU elements into packets, fragmenting them across
// packets where they do not fit (pion's AV1Payloader allocates every
// packet).
type av1Packetizer struct {
	elems []av1Element // scratch
}

func (k *av1Packetizer) parse(au []byte) error {
	k.elems = k.elems[:0]
	for pos := 0; pos < len(au); {
		hdr := au[pos]
		if hdr&0x80 != 0 {
			return errAV1OBU
		}
		e := av1Element{hdr: hdr &^ 0x02, hasExt: hdr&0x04 != 0}
		pos++
		if e.hasExt {
			if pos >= len(au) {
				return errAV1OBU
			}
			e.ext = au[pos]
			pos++
		}
		n := len(au) - pos
		if hdr&0x02 != 0 {
			v, sz, ok := readLEB128(au[pos:])
			if !ok || v > len(au)-pos-sz {
				return errAV1OBU
			}
			n = v
			pos += sz
		}
		e.data = au[pos : pos+n]
		pos += n
		switch hdr >> 3 & 0x0f {
		case av1OBUTemporalDelimiter, av1OBUTileList, av1OBUPadding:
			continue
		}
		k.elems = append(k.elems, e)
	}
	return nil
}

func (k *av1Packetizer) packetize(p *Payloader, au []byte, key bool) error {
	err := k.parse(au)
	defer clear(k.elems)
	if err != nil {
		return err
	}
	if len(k.elems) == 0 {
		return errEmptyFrame
	}
	newSequence := key && k.elems[0].hdr>>3&0x0f == av1OBUSequenceHeader
	b := append(p.packet(), 0)
	if newSequence {
		b[0] |= av1AggN
	}
	for i := range k.elems {
		e := &k.elems[i]
		size := e.size()
		for off := 0; off < size; {
			rest := size - off
			space := p.budget - len(b)
			if leb128Size(rest)+rest <= space {
				b = appendLEB128(b, rest)
				b = e.appendRange(b, off, size)
				break
			}
			if f := space - leb128Size(space); f > 0 {
				b = appendLEB128(b, f)
				b = e.appendRange(b, off, off+f)
				off += f
				b[0] |= av1AggY
			}
			p.commit(b, 0)
			b = append(p.packet(), 0)
			if off > 0 {
				b[0] |= av1AggZ
			}
		}
	}
	p.commit(b, 0)
	return nil
}
