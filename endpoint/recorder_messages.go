package endpoint

import (
	"fmt"
	"time"

	"github.com/medley-go/medley/element"
)

// RecorderState is where a Recorder is in its life.
type RecorderState uint8

// The recorder states.
const (
	// RecorderWaiting: waiting for media (and for video, a keyframe) to
	// start, or to go on after Resume.
	RecorderWaiting RecorderState = iota + 1
	// RecorderRecording: writing.
	RecorderRecording
	// RecorderPaused: dropping what arrives until Resume.
	RecorderPaused
	// RecorderStopped: the file is complete (or was never started); the
	// recorder writes nothing more.
	RecorderStopped
)

func (s RecorderState) String() string {
	switch s {
	case RecorderWaiting:
		return "waiting"
	case RecorderRecording:
		return "recording"
	case RecorderPaused:
		return "paused"
	case RecorderStopped:
		return "stopped"
	}
	return fmt.Sprintf("recorder-state(%d)", uint8(s))
}

// StopReason says why a recording stopped.
type StopReason uint8

// The stop reasons.
const (
	// StopRequested: the host called Stop.
	StopRequested StopReason = iota + 1
	// StopEndOfStream: every track the file holds ended.
	StopEndOfStream
	// StopMaxDuration: the file reached WithMaxDuration.
	StopMaxDuration
	// StopMaxSize: the file reached WithMaxSize.
	StopMaxSize
	// StopError: writing failed (Stopped.Err says why).
	StopError
	// StopClosed: the recorder was closed (removed from its pipeline, or
	// the pipeline closed) while recording.
	StopClosed
)

func (r StopReason) String() string {
	switch r {
	case StopRequested:
		return "requested"
	case StopEndOfStream:
		return "end-of-stream"
	case StopMaxDuration:
		return "max-duration"
	case StopMaxSize:
		return "max-size"
	case StopError:
		return "error"
	case StopClosed:
		return "closed"
	}
	return fmt.Sprintf("stop-reason(%d)", uint8(r))
}

// Recording reports that a Recorder started writing, or went on after
// Resume. Element is the recorder's name.
type Recording struct {
	element.MessageHeader
	// Path is the file.
	Path string
	// Tracks are the kinds the file holds.
	Tracks element.Kind
	// Position is the file time where writing starts (0, or where it
	// paused).
	Position time.Duration
}

// Paused reports that a Recorder paused.
type Paused struct {
	element.MessageHeader
	Path string
	// Position is the file time where it paused.
	Position time.Duration
}

// Stopped reports that a Recorder finished its file: it is complete and
// closed (or, when nothing was recorded, removed: Size is 0).
type Stopped struct {
	element.MessageHeader
	Path   string
	Reason StopReason
	// Duration is the media the file holds; Size its length in bytes.
	Duration time.Duration
	Size     int64
	// Err is why writing failed, for StopError.
	Err error
}
