package ffmpeg

// #cgo pkg-config: libavformat libavcodec libavutil
// #include "format.h"
import "C"

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strings"
	"time"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// go-astiav keeps the C pointer of a FormatContext and of CodecParameters
// as their only field, as cgo.go relies on for Packet and CodecContext; the
// array sizes below fail to compile if that changes.
var (
	_ [unsafe.Sizeof(astiav.FormatContext{}) - ptrSize]struct{}
	_ [ptrSize - unsafe.Sizeof(astiav.FormatContext{})]struct{}
	_ [unsafe.Sizeof(astiav.CodecParameters{}) - ptrSize]struct{}
	_ [ptrSize - unsafe.Sizeof(astiav.CodecParameters{})]struct{}
)

func cFormat(fc *astiav.FormatContext) *C.AVFormatContext {
	return *(**C.AVFormatContext)(unsafe.Pointer(fc))
}

func cCodecPar(p *astiav.CodecParameters) *C.AVCodecParameters {
	return *(**C.AVCodecParameters)(unsafe.Pointer(p))
}

func parSetChannels(p *astiav.CodecParameters, n int) error {
	return avError(C.medley_par_set_channels(cCodecPar(p), C.int(n)))
}

func parChannels(p *astiav.CodecParameters) int { return int(C.medley_par_channels(cCodecPar(p))) }

// codecIDAV1 is missing from go-astiav v0.16.0.
const codecIDAV1 = astiav.CodecID(C.AV_CODEC_ID_AV1)

// shortCodecs maps medley's short codec names (those of codec.Codec.Name)
// to FFmpeg's codec IDs, in both directions.
var shortCodecs = []struct {
	name string
	id   astiav.CodecID
}{
	{"vp8", astiav.CodecIDVp8},
	{"vp9", astiav.CodecIDVp9},
	{"h264", astiav.CodecIDH264},
	{"av1", codecIDAV1},
	{"opus", astiav.CodecIDOpus},
	{"aac", astiav.CodecIDAac},
	{"pcmu", astiav.CodecIDPcmMulaw},
	{"pcma", astiav.CodecIDPcmAlaw},
	{"g722", astiav.CodecIDAdpcmG722},
	{"pcm", astiav.CodecIDPcmS16Le},
}

// codecID returns FFmpeg's ID for a short name or an FFmpeg codec name
// ("libopus", "pcm_s16le", "hevc").
func codecID(name string) (astiav.CodecID, bool) {
	short := strings.ToLower(name)
	for _, c := range shortCodecs {
		if c.name == short {
			return c.id, true
		}
	}
	if c := astiav.FindDecoderByName(name); c != nil {
		return c.ID(), true
	}
	if c := astiav.FindEncoderByName(name); c != nil {
		return c.ID(), true
	}
	return astiav.CodecIDNone, false
}

// CodecName returns medley's short name for an FFmpeg codec ID (vp8, h264,
// opus, pcmu, ...), or FFmpeg's name of it for the others ("hevc",
// "mp3").
func CodecName(id astiav.CodecID) string {
	for _, c := range shortCodecs {
		if c.id == id {
			return c.name
		}
	}
	return id.Name()
}

// StreamPacket is one encoded packet of one stream of a container: what a
// Muxer writes and a Demuxer reads.
//
// Ownership: Muxer.WritePacket copies Data and does not retain it.
// Demuxer.ReadPacket appends into Data's memory (Data[:0]), which stays the
// caller's.
type StreamPacket struct {
	// Stream is the index of the stream (AddStream's, or StreamInfo.Index).
	Stream int
	Data   []byte
	// PTS, DTS and Duration are in the stream's time base (the muxer
	// stream's StreamConfig.TimeBase, the demuxer's StreamInfo.TimeBase);
	// NoTimestamp when unknown. A Muxer takes DTS = PTS when DTS is
	// NoTimestamp.
	PTS, DTS, Duration int64
	Keyframe           bool
}

// NoTimestamp is FFmpeg's AV_NOPTS_VALUE: no timestamp.
const NoTimestamp = astiav.NoPtsValue

// toDuration converts ts in time base tb to a duration, rounding to the
// nearest nanosecond (halves away from zero), as av_rescale_q does. It
// runs in Go, a sample's timestamps being converted several times each:
// only what it cannot compute exactly in 128 bits goes to FFmpeg.
func toDuration(ts int64, tb astiav.Rational) time.Duration {
	if num, den := int64(tb.Num()), int64(tb.Den()); num > 0 && den > 0 {
		if v, ok := rescaleNear(ts, num*int64(time.Second), den); ok {
			return time.Duration(v)
		}
	}
	return time.Duration(astiav.RescaleQ(ts, tb, nanosecond))
}

// rescaleNear returns a*b/c rounded to the nearest integer, halves away
// from zero (av_rescale_rnd with AV_ROUND_NEAR_INF), for b and c > 0; ok
// is false when the result does not fit in an int64.
func rescaleNear(a, b, c int64) (v int64, ok bool) {
	if a == math.MinInt64 {
		return 0, false
	}
	neg := a < 0
	if neg {
		a = -a
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	var carry uint64
	lo, carry = bits.Add64(lo, uint64(c/2), 0)
	hi += carry
	if hi >= uint64(c) {
		return 0, false // the quotient needs more than 64 bits
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	if q > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(q), true
	}
	return int64(q), true
}

// fromDuration converts a duration to time base tb.
func fromDuration(d time.Duration, tb astiav.Rational) int64 {
	return astiav.RescaleQ(int64(d), nanosecond, tb)
}

// Nanoseconds is the time base whose timestamps are time.Duration values,
// for StreamConfig.TimeBase.
var Nanoseconds = nanosecond

var (
	nanosecond  = astiav.NewRational(1, int(time.Second))
	microsecond = astiav.NewRational(1, int(time.Second/time.Microsecond))
)

// annexBNALUs calls fn with each NAL unit of an H.264 Annex B access unit
// (without its start code) until fn returns false.
func annexBNALUs(au []byte, fn func(nalu []byte) bool) {
	start := -1
	i := 0
	for i+3 <= len(au) {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 {
			if start >= 0 {
				end := i
				for end > start && au[end-1] == 0 {
					end-- // trailing zero of a 4-byte start code
				}
				if !fn(au[start:end]) {
					return
				}
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(au) {
		fn(au[start:])
	}
}

// h264ParameterSets returns the SPS and PPS NAL units of an H.264 Annex B
// access unit, each after a 4-byte start code: the codec header FFmpeg's
// MP4 and Matroska muxers turn into avcC (trap 4), and whose Annex B form
// tells them to convert the packets to length-prefixed NAL units. It
// returns nil unless the access unit has both.
func h264ParameterSets(au []byte) []byte {
	var out []byte
	var sps, pps bool
	annexBNALUs(au, func(n []byte) bool {
		if len(n) == 0 {
			return true
		}
		switch n[0] & 0x1f {
		case 7:
			sps = true
		case 8:
			pps = true
		default:
			return true
		}
		out = append(out, 0, 0, 0, 1)
		out = append(out, n...)
		return true
	})
	if !sps || !pps {
		return nil
	}
	return out
}

// av1SequenceHeader returns the sequence header OBU of an AV1 temporal
// unit in the low overhead format (every OBU with its size), or nil: the
// codec header from which FFmpeg's muxers build av1C.
func av1SequenceHeader(tu []byte) []byte {
	for len(tu) > 0 {
		h := tu[0]
		typ := h >> 3 & 0xf
		n := 1
		if h&0x04 != 0 {
			n++ // extension header
		}
		if h&0x02 == 0 || n > len(tu) {
			return nil // no obu_size: the rest is this OBU, not supported
		}
		size, m := leb128(tu[n:])
		if m == 0 || uint64(len(tu)-n-m) < size {
			return nil
		}
		end := n + m + int(size)
		if typ == 1 {
			return tu[:end:end]
		}
		tu = tu[end:]
	}
	return nil
}

// leb128 decodes an unsigned LEB128 number (AV1 spec, section 4.10.5) and
// returns it with its length, 0 if malformed.
func leb128(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < 8 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

// isAnnexB reports whether b starts with an Annex B start code.
func isAnnexB(b []byte) bool {
	return len(b) >= 3 && b[0] == 0 && b[1] == 0 && (b[2] == 1 || len(b) >= 4 && b[2] == 0 && b[3] == 1)
}

// OpusHead returns an Opus identification header (RFC 7845, section 5.1)
// for a stream of the given channels (1 or 2) and pre-skip in 48 kHz
// samples: the codec header Matroska and MP4 need for Opus, which RTP does
// not carry.
func OpusHead(channels, preSkip int) []byte {
	h := make([]byte, 19)
	copy(h, "OpusHead")
	h[8] = 1 // version
	h[9] = byte(channels)
	binary.LittleEndian.PutUint16(h[10:], uint16(preSkip))
	binary.LittleEndian.PutUint32(h[12:], 48000)
	// Output gain 0, channel mapping family 0.
	return h
}

// aacSampleRates are the sampling frequencies of MPEG-4 audio by index
// (ISO/IEC 14496-3, 1.6.3.4).
var aacSampleRates = []int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// AACConfig returns the AudioSpecificConfig of AAC-LC at the given sample
// rate and channel count (ISO/IEC 14496-3, 1.6.2.1), or nil for a rate
// that has no index: the codec header of raw AAC packets in MP4 and
// Matroska.
func AACConfig(sampleRate, channels int) []byte {
	for i, r := range aacSampleRates {
		if r == sampleRate {
			const objectType = 2 // AAC LC
			v := uint16(objectType)<<11 | uint16(i)<<7 | uint16(channels&0xf)<<3
			return []byte{byte(v >> 8), byte(v)}
		}
	}
	return nil
}

// adtsHeader parses an ADTS header (ISO/IEC 14496-3, 1.A.2.2) at the start
// of b: its length, and the AudioSpecificConfig it implies.
func adtsHeader(b []byte) (n int, asc []byte, ok bool) {
	if len(b) < 7 || b[0] != 0xff || b[1]&0xf6 != 0xf0 {
		return 0, nil, false
	}
	n = 7
	if b[1]&1 == 0 {
		n = 9 // with CRC
	}
	objectType := int(b[2]>>6) + 1
	freq := int(b[2]>>2) & 0xf
	channels := int(b[2]&1)<<2 | int(b[3]>>6)
	if freq >= len(aacSampleRates) || len(b) < n {
		return 0, nil, false
	}
	v := uint16(objectType)<<11 | uint16(freq)<<7 | uint16(channels)<<3
	return n, []byte{byte(v >> 8), byte(v)}, true
}
