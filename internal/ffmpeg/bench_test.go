package ffmpeg

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/stretchr/testify/require"
)

// The benchmarks compare this layer with the ffmpeg CLI doing the same work
// on the same input in the same run, as ../../../shared/notes/ffmpeg.md
// does: 1280x720 yuv420p at 2 Mbit/s, 2 threads.
//
//	go test -run '^$' -bench . -benchtime 300x ./internal/ffmpeg/

const (
	benchW, benchH   = 1280, 720
	benchRate        = 2_000_000
	benchThreads     = 2
	benchLoop        = 60 // distinct input frames, played in a loop
	benchCLIMinFrame = 300
)

var benchVideo = VideoFormat{Width: benchW, Height: benchH, PixelFormat: astiav.PixelFormatYuv420P}

// benchCodecs: our encoder config and the CLI's arguments for the same.
var benchCodecs = []struct {
	name, decoder string
	cfg           EncoderConfig
	cli           []string
}{
	{"vp8", "vp8", EncoderConfig{Codec: "vp8"},
		[]string{"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-lag-in-frames", "0", "-auto-alt-ref", "0",
			"-minrate", "2M", "-maxrate", "2M", "-bufsize", "2M"}},
	{"h264", "h264", EncoderConfig{Codec: "h264", Preset: "veryfast"},
		[]string{"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-forced-idr", "1",
			"-maxrate", "2M", "-bufsize", "2M"}},
}

func benchFrames(b *testing.B, pool *FramePool) []*Frame {
	b.Helper()
	frames := make([]*Frame, benchLoop)
	for i := range frames {
		frames[i] = patternFrame(b, pool, benchVideo, i)
	}
	b.Cleanup(func() {
		for _, f := range frames {
			f.Unref()
		}
	})
	return frames
}

// writeYUV writes the loop as raw yuv420p for the CLI.
func writeYUV(b *testing.B, frames []*Frame) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "pattern.yuv")
	var buf []byte
	for _, f := range frames {
		for p := range 3 {
			pl, ls, row := f.Plane(p), f.Linesize(p), f.RowBytes(p)
			for y := 0; y*ls < len(pl); y++ {
				buf = append(buf, pl[y*ls:y*ls+row]...)
			}
		}
	}
	require.NoError(b, os.WriteFile(path, buf, 0o644))
	return path
}

var cliFPS = regexp.MustCompile(`bench: utime=([0-9.]+)s stime=([0-9.]+)s rtime=([0-9.]+)s`)

// cpuTime returns the CPU time this process has used, FFmpeg's threads
// included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter reports CPU time per frame beside fps: on a shared, noisy
// machine it varies less than real time.
type cpuMeter struct{ start time.Duration }

func startCPU() cpuMeter { return cpuMeter{start: cpuTime()} }

func (m cpuMeter) report(b *testing.B, frames int) {
	b.ReportMetric(float64((cpuTime()-m.start).Microseconds())/float64(frames), "cpu-us/frame")
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "fps")
}

// runCLI runs ffmpeg -benchmark and reports frames per second of real
// time, as the notes do, and CPU time per frame.
func runCLI(b *testing.B, frames int, args ...string) {
	b.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		b.Skip("no ffmpeg CLI")
	}
	// -benchmark prints its times at info level.
	full := append([]string{"-hide_banner", "-nostdin", "-nostats", "-benchmark", "-loglevel", "info", "-y"}, args...)
	b.ResetTimer()
	start := time.Now()
	out, err := exec.Command("ffmpeg", full...).CombinedOutput()
	wall := time.Since(start)
	b.StopTimer()
	require.NoError(b, err, "%s", out)
	rtime, cpu := wall.Seconds(), 0.0
	if m := cliFPS.FindSubmatch(out); m != nil {
		utime, _ := strconv.ParseFloat(string(m[1]), 64)
		stime, _ := strconv.ParseFloat(string(m[2]), 64)
		rtime, _ = strconv.ParseFloat(string(m[3]), 64)
		cpu = utime + stime
	}
	b.ReportMetric(cpu*1e6/float64(frames), "cpu-us/frame")
	b.ReportMetric(float64(frames)/rtime, "fps")
}

func BenchmarkEncode(b *testing.B) {
	for _, c := range benchCodecs {
		b.Run(c.name+"/medley", func(b *testing.B) {
			pool := NewFramePool()
			b.Cleanup(pool.Close)
			frames := benchFrames(b, pool)
			cfg := c.cfg
			cfg.Width, cfg.Height, cfg.BitRate, cfg.Threads = benchW, benchH, benchRate, benchThreads
			enc, err := NewEncoder(cfg)
			require.NoError(b, err)
			b.Cleanup(func() { enc.Close() })
			var bytes int
			emit := func(p *Packet) error { bytes += len(p.Data); return nil }
			b.ResetTimer()
			cpu := startCPU()
			for i := range b.N {
				f := frames[i%benchLoop]
				f.SetPTS(int64(i) * frameTicks)
				if err := enc.Encode(f, emit); err != nil {
					b.Fatal(err)
				}
			}
			if err := enc.Flush(emit); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu.report(b, b.N)
			b.ReportMetric(float64(bytes*8)/(float64(b.N)/30)/1000, "kbit/s")
		})
		b.Run(c.name+"/ffmpeg-cli", func(b *testing.B) {
			pool := NewFramePool()
			b.Cleanup(pool.Close)
			yuv := writeYUV(b, benchFrames(b, pool))
			n := max(b.N, benchCLIMinFrame)
			args := []string{"-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "1280x720", "-r", "30",
				"-stream_loop", "-1", "-i", yuv, "-frames:v", strconv.Itoa(n)}
			args = append(args, c.cli...)
			args = append(args, "-b:v", "2M", "-g", "90", "-threads", strconv.Itoa(benchThreads), "-f", "null", "-")
			runCLI(b, n, args...)
		})
	}
}

// writeStream writes n frames of the packet loop for the CLI: VP8 as an IVF
// file, H.264 as a raw Annex B stream (whose demuxer cannot loop).
func writeStream(b *testing.B, codec string, loop []encodedPacket, n int) string {
	b.Helper()
	pkts := make([]encodedPacket, n)
	for i := range pkts {
		pkts[i] = loop[i%len(loop)]
	}
	var buf []byte
	path := filepath.Join(b.TempDir(), "stream.h264")
	if codec == "vp8" {
		path = filepath.Join(b.TempDir(), "stream.ivf")
		h := make([]byte, 32)
		copy(h, "DKIF")
		binary.LittleEndian.PutUint16(h[6:], 32)
		copy(h[8:], "VP80")
		binary.LittleEndian.PutUint16(h[12:], benchW)
		binary.LittleEndian.PutUint16(h[14:], benchH)
		binary.LittleEndian.PutUint32(h[16:], 30)
		binary.LittleEndian.PutUint32(h[20:], 1)
		binary.LittleEndian.PutUint32(h[24:], uint32(len(pkts)))
		buf = h
	}
	for i, p := range pkts {
		if codec == "vp8" {
			fh := make([]byte, 12)
			binary.LittleEndian.PutUint32(fh, uint32(len(p.data)))
			binary.LittleEndian.PutUint64(fh[4:], uint64(i))
			buf = append(buf, fh...)
		}
		buf = append(buf, p.data...)
	}
	require.NoError(b, os.WriteFile(path, buf, 0o644))
	return path
}

func BenchmarkDecode(b *testing.B) {
	for _, c := range benchCodecs {
		// One keyframe interval of the loop, starting with a keyframe.
		var loop []encodedPacket
		setup := func(b *testing.B) []encodedPacket {
			if loop != nil {
				return loop
			}
			pool := NewFramePool()
			defer pool.Close()
			cfg := c.cfg
			cfg.Width, cfg.Height, cfg.BitRate, cfg.Threads = benchW, benchH, benchRate, benchThreads
			cfg.KeyframeInterval = benchLoop
			enc, err := NewEncoder(cfg)
			require.NoError(b, err)
			defer enc.Close()
			for n := range benchLoop {
				f := patternFrame(b, pool, benchVideo, n)
				require.NoError(b, enc.Encode(f, collect(&loop)))
				f.Unref()
			}
			require.NoError(b, enc.Flush(collect(&loop)))
			require.Len(b, loop, benchLoop)
			return loop
		}
		for _, threading := range []string{"slice", "frame"} {
			b.Run(c.name+"/"+threading+"/medley", func(b *testing.B) {
				pkts := setup(b)
				dec, err := NewDecoder(DecoderConfig{Codec: c.decoder, Threads: benchThreads,
					FrameThreads: threading == "frame"}, nil)
				require.NoError(b, err)
				b.Cleanup(func() { dec.Close() })
				frames := 0
				emit := func(*Frame) error { frames++; return nil }
				b.ResetTimer()
				cpu := startCPU()
				for i := range b.N {
					p := pkts[i%benchLoop]
					if err := dec.Decode(p.data, int64(i)*frameTicks, p.key, emit); err != nil {
						b.Fatal(err)
					}
				}
				if err := dec.Flush(emit); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if frames != b.N {
					b.Fatalf("decoded %d frames of %d", frames, b.N)
				}
				cpu.report(b, b.N)
			})
			b.Run(c.name+"/"+threading+"/ffmpeg-cli", func(b *testing.B) {
				n := max(b.N, benchCLIMinFrame)
				path := writeStream(b, c.name, setup(b), n)
				args := []string{"-threads", strconv.Itoa(benchThreads), "-thread_type", threading}
				if c.name == "h264" {
					args = append(args, "-f", "h264", "-r", "30")
				}
				args = append(args, "-i", path, "-frames:v", strconv.Itoa(n), "-f", "null", "-")
				runCLI(b, n, args...)
			})
		}
	}
}

// BenchmarkDemux reads a 10 s 720p30 H.264 + AAC MP4 20 times over,
// seeking back to the start at each end: ReadPacket (copying each
// payload into Go memory), ReadPacketRef (handing out FFmpeg's), and
// `ffmpeg -stream_loop 19 -i in.mp4 -c copy -f null -` on the same file.
// Each reports pkts/s (the CLI's of its -benchmark real time, which
// leaves out its start-up and the opening of the input) and CPU time per
// packet.
func BenchmarkDemux(b *testing.B) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		b.Skip("no ffmpeg CLI")
	}
	const rounds = 20
	path := filepath.Join(b.TempDir(), "in.mp4")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=10",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", path).CombinedOutput()
	require.NoError(b, err, "%s", out)
	d, err := OpenDemuxer(context.Background(), path, DemuxerConfig{})
	require.NoError(b, err)
	var packets int
	for p := (StreamPacket{}); d.ReadPacket(&p) == nil; {
		packets++
	}
	require.NoError(b, d.Close())

	run := func(b *testing.B, read func(*Demuxer) error) {
		d, err := OpenDemuxer(context.Background(), path, DemuxerConfig{})
		require.NoError(b, err)
		defer d.Close()
		n := 0
		cpu := startCPU()
		for b.Loop() {
			for range rounds {
				for {
					err := read(d)
					if errors.Is(err, io.EOF) {
						break
					}
					require.NoError(b, err)
					n++
				}
				require.NoError(b, d.Seek(0))
			}
		}
		if want := packets * rounds * b.N; n < want*99/100 {
			b.Fatalf("read %d packets, want about %d", n, want)
		}
		b.ReportMetric(float64((cpuTime()-cpu.start).Nanoseconds())/float64(n), "cpu-ns/pkt")
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pkts/s")
	}
	b.Run("copy", func(b *testing.B) {
		var p StreamPacket
		run(b, func(d *Demuxer) error { return d.ReadPacket(&p) })
	})
	b.Run("ref", func(b *testing.B) {
		p, err := NewDemuxedPacket()
		require.NoError(b, err)
		defer p.Free()
		run(b, func(d *Demuxer) error { return d.ReadPacketRef(p) })
	})
	b.Run("ffmpeg-cli", func(b *testing.B) {
		var rtime, cpu float64
		for b.Loop() {
			out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-benchmark", "-loglevel", "info",
				"-stream_loop", strconv.Itoa(rounds-1), "-i", path, "-c", "copy", "-f", "null", "-").CombinedOutput()
			require.NoError(b, err, "%s", out)
			m := cliFPS.FindSubmatch(out)
			require.NotNil(b, m, "%s", out)
			u, _ := strconv.ParseFloat(string(m[1]), 64)
			s, _ := strconv.ParseFloat(string(m[2]), 64)
			r, _ := strconv.ParseFloat(string(m[3]), 64)
			rtime += r
			cpu += u + s
		}
		n := float64(packets * rounds * b.N)
		b.ReportMetric(cpu*1e9/n, "cpu-ns/pkt")
		b.ReportMetric(n/rtime, "pkts/s")
	})
}
