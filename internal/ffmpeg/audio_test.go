package ffmpeg

import (
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// toneSource feeds seconds of a 1 kHz tone in chunk-sample frames of
// format a to fn.
func toneSource(t *testing.T, pool *FramePool, a AudioFormat, seconds float64, chunk int, fn func(*Frame) error) int {
	t.Helper()
	total := int(seconds * float64(a.SampleRate))
	for n := 0; n < total; n += chunk {
		f, err := pool.GetAudio(a, min(chunk, total-n))
		require.NoError(t, err)
		require.NoError(t, FillTone(f, 1000, 0.5, int64(n)))
		f.SetPTS(int64(n))
		err = fn(f)
		f.Unref()
		require.NoError(t, err)
	}
	return total
}

// TestAudioRoundTrip: one second of a 1 kHz tone at 48 kHz goes through an
// AudioConverter to the encoder's format and frame size, the encoder and
// the decoder, and comes back with its length (± one frame) and frequency.
func TestAudioRoundTrip(t *testing.T) {
	cases := []struct {
		name, encoder, decoder string
		bitrate                int64
		decChannels            int
	}{
		{name: "opus", encoder: "opus", decoder: "opus", bitrate: 64000},
		{name: "opus-mono", encoder: "opus", decoder: "opus", bitrate: 32000, decChannels: 1},
		{name: "pcmu", encoder: "pcmu", decoder: "pcmu"},
		{name: "pcma", encoder: "pcma", decoder: "pcma"},
		{name: "g722", encoder: "g722", decoder: "g722"},
		{name: "aac", encoder: "aac", decoder: "aac", bitrate: 96000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkNoLiveObjects(t)
			pool := NewFramePool()
			t.Cleanup(pool.Close)
			cfg := EncoderConfig{Codec: c.encoder, BitRate: c.bitrate}
			if c.decChannels != 0 {
				cfg.Channels = c.decChannels
			}
			enc, err := NewEncoder(cfg)
			require.NoError(t, err)
			t.Cleanup(func() { enc.Close() })
			out := enc.AudioFormat()
			frameSize := enc.FrameSize()
			if frameSize == 0 {
				frameSize = out.SampleRate / 50 // 20 ms, as RTP carries G.711
			}
			conv, err := NewAudioConverter(out, frameSize, pool)
			require.NoError(t, err)
			t.Cleanup(func() { conv.Close() })
			dcfg := DecoderConfig{Codec: c.decoder, SampleRate: out.SampleRate, Channels: c.decChannels}
			if c.encoder == "aac" {
				dcfg.ExtraData = enc.ExtraData()
			}
			dec, err := NewDecoder(dcfg, pool)
			require.NoError(t, err)
			t.Cleanup(func() { dec.Close() })

			var samples []float32
			var sent int
			onFrame := func(f *Frame) error {
				s, err := f.AppendSamples(nil, 0)
				if err != nil {
					return err
				}
				// Drop the encoder's priming samples (Opus pre-skip, AAC
				// delay): they have timestamps before 0.
				if skip := -f.PTS(); skip > 0 {
					s = s[min(int(skip), len(s)):]
				}
				samples = append(samples, s...)
				return nil
			}
			onPacket := func(p *Packet) error { return dec.Decode(p.Data, p.PTS, true, onFrame) }
			onConverted := func(f *Frame) error {
				sent += f.Samples()
				assert.Equal(t, out, f.Audio())
				return enc.Encode(f, onPacket)
			}
			in := AudioFormat{SampleRate: 48000, SampleFormat: astiav.SampleFormatS16, Channels: 1}
			toneSource(t, pool, in, 1, 441, func(f *Frame) error { return conv.Convert(f, onConverted) })
			require.NoError(t, conv.Flush(onConverted))
			require.NoError(t, enc.Flush(onPacket))
			require.NoError(t, dec.Flush(onFrame))

			want := out.SampleRate
			freq := ToneFrequency(samples, out.SampleRate)
			t.Logf("%s %v, frame %d: sent %d samples, decoded %d (want %d), tone %.1f Hz",
				enc.Name(), out, frameSize, sent, len(samples), want, freq)
			assert.InDelta(t, want, sent, float64(frameSize), "samples out of the converter")
			assert.InDelta(t, want, len(samples), float64(frameSize), "samples decoded")
			assert.InDelta(t, 1000, freq, 10, "tone frequency")
		})
	}
}

// TestAudioConverter: 44.1 kHz planar float stereo to 8 kHz s16 mono keeps
// the duration and the tone, and cuts exact frames but for the last.
func TestAudioConverter(t *testing.T) {
	checkNoLiveObjects(t)
	pool := NewFramePool()
	t.Cleanup(pool.Close)
	out := AudioFormat{SampleRate: 8000, SampleFormat: astiav.SampleFormatS16, Channels: 1}
	conv, err := NewAudioConverter(out, 160, nil)
	require.NoError(t, err)
	t.Cleanup(func() { conv.Close() })
	var samples []float32
	var sizes []int
	var pts []int64
	emit := func(f *Frame) error {
		sizes = append(sizes, f.Samples())
		pts = append(pts, f.PTS())
		samples, err = f.AppendSamples(samples, 0)
		return err
	}
	in := AudioFormat{SampleRate: 44100, SampleFormat: astiav.SampleFormatFltp, Channels: 2}
	toneSource(t, pool, in, 2, 1024, func(f *Frame) error { return conv.Convert(f, emit) })
	require.NoError(t, conv.Flush(emit))
	assert.InDelta(t, 16000, len(samples), 160)
	assert.InDelta(t, 1000, ToneFrequency(samples, 8000), 10)
	for i, n := range sizes[:len(sizes)-1] {
		require.Equal(t, 160, n, "frame %d", i)
		require.Equal(t, int64(i*160), pts[i], "pts of frame %d", i)
	}

	// A new input format rebuilds the graph and goes on.
	n := len(samples)
	in2 := AudioFormat{SampleRate: 16000, SampleFormat: astiav.SampleFormatS16, Channels: 1}
	toneSource(t, pool, in2, 0.5, 320, func(f *Frame) error { return conv.Convert(f, emit) })
	require.NoError(t, conv.Flush(emit))
	assert.InDelta(t, 4000, len(samples)-n, 160)
	assert.Equal(t, 1, int(LiveObjects().FilterGraphs))
}
