package endpoint

import (
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/medley-go/medley/element"
)

// RecorderOption configures a Recorder. Options apply in order over the
// defaults; NewRecorder then validates the whole.
type RecorderOption func(*recorderConfig) error

type recorderConfig struct {
	profile      MediaProfile
	profileSet   bool
	baseDir      string
	trackWait    time.Duration
	syncWait     time.Duration
	maxDuration  time.Duration
	maxSize      int64
	queueSize    int
	queuePolicy  element.QueuePolicy
	fragment     time.Duration
	muxerOptions map[string]string
}

// The Recorder's defaults.
const (
	// DefaultTrackWait is how long a Recorder waits for its other tracks
	// once one has media, before it records without them.
	DefaultTrackWait = 2 * time.Second
	// DefaultSyncWait is how long a Recorder whose tracks all have media
	// waits for each one's sender clock (RTCP sender reports, in
	// element.SenderClockEvents) to settle before it starts the file:
	// senders report about once a second.
	DefaultSyncWait = 1500 * time.Millisecond
	// DefaultFragmentDuration bounds the media the container holds in
	// memory (Matroska cluster, MP4 fragment): what a crash loses at most.
	DefaultFragmentDuration = time.Second
	// DefaultRecorderQueue is the capacity, in samples, of each of a
	// Recorder's sink pad queues: 10 s of 20 ms audio, 17 s of 30 fps
	// video, for a disk that stalls. Beyond it video is dropped to the next
	// keyframe (element.Live): a recorder never blocks the pipeline.
	DefaultRecorderQueue = 512
)

func defaultRecorderConfig() recorderConfig {
	return recorderConfig{
		trackWait:   DefaultTrackWait,
		syncWait:    DefaultSyncWait,
		queueSize:   DefaultRecorderQueue,
		queuePolicy: element.Live,
		fragment:    DefaultFragmentDuration,
	}
}

// WithMediaProfile sets what the recorder writes. Without it the profile
// comes from the file's extension (MediaProfileFor).
func WithMediaProfile(p MediaProfile) RecorderOption {
	return func(c *recorderConfig) error {
		if !p.valid() {
			return fmt.Errorf("%w: %v", ErrUnknownProfile, p)
		}
		c.profile, c.profileSet = p, true
		return nil
	}
}

// WithBaseDir confines the recorder to a directory: the path given to
// NewRecorder is taken relative to it (or, if absolute, must lie within
// it), and no path that leads outside it, by "../" or by a symbolic link,
// can be written (ErrPathOutsideBase). Missing directories under it are
// created.
func WithBaseDir(dir string) RecorderOption {
	return func(c *recorderConfig) error {
		if dir == "" {
			return errors.New("endpoint: WithBaseDir: empty directory")
		}
		c.baseDir = dir
		return nil
	}
}

// WithTrackWait sets how long, once one track has media, the recorder
// waits for the profile's other tracks before it writes the tracks it has
// and posts an element.Warning naming each missing one (default
// DefaultTrackWait). Media faster than real time ends it sooner (see
// Recorder).
func WithTrackWait(d time.Duration) RecorderOption {
	return func(c *recorderConfig) error {
		if d <= 0 {
			return fmt.Errorf("endpoint: WithTrackWait(%v): must be positive", d)
		}
		c.trackWait = d
		return nil
	}
}

// WithSyncWait sets how long, once every track has media, the recorder
// waits for the sender clock (element.SenderClockEvent) of each to settle
// before it starts the file (default DefaultSyncWait), so as to line the
// tracks up by their capture times (see Recorder). Media faster than real
// time ends the wait once what is held spans d. 0 starts the file at
// once, the tracks then lined up by their sender clocks only if each
// already has one.
func WithSyncWait(d time.Duration) RecorderOption {
	return func(c *recorderConfig) error {
		if d < 0 {
			return fmt.Errorf("endpoint: WithSyncWait(%v): must not be negative", d)
		}
		c.syncWait = d
		return nil
	}
}

// WithMaxDuration stops the recording (Stopped, StopMaxDuration) when the
// file would hold more than d of media, by the media's own timestamps.
func WithMaxDuration(d time.Duration) RecorderOption {
	return func(c *recorderConfig) error {
		if d <= 0 {
			return fmt.Errorf("endpoint: WithMaxDuration(%v): must be positive", d)
		}
		c.maxDuration = d
		return nil
	}
}

// WithMaxSize stops the recording (Stopped, StopMaxSize) once the file
// reaches n bytes; the trailer written then adds a little more.
func WithMaxSize(n int64) RecorderOption {
	return func(c *recorderConfig) error {
		if n <= 0 {
			return fmt.Errorf("endpoint: WithMaxSize(%d): must be positive", n)
		}
		c.maxSize = n
		return nil
	}
}

// WithRecorderQueue sets the capacity (in buffers) and policy of each sink
// pad's queue (DefaultRecorderQueue, element.Live). element.Block suits
// recording a file or a generator faster than real time; a real-time
// source wants Live, which drops rather than blocks.
func WithRecorderQueue(size int, policy element.QueuePolicy) RecorderOption {
	return func(c *recorderConfig) error {
		if size <= 0 {
			return fmt.Errorf("endpoint: WithRecorderQueue(%d): must be positive", size)
		}
		c.queueSize, c.queuePolicy = size, policy
		return nil
	}
}

// WithFragmentDuration bounds how much media the container keeps in
// memory before writing it (Matroska clusters, fragmented MP4 fragments;
// DefaultFragmentDuration): a process killed mid-recording loses about
// that much. Plain MP4 keeps its index to the end whatever this says.
func WithFragmentDuration(d time.Duration) RecorderOption {
	return func(c *recorderConfig) error {
		if d <= 0 {
			return fmt.Errorf("endpoint: WithFragmentDuration(%v): must be positive", d)
		}
		c.fragment = d
		return nil
	}
}

// WithMuxerOptions passes FFmpeg muxer options (cluster_size_limit,
// movflags, ...) over the recorder's own; a key FFmpeg does not use stops
// the recording with an error when it starts.
func WithMuxerOptions(opts map[string]string) RecorderOption {
	return func(c *recorderConfig) error {
		c.muxerOptions = maps.Clone(opts)
		return nil
	}
}
