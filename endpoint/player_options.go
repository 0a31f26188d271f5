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
	// jitter is the live jitter buffer (WithJitterBuffer).
	jitter time.Duration
	// transport is the RTSP transport ("": FFmpeg's choice).
	transport string
	// reconnect is nil without WithReconnect.
	reconnect *reconnectConfig
}

// reconnectConfig is WithReconnect's: the first and the longest wait, and
// how many attempts in a row may fail (0: no limit).
type reconnectConfig struct {
	initial, max time.Duration
	attempts     int
}

// DefaultJitterBuffer is the jitter buffer of a live input unless
// WithJitterBuffer sets another.
const DefaultJitterBuffer = 200 * time.Millisecond

func defaultPlayerConfig() playerConfig {
	return playerConfig{tracks: element.KindAudio | element.KindVideo, jitter: DefaultJitterBuffer}
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
// the defaults: FFmpeg's (5 MB, 5 s) for a local file; for a network
// input (any URL but file:) 1 MB and the jitter buffer's length
// (WithJitterBuffer), without FFmpeg's frame-rate probing.
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

// WithJitterBuffer sets how long a live input's samples may be held to
// smooth out the network's jitter: at most d after they arrive (default
// DefaultJitterBuffer, 200 ms). A live input is a network input (RTSP,
// HTTP, ...) of unknown duration. Instead of pacing it by its timestamps
// from the first sample, as a file, the player sends each sample d after
// the earliest its timestamp lets it arrive (the smallest delay between
// arrival and timestamp seen so far), or at once if it came later than
// that: so samples go out evenly spaced, at most d after they arrived,
// and a source that stalled and then bursts catches up instead of
// keeping the delay. d also bounds FFmpeg's probing of a network input
// (to no less than 100 ms; see WithProbe) and is RTSP's reordering delay
// over UDP (FFmpeg's max_delay). Zero sends live samples as they arrive.
func WithJitterBuffer(d time.Duration) PlayerOption {
	return func(c *playerConfig) error {
		if d < 0 {
			return fmt.Errorf("endpoint: WithJitterBuffer(%v): negative", d)
		}
		c.jitter = d
		return nil
	}
}

// WithRTSPTransport sets how an rtsp:// input carries its media: "tcp"
// (interleaved in the RTSP connection: through firewalls and NATs, no
// loss), "udp" (RTP over UDP: no head-of-line blocking, but lost packets
// are lost) or "http" (tunnelled). By default FFmpeg tries UDP, then TCP.
// It is FFmpeg's rtsp_transport option, which WithInputOptions may also
// set.
func WithRTSPTransport(transport string) PlayerOption {
	return func(c *playerConfig) error {
		switch transport {
		case "tcp", "udp", "http":
			c.transport = transport
			return nil
		}
		return fmt.Errorf("endpoint: WithRTSPTransport(%q): not tcp, udp or http", transport)
	}
}

// WithReconnect makes a Player open a network input again when it
// cannot be opened, and a live input (see WithJitterBuffer) again when it
// breaks or ends: first after initial, then after twice as long each
// time, up to maxWait, until an attempt plays again or attempts attempts
// in a row have failed (0: no limit). Each attempt is announced by a
// PlayerReconnecting message, success by PlayerReconnected; the first
// sample of each pad after it is flagged element.FlagDiscont, after an
// element.DiscontEvent, video from a keyframe, and timestamps go on
// from where they were, plus the time the input was away. Giving up is
// an Error message, as a break without WithReconnect is. A file, or a
// network input with a duration (a file served over HTTP), that ends or
// breaks once playing is not reopened.
//
// A network input that sends nothing for its I/O timeout (see Player) is
// broken. Closing the pipeline or removing the player stops a wait or an
// attempt at once.
func WithReconnect(initial, maxWait time.Duration, attempts int) PlayerOption {
	return func(c *playerConfig) error {
		if initial <= 0 || maxWait < initial || attempts < 0 {
			return fmt.Errorf("endpoint: WithReconnect(%v, %v, %d): want 0 < initial <= maxWait and attempts >= 0", initial, maxWait, attempts)
		}
		c.reconnect = &reconnectConfig{initial: initial, max: maxWait, attempts: attempts}
		return nil
	}
}
