package ffmpeg

import (
	"encoding/binary"
	"errors"
)

// Conversions between the forms containers store codecs in and the forms
// medley's samples carry (package codec's doc): H.264 in Annex B, AV1
// temporal units with their temporal delimiter.

// ErrBitstream: a codec header or access unit is malformed.
var ErrBitstream = errors.New("ffmpeg: malformed bitstream")

// AVCConfig is what an avcC record (ISO/IEC 14496-15, section 5.2.4.1),
// the H.264 header of MP4 and Matroska, says to turn their length-prefixed
// NAL units into Annex B.
type AVCConfig struct {
	// LengthSize is the size of each NAL unit's length prefix: 1, 2 or 4.
	LengthSize int
	// ParameterSets are the SPS and PPS NAL units, each after a 4-byte
	// start code: what goes before a keyframe so that a decoder (or an
	// RTP receiver) can start there.
	ParameterSets []byte
}

// IsAVCC reports whether an H.264 codec header is an avcC record (as
// opposed to Annex B parameter sets, or nothing).
func IsAVCC(extradata []byte) bool { return len(extradata) >= 7 && extradata[0] == 1 }

// ParseAVCC reads an avcC record.
func ParseAVCC(b []byte) (AVCConfig, error) {
	if !IsAVCC(b) {
		return AVCConfig{}, ErrBitstream
	}
	c := AVCConfig{LengthSize: int(b[4]&3) + 1}
	if c.LengthSize == 3 {
		return AVCConfig{}, ErrBitstream
	}
	p := b[5:]
	for set := range 2 {
		if len(p) < 1 {
			return AVCConfig{}, ErrBitstream
		}
		n := int(p[0])
		if set == 0 {
			n &= 0x1f
		}
		p = p[1:]
		for range n {
			if len(p) < 2 {
				return AVCConfig{}, ErrBitstream
			}
			size := int(binary.BigEndian.Uint16(p))
			if len(p) < 2+size {
				return AVCConfig{}, ErrBitstream
			}
			c.ParameterSets = append(c.ParameterSets, 0, 0, 0, 1)
			c.ParameterSets = append(c.ParameterSets, p[2:2+size]...)
			p = p[2+size:]
		}
	}
	return c, nil
}

// AppendAnnexB appends the NAL units of a length-prefixed H.264 access
// unit to dst, each after a 4-byte start code.
func AppendAnnexB(dst, au []byte, lengthSize int) ([]byte, error) {
	if lengthSize != 1 && lengthSize != 2 && lengthSize != 4 {
		return dst, ErrBitstream
	}
	for len(au) > 0 {
		if len(au) < lengthSize {
			return dst, ErrBitstream
		}
		var n int
		switch lengthSize {
		case 1:
			n = int(au[0])
		case 2:
			n = int(binary.BigEndian.Uint16(au))
		case 4:
			n = int(binary.BigEndian.Uint32(au))
		}
		au = au[lengthSize:]
		if n < 0 || n > len(au) {
			return dst, ErrBitstream
		}
		dst = append(dst, 0, 0, 0, 1)
		dst = append(dst, au[:n]...)
		au = au[n:]
	}
	return dst, nil
}

// AnnexBInPlace turns a length-prefixed H.264 access unit with 4-byte
// lengths into Annex B where it lies (a start code is as long as the
// length it replaces), and reports whether the lengths were sound; au is
// left partly converted when they were not.
func AnnexBInPlace(au []byte) bool {
	for i := 0; i < len(au); {
		if len(au)-i < 4 {
			return false
		}
		n := int(binary.BigEndian.Uint32(au[i:]))
		if n < 0 || n > len(au)-i-4 {
			return false
		}
		copy(au[i:], []byte{0, 0, 0, 1})
		i += 4 + n
	}
	return true
}

// HasAV1TemporalDelimiter reports whether an AV1 temporal unit starts with
// a temporal delimiter OBU, which Matroska and MP4 leave out and medley's
// AV1 samples carry.
func HasAV1TemporalDelimiter(tu []byte) bool { return len(tu) > 0 && tu[0]>>3&0xf == 2 }

// AV1TemporalDelimiter is a temporal delimiter OBU with its size field.
var AV1TemporalDelimiter = []byte{0x12, 0x00}
