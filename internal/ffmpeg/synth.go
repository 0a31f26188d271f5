package ffmpeg

import (
	"fmt"
	"time"

	"github.com/asticode/go-astiav"
)

// Synthetic media for tests here and in the packages that build on this
// one: the moving pattern of DrawPattern and a tone, encoded.

// Sample is one encoded access unit with its times from the start of the
// stream: what Synthesize returns.
type Sample struct {
	Data          []byte
	PTS, Duration time.Duration
	Keyframe      bool
}

// SynthesizeVideo encodes d of the synthetic moving picture at fps frames
// per second with cfg (Codec, Width and Height at least; Threads,
// BitRate, KeyframeInterval, Profile as the encoder takes them) and returns
// the samples, the first, a keyframe, at PTS 0.
func SynthesizeVideo(cfg EncoderConfig, fps int, d time.Duration) ([]Sample, error) {
	if fps <= 0 {
		fps = 30
	}
	cfg.FrameRate = astiav.NewRational(fps, 1)
	cfg.TimeBase = astiav.NewRational(1, fps)
	enc, err := NewEncoder(cfg)
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	pool := NewFramePool()
	defer pool.Close()
	frame := time.Second / time.Duration(fps)
	at := func(n int64) time.Duration { return time.Duration(n) * time.Second / time.Duration(fps) }
	var out []Sample
	emit := func(p *Packet) error {
		out = append(out, Sample{
			Data:     append([]byte(nil), p.Data...),
			PTS:      at(p.PTS),
			Duration: frame,
			Keyframe: p.Keyframe,
		})
		return nil
	}
	n := int(d / frame)
	for i := range n {
		f, err := pool.GetVideo(enc.VideoFormat())
		if err != nil {
			return nil, err
		}
		if err := DrawPattern(f, i); err != nil {
			f.Unref()
			return nil, err
		}
		err = enc.EncodeAt(f, int64(i), emit)
		f.Unref()
		if err != nil {
			return nil, err
		}
	}
	if err := enc.Flush(emit); err != nil {
		return nil, err
	}
	if len(out) == 0 || !out[0].Keyframe {
		return nil, fmt.Errorf("ffmpeg: %s made no keyframe first", enc.Name())
	}
	return out, nil
}

// SynthesizeAudio encodes d of a 440 Hz tone with cfg (Codec at least;
// SampleRate, Channels, BitRate as the encoder takes them) in frames of the
// encoder's frame size (20 ms when it has none) and returns the samples.
// Times are shifted so that the first sample is at PTS 0 (Opus' first
// packet is at minus its pre-skip).
func SynthesizeAudio(cfg EncoderConfig, d time.Duration) ([]Sample, error) {
	enc, err := NewEncoder(cfg)
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	pool := NewFramePool()
	defer pool.Close()
	a := enc.AudioFormat()
	tb := enc.TimeBase()
	chunk := enc.FrameSize()
	if chunk <= 0 {
		chunk = a.SampleRate / 50
	}
	var out []Sample
	var first int64
	emit := func(p *Packet) error {
		if len(out) == 0 {
			first = p.PTS
		}
		s := Sample{
			Data:     append([]byte(nil), p.Data...),
			PTS:      toDuration(p.PTS-first, tb),
			Duration: toDuration(p.Duration, tb),
			Keyframe: true,
		}
		if s.Duration <= 0 {
			s.Duration = toDuration(int64(chunk), astiav.NewRational(1, a.SampleRate))
		}
		out = append(out, s)
		return nil
	}
	total := int64(d.Seconds() * float64(a.SampleRate))
	for n := int64(0); n < total; n += int64(chunk) {
		f, err := pool.GetAudio(a, chunk)
		if err != nil {
			return nil, err
		}
		if err := FillTone(f, 440, 0.3, n); err != nil {
			f.Unref()
			return nil, err
		}
		err = enc.EncodeAt(f, astiav.RescaleQ(n, astiav.NewRational(1, a.SampleRate), tb), emit)
		f.Unref()
		if err != nil {
			return nil, err
		}
	}
	if err := enc.Flush(emit); err != nil {
		return nil, err
	}
	return out, nil
}
