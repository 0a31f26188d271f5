package codec_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/internal/ffmpeg"
)

func needFFmpeg(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("no ffmpeg command")
	}
	return path
}

// TestFFmpegSendsRTP: RTP that the ffmpeg command sends on 127.0.0.1 (VP8,
// H.264 with B-frames, Opus), read from a UDP socket and pushed through an
// AppSource, depayloads and decodes into the pictures and the tone sent.
func TestFFmpegSendsRTP(t *testing.T) {
	ffmpegPath := needFFmpeg(t)
	for _, tc := range []struct {
		name, mime string
		args       []string
	}{
		{"vp8", codec.MIMEVP8, []string{"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "2", "-pix_fmt", "yuv420p",
			"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"}},
		{"h264", codec.MIMEH264, []string{"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "2", "-pix_fmt", "yuv420p",
			"-c:v", "libx264", "-preset", "veryfast", "-b:v", "1M"}},
		{"opus", codec.MIMEOpus, []string{"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000", "-t", "2", "-ac", "2",
			"-c:a", "libopus", "-b:a", "64k"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			require.NoError(t, err)
			defer conn.Close()
			require.NoError(t, conn.SetReadBuffer(4<<20))
			port := conn.LocalAddr().(*net.UDPAddr).Port

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := append([]string{"-hide_banner", "-v", "error", "-re"}, tc.args...)
			args = append(args, "-f", "rtp", fmt.Sprintf("rtp://127.0.0.1:%d", port))
			cmd := exec.CommandContext(ctx, ffmpegPath, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()

			caps := rtpCaps(t, tc.mime)
			src := element.NewAppSource("src", element.CapsList{caps})
			depay, err := codec.NewDepayloader("depay", caps)
			require.NoError(t, err)
			dec, err := codec.NewDecoder("dec", sampleCaps(t, tc.mime), codec.WithQueue(256, element.Block))
			require.NoError(t, err)
			out, _ := codec.DecoderOutput(sampleCaps(t, tc.mime))
			var vsink *videoSink
			var asink *audioSink
			var sink element.Element
			if tc.mime == codec.MIMEOpus {
				asink = newAudioSink("sink", out)
				sink = asink
			} else {
				vsink = newVideoSink("sink", nil, out)
				sink = vsink
			}
			p := chainPipeline(t, src, depay, dec, sink)
			watchErrors(t, p, nil)

			// Read until ffmpeg is done and the socket has been quiet a
			// while after.
			buf := make([]byte, 65536)
			var pkt rtp.Packet
			packets := 0
			var done error
			exitedAt := time.Time{}
			lastPacket := time.Now()
			for {
				if exitedAt.IsZero() {
					select {
					case done = <-exited:
						exitedAt = time.Now()
					default:
					}
				}
				switch {
				case !exitedAt.IsZero() && time.Since(exitedAt) > 300*time.Millisecond:
				case time.Since(lastPacket) > 10*time.Second:
					t.Fatalf("no RTP from ffmpeg for 10 s (%d packets so far); stderr: %s", packets, stderr.String())
				default:
					require.NoError(t, conn.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
					n, err := conn.Read(buf)
					if err != nil {
						var ne net.Error
						require.True(t, errors.As(err, &ne) && ne.Timeout(), "read: %v", err)
						continue
					}
					lastPacket = time.Now()
					require.NoError(t, pkt.Unmarshal(buf[:n]))
					src.PushRTP(&pkt, false)
					packets++
					continue
				}
				break
			}
			require.NoError(t, done, "ffmpeg: %s", stderr.String())
			require.NoError(t, src.EndOfStream())

			if asink != nil {
				samples, format := asink.wait(t)
				freq := ffmpeg.ToneFrequency(samples, format.SampleRate)
				t.Logf("%s: %d packets → %d samples at %v, tone %.1f Hz", tc.name, packets, len(samples), format, freq)
				assert.InDelta(t, 2*48000, len(samples), 2*960)
				assert.InDelta(t, 1000, freq, 10)
			} else {
				vsink.wait(t, 10*time.Second)
				vsink.check(t)
				got := vsink.frames()
				t.Logf("%s: %d packets → %d frames", tc.name, packets, len(got))
				assert.GreaterOrEqual(t, len(got), 58, "frames decoded of 60 sent")
				for i, d := range got {
					assert.Equal(t, testVideo, d.size)
					if i > 0 {
						assert.Greater(t, d.n, got[i-1].n, "frames out of order")
					}
				}
			}
			assert.Zero(t, depay.Stats().DroppedFrames)
			assert.Zero(t, dec.Stats().Errors)
		})
	}
}

// TestFFmpegPlaysRTP: RTP that medley's encoder and payloader make (VP8,
// H.264, Opus), sent over UDP, is played by the ffmpeg command from an SDP
// file without an error, frame by frame.
func TestFFmpegPlaysRTP(t *testing.T) {
	ffmpegPath := needFFmpeg(t)
	for _, tc := range []struct {
		name, mime string
		want       int // frames ffmpeg must decode
	}{
		{"vp8", codec.MIMEVP8, 50},
		{"h264", codec.MIMEH264, 50},
		{"opus", codec.MIMEOpus, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := codec.Lookup(tc.mime)
			var frames [][]*element.Buffer
			if c.Kind == element.KindVideo {
				frames = encodeRTP(t, tc.mime, 60, testVideo, codec.WithBitrate(1_000_000))
			} else {
				for _, b := range encodeAudioRTP(t, tc.mime, codec.RawAudioCaps(48000, 2, "s16"), 1, 960) {
					frames = append(frames, []*element.Buffer{b})
				}
			}
			port := freeRTPPort(t)
			media := "video"
			rtpmap := fmt.Sprintf("%s/%d", strings.TrimPrefix(c.MIME, "video/"), c.ClockRate)
			if c.Kind == element.KindAudio {
				media, rtpmap = "audio", fmt.Sprintf("opus/%d/%d", c.ClockRate, c.Channels)
			}
			sdp := fmt.Sprintf("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=medley\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
				"m=%s %d RTP/AVP %d\r\na=rtpmap:%d %s\r\n", media, port, c.PayloadType, c.PayloadType, rtpmap)
			if c.Fmtp != "" {
				sdp += fmt.Sprintf("a=fmtp:%d %s\r\n", c.PayloadType, c.Fmtp)
			}
			sdpPath := filepath.Join(t.TempDir(), "medley.sdp")
			require.NoError(t, os.WriteFile(sdpPath, []byte(sdp), 0o644))

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			limit := "-frames:v"
			if c.Kind == element.KindAudio {
				limit = "-frames:a"
			}
			cmd := exec.CommandContext(ctx, ffmpegPath, "-hide_banner", "-v", "error", "-protocol_whitelist", "file,udp,rtp",
				"-i", sdpPath, limit, fmt.Sprint(tc.want), "-f", "framemd5", "-")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			require.NoError(t, cmd.Start())
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			waitBound(t, port, exited)

			conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
			require.NoError(t, err)
			defer conn.Close()
			// ffmpeg stops reading once it has decoded its frames: a send
			// refused after that is no failure.
			var wire []byte
		send:
			for _, f := range frames {
				for _, b := range f {
					pkt := rtp.Packet{Header: b.RTP, Payload: b.Data}
					wire, err = pkt.Marshal()
					require.NoError(t, err)
					if _, err = conn.Write(wire); err != nil {
						break send
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			var runErr error
			select {
			case runErr = <-exited:
			case <-time.After(15 * time.Second):
				cancel()
				runErr = <-exited
				t.Fatalf("ffmpeg did not finish: %v; stderr: %s", runErr, stderr.String())
			}
			require.NoError(t, runErr, "ffmpeg: %s", stderr.String())
			assert.Empty(t, strings.TrimSpace(stderr.String()), "ffmpeg's errors")
			var decoded int
			for line := range strings.SplitSeq(stdout.String(), "\n") {
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				decoded++
				if c.Kind == element.KindVideo {
					fields := strings.Split(line, ",")
					require.Len(t, fields, 6, line)
					assert.Equal(t, "345600", strings.TrimSpace(fields[4]), "640x360 yuv420p frame size")
				}
			}
			t.Logf("%s: ffmpeg decoded %d frames", tc.name, decoded)
			assert.Equal(t, tc.want, decoded)
		})
	}
}

// freeRTPPort returns an even UDP port whose successor is free too.
func freeRTPPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if port%2 != 0 || port > 65000 {
			continue
		}
		if c2, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1}); err == nil {
			c2.Close()
			return port
		}
	}
	t.Fatal("no free RTP port pair")
	return 0
}

// waitBound waits until a process has bound UDP port (so that nothing
// sent to it is lost).
func waitBound(t *testing.T, port int, exited chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			return // bound by ffmpeg
		}
		c.Close()
		select {
		case err := <-exited:
			t.Fatalf("ffmpeg exited before reading: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("ffmpeg did not bind its port")
}
