package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// H.264 over RTP, RFC 6184. Samples are Annex B byte streams (ITU-T H.264
// Annex B: each NAL unit behind a start code), what x264 and FFmpeg's
// encoders write; the depayloader writes every NAL unit behind a 4-byte
// start code.

// NAL unit types (H.264 table 7-1; RFC 6184 section 5.2).
const (
	h264NALSlice  = 1
	h264NALIDR    = 5
	h264NALSEI    = 6
	h264NALSPS    = 7
	h264NALPPS    = 8
	h264NALAUD    = 9
	h264NALFiller = 12
	h264NALSTAPA  = 24
	h264NALFUA    = 28
)

// h264STAPAOverhead is what a STAP-A adds: its NAL header, then a 2-byte
// size before each aggregated unit (RFC 6184 section 5.7.1).
const h264STAPAOverhead = 1

var (
	errH264Short       = errors.New("h264: short payload")
	errH264Forbidden   = errors.New("h264: forbidden_zero_bit set")
	errH264STAPA       = errors.New("h264: malformed STAP-A")
	errH264FUA         = errors.New("h264: FU-A out of order")
	errH264Unsupported = errors.New("h264: unsupported NAL unit type")
	errH264FUOpen      = errors.New("h264: frame ends inside an FU-A")
)

var annexBStartCode = []byte{0, 0, 1}

// H264Keyframe reports whether an H.264 RTP payload (RFC 6184) carries the
// start of a keyframe: an IDR slice (NAL type 5) or a sequence parameter
// set (type 7), as a single NAL unit, inside a STAP-A, or as the first
// fragment of an FU-A.
func H264Keyframe(payload []byte) bool {
	if len(payload) == 0 {
		return false
	}
	switch typ := payload[0] & 0x1f; typ {
	case h264NALIDR, h264NALSPS:
		return true
	case h264NALSTAPA:
		for p := payload[1:]; len(p) >= 3; {
			n := int(binary.BigEndian.Uint16(p))
			if n == 0 || n > len(p)-2 {
				return false
			}
			if t := p[2] & 0x1f; t == h264NALIDR || t == h264NALSPS {
				return true
			}
			p = p[2+n:]
		}
	case h264NALFUA:
		if len(payload) >= 2 && payload[1]&0x80 != 0 {
			t := payload[1] & 0x1f
			return t == h264NALIDR || t == h264NALSPS
		}
	}
	return false
}

// h264Depacketizer rebuilds Annex B access units from single NAL unit
// packets, STAP-A and FU-A (packetization-mode 0 and 1). pion's H264Packet
// does the same but allocates for every packet.
type h264Depacketizer struct {
	fuOpen bool
	fuType byte
	// spsInBand records that the stream sends its parameter sets in band;
	// then only an access unit delimiter or an SPS starts an access unit
	// a receiver can resynchronise on.
	spsInBand bool
}

// nalInfo says what one NAL unit (header byte first) shows: a keyframe,
// and, as the first NAL unit of a packet, the start of an access unit
// (H.264 section 7.4.1.2.3: an AUD or an SPS comes first; without
// parameter sets in band a slice whose first_mb_in_slice is 0, a PPS or an
// SEI).
func (d *h264Depacketizer) nalInfo(hdr byte, rest []byte) pktInfo {
	var info pktInfo
	switch hdr & 0x1f {
	case h264NALAUD:
		info = infoStart
	case h264NALSPS:
		d.spsInBand = true
		info = infoStart | infoKey
	case h264NALPPS, h264NALSEI:
		if !d.spsInBand {
			info = infoStart
		}
	case h264NALIDR:
		info = infoKey
		fallthrough
	case h264NALSlice:
		// first_mb_in_slice is ue(v); 0 is coded as a single 1 bit.
		if !d.spsInBand && len(rest) > 0 && rest[0]&0x80 != 0 {
			info |= infoStart
		}
	}
	return info
}

func (d *h264Depacketizer) append(au, payload []byte) ([]byte, pktInfo, error) {
	if len(payload) == 0 {
		return au, 0, errH264Short
	}
	hdr := payload[0]
	if hdr&0x80 != 0 {
		return au, 0, errH264Forbidden
	}
	switch typ := hdr & 0x1f; {
	case typ >= 1 && typ <= 23:
		if d.fuOpen {
			return au, 0, errH264FUA
		}
		info := d.nalInfo(hdr, payload[1:])
		au = append(au, 0, 0, 0, 1)
		return append(au, payload...), info, nil

	case typ == h264NALSTAPA:
		if d.fuOpen || len(payload) < 1+2+1 {
			return au, 0, errH264STAPA
		}
		var info pktInfo
		for p, first := payload[1:], true; len(p) > 0; first = false {
			if len(p) < 3 {
				return au, 0, errH264STAPA
			}
			n := int(binary.BigEndian.Uint16(p))
			if n == 0 || n > len(p)-2 {
				return au, 0, errH264STAPA
			}
			nal := p[2 : 2+n]
			p = p[2+n:]
			if nal[0]&0x80 != 0 {
				return au, 0, errH264Forbidden
			}
			if t := nal[0] & 0x1f; t == 0 || t > 23 {
				// An aggregation unit is a NAL unit (RFC 6184 section
				// 5.7.1), not an unspecified type or another packet.
				return au, 0, errH264Unsupported
			}
			ni := d.nalInfo(nal[0], nal[1:])
			if !first {
				ni &^= infoStart
			}
			info |= ni
			au = append(au, 0, 0, 0, 1)
			au = append(au, nal...)
		}
		return au, info, nil

	case typ == h264NALFUA:
		if len(payload) < 2 {
			return au, 0, errH264Short
		}
		fu := payload[1]
		start, end, nt := fu&0x80 != 0, fu&0x40 != 0, fu&0x1f
		if start {
			if d.fuOpen || end || nt == 0 || nt > 23 {
				return au, 0, errH264FUA
			}
			nalHdr := hdr&0xe0 | nt
			d.fuOpen, d.fuType = true, nt
			info := d.nalInfo(nalHdr, payload[2:])
			au = append(au, 0, 0, 0, 1, nalHdr)
			return append(au, payload[2:]...), info, nil
		}
		if !d.fuOpen || nt != d.fuType {
			return au, 0, errH264FUA
		}
		if end {
			d.fuOpen = false
		}
		return append(au, payload[2:]...), 0, nil
	}
	return au, 0, errH264Unsupported
}

func (d *h264Depacketizer) finish(au []byte) ([]byte, time.Duration, error) {
	if d.fuOpen {
		return au, 0, errH264FUOpen
	}
	return au, 0, nil
}

func (d *h264Depacketizer) reset() { d.fuOpen = false }

// h264Packetizer cuts an Annex B access unit into single NAL unit
// packets, STAP-As of consecutive small NAL units, and FU-As of even size
// for NAL units larger than a packet (RFC 6184 sections 5.6-5.8); in
// packetization-mode 0 into single NAL units only. It drops access unit
// delimiters and filler data, as pion's H264Payloader does. Unlike that
// one it aggregates any small NAL units (pion aggregates SPS and PPS only)
// and allocates nothing.
type h264Packetizer struct {
	singleNAL bool
	nals      [][]byte // scratch: the NAL units of the access unit
}

func (k *h264Packetizer) packetize(p *Payloader, au []byte, _ bool) error {
	k.nals = splitAnnexB(k.nals[:0], au)
	defer clear(k.nals)
	nals := k.nals
	if len(nals) == 0 {
		return errEmptyFrame
	}
	if k.singleNAL {
		for _, nal := range nals {
			if len(nal) > p.budget {
				return fmt.Errorf("h264: NAL unit of %d bytes exceeds the %d-byte payload of packetization-mode 0", len(nal), p.budget)
			}
		}
		for _, nal := range nals {
			p.commit(append(p.packet(), nal...), 0)
		}
		return nil
	}
	for i := 0; i < len(nals); {
		nal := nals[i]
		if len(nal) > p.budget {
			k.fuA(p, nal)
			i++
			continue
		}
		size, j := h264STAPAOverhead+2+len(nal), i+1
		for j < len(nals) && size+2+len(nals[j]) <= p.budget {
			size += 2 + len(nals[j])
			j++
		}
		if j == i+1 {
			p.commit(append(p.packet(), nal...), 0)
		} else {
			k.stapA(p, nals[i:j])
		}
		i = j
	}
	return nil
}

// stapA sends nals, which fit, in one STAP-A whose F bit is any of theirs
// and NRI the largest of theirs (RFC 6184 section 5.7).
func (k *h264Packetizer) stapA(p *Payloader, nals [][]byte) {
	var f, nri byte
	for _, nal := range nals {
		f |= nal[0] & 0x80
		nri = max(nri, nal[0]&0x60)
	}
	b := append(p.packet(), f|nri|h264NALSTAPA)
	for _, nal := range nals {
		b = binary.BigEndian.AppendUint16(b, uint16(len(nal)))
		b = append(b, nal...)
	}
	p.commit(b, 0)
}

// fuA sends one NAL unit in FU-A fragments of even size.
func (k *h264Packetizer) fuA(p *Payloader, nal []byte) {
	indicator := nal[0]&0xe0 | h264NALFUA
	typ := nal[0] & 0x1f
	data := nal[1:]
	n, each, extra := splitEven(len(data), p.budget-2)
	off := 0
	for i := range n {
		size := each
		if i < extra {
			size++
		}
		hdr := typ
		if i == 0 {
			hdr |= 0x80
		}
		if i == n-1 {
			hdr |= 0x40
		}
		b := append(p.packet(), indicator, hdr)
		b = append(b, data[off:off+size]...)
		off += size
		p.commit(b, 0)
	}
}

// splitAnnexB appends to dst the NAL units of an Annex B byte stream,
// without their start codes and trailing zero bytes, skipping empty ones,
// access unit delimiters and filler data. A stream without a start code
// is one NAL unit.
func splitAnnexB(dst [][]byte, au []byte) [][]byte {
	i := indexStartCode(au)
	if i < 0 {
		return appendNALUnit(dst, au)
	}
	i += len(annexBStartCode)
	for {
		next := indexStartCode(au[i:])
		if next < 0 {
			return appendNALUnit(dst, au[i:])
		}
		dst = appendNALUnit(dst, au[i:i+next])
		i += next + len(annexBStartCode)
	}
}

// indexStartCode is bytes.Index(b, annexBStartCode), the search that
// costs most in payloading H.264: with SIMD where startCodeSIMD has it,
// then indexStartCodeBytes for the bytes it leaves.
func indexStartCode(b []byte) int {
	k, found := startCodeSIMD(b)
	if found {
		return k
	}
	if i := indexStartCodeBytes(b[k:]); i >= 0 {
		return k + i
	}
	return -1
}

// indexStartCodeBytes is bytes.Index(b, annexBStartCode), but looks for
// the start code's last byte, 0x01: zero bytes are frequent in coded
// slices (emulation prevention writes 00 00 03), ones are not, and
// bytes.Index would stop at every zero.
func indexStartCodeBytes(b []byte) int {
	for off := 0; ; {
		i := bytes.IndexByte(b[off:], 1)
		if i < 0 {
			return -1
		}
		j := off + i
		if j >= 2 && b[j-1] == 0 && b[j-2] == 0 {
			return j - 2
		}
		off = j + 1
	}
}

func appendNALUnit(dst [][]byte, nal []byte) [][]byte {
	for len(nal) > 0 && nal[len(nal)-1] == 0 {
		nal = nal[:len(nal)-1]
	}
	if len(nal) == 0 {
		return dst
	}
	switch nal[0] & 0x1f {
	case h264NALAUD, h264NALFiller:
		return dst
	}
	return append(dst, nal)
}
