package codec_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/internal/ffmpeg"
)

// toneSource pushes a 1 kHz tone in frames of chunk samples of raw caps
// c, and returns the number of samples per channel pushed.
func pushTone(t *testing.T, src *element.AppSource, pool *ffmpeg.FramePool, c element.Caps, seconds float64, chunk int) int {
	t.Helper()
	a := ffmpegAudio(t, c)
	total := int(seconds * float64(a.SampleRate))
	for n := 0; n < total; n += chunk {
		f, err := pool.GetAudio(a, min(chunk, total-n))
		require.NoError(t, err)
		require.NoError(t, ffmpeg.FillTone(f, 1000, 0.5, int64(n)))
		b := codec.NewFrameBuffer(f, ticksDuration(int64(n), a.SampleRate), ticksDuration(int64(f.Samples()), a.SampleRate), element.FlagKeyframe)
		src.Push(b)
		b.Unref()
	}
	return total
}

func ticksDuration(n int64, rate int) time.Duration {
	return time.Duration(n) * time.Second / time.Duration(rate)
}

// ffmpegAudio is the FFmpeg format of raw audio caps.
func ffmpegAudio(t *testing.T, c element.Caps) ffmpeg.AudioFormat {
	t.Helper()
	pool := ffmpeg.NewFramePool()
	defer pool.Close()
	for _, sf := range []string{"s16", "flt", "fltp", "s16p"} {
		if sf != c.SampleFormat {
			continue
		}
		for _, f := range allSampleFormats {
			if f.Name() == sf {
				return ffmpeg.AudioFormat{SampleRate: int(c.ClockRate), SampleFormat: f, Channels: int(c.Channels)}
			}
		}
	}
	t.Fatalf("no sample format for %v", c)
	return ffmpeg.AudioFormat{}
}

// audioSink gathers channel 0 of the raw audio it gets, as float32.
type audioSink struct {
	*element.AppSink
	mu      sync.Mutex
	samples []float32
	frames  int
	format  ffmpeg.AudioFormat
	err     error
	eos     chan struct{}
}

func newAudioSink(name string, caps element.Caps) *audioSink {
	s := &audioSink{eos: make(chan struct{})}
	var once sync.Once
	s.AppSink = element.NewAppSink(name, element.CapsList{caps},
		element.WithSinkQueue(1024, element.Block),
		element.WithEventFunc(func(ev element.Event) {
			if _, ok := ev.(element.EOSEvent); ok {
				once.Do(func() { close(s.eos) })
			}
		}),
		element.WithBufferFunc(func(b *element.Buffer) {
			s.mu.Lock()
			defer s.mu.Unlock()
			f, ok := b.Frame.(*codec.Frame)
			if !ok {
				s.err = assert.AnError
				return
			}
			s.frames++
			s.format = f.Audio()
			var err error
			if s.samples, err = f.AppendSamples(s.samples, 0); err != nil {
				s.err = err
			}
		}))
	return s
}

func (s *audioSink) wait(t *testing.T) ([]float32, ffmpeg.AudioFormat) {
	t.Helper()
	select {
	case <-s.eos:
	case <-time.After(20 * time.Second):
		t.Fatalf("sink %s: no end of stream", s.Name())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NoError(t, s.err)
	return s.samples, s.format
}

// TestAudioRoundTrip: a second of a 1 kHz tone goes through encoder →
// payloader → depayloader → decoder elements in a running pipeline and
// comes back with its length (± one frame) and frequency. The Opus case
// pushes 10 ms frames, which the encoder cuts to libopus' 20 ms.
func TestAudioRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name, mime string
		in         element.Caps
		chunk      int
		frame      int // samples per channel of one codec frame
	}{
		{"opus", codec.MIMEOpus, codec.RawAudioCaps(48000, 2, "s16"), 480, 960},
		{"opus-mono-flt", codec.MIMEOpus, codec.RawAudioCaps(48000, 1, "flt"), 960, 960},
		{"pcmu", codec.MIMEPCMU, codec.RawAudioCaps(8000, 1, "s16"), 160, 160},
		{"pcma", codec.MIMEPCMA, codec.RawAudioCaps(8000, 1, "s16"), 160, 160},
		{"g722", codec.MIMEG722, codec.RawAudioCaps(16000, 1, "s16"), 320, 320},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkFFmpegObjects(t)
			sample, rtp := sampleCaps(t, tc.mime), rtpCaps(t, tc.mime)
			block := codec.WithQueue(256, element.Block)
			pool := ffmpeg.NewFramePool()
			t.Cleanup(pool.Close)
			src := element.NewAppSource("src", element.CapsList{tc.in})
			enc, err := codec.NewEncoder("enc", sample, block)
			require.NoError(t, err)
			pay, err := codec.NewPayloader("pay", rtp)
			require.NoError(t, err)
			depay, err := codec.NewDepayloader("depay", rtp)
			require.NoError(t, err)
			dec, err := codec.NewDecoder("dec", sample, block)
			require.NoError(t, err)
			out, ok := codec.DecoderOutput(sample)
			require.True(t, ok)
			sink := newAudioSink("sink", out)
			p := chainPipeline(t, src, enc, pay, depay, dec, sink)
			watchErrors(t, p, nil)

			sent := pushTone(t, src, pool, tc.in, 1, tc.chunk)
			require.NoError(t, src.EndOfStream())
			samples, format := sink.wait(t)
			rate := int(out.ClockRate)
			want := sent * rate / int(tc.in.ClockRate)
			freq := ffmpeg.ToneFrequency(samples, rate)
			t.Logf("%s: sent %d samples at %d Hz, decoded %d at %v (want %d), tone %.1f Hz, %d packets",
				tc.name, sent, tc.in.ClockRate, len(samples), format, want, freq, pay.Stats().Packets)
			assert.Equal(t, audioCapsOf(format), out, "decoded format")
			assert.InDelta(t, want, len(samples), float64(tc.frame*rate/int(tc.in.ClockRate)), "samples decoded")
			assert.InDelta(t, 1000, freq, 10, "tone frequency")
			assert.Zero(t, depay.Stats().DroppedFrames)
			require.NoError(t, p.Close())
		})
	}
}

func audioCapsOf(a ffmpeg.AudioFormat) element.Caps {
	return codec.RawAudioCaps(a.SampleRate, a.Channels, a.SampleFormat.Name())
}

// TestResampledTranscode: Opus 48 kHz stereo RTP connected to a PCMU RTP
// sink gets depayloader → decoder → resampler → encoder → payloader, and
// the PCMU that comes out, decoded, is the tone that went in, at 8 kHz;
// back, PCMU to Opus needs no resampler (libopus takes 8 kHz), and G.722
// to PCMU resamples 16 kHz to 8.
func TestResampledTranscode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to string
		in       element.Caps
		chunk    int
		chain    int
	}{
		{"opus-pcmu", codec.MIMEOpus, codec.MIMEPCMU, codec.RawAudioCaps(48000, 2, "s16"), 960, 5},
		{"pcmu-opus", codec.MIMEPCMU, codec.MIMEOpus, codec.RawAudioCaps(8000, 1, "s16"), 160, 4},
		{"g722-pcmu", codec.MIMEG722, codec.MIMEPCMU, codec.RawAudioCaps(16000, 1, "s16"), 320, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkFFmpegObjects(t)
			input := encodeAudioRTP(t, tc.from, tc.in, 1, tc.chunk)
			p := newPipeline(t)
			sub := p.Subscribe(64)
			src := element.NewAppSource("src", element.CapsList{rtpCaps(t, tc.from)})
			depay, err := codec.NewDepayloader("out-depay", rtpCaps(t, tc.to))
			require.NoError(t, err)
			dec, err := codec.NewDecoder("out-dec", sampleCaps(t, tc.to))
			require.NoError(t, err)
			out, _ := codec.DecoderOutput(sampleCaps(t, tc.to))
			sink := newAudioSink("sink", out)
			require.NoError(t, p.Add(src, depay, dec, sink))
			require.NoError(t, p.Connect(src, depay, element.KindAudio))
			m := waitTranscoding(t, sub)
			require.Len(t, m.Chain, tc.chain, "chain %v", m.Chain)
			if tc.chain == 5 {
				assert.IsType(t, &codec.Resampler{}, p.Element(m.Chain[2]))
			}
			require.NoError(t, p.Connect(depay, dec, element.KindAudio))
			require.NoError(t, p.Connect(dec, sink, element.KindAudio))
			watchErrors(t, p, nil)
			require.NoError(t, p.Start(t.Context()))
			for i, b := range input {
				src.Push(b)
				if i%10 == 9 {
					time.Sleep(time.Millisecond) // the converters' queues are Live
				}
			}
			require.NoError(t, src.EndOfStream())
			samples, format := sink.wait(t)
			rate := int(out.ClockRate)
			freq := ffmpeg.ToneFrequency(samples, rate)
			t.Logf("%s: %d samples at %v, tone %.1f Hz; chain %v", tc.name, len(samples), format, freq, m.Chain)
			assert.InDelta(t, rate, len(samples), float64(rate/50)+float64(rate)*0.01, "samples")
			assert.InDelta(t, 1000, freq, 10, "tone frequency")
			require.NoError(t, p.Close())
		})
	}
}

// encodeAudioRTP encodes seconds of a 1 kHz tone in raw caps in with the
// encoder and payloader of mime, run inline, and returns the packets (held
// until the test ends).
func encodeAudioRTP(t *testing.T, mime string, in element.Caps, seconds float64, chunk int) []*element.Buffer {
	t.Helper()
	enc, err := codec.NewEncoder("enc", sampleCaps(t, mime), codec.WithInline())
	require.NoError(t, err)
	pay, err := codec.NewPayloader("pay", rtpCaps(t, mime))
	require.NoError(t, err)
	src := element.NewAppSource("src", element.CapsList{in})
	require.NoError(t, src.SrcPad().Link(enc.SinkPad()))
	require.NoError(t, enc.SrcPad().Link(pay.SinkPad()))
	var out []*element.Buffer
	collect := element.NewSinkPad("out", pay.SrcPad().Templates(), func(b *element.Buffer) error {
		out = append(out, b.Ref())
		return nil
	}, element.Inline())
	require.NoError(t, pay.SrcPad().Link(collect))
	pool := ffmpeg.NewFramePool()
	pushTone(t, src, pool, in, seconds, chunk)
	require.NoError(t, src.EndOfStream())
	require.NoError(t, enc.Close())
	pool.Close()
	t.Cleanup(func() {
		for _, b := range out {
			b.Unref()
		}
	})
	return out
}
