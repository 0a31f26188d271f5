package ffmpeg

// #cgo pkg-config: libavformat libavutil
// #include <errno.h>
// #include "format.h"
import "C"

import (
	"errors"
	"fmt"
	"io"
	"runtime/cgo"
	"sync/atomic"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// ioBufferSize is the size of the buffer between FFmpeg and a Go reader or
// writer: FFmpeg's own default for files (IO_BUFFER_SIZE).
const ioBufferSize = 32 << 10

// avseekSize and avseekForce are FFmpeg's AVSEEK_SIZE and AVSEEK_FORCE,
// or'ed into whence: "tell me the size" (trap 3: a seek callback must
// answer it) and "seek even if costly".
const (
	avseekSize  = 0x10000
	avseekForce = 0x20000
)

// customIO is an AVIOContext whose reads, writes and seeks go to a Go
// io.Reader, io.Writer and io.Seeker, without copying: the callbacks get
// FFmpeg's buffer as a slice (io.Reader's and io.Writer's contracts forbid
// retaining it). Each customIO has its own cgo.Handle, deleted by free, so
// nothing stays in a global map (go-astiav's AllocIOContext keeps every
// handler forever and copies every write).
type customIO struct {
	pb *C.AVIOContext
	h  cgo.Handle
	st *ioState
}

// ioState is what the callbacks of one customIO use. It is touched only by
// the goroutine that drives the format context, but for the counters.
type ioState struct {
	r io.Reader
	w io.Writer
	s io.Seeker
	// err is the first failure of r, w or s other than io.EOF: FFmpeg sees
	// only "I/O error", the caller gets this.
	err error
	// pos is the position of the next write; size the furthest byte
	// written, which is the size of a file written from its start.
	pos  int64
	size atomic.Int64
}

// newCustomIO makes an AVIOContext over r (reading) or w (writing); s, if
// not nil, makes it seekable.
func newCustomIO(r io.Reader, w io.Writer, s io.Seeker) (*customIO, error) {
	st := &ioState{r: r, w: w, s: s}
	if s != nil {
		// Start where the seeker is (a file opened for appending, a
		// reader already advanced): FFmpeg counts from 0 there.
		if pos, err := s.Seek(0, io.SeekCurrent); err == nil {
			st.pos = pos
		}
	}
	h := cgo.NewHandle(st)
	b := func(v bool) C.int {
		if v {
			return 1
		}
		return 0
	}
	pb := C.medley_avio_alloc(ioBufferSize, b(w != nil), C.uintptr_t(h), b(r != nil), b(w != nil), b(s != nil))
	if pb == nil {
		h.Delete()
		return nil, &Error{Role: "custom IO", Op: "alloc", Err: astiav.Error(-C.ENOMEM)}
	}
	return &customIO{pb: pb, h: h, st: st}, nil
}

// flush writes what FFmpeg's buffer holds.
func (c *customIO) flush() {
	if c.pb != nil {
		C.medley_avio_flush(c.pb)
	}
}

// failure returns the Go error behind an FFmpeg IO failure, or nil.
func (c *customIO) failure() error { return c.st.err }

// written returns the furthest byte written.
func (c *customIO) written() int64 { return c.st.size.Load() }

// free frees the context and deletes the handle. The format context using
// it must be done with it. free is idempotent.
func (c *customIO) free() {
	if c.pb == nil {
		return
	}
	C.medley_avio_free(&c.pb)
	c.pb = nil
	c.h.Delete()
}

func ioStateOf(h C.uintptr_t) *ioState { return cgo.Handle(h).Value().(*ioState) }

// ioError records err and returns FFmpeg's code for it: AVERROR_EOF for
// io.EOF (trap 3: io.EOF would be "unknown error"), AVERROR(EIO) otherwise.
func (st *ioState) ioError(err error) C.int {
	if errors.Is(err, io.EOF) {
		return C.int(astiav.ErrEof)
	}
	if st.err == nil {
		st.err = err
	}
	return C.int(astiav.ErrEio)
}

// recoverIO turns a panic in a Go reader, writer or seeker, which must not
// unwind through FFmpeg's C frames, into an IO error.
func (st *ioState) recoverIO(ret *C.int) {
	if v := recover(); v != nil {
		*ret = st.ioError(fmt.Errorf("ffmpeg: custom IO panicked: %v", v))
	}
}

//export medleyAVIORead
func medleyAVIORead(h C.uintptr_t, buf *C.uint8_t, size C.int) (ret C.int) {
	st := ioStateOf(h)
	defer st.recoverIO(&ret)
	if size <= 0 {
		return 0
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(size))
	// FFmpeg 5.1 takes 0 as end of file: read until there are bytes, an
	// error or the end (io.Reader may return 0, nil).
	for range 100 {
		n, err := st.r.Read(b)
		if n > 0 {
			st.pos += int64(n)
			return C.int(n)
		}
		if err != nil {
			return st.ioError(err)
		}
	}
	return st.ioError(io.ErrNoProgress)
}

//export medleyAVIOWrite
func medleyAVIOWrite(h C.uintptr_t, buf *C.uint8_t, size C.int) (ret C.int) {
	st := ioStateOf(h)
	defer st.recoverIO(&ret)
	if st.err != nil {
		return C.int(astiav.ErrEio)
	}
	if size <= 0 {
		return 0
	}
	n, err := st.w.Write(unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(size)))
	st.pos += int64(n)
	if st.pos > st.size.Load() {
		st.size.Store(st.pos)
	}
	if err == nil && n < int(size) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrShortWrite
		}
		return st.ioError(err)
	}
	return C.int(n)
}

//export medleyAVIOSeek
func medleyAVIOSeek(h C.uintptr_t, offset C.int64_t, whence C.int) (ret C.int64_t) {
	st := ioStateOf(h)
	var r C.int
	defer func() {
		st.recoverIO(&r)
		if r < 0 {
			ret = C.int64_t(r)
		}
	}()
	if st.s == nil {
		return -C.ENOSYS
	}
	w := int(whence) &^ avseekForce
	if w&avseekSize != 0 {
		cur, err := st.s.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		end, err := st.s.Seek(0, io.SeekEnd)
		if err != nil {
			return -1
		}
		if _, err := st.s.Seek(cur, io.SeekStart); err != nil {
			r = st.ioError(err)
			return C.int64_t(r)
		}
		return C.int64_t(end)
	}
	pos, err := st.s.Seek(int64(offset), w)
	if err != nil {
		r = st.ioError(err)
		return C.int64_t(r)
	}
	st.pos = pos
	return C.int64_t(pos)
}
