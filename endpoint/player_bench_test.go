package endpoint_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/pipeline"
)

// BenchmarkPlayerPassthrough: a 10 s 720p30 H.264 + AAC MP4 read 50 times
// over as fast as possible, by the Player (unpaced, looping, encoded
// passthrough) into counting sinks through a pipeline (set-up included),
// and by `ffmpeg -benchmark -stream_loop 49 -i in.mp4 -c copy -f null -`
// on the same file. Each reports pkts/s: the packets of every stream per second
// (for the CLI, of its own -benchmark real time, which leaves out its
// start-up and the opening and probing of the input, while medley's counts
// its pipeline's set-up, open, probe and close), and cpu-ns/pkt, the CPU
// time per packet (the CLI's -benchmark utime+stime; all of this process's
// threads for medley), steadier than real time on a shared machine.
func BenchmarkPlayerPassthrough(b *testing.B) {
	path := ffmpegMedia(b, b.TempDir(), "in.mp4", "1280x720", 30, 60, 10*time.Second, "libx264", "aac")
	out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-show_entries", "stream=nb_read_packets",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		b.Fatal(err)
	}
	var packets int
	for _, f := range strings.Fields(string(out)) {
		n, err := strconv.Atoi(strings.TrimSuffix(f, ","))
		if err != nil {
			b.Fatal(err)
		}
		packets += n
	}

	// Both sides read the file benchRounds times in one go: the Player
	// looping (WithLoop seeks back to the start), the CLI with
	// -stream_loop, so that opening and probing the input count once, as
	// they would for a long file.
	const benchRounds = 50
	b.Run("medley", func(b *testing.B) {
		var total int64
		start, cpu0 := time.Now(), processCPU(b)
		for b.Loop() {
			total += playCounting(b, path, packets*benchRounds)
		}
		if total != int64(packets)*benchRounds*int64(b.N) {
			b.Fatalf("counted %d packets in %d runs, want %d a run", total, b.N, packets*benchRounds)
		}
		b.ReportMetric(float64(total)/time.Since(start).Seconds(), "pkts/s")
		b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(total), "cpu-ns/pkt")
	})
	b.Run("ffmpeg-cli", func(b *testing.B) {
		// One process reads the file cliRounds times (-stream_loop), and
		// pkts/s counts its own -benchmark real time, so that the ~70 ms it
		// takes here to start and load its libraries (more than one pass
		// over a file this short) does not count; wall-pkts/s times the
		// whole process.
		const cliRounds = benchRounds
		var inside, cpu time.Duration
		start := time.Now()
		for b.Loop() {
			out, err := exec.Command("ffmpeg", "-hide_banner", "-nostats", "-loglevel", "info", "-benchmark",
				"-stream_loop", strconv.Itoa(cliRounds-1), "-i", path, "-c", "copy", "-f", "null", "-").CombinedOutput()
			if err != nil {
				b.Fatalf("%v: %s", err, out)
			}
			inside += benchTime(b, string(out), "rtime=")
			cpu += benchTime(b, string(out), "utime=") + benchTime(b, string(out), "stime=")
		}
		wall := time.Since(start)
		sent := float64(packets) * cliRounds * float64(b.N)
		b.ReportMetric(sent/inside.Seconds(), "pkts/s")
		b.ReportMetric(sent/wall.Seconds(), "wall-pkts/s")
		b.ReportMetric(float64(cpu.Nanoseconds())/sent, "cpu-ns/pkt")
	})
}

// benchTime returns the time named by key ("rtime=", "utime=", "stime=")
// in ffmpeg -benchmark's "bench: utime=...s stime=...s rtime=...s" line.
func benchTime(b *testing.B, out, key string) time.Duration {
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, key); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				b.Fatalf("ffmpeg -benchmark: %v", err)
			}
			return d
		}
	}
	b.Fatalf("ffmpeg -benchmark printed no %s: %s", key, out)
	return 0
}

// processCPU returns the CPU time (user and system) this process has used,
// all its threads (FFmpeg's too) included.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// playCounting plays path unpaced and looping into sinks that count, until
// they have counted want packets, and returns the count.
func playCounting(b *testing.B, path string, want int) int64 {
	var n atomic.Int64
	p, err := pipeline.New()
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	pl, err := endpoint.NewPlayer("player", path, endpoint.WithoutPacing(), endpoint.WithLoop())
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Add(pl); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	count := func(*element.Buffer) {
		if n.Add(1) == int64(want) {
			close(done)
		}
	}
	for _, k := range []element.Kind{element.KindVideo, element.KindAudio} {
		s := element.NewAppSink(k.String()+"sink", element.CapsList{{Kind: k, Format: element.FormatSample}},
			element.WithSinkQueue(1024, element.Block),
			element.WithBufferFunc(count))
		if err := p.Add(s); err != nil {
			b.Fatal(err)
		}
		if err := p.Connect(pl, s, k); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("counted %d of %d packets", n.Load(), want)
	}
	// Stop the player before counting again: it may have read on.
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	return int64(want)
}
