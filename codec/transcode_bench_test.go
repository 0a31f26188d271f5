package codec_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/internal/ffmpeg"
	"github.com/medley-go/medley/pipeline"
)

// The transcoding benchmark's input: 150 frames (5 s) of the moving
// pattern at 1280x720, VP8 at 2 Mbit/s, as RTP packets and as an IVF file.
const (
	transcodeFrames  = 150
	transcodeBitrate = 2_000_000
)

var transcodeVideo = ffmpeg.VideoFormat{Width: 1280, Height: 720, PixelFormat: astiav.PixelFormatYuv420P}

// countSink is an inline sink that counts buffers and signals the end of
// the stream.
type countSink struct {
	element.Base
	sink  *element.Pad
	n     int
	bytes int
	eos   chan struct{}
}

func newCountSink(name string, caps element.Caps) *countSink {
	s := &countSink{Base: element.NewBase(name), eos: make(chan struct{})}
	s.sink = element.NewSinkPad("sink", element.CapsList{caps}, func(b *element.Buffer) error {
		s.n++
		s.bytes += len(b.Data)
		return nil
	}, element.Inline(), element.WithEventHandler(func(ev element.Event) {
		if _, ok := ev.(element.EOSEvent); ok {
			close(s.eos)
		}
	}))
	s.AddPad(s.sink)
	return s
}

// writeIVF writes VP8 frames as an IVF file (what the ffmpeg command
// reads).
func writeIVF(tb testing.TB, path string, v ffmpeg.VideoFormat, fps int, frames []encodedSample) {
	tb.Helper()
	var b bytes.Buffer
	hdr := make([]byte, 32)
	copy(hdr, "DKIF")
	binary.LittleEndian.PutUint16(hdr[4:], 0)
	binary.LittleEndian.PutUint16(hdr[6:], 32)
	copy(hdr[8:], "VP80")
	binary.LittleEndian.PutUint16(hdr[12:], uint16(v.Width))
	binary.LittleEndian.PutUint16(hdr[14:], uint16(v.Height))
	binary.LittleEndian.PutUint32(hdr[16:], uint32(fps))
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	binary.LittleEndian.PutUint32(hdr[24:], uint32(len(frames)))
	b.Write(hdr)
	for i, f := range frames {
		var fh [12]byte
		binary.LittleEndian.PutUint32(fh[0:], uint32(len(f.data)))
		binary.LittleEndian.PutUint64(fh[4:], uint64(i))
		b.Write(fh[:])
		b.Write(f.data)
	}
	require.NoError(tb, os.WriteFile(path, b.Bytes(), 0o644))
}

// payloadSamples cuts samples (at fps) into RTP packets with a payloader
// of mime and returns copies of the packets.
func payloadSamples(tb testing.TB, mime string, samples []encodedSample, fps int) []*element.Buffer {
	tb.Helper()
	in := make([]sample, len(samples))
	for i, s := range samples {
		in[i] = sample{data: s.data, key: s.key, pts: framePTS(i, fps)}
	}
	pay, err := codec.NewPayloader("pay", rtpCaps(tb, mime))
	require.NoError(tb, err)
	c, _ := codec.Lookup(mime)
	src := element.NewSrcPad("in", element.CapsList{c.Caps(element.FormatSample)})
	require.NoError(tb, src.SetCaps(c.Caps(element.FormatSample)))
	require.NoError(tb, src.Link(pay.SinkPad()))
	var out []*element.Buffer
	collect := element.NewSinkPad("out", pay.SrcPad().Templates(), func(b *element.Buffer) error {
		out = append(out, b.Clone())
		return nil
	}, element.Inline())
	require.NoError(tb, pay.SrcPad().Link(collect))
	for _, s := range in {
		src.Push(s.buffer())
	}
	return out
}

// transcodeInput makes the benchmark's input: the RTP packets, and the
// path of the IVF file.
func transcodeInput(b *testing.B) ([]*element.Buffer, string) {
	b.Helper()
	samples := encodeSamples(b, codec.MIMEVP8, transcodeFrames, transcodeVideo, codec.WithBitrate(transcodeBitrate))
	ivf := filepath.Join(b.TempDir(), "in.ivf")
	writeIVF(b, ivf, transcodeVideo, testFPS, samples)
	return payloadSamples(b, codec.MIMEVP8, samples, testFPS), ivf
}

// BenchmarkTranscode measures a VP8 → H.264 transcode of 1280x720 at
// 30 fps as fast as possible: FFmpeg's native vp8 decoder and libx264
// veryfast, zero latency, constrained baseline, 2 Mbit/s VBV, one thread
// each. "medley" runs our elements in a pipeline, RTP in (depayloader,
// decoder, encoder, payloader) and RTP out; "ffmpeg-cli" runs the ffmpeg
// command on the same input, as an IVF file, with the same settings, RTP
// out to a local UDP socket, and counts its -benchmark real time. One op
// is the whole 150-frame stream; fps is frames per second of wall time.
func BenchmarkTranscode(b *testing.B) {
	pkts, ivf := transcodeInput(b)
	b.Run("medley", func(b *testing.B) {
		h264 := rtpCaps(b, codec.MIMEH264)
		var frames int
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			p, err := pipeline.New()
			require.NoError(b, err)
			src := element.NewAppSource("src", element.CapsList{rtpCaps(b, codec.MIMEVP8)})
			depay, err := codec.NewDepayloader("depay", rtpCaps(b, codec.MIMEVP8))
			require.NoError(b, err)
			dec, err := codec.NewDecoder("dec", sampleCaps(b, codec.MIMEVP8), codec.WithThreads(1), codec.WithQueue(64, element.Block))
			require.NoError(b, err)
			enc, err := codec.NewEncoder("enc", sampleCaps(b, codec.MIMEH264), codec.WithThreads(1),
				codec.WithPreset("veryfast"), codec.WithProfile("constrained_baseline"), codec.WithBitrate(transcodeBitrate),
				codec.WithKeyframeInterval(time.Minute), codec.WithQueue(8, element.Block))
			require.NoError(b, err)
			pay, err := codec.NewPayloader("pay", h264)
			require.NoError(b, err)
			sink := newCountSink("sink", h264)
			els := []element.Element{src, depay, dec, enc, pay, sink}
			require.NoError(b, p.Add(els...))
			for i := 0; i+1 < len(els); i++ {
				require.NoError(b, p.Connect(els[i], els[i+1], element.KindVideo))
			}
			require.NoError(b, p.Start(context.Background()))
			for _, pkt := range pkts {
				src.Push(pkt)
			}
			require.NoError(b, src.EndOfStream())
			<-sink.eos
			require.NoError(b, p.Close())
			require.Equal(b, uint64(transcodeFrames), enc.Stats().Samples)
			frames += transcodeFrames
		}
		b.ReportMetric(float64(frames)/time.Since(start).Seconds(), "fps")
	})
	b.Run("ffmpeg-cli", func(b *testing.B) {
		ffmpegPath, err := exec.LookPath("ffmpeg")
		if err != nil {
			b.Skip("no ffmpeg command")
		}
		// A socket that takes the RTP and never reads it.
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(b, err)
		defer conn.Close()
		url := fmt.Sprintf("rtp://127.0.0.1:%d", conn.LocalAddr().(*net.UDPAddr).Port)
		rtime := regexp.MustCompile(`rtime=([0-9.]+)s`)
		var frames int
		var busy, wall time.Duration
		b.ResetTimer()
		for range b.N {
			cmd := exec.Command(ffmpegPath, "-hide_banner", "-nostdin", "-benchmark",
				"-threads", "1", "-c:v", "vp8", "-i", ivf,
				"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "baseline",
				"-b:v", "2M", "-maxrate", "2M", "-bufsize", "2M", "-threads", "1", "-f", "rtp", url)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			require.NoError(b, cmd.Run(), out.String())
			wall += time.Since(start)
			m := rtime.FindSubmatch(out.Bytes())
			require.NotNil(b, m, out.String())
			s, err := strconv.ParseFloat(string(m[1]), 64)
			require.NoError(b, err)
			busy += time.Duration(s * float64(time.Second))
			frames += transcodeFrames
		}
		b.ReportMetric(float64(frames)/busy.Seconds(), "fps")
		b.ReportMetric(float64(frames)/wall.Seconds(), "wall-fps")
	})
}

// BenchmarkAudioTranscode measures Opus ↔ PCMU on one goroutine (every
// element inline), 10 s of a 1 kHz tone as RTP in, RTP out, with the
// chains Connect builds. opus-pcmu: Opus 48 kHz stereo at 64 kbit/s →
// native opus decoder → resampler to 8 kHz mono s16 → G.711 µ-law.
// pcmu-opus: G.711 → 8 kHz mono s16 → libopus at 32 kbit/s, which takes
// 8 kHz as it is; pcmu-opus-48k resamples to 48 kHz first, as a chain
// that must resample would. x-realtime is seconds of audio per second of
// wall time.
func BenchmarkAudioTranscode(b *testing.B) {
	const seconds = 10
	for _, bc := range []struct {
		name, from, to string
		in, mid        element.Caps // mid: the resampler's output, if any
		chunk          int
	}{
		{"opus-pcmu", codec.MIMEOpus, codec.MIMEPCMU, codec.RawAudioCaps(48000, 2, "s16"), codec.RawAudioCaps(8000, 1, "s16"), 960},
		{"pcmu-opus", codec.MIMEPCMU, codec.MIMEOpus, codec.RawAudioCaps(8000, 1, "s16"), element.Caps{}, 160},
		{"pcmu-opus-48k", codec.MIMEPCMU, codec.MIMEOpus, codec.RawAudioCaps(8000, 1, "s16"), codec.RawAudioCaps(48000, 1, "s16"), 160},
	} {
		b.Run(bc.name, func(b *testing.B) {
			input := audioInput(b, bc.from, bc.in, seconds, bc.chunk)
			inline := codec.WithInline()
			var audio float64
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				src := element.NewAppSource("src", element.CapsList{rtpCaps(b, bc.from)})
				depay, err := codec.NewDepayloader("depay", rtpCaps(b, bc.from))
				require.NoError(b, err)
				dec, err := codec.NewDecoder("dec", sampleCaps(b, bc.from), inline)
				require.NoError(b, err)
				enc, err := codec.NewEncoder("enc", sampleCaps(b, bc.to), inline)
				require.NoError(b, err)
				pay, err := codec.NewPayloader("pay", rtpCaps(b, bc.to))
				require.NoError(b, err)
				sink := newCountSink("sink", rtpCaps(b, bc.to))
				pads := [][2]*element.Pad{
					{src.SrcPad(), depay.SinkPad()}, {depay.SrcPad(), dec.SinkPad()}, {dec.SrcPad(), enc.SinkPad()},
					{enc.SrcPad(), pay.SinkPad()}, {pay.SrcPad(), sink.sink},
				}
				var res *codec.Resampler
				if bc.mid != (element.Caps{}) {
					res, err = codec.NewResampler("resample", bc.mid, inline)
					require.NoError(b, err)
					pads[2] = [2]*element.Pad{dec.SrcPad(), res.SinkPad()}
					pads = append(pads, [2]*element.Pad{res.SrcPad(), enc.SinkPad()})
				}
				for _, l := range pads {
					require.NoError(b, l[0].Link(l[1]))
				}
				for _, pkt := range input {
					src.Push(pkt)
				}
				require.NoError(b, src.EndOfStream())
				<-sink.eos
				require.NoError(b, dec.Close())
				if res != nil {
					require.NoError(b, res.Close())
				}
				require.NoError(b, enc.Close())
				require.Positive(b, sink.n)
				audio += seconds
			}
			b.ReportMetric(audio/time.Since(start).Seconds(), "x-realtime")
		})
	}
}

// audioInput encodes seconds of a tone in raw caps in into RTP packets
// of mime, once per benchmark.
func audioInput(b *testing.B, mime string, in element.Caps, seconds float64, chunk int) []*element.Buffer {
	b.Helper()
	enc, err := codec.NewEncoder("enc", sampleCaps(b, mime), codec.WithInline())
	require.NoError(b, err)
	pay, err := codec.NewPayloader("pay", rtpCaps(b, mime))
	require.NoError(b, err)
	src := element.NewAppSource("src", element.CapsList{in})
	require.NoError(b, src.SrcPad().Link(enc.SinkPad()))
	require.NoError(b, enc.SrcPad().Link(pay.SinkPad()))
	var out []*element.Buffer
	collect := element.NewSinkPad("out", pay.SrcPad().Templates(), func(buf *element.Buffer) error {
		out = append(out, buf.Clone())
		return nil
	}, element.Inline())
	require.NoError(b, pay.SrcPad().Link(collect))
	pool := ffmpeg.NewFramePool()
	defer pool.Close()
	a := ffmpeg.AudioFormat{SampleRate: int(in.ClockRate), SampleFormat: astiav.SampleFormatS16, Channels: int(in.Channels)}
	total := int(seconds * float64(a.SampleRate))
	for n := 0; n < total; n += chunk {
		f, err := pool.GetAudio(a, min(chunk, total-n))
		require.NoError(b, err)
		require.NoError(b, ffmpeg.FillTone(f, 1000, 0.5, int64(n)))
		buf := codec.NewFrameBuffer(f, ticksDuration(int64(n), a.SampleRate), ticksDuration(int64(f.Samples()), a.SampleRate), element.FlagKeyframe)
		src.Push(buf)
		buf.Unref()
	}
	require.NoError(b, src.EndOfStream())
	require.NoError(b, enc.Close())
	return out
}
