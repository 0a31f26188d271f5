package ffmpeg

// #cgo pkg-config: libavcodec libavfilter libavutil libswscale
// #include "shim.h"
import "C"

import (
	"errors"
	"sync"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// go-astiav v0.16.0 gives no access to the C structs behind Packet and
// CodecContext, which medley needs for what the binding lacks (padded packet
// input, zero-copy packet output, rate-control fields, pkt_timebase, channel
// layouts). Both types keep their C pointer as the first field; the array
// sizes below fail to compile if the struct sizes change, and bindingOK
// checks the pointers at run time before the first codec opens. Moving to a
// newer go-astiav revisits this file.
const ptrSize = unsafe.Sizeof(uintptr(0))

var (
	_ [unsafe.Sizeof(astiav.Packet{}) - ptrSize]struct{}
	_ [ptrSize - unsafe.Sizeof(astiav.Packet{})]struct{}
	_ [unsafe.Sizeof(astiav.CodecContext{}) - 2*ptrSize]struct{}
	_ [2*ptrSize - unsafe.Sizeof(astiav.CodecContext{})]struct{}
)

func cPacket(p *astiav.Packet) *C.AVPacket {
	return *(**C.AVPacket)(unsafe.Pointer(p))
}

func cCodec(cc *astiav.CodecContext) *C.AVCodecContext {
	return *(**C.AVCodecContext)(unsafe.Pointer(cc))
}

func cFrame(f *astiav.Frame) *C.AVFrame {
	return (*C.AVFrame)(f.UnsafePointer())
}

// bindingOK checks once that the C pointers read through cPacket and cCodec
// are the ones go-astiav writes to.
var bindingOK = sync.OnceValue(func() error {
	p := astiav.AllocPacket()
	defer p.Free()
	p.SetPts(0x4d65646c)
	cc := astiav.AllocCodecContext(nil)
	defer cc.Free()
	cc.SetWidth(4321)
	if cPacket(p).pts != 0x4d65646c || cCodec(cc).width != 4321 {
		return ErrBinding
	}
	return nil
})

// planes describes a frame's data planes; the slices alias C memory.
type planes struct {
	n    int
	data [C.MEDLEY_MAX_PLANES]*C.uint8_t
	line [C.MEDLEY_MAX_PLANES]C.int
	size [C.MEDLEY_MAX_PLANES]C.int
}

func framePlanes(f *astiav.Frame, p *planes) error {
	n := C.medley_frame_planes(cFrame(f), &p.data[0], &p.line[0], &p.size[0])
	if n < 0 {
		return errors.New("ffmpeg: frame format has no known plane layout")
	}
	p.n = int(n)
	return nil
}

func (p *planes) bytes(i int) []byte {
	if i < 0 || i >= p.n || p.data[i] == nil {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p.data[i])), int(p.size[i]))
}

func frameIsWritable(f *astiav.Frame) bool { return C.medley_frame_is_writable(cFrame(f)) > 0 }

func frameMakeWritable(f *astiav.Frame) error {
	return avError(C.medley_frame_make_writable(cFrame(f)))
}

// frameRef makes dst a new reference to src's buffers and properties (dst
// must hold none).
func frameRef(dst, src *astiav.Frame) error {
	return avError(C.medley_frame_ref(cFrame(dst), cFrame(src)))
}

func frameUnref(f *astiav.Frame) { C.medley_frame_unref(cFrame(f)) }

func frameResetProps(f *astiav.Frame) { C.medley_frame_reset_props(cFrame(f)) }

func frameSetChannels(f *astiav.Frame, n int) error {
	return avError(C.medley_frame_set_channels(cFrame(f), C.int(n)))
}

func frameCorrupt(f *astiav.Frame) bool { return C.medley_frame_corrupt(cFrame(f)) != 0 }

func frameChannels(f *astiav.Frame) int { return int(C.medley_frame_channels(cFrame(f))) }

// packetFill makes p a padded, reference-counted copy of data.
func packetFill(p *astiav.Packet, data []byte) error {
	var ptr *C.uint8_t
	if len(data) > 0 {
		ptr = (*C.uint8_t)(unsafe.Pointer(&data[0]))
	}
	return avError(C.medley_packet_fill(cPacket(p), ptr, C.int(len(data))))
}

// packetBytes returns p's payload without copying: valid until p is unref'd
// or reused.
func packetBytes(p *astiav.Packet) []byte {
	c := cPacket(p)
	if c.data == nil || c.size <= 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(c.data)), int(c.size))
}

func codecSetRates(cc *astiav.CodecContext, bitrate, minrate, maxrate int64, bufsize int) {
	C.medley_codec_set_rates(cCodec(cc), C.int64_t(bitrate), C.int64_t(minrate), C.int64_t(maxrate), C.int(bufsize))
}

func codecFlush(cc *astiav.CodecContext) { C.medley_codec_flush(cCodec(cc)) }

func codecRates(cc *astiav.CodecContext) (bitrate, minrate, maxrate int64, bufsize int) {
	c := cCodec(cc)
	return int64(c.bit_rate), int64(c.rc_min_rate), int64(c.rc_max_rate), int(c.rc_buffer_size)
}

func codecSetPktTimebase(cc *astiav.CodecContext, tb astiav.Rational) {
	C.medley_codec_set_pkt_timebase(cCodec(cc), C.int(tb.Num()), C.int(tb.Den()))
}

func codecSetChannels(cc *astiav.CodecContext, n int) error {
	return avError(C.medley_codec_set_channels(cCodec(cc), C.int(n)))
}

func codecInitialPadding(cc *astiav.CodecContext) int { return int(cCodec(cc).initial_padding) }

// layoutName is FFmpeg's name of the default layout for n channels ("mono",
// "stereo", "5.1"), as filter arguments spell it.
func layoutName(n int) string {
	var buf [64]C.char
	if C.medley_layout_describe(C.int(n), &buf[0], C.int(len(buf))) < 0 {
		return ""
	}
	return C.GoString(&buf[0])
}

// avError turns a negative FFmpeg return code into an astiav.Error.
func avError(ret C.int) error {
	if ret >= 0 {
		return nil
	}
	return astiav.Error(ret)
}

func frameRowBytes(f *astiav.Frame, plane int) int {
	return int(C.medley_frame_row_bytes(cFrame(f), C.int(plane)))
}
