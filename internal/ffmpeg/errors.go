package ffmpeg

import (
	"errors"

	"github.com/asticode/go-astiav"
)

// Sentinel errors; errors.Is matches them in what this package returns.
var (
	// ErrUnknownCodec: FFmpeg here has no encoder or decoder of that name.
	ErrUnknownCodec = errors.New("ffmpeg: unknown codec")
	// ErrUnknownOption: Open left an option unused, which FFmpeg does
	// silently when a key is misspelt or belongs to another codec.
	ErrUnknownOption = errors.New("ffmpeg: unknown option")
	// ErrClosed: the object was used after Close.
	ErrClosed = errors.New("ffmpeg: closed")
	// ErrFormat: a frame does not have the size or pixel/sample format the
	// object was opened for, or a configuration names an impossible one.
	ErrFormat = errors.New("ffmpeg: unsupported or mismatched format")
	// ErrBinding: the go-astiav version linked in does not have the struct
	// layout this package was written against.
	ErrBinding = errors.New("ffmpeg: go-astiav layout differs from v0.16.0")

	// ErrAgain is FFmpeg's EAGAIN: feed more input, or read output first.
	ErrAgain = astiav.ErrEagain
	// ErrEOF is FFmpeg's end of stream after a flush.
	ErrEOF = astiav.ErrEof
)

// Error is a failure of an FFmpeg operation, naming the component and what it
// was doing: "ffmpeg: libx264 encoder: send frame: Invalid argument". It
// unwraps to the underlying error, often an astiav.Error, so that
// errors.Is(err, astiav.ErrEagain) and errors.Is(err, ErrUnknownCodec) work.
type Error struct {
	// Component names the codec or object ("libx264", "opus", "swscale").
	Component string
	// Role is "encoder", "decoder", "scaler", "audio converter", ...
	Role string
	// Op is the operation: "open", "send frame", "receive packet", ...
	Op  string
	Err error
}

func (e *Error) Error() string {
	s := "ffmpeg: "
	if e.Component != "" {
		s += e.Component + " "
	}
	s += e.Role
	if e.Op != "" {
		s += ": " + e.Op
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// wrap returns nil for a nil err, else an *Error.
func wrap(component, role, op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Component: component, Role: role, Op: op, Err: err}
}
