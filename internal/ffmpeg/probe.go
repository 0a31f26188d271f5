package ffmpeg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// What FFmpeg's command-line tools say of a file, for tests here and in
// the packages that build on this one: an outside opinion of what medley
// writes. They need ffprobe and ffmpeg on the PATH.

// ProbeResult is ffprobe's account of a file's container and streams.
type ProbeResult struct {
	// Format is the demuxer's name ("matroska,webm", "mov,mp4,...").
	Format string
	// Duration is the container's duration, 0 when it says none.
	Duration time.Duration
	Streams  []ProbeStream
}

// ProbeStream is one stream of a ProbeResult.
type ProbeStream struct {
	Index int
	// Type is "audio" or "video"; Codec FFmpeg's name ("vp8", "opus").
	Type, Codec string
	// Start and Duration as the container says (0 when unknown).
	Start, Duration      time.Duration
	Width, Height        int
	SampleRate, Channels int
}

// Stream returns the first stream of a type ("audio", "video").
func (r *ProbeResult) Stream(typ string) (ProbeStream, bool) {
	for _, s := range r.Streams {
		if s.Type == typ {
			return s, true
		}
	}
	return ProbeStream{}, false
}

// Probe runs ffprobe on path.
func Probe(ctx context.Context, path string) (*ProbeResult, error) {
	out, err := runTool(ctx, "ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", path)
	if err != nil {
		return nil, err
	}
	var raw struct {
		Format struct {
			Name     string `json:"format_name"`
			Duration string `json:"duration"`
		} `json:"format"`
		Streams []struct {
			Index      int    `json:"index"`
			Type       string `json:"codec_type"`
			Codec      string `json:"codec_name"`
			Start      string `json:"start_time"`
			Duration   string `json:"duration"`
			Width      int    `json:"width"`
			Height     int    `json:"height"`
			SampleRate string `json:"sample_rate"`
			Channels   int    `json:"channels"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	r := &ProbeResult{Format: raw.Format.Name, Duration: seconds(raw.Format.Duration)}
	for _, s := range raw.Streams {
		rate, _ := strconv.Atoi(s.SampleRate)
		r.Streams = append(r.Streams, ProbeStream{
			Index: s.Index, Type: s.Type, Codec: s.Codec,
			Start: seconds(s.Start), Duration: seconds(s.Duration),
			Width: s.Width, Height: s.Height, SampleRate: rate, Channels: s.Channels,
		})
	}
	return r, nil
}

// ProbeSpan is the time a stream's packets cover, as ffprobe reads them
// one by one: what a player can play, whatever the container's header
// claims (a file cut short by a crash has no duration in its header).
type ProbeSpan struct {
	Type       string
	Packets    int
	Start, End time.Duration // first PTS; last PTS plus its duration
}

// Duration returns End - Start.
func (s ProbeSpan) Duration() time.Duration { return s.End - s.Start }

// ProbePackets reads every packet of path with ffprobe and returns the
// span of each stream, by stream index.
func ProbePackets(ctx context.Context, path string) (map[int]ProbeSpan, error) {
	out, err := runTool(ctx, "ffprobe", "-v", "error", "-show_streams", "-show_entries",
		"packet=stream_index,pts_time,duration_time:stream=index,codec_type", "-of", "json", path)
	if err != nil {
		return nil, err
	}
	var raw struct {
		Packets []struct {
			Stream   int    `json:"stream_index"`
			PTS      string `json:"pts_time"`
			Duration string `json:"duration_time"`
		} `json:"packets"`
		Streams []struct {
			Index int    `json:"index"`
			Type  string `json:"codec_type"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	spans := map[int]ProbeSpan{}
	for _, s := range raw.Streams {
		spans[s.Index] = ProbeSpan{Type: s.Type}
	}
	for _, p := range raw.Packets {
		if p.PTS == "" || p.PTS == "N/A" {
			continue
		}
		pts, end := seconds(p.PTS), seconds(p.PTS)+seconds(p.Duration)
		s := spans[p.Stream]
		if s.Packets == 0 || pts < s.Start {
			s.Start = pts
		}
		s.End = max(s.End, end)
		s.Packets++
		spans[p.Stream] = s
	}
	return spans, nil
}

// DecodeErrors decodes every stream of path with ffmpeg (-f null) and
// returns what it reported at error level, empty when the file decodes
// cleanly.
func DecodeErrors(ctx context.Context, path string) (string, error) {
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return "", err
	}
	if err != nil && stderr.Len() == 0 {
		return err.Error(), nil
	}
	return stderr.String(), nil
}

func runTool(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %v: %w: %s", name, args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// seconds parses ffprobe's decimal seconds ("10.020000", "N/A" as 0).
func seconds(s string) time.Duration {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}
