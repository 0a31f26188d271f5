package endpoint_test

import (
	"bufio"
	"cmp"
	"context"
	"encoding/gob"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/internal/ffmpeg"
)

// crashChildEnv makes the test binary, re-executed, record in real time
// until it is killed: "profile|path|media", media being a gob file of the
// RTP to send (so that the child does not spend its start encoding).
const crashChildEnv = "MEDLEY_RECORDER_CRASH_CHILD"

// crashMarker is the line the child prints when its media starts, with
// the wall time of PTS 0 in Unix nanoseconds.
const crashMarker = "MEDLEY-RECORDING-STARTED "

// TestRecorderCrashSafety: a process recording WebM, Matroska or
// fragmented MP4 is killed with SIGKILL at a random moment 3 to 8 s in; the
// file it leaves plays, and holds all but at most the last 2 s.
func TestRecorderCrashSafety(t *testing.T) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		crashChild(t, spec)
		return
	}
	for _, c := range []struct {
		profile endpoint.MediaProfile
		file    string
	}{
		{endpoint.ProfileFragmentedMP4, "crash.mp4"},
		{endpoint.ProfileWebM, "crash.webm"},
		{endpoint.ProfileMKV, "crash.mkv"},
	} {
		t.Run(c.profile.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, c.file)
			video := codec.MIMEVP8
			if c.profile.Container == endpoint.FragmentedMP4 {
				video = codec.MIMEH264
			}
			mediaFile := filepath.Join(dir, "media.gob")
			writeRTP(t, mediaFile, rtpStream(t, video), rtpStream(t, codec.MIMEOpus))
			cmd := exec.Command(os.Args[0], "-test.run=^TestRecorderCrashSafety$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashChildEnv+"="+c.profile.String()+"|"+path+"|"+mediaFile)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			started := make(chan time.Time, 1)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					if v, ok := strings.CutPrefix(sc.Text(), crashMarker); ok {
						if ns, err := strconv.ParseInt(v, 10, 64); err == nil {
							started <- time.Unix(0, ns)
						}
					}
				}
			}()
			var t0 time.Time
			select {
			case t0 = <-started:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatal("the child did not start recording")
			}
			at := 3*time.Second + rand.N(5*time.Second)
			time.Sleep(time.Until(t0.Add(at)))
			require.NoError(t, cmd.Process.Kill())
			elapsed := time.Since(t0)
			_ = cmd.Wait()

			ctx := context.Background()
			res, err := ffmpeg.Probe(ctx, path)
			require.NoError(t, err, "ffprobe reads the file left by the killed process")
			assert.Len(t, res.Streams, 2)
			spans, err := ffmpeg.ProbePackets(ctx, path)
			require.NoError(t, err)
			for i, s := range spans {
				t.Logf("killed at %v: stream %d (%s) holds %v to %v", elapsed.Round(time.Millisecond), i, s.Type, s.Start, s.End)
				assert.GreaterOrEqual(t, s.End, elapsed-2*time.Second, "stream %d (%s)", i, s.Type)
			}
		})
	}
}

// crashChild records profile into path from synthetic RTP paced in real
// time, and prints crashMarker when it starts. It is killed before it
// ends.
func crashChild(t *testing.T, spec string) {
	parts := strings.Split(spec, "|")
	require.Len(t, parts, 3)
	profile, err := endpoint.ParseMediaProfile(parts[0])
	require.NoError(t, err)
	path := parts[1]
	video := codec.MIMEVP8
	if profile.Container == endpoint.FragmentedMP4 {
		video = codec.MIMEH264
	}
	streams := readRTP(t, parts[2])
	vc, _ := codec.Lookup(video)
	oc, _ := codec.Lookup(codec.MIMEOpus)
	feeds := []*feed{
		{src: element.NewAppSource("video", element.CapsList{vc.Caps(element.FormatRTP)}), kind: element.KindVideo, rtp: streams[0]},
		{src: element.NewAppSource("audio", element.CapsList{oc.Caps(element.FormatRTP)}), kind: element.KindAudio, rtp: streams[1]},
	}
	rec, err := endpoint.NewRecorder("rec", path, endpoint.WithMediaProfile(profile))
	require.NoError(t, err)
	r := startRecording(t, rec, feeds...)
	type item struct {
		f *feed
		i int
	}
	var items []item
	for _, f := range feeds {
		for i := range f.rtp {
			items = append(items, item{f, i})
		}
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(a.f.rtp[a.i].pts, b.f.rtp[b.i].pts) })
	t0 := time.Now()
	fmt.Printf("%s%d\n", crashMarker, t0.UnixNano())
	for _, it := range items {
		time.Sleep(time.Until(t0.Add(it.f.rtp[it.i].pts)))
		it.f.send(it.i)
	}
	r.end()
	r.waitDone()
}

// wirePacket is an rtpPacket as the crash test's parent hands it to the
// child.
type wirePacket struct {
	Packet []byte
	Key    bool
	PTS    time.Duration
}

func writeRTP(t *testing.T, path string, streams ...[]rtpPacket) {
	t.Helper()
	var wire [][]wirePacket
	for _, s := range streams {
		var w []wirePacket
		for _, p := range s {
			b, err := p.pkt.Marshal()
			require.NoError(t, err)
			w = append(w, wirePacket{b, p.key, p.pts})
		}
		wire = append(wire, w)
	}
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, gob.NewEncoder(f).Encode(wire))
}

func readRTP(t *testing.T, path string) [][]rtpPacket {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var wire [][]wirePacket
	require.NoError(t, gob.NewDecoder(f).Decode(&wire))
	var out [][]rtpPacket
	for _, w := range wire {
		var s []rtpPacket
		for _, p := range w {
			var pkt rtp.Packet
			require.NoError(t, pkt.Unmarshal(p.Packet))
			s = append(s, rtpPacket{pkt: pkt, key: p.Key, pts: p.PTS})
		}
		out = append(out, s)
	}
	return out
}
