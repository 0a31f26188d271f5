package endpoint_test

import (
	"cmp"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/internal/ffmpeg"
)

// benchMedia is 2 s of 720p VP8 at 1.5 Mbit/s and Opus, as RTP.
var benchMedia = sync.OnceValues(func() ([2][]rtpPacket, error) {
	var out [2][]rtpPacket
	const length = 2 * time.Second
	v, err := ffmpeg.SynthesizeVideo(ffmpeg.EncoderConfig{Codec: "vp8", Width: 1280, Height: 720,
		BitRate: 1_500_000, KeyframeInterval: 90, Threads: 2}, 30, length)
	if err != nil {
		return out, err
	}
	a, err := ffmpeg.SynthesizeAudio(ffmpeg.EncoderConfig{Codec: "opus", BitRate: 48000}, length)
	if err != nil {
		return out, err
	}
	if out[0], err = payload(codec.MIMEVP8, v); err != nil {
		return out, err
	}
	out[1], err = payload(codec.MIMEOpus, a)
	return out, err
})

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecord records 720p VP8 at 1.5 Mbit/s and Opus from RTP into
// WebM, without transcoding (depayload and remux), as fast as it goes:
// CPU per RTP packet (cpu-us/pkt), and how many such recordings one core
// keeps up with in real time (rec/core). Each iteration is one 2 s
// recording, pipeline and file included.
func BenchmarkRecord(b *testing.B) {
	m, err := benchMedia()
	require.NoError(b, err)
	vp8, _ := codec.Lookup(codec.MIMEVP8)
	opus, _ := codec.Lookup(codec.MIMEOpus)
	type item struct {
		f *feed
		i int
	}
	dir := b.TempDir()
	pkts := len(m[0]) + len(m[1])
	b.ResetTimer()
	cpu := cpuTime()
	for n := 0; b.Loop(); n++ {
		path := filepath.Join(dir, "bench.webm")
		rec, err := endpoint.NewRecorder("rec", path, endpoint.WithRecorderQueue(4096, element.Block))
		require.NoError(b, err)
		feeds := []*feed{
			{src: element.NewAppSource("video", element.CapsList{vp8.Caps(element.FormatRTP)}), kind: element.KindVideo, rtp: m[0]},
			{src: element.NewAppSource("audio", element.CapsList{opus.Caps(element.FormatRTP)}), kind: element.KindAudio, rtp: m[1]},
		}
		r := startRecording(b, rec, feeds...)
		var items []item
		for _, f := range feeds {
			for i := range f.rtp {
				items = append(items, item{f, i})
			}
		}
		slices.SortStableFunc(items, func(a, c item) int { return cmp.Compare(a.f.rtp[a.i].pts, c.f.rtp[c.i].pts) })
		for _, it := range items {
			it.f.send(it.i)
		}
		r.end()
		<-rec.Done()
		require.NoError(b, r.p.Close())
	}
	used := cpuTime() - cpu
	b.ReportMetric(float64(used.Microseconds())/float64(b.N*pkts), "cpu-us/pkt")
	perSecond := used.Seconds() / (float64(b.N) * 2) // CPU seconds per second of recording
	b.ReportMetric(1/perSecond, "rec/core")
}
