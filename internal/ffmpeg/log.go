package ffmpeg

// #include "shim.h"
import "C"

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/asticode/go-astiav"
)

// logTarget is where SetLogger routes FFmpeg's log.
type logTarget struct {
	logger *slog.Logger
	level  slog.Level
}

var logTo atomic.Pointer[logTarget]

// logDropped counts log lines lost to a panicking handler.
var logDropped atomic.Int64

func init() {
	// FFmpeg's default is info level on stderr: quieter by default, and
	// never through astiav.SetLogCallback (see SetLogger).
	C.medley_log_default(C.int(astiav.LogLevelError))
}

// SetLogger routes FFmpeg's log lines at level and above to logger, with the
// FFmpeg component ("libx264", "vp8", "Parsed_aresample_0") in the attribute
// "component". FFmpeg's levels map to slog's as error (and fatal, panic) →
// Error, warning → Warn, info → Info, verbose → Debug, debug → Debug-4,
// trace → Debug-8.
//
// FFmpeg's logger is global to the process: SetLogger replaces its callback
// for everyone in it, which is why it is opt-in. A nil logger restores
// FFmpeg's own logger (stderr) at error level, the default.
//
// Lines are formatted into a bounded buffer (longer lines are cut and get
// truncated=true) and handed to the logger on whatever thread FFmpeg logs
// from, its own worker threads included: the handler must be safe for
// concurrent use and should not block. A handler that panics loses that
// line, not the process.
func SetLogger(logger *slog.Logger, level slog.Level) {
	if logger == nil {
		logTo.Store(nil)
		C.medley_log_default(C.int(astiav.LogLevelError))
		return
	}
	logTo.Store(&logTarget{logger: logger, level: level})
	C.medley_log_route(C.int(ffmpegLevel(level)))
}

// ffmpegLevel is the most verbose FFmpeg level whose lines reach l.
func ffmpegLevel(l slog.Level) astiav.LogLevel {
	switch {
	case l > slog.LevelError:
		return astiav.LogLevelFatal
	case l > slog.LevelWarn:
		return astiav.LogLevelError
	case l > slog.LevelInfo:
		return astiav.LogLevelWarning
	case l > slog.LevelDebug:
		return astiav.LogLevelInfo
	case l > slog.LevelDebug-4:
		return astiav.LogLevelVerbose
	case l > slog.LevelDebug-8:
		return astiav.LogLevelDebug
	}
	return astiav.LogLevel(56) // AV_LOG_TRACE
}

// slogLevel maps an FFmpeg level to slog's.
func slogLevel(l int) slog.Level {
	switch {
	case l <= int(astiav.LogLevelError):
		return slog.LevelError
	case l <= int(astiav.LogLevelWarning):
		return slog.LevelWarn
	case l <= int(astiav.LogLevelInfo):
		return slog.LevelInfo
	case l <= int(astiav.LogLevelVerbose):
		return slog.LevelDebug
	case l <= int(astiav.LogLevelDebug):
		return slog.LevelDebug - 4
	}
	return slog.LevelDebug - 8
}

//export goMedleyLog
func goMedleyLog(level C.int, item *C.char, line *C.char, n C.int, truncated C.int) {
	// This runs below a C frame, often on a thread Go did not start: a
	// panic must not unwind into FFmpeg.
	defer func() {
		if recover() != nil {
			logDropped.Add(1)
		}
	}()
	t := logTo.Load()
	if t == nil {
		return
	}
	lvl := slogLevel(int(level))
	if lvl < t.level {
		return
	}
	msg := C.GoStringN(line, n)
	for len(msg) > 0 && (msg[len(msg)-1] == '\n' || msg[len(msg)-1] == '\r') {
		msg = msg[:len(msg)-1]
	}
	if msg == "" {
		return
	}
	attrs := []slog.Attr{slog.String("component", C.GoString(item))}
	if truncated != 0 {
		attrs = append(attrs, slog.Bool("truncated", true))
	}
	t.logger.LogAttrs(context.Background(), lvl, msg, attrs...)
}
