package ffmpeg

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeFile muxes the synthetic streams of codecs into a new file.
func writeFile(t *testing.T, format, name string, codecs []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	m, err := CreateMuxer(path, MuxerConfig{Format: format})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	muxAll(t, m, codecs, nil)
	require.NoError(t, m.Close())
	return path
}

// readAll reads every packet of d, by stream.
func readAll(t *testing.T, d *Demuxer) map[int][]StreamPacket {
	t.Helper()
	out := map[int][]StreamPacket{}
	var buf []byte
	for {
		p := StreamPacket{Data: buf}
		err := d.ReadPacket(&p)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		q := p
		q.Data = append([]byte(nil), p.Data...)
		out[p.Stream] = append(out[p.Stream], q)
		buf = p.Data[:0]
	}
}

// TestDemuxer: what the muxer wrote, the demuxer reads back: the streams'
// codecs, sizes and rates, every packet (VP8 and Opus byte for byte), the
// duration, and a Seek that lands on the keyframe at or before its target.
func TestDemuxer(t *testing.T) {
	cases := []struct {
		format, name string
		codecs       []string
	}{
		{"webm", "a.webm", []string{"vp8", "opus"}},
		{"mkv", "a.mkv", []string{"h264", "aac"}},
		{"mp4", "a.mp4", []string{"h264", "aac"}},
		{"fmp4", "a.mp4", []string{"h264", "opus"}},
	}
	for _, c := range cases {
		t.Run(c.format, func(t *testing.T) {
			checkNoLiveObjects(t)
			path := writeFile(t, c.format, c.name, c.codecs)
			d, err := OpenDemuxer(context.Background(), path, DemuxerConfig{})
			require.NoError(t, err)
			t.Cleanup(func() { d.Close() })
			require.Len(t, d.Streams(), 2)
			v, a := d.Streams()[0], d.Streams()[1]
			assert.Equal(t, astiav.MediaTypeVideo, v.Type)
			assert.Equal(t, c.codecs[0], v.Codec)
			assert.Equal(t, 320, v.Width)
			assert.Equal(t, 240, v.Height)
			assert.Equal(t, astiav.MediaTypeAudio, a.Type)
			assert.Equal(t, c.codecs[1], a.Codec)
			assert.Equal(t, 48000, a.SampleRate)
			assert.Equal(t, 2, a.Channels)
			assert.NotEmpty(t, a.ExtraData)
			assert.InDelta(t, synthLength.Seconds(), d.Duration().Seconds(), 0.1)

			pkts := readAll(t, d)
			video, audio := synth(t, c.codecs[0]), synth(t, c.codecs[1])
			require.Len(t, pkts[0], len(video))
			require.Len(t, pkts[1], len(audio))
			assert.True(t, pkts[0][0].Keyframe)
			assert.InDelta(t, 0, v.Time(pkts[0][0].PTS).Seconds(), 0.001)
			if c.codecs[0] == "vp8" {
				assert.Equal(t, video[5].Data, pkts[0][5].Data)
				assert.Equal(t, audio[5].Data, pkts[1][5].Data)
			}

			require.NoError(t, d.Seek(time.Second))
			var p StreamPacket
			for {
				require.NoError(t, d.ReadPacket(&p))
				if p.Stream == 0 {
					break
				}
			}
			assert.True(t, p.Keyframe, "the first video packet after Seek is a keyframe")
			at := v.Time(p.PTS)
			assert.LessOrEqual(t, at, time.Second)
			assert.Greater(t, at, time.Second-600*time.Millisecond, "within one GOP (0.5 s)")
			require.NoError(t, d.Close())
			assert.ErrorIs(t, d.ReadPacket(&p), ErrClosed)
		})
	}
}

// TestDemuxerRemux: MP4's H.264 (avcC header, length-prefixed packets)
// copied into Matroska through StreamInfo.StreamConfig plays cleanly.
func TestDemuxerRemux(t *testing.T) {
	checkNoLiveObjects(t)
	src := writeFile(t, "mp4", "in.mp4", []string{"h264", "aac"})
	d, err := OpenDemuxer(context.Background(), src, DemuxerConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	dst := filepath.Join(t.TempDir(), "out.mkv")
	m, err := CreateMuxer(dst, MuxerConfig{Format: "mkv"})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	for _, s := range d.Streams() {
		_, err := m.AddStream(s.StreamConfig())
		require.NoError(t, err)
	}
	var p StreamPacket
	for {
		err := d.ReadPacket(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.NoError(t, m.WritePacket(&p))
	}
	require.NoError(t, m.Close())
	checkFile(t, dst, []string{"h264", "aac"}, synthLength)
}

// onlyReader hides a reader's Seek.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestDemuxerReader reads from an io.Reader: a seekable one (MP4, whose
// index is at the end) and a stream (Matroska).
func TestDemuxerReader(t *testing.T) {
	checkNoLiveObjects(t)
	for _, c := range []struct {
		format, name string
		seekable     bool
	}{{"mp4", "a.mp4", true}, {"mkv", "a.mkv", false}} {
		t.Run(c.format, func(t *testing.T) {
			data, err := os.ReadFile(writeFile(t, c.format, c.name, []string{"h264", "opus"}))
			require.NoError(t, err)
			var r io.Reader = bytes.NewReader(data)
			if !c.seekable {
				r = onlyReader{r}
			}
			d, err := NewDemuxer(context.Background(), r, DemuxerConfig{})
			require.NoError(t, err)
			t.Cleanup(func() { d.Close() })
			pkts := readAll(t, d)
			assert.Len(t, pkts[0], len(synth(t, "h264")))
			assert.Len(t, pkts[1], len(synth(t, "opus")))
		})
	}
}

// TestDemuxerBadInput: a missing file, garbage, a truncated file and bad
// options are errors, never a crash; a truncated file gives what it has.
func TestDemuxerBadInput(t *testing.T) {
	checkNoLiveObjects(t)
	ctx := context.Background()
	_, err := OpenDemuxer(ctx, filepath.Join(t.TempDir(), "missing.webm"), DemuxerConfig{})
	assert.Error(t, err)

	garbage := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	_, err = NewDemuxer(ctx, bytes.NewReader(garbage), DemuxerConfig{})
	assert.Error(t, err)
	_, err = NewDemuxer(ctx, bytes.NewReader(garbage), DemuxerConfig{Format: "matroska"})
	assert.Error(t, err)

	_, err = OpenDemuxer(ctx, "x", DemuxerConfig{Format: "no-such-format"})
	assert.ErrorIs(t, err, ErrFormat)
	path := writeFile(t, "webm", "a.webm", []string{"vp8", "opus"})
	_, err = OpenDemuxer(ctx, path, DemuxerConfig{Options: map[string]string{"no_such_option": "1"}})
	assert.ErrorIs(t, err, ErrUnknownOption)

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, cut := range []int{len(data) / 2, len(data) / 7, 200} {
		d, err := NewDemuxer(ctx, bytes.NewReader(data[:cut]), DemuxerConfig{})
		if err != nil {
			continue // too short to know the streams: an error is right
		}
		n := 0
		var p StreamPacket
		for d.ReadPacket(&p) == nil {
			n++
		}
		assert.Positive(t, n, "a file cut at %d bytes still has packets", cut)
		d.Close()
	}
	// Garbage after a valid start.
	mangled := append([]byte(nil), data...)
	for i := len(mangled) / 3; i < len(mangled); i += 7 {
		mangled[i] ^= 0x5a
	}
	d, err := NewDemuxer(ctx, bytes.NewReader(mangled), DemuxerConfig{})
	require.NoError(t, err)
	var p StreamPacket
	for i := 0; i < 10000 && d.ReadPacket(&p) == nil; i++ {
	}
	d.Close()
	assert.Zero(t, LiveFormatContexts())
}

// TestDemuxerInterrupt: cancelling the context unblocks an open that waits
// on a silent server, and Close unblocks a read that waits on a stalled
// stream.
func TestDemuxerInterrupt(t *testing.T) {
	checkNoLiveObjects(t)
	t.Run("open", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				accepted <- c
			}
		}()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		_, err = OpenDemuxer(ctx, "tcp://"+ln.Addr().String(), DemuxerConfig{Format: "matroska"})
		assert.ErrorIs(t, err, context.Canceled)
		assert.Less(t, time.Since(start), 2*time.Second)
		select {
		case c := <-accepted:
			c.Close()
		case <-time.After(time.Second):
		}
	})
	t.Run("read", func(t *testing.T) {
		data, err := os.ReadFile(writeFile(t, "webm", "a.webm", []string{"vp8", "opus"}))
		require.NoError(t, err)
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "video/webm")
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			select { // stall, as a live source that stops sending
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		d, err := OpenDemuxer(context.Background(), srv.URL+"/live.webm", DemuxerConfig{ProbeSize: 32 << 10, AnalyzeDuration: 100 * time.Millisecond})
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() {
			var p StreamPacket
			for {
				if err := d.ReadPacket(&p); err != nil {
					done <- err
					return
				}
			}
		}()
		select {
		case err := <-done:
			t.Fatalf("ReadPacket returned before Close: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
		start := time.Now()
		require.NoError(t, d.Close())
		select {
		case err := <-done:
			assert.ErrorIs(t, err, ErrClosed)
		case <-time.After(2 * time.Second):
			t.Fatal("Close did not unblock ReadPacket")
		}
		assert.Less(t, time.Since(start), time.Second)
	})
	assert.Zero(t, LiveFormatContexts())
}

// TestDemuxerReadPacketRef: ReadPacketRef reads the packets ReadPacket
// does, each holding its own writable payload that stays valid while
// later packets are read and after the demuxer is closed, until Unref or
// Free; each packet is freed once.
func TestDemuxerReadPacketRef(t *testing.T) {
	checkNoLiveObjects(t)
	for _, c := range []struct {
		format, name string
		codecs       []string
	}{
		{"webm", "a.webm", []string{"vp8", "opus"}},
		{"mp4", "a.mp4", []string{"h264", "aac"}},
	} {
		t.Run(c.format, func(t *testing.T) {
			path := writeFile(t, c.format, c.name, c.codecs)
			d, err := OpenDemuxer(context.Background(), path, DemuxerConfig{})
			require.NoError(t, err)
			want := readAll(t, d)
			require.NoError(t, d.Close())

			d, err = OpenDemuxer(context.Background(), path, DemuxerConfig{})
			require.NoError(t, err)
			t.Cleanup(func() { d.Close() })
			assert.True(t, d.IsFile())
			var held []*DemuxedPacket
			t.Cleanup(func() {
				for _, p := range held {
					p.Free()
					p.Free() // a second Free does nothing
				}
			})
			for {
				p, err := NewDemuxedPacket()
				require.NoError(t, err)
				held = append(held, p)
				err = d.ReadPacketRef(p)
				if errors.Is(err, io.EOF) {
					assert.Nil(t, p.Data, "nothing held after the end")
					break
				}
				require.NoError(t, err)
			}
			held[0].Data[0] ^= 0xff // the holder's own: nobody else sees it
			require.NoError(t, d.Close())
			assert.ErrorIs(t, d.ReadPacketRef(held[len(held)-1]), ErrClosed)

			got := map[int][]StreamPacket{}
			for _, p := range held[:len(held)-1] {
				got[p.Stream] = append(got[p.Stream], p.StreamPacket)
			}
			require.Equal(t, len(want), len(got))
			for s := range want {
				require.Len(t, got[s], len(want[s]), "stream %d", s)
				for i, w := range want[s] {
					g := got[s][i]
					if g.Stream == held[0].Stream && i == 0 {
						g.Data = append([]byte{g.Data[0] ^ 0xff}, g.Data[1:]...)
					}
					assert.Equal(t, w, g, "stream %d packet %d", s, i)
				}
			}
			held[1].Unref()
			assert.Nil(t, held[1].Data)
		})
	}
	// A reader's input is not a file: its reads may wait.
	data, err := os.ReadFile(writeFile(t, "webm", "b.webm", []string{"vp8"}))
	require.NoError(t, err)
	d, err := NewDemuxer(context.Background(), bytes.NewReader(data), DemuxerConfig{})
	require.NoError(t, err)
	assert.False(t, d.IsFile())
	require.NoError(t, d.Close())
}

// TestToDuration: the Go conversion of timestamps to durations gives what
// FFmpeg's av_rescale_q does, rounding and extremes included.
func TestToDuration(t *testing.T) {
	bases := []astiav.Rational{
		astiav.NewRational(1, 90000), astiav.NewRational(1, 48000), astiav.NewRational(1, 44100),
		astiav.NewRational(1, 1000), astiav.NewRational(1001, 30000), astiav.NewRational(1, 1),
		astiav.NewRational(1, 1_000_000_000), astiav.NewRational(3, 7), astiav.NewRational(1_000_000, 1),
		astiav.NewRational(0, 1), astiav.NewRational(1, 0),
	}
	values := []int64{0, 1, -1, 2, -2, 45, -45, 1 << 31, 1<<62 + 12345, -(1 << 62), NoTimestamp, math.MaxInt64, math.MinInt64 + 1}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		v := rng.Int64N(1 << 40)
		if rng.IntN(2) == 0 {
			v = -v
		}
		values = append(values, v)
	}
	for _, tb := range bases {
		for _, v := range values {
			want := time.Duration(astiav.RescaleQ(v, tb, nanosecond))
			if got := toDuration(v, tb); got != want {
				t.Fatalf("toDuration(%d, %d/%d) = %d, av_rescale_q says %d", v, tb.Num(), tb.Den(), got, want)
			}
		}
	}
}
