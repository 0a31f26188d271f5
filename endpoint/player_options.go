package endpoint

import (
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/medley-go/medley/element"
)

// PlayerOption configures a Player. Options apply in order over the
// defaults; NewPlayer then validates the whole.
type PlayerOption func(*playerConfig) error

type playerConfig struct {
	unpaced   bool
	loop      bool
	format    string
	options   map[string]string
	probeSize int
	probeTime time.Duration
	tracks    element.Kind
}

func defaultPlayerConfig() playerConfig {
	return playerConfig{tracks: element.KindAudio | element.KindVideo}
}

// WithoutPacing makes a Player send the input as fast as it reads it, for
// batch work (transcoding a file, recording it elsewhere), instead of in
// real time by its timestamps.
func WithoutPacing() PlayerOption {
	return func(c *playerConfig) error {
		c.unpaced = true
		return nil
	}
}

// WithLoop makes a Player start the input again when it ends, its
// timestamps going on from where the last round ended, until it is
// removed or the pipeline closes. An input that cannot seek cannot loop.
func WithLoop() PlayerOption {
	return func(c *playerConfig) error {
		c.loop = true
		return nil
	}
}

// WithInputFormat forces FFmpeg's demuxer ("matroska", "mov", "rtsp"),
// for inputs whose format cannot be probed.
func WithInputFormat(name string) PlayerOption {
	return func(c *playerConfig) error {
		c.format = name
		return nil
	}
}

// WithInputOptions passes FFmpeg demuxer and protocol options
// (rtsp_transport=tcp, timeout, user_agent, ...); an option nobody uses
// fails the open.
func WithInputOptions(opts map[string]string) PlayerOption {
	return func(c *playerConfig) error {
		c.options = maps.Clone(opts)
		return nil
	}
}

// WithProbe bounds how much of the input FFmpeg reads to learn its streams
// before the first packet: a live source (RTSP, HTTP) wants little, such
// as 32 KiB and 200 ms, to start without seconds of buffering. Zero keeps
// FFmpeg's defaults (5 MB, 5 s).
func WithProbe(size int, duration time.Duration) PlayerOption {
	return func(c *playerConfig) error {
		if size < 0 || duration < 0 {
			return fmt.Errorf("endpoint: WithProbe(%d, %v): negative", size, duration)
		}
		c.probeSize, c.probeTime = size, duration
		return nil
	}
}

// WithPlayerTracks sets the src pads a Player has: element.KindAudio,
// element.KindVideo, or both (the default).
func WithPlayerTracks(k element.Kind) PlayerOption {
	return func(c *playerConfig) error {
		k &= element.KindAudio | element.KindVideo
		if k == 0 {
			return errors.New("endpoint: WithPlayerTracks: neither audio nor video")
		}
		c.tracks = k
		return nil
	}
}
