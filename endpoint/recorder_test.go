package endpoint_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/internal/ffmpeg"
)

// probe checks a recorded file with ffprobe and ffmpeg (which the test
// needs, and fails without): the codecs, in order video then audio, a
// duration near want, and audio and video starting within 40 ms.
func probe(t *testing.T, path string, want time.Duration, codecs ...string) *ffmpeg.ProbeResult {
	t.Helper()
	ctx := context.Background()
	r, err := ffmpeg.Probe(ctx, path)
	require.NoError(t, err, "ffprobe must be installed and read the file")
	var got []string
	for _, s := range r.Streams {
		got = append(got, s.Codec)
	}
	assert.ElementsMatch(t, codecs, got, "codecs")
	assert.InDelta(t, want.Seconds(), r.Duration.Seconds(), 0.3, "duration (container)")
	spans, err := ffmpeg.ProbePackets(ctx, path)
	require.NoError(t, err)
	for i, s := range spans {
		assert.InDelta(t, want.Seconds(), s.Duration().Seconds(), 0.3, "stream %d (%s) spans %v to %v", i, s.Type, s.Start, s.End)
	}
	v, okV := r.Stream("video")
	a, okA := r.Stream("audio")
	if okV && okA {
		assert.InDelta(t, v.Start.Seconds(), a.Start.Seconds(), 0.040, "audio starts at %v, video at %v", a.Start, v.Start)
	}
	if okV {
		assert.Equal(t, mediaWidth, v.Width)
		assert.Equal(t, mediaHeight, v.Height)
	}
	errs, err := ffmpeg.DecodeErrors(ctx, path)
	require.NoError(t, err)
	assert.Empty(t, errs, "ffmpeg decoding the file")
	return r
}

// TestRecorderProfiles: each profile records 10 s of synthetic VP8 or
// H.264 and Opus sent as RTP (the pipeline inserts the depayloaders),
// faster than real time; ffprobe finds the codecs, 10 s ± 0.3 s, and the
// audio and video starting together.
func TestRecorderProfiles(t *testing.T) {
	cases := []struct {
		profile      endpoint.MediaProfile
		file         string
		video, audio string
	}{
		{endpoint.ProfileWebM, "a.webm", codec.MIMEVP8, codec.MIMEOpus},
		{endpoint.ProfileMKV, "a.mkv", codec.MIMEH264, codec.MIMEOpus},
		{endpoint.ProfileMP4, "a.mp4", codec.MIMEH264, codec.MIMEOpus},
		{endpoint.ProfileFragmentedMP4, "a.mp4", codec.MIMEH264, codec.MIMEOpus},
		{endpoint.ProfileWebMAudioOnly, "a.webm", "", codec.MIMEOpus},
		{endpoint.ProfileWebMVideoOnly, "a.webm", codec.MIMEVP8, ""},
		{endpoint.ProfileMKVAudioOnly, "a.mka", "", codec.MIMEOpus},
		{endpoint.ProfileMKVVideoOnly, "a.mkv", codec.MIMEVP8, ""},
		{endpoint.ProfileMP4AudioOnly, "a.m4a", "", codec.MIMEOpus},
		{endpoint.ProfileMP4VideoOnly, "a.mp4", codec.MIMEH264, ""},
		{endpoint.ProfileFragmentedMP4AudioOnly, "a.mp4", "", codec.MIMEOpus},
		{endpoint.ProfileFragmentedMP4VideoOnly, "a.mp4", codec.MIMEH264, ""},
	}
	for _, c := range cases {
		t.Run(c.profile.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), c.file)
			rec, err := endpoint.NewRecorder("rec", path, endpoint.WithMediaProfile(c.profile),
				endpoint.WithRecorderQueue(4096, element.Block))
			require.NoError(t, err)
			var feeds []*feed
			var codecs []string
			if c.video != "" {
				feeds = append(feeds, rtpFeed(t, "video", c.video))
				cd, _ := codec.Lookup(c.video)
				codecs = append(codecs, cd.Name)
			}
			if c.audio != "" {
				feeds = append(feeds, rtpFeed(t, "audio", c.audio))
				codecs = append(codecs, "opus")
			}
			r := startRecording(t, rec, feeds...)
			r.push(0, mediaLength)
			r.end()
			stopped := r.waitDone()
			assert.Equal(t, endpoint.StopEndOfStream, stopped.Reason)
			require.NoError(t, stopped.Err)
			assert.Equal(t, path, stopped.Path)
			assert.InDelta(t, mediaLength.Seconds(), stopped.Duration.Seconds(), 0.3)
			info, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, info.Size(), stopped.Size)
			rm := r.log.waitFor(isType[*endpoint.Recording])
			require.NotNil(t, rm, "a Recording message")
			assert.Equal(t, c.profile.Tracks, rm.(*endpoint.Recording).Tracks)
			assert.Empty(t, r.log.all(isType[*element.Warning]))
			assert.Empty(t, r.log.all(isType[*element.Error]))
			probe(t, path, mediaLength, codecs...)
		})
	}
}

// TestRecorderAAC: MP4 takes AAC samples as they are (no RTP for AAC),
// beside H.264 from RTP.
func TestRecorderAAC(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aac.mp4")
	rec, err := endpoint.NewRecorder("rec", path, endpoint.WithRecorderQueue(4096, element.Block))
	require.NoError(t, err)
	assert.Equal(t, endpoint.ProfileMP4, rec.Profile())
	r := startRecording(t, rec, rtpFeed(t, "video", codec.MIMEH264), sampleFeed(t, "audio", codec.MIMEAAC))
	r.push(0, mediaLength)
	r.end()
	require.NoError(t, r.waitDone().Err)
	probe(t, path, mediaLength, "h264", "aac")
}

// TestRecorderMissingTrack: a WebM recording whose video never comes
// starts with the audio after the track wait, warns naming the video, and
// holds the audio from its start.
func TestRecorderMissingTrack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.webm")
	rec, err := endpoint.NewRecorder("rec", path, endpoint.WithTrackWait(300*time.Millisecond),
		endpoint.WithRecorderQueue(4096, element.Block))
	require.NoError(t, err)
	video := rtpFeed(t, "video", codec.MIMEVP8)
	audio := rtpFeed(t, "audio", codec.MIMEOpus)
	r := startRecording(t, rec, video, audio)
	r.feeds = []*feed{audio} // the video source stays silent
	r.push(0, 200*time.Millisecond)
	w := r.log.waitFor(isType[*element.Warning])
	require.NotNil(t, w, "a warning after the track wait")
	assert.Equal(t, "rec.video", w.(*element.Warning).Pad)
	assert.Contains(t, w.(*element.Warning).Text, "video")
	assert.Equal(t, endpoint.RecorderRecording, rec.State())
	r.push(200*time.Millisecond, mediaLength)
	r.feeds = []*feed{audio, video}
	r.end()
	require.NoError(t, r.waitDone().Err)
	probe(t, path, mediaLength, "opus")
}

// waitWritten waits until the recorder has written every sample sent
// before to (the pads' queues are asynchronous, one goroutine each).
func waitWritten(t *testing.T, r *recording, to time.Duration) {
	t.Helper()
	n := uint64(r.samples(0, to))
	require.Eventually(t, func() bool {
		s := r.rec.Stats()
		return s.AudioSamples+s.VideoFrames >= n
	}, 10*time.Second, 5*time.Millisecond, "%d samples written; stats %+v", n, r.rec.Stats())
}

// TestRecorderPauseResume: what arrives while paused is left out and the
// file goes on, without a gap, from the first keyframe after Resume.
func TestRecorderPauseResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.webm")
	rec, err := endpoint.NewRecorder("rec", path, endpoint.WithRecorderQueue(4096, element.Block))
	require.NoError(t, err)
	r := startRecording(t, rec, rtpFeed(t, "video", codec.MIMEVP8), rtpFeed(t, "audio", codec.MIMEOpus))
	r.push(0, 3*time.Second)
	waitWritten(t, r, 3*time.Second)
	require.NoError(t, rec.Pause())
	assert.Equal(t, endpoint.RecorderPaused, rec.State())
	dropped := rec.Stats().Dropped
	r.push(3*time.Second, 6*time.Second)
	// Resume once what was sent while paused went through (and was
	// dropped): the queues are asynchronous.
	n := r.samples(3*time.Second, 6*time.Second)
	require.Eventually(t, func() bool { return rec.Stats().Dropped >= dropped+uint64(n) }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, rec.Resume())
	r.push(6*time.Second, mediaLength)
	r.end()
	stopped := r.waitDone()
	require.NoError(t, stopped.Err)
	p := r.log.waitFor(isType[*endpoint.Paused])
	require.NotNil(t, p)
	assert.InDelta(t, 3, p.(*endpoint.Paused).Position.Seconds(), 0.1)
	assert.Len(t, r.log.all(isType[*endpoint.Recording]), 2, "Recording at the start and after Resume")
	// 3 s before the pause, 4 s after: 7 s, and the video frames of both.
	probe(t, path, 7*time.Second, "vp8", "opus")
	spans, err := ffmpeg.ProbePackets(context.Background(), path)
	require.NoError(t, err)
	for _, s := range spans {
		if s.Type == "video" {
			assert.InDelta(t, 7*mediaFPS, s.Packets, 2)
		}
	}
}

// TestRecorderLimits: the maximum duration and size stop the recording
// with a complete file.
func TestRecorderLimits(t *testing.T) {
	t.Run("duration", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a.mkv")
		rec, err := endpoint.NewRecorder("rec", path, endpoint.WithMaxDuration(3*time.Second),
			endpoint.WithRecorderQueue(4096, element.Block))
		require.NoError(t, err)
		r := startRecording(t, rec, rtpFeed(t, "video", codec.MIMEVP8), rtpFeed(t, "audio", codec.MIMEOpus))
		r.push(0, mediaLength)
		r.end()
		stopped := r.waitDone()
		assert.Equal(t, endpoint.StopMaxDuration, stopped.Reason)
		probe(t, path, 3*time.Second, "vp8", "opus")
	})
	t.Run("size", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a.webm")
		const limit = 150 << 10
		rec, err := endpoint.NewRecorder("rec", path, endpoint.WithMaxSize(limit),
			endpoint.WithRecorderQueue(4096, element.Block))
		require.NoError(t, err)
		r := startRecording(t, rec, rtpFeed(t, "video", codec.MIMEVP8), rtpFeed(t, "audio", codec.MIMEOpus))
		r.push(0, mediaLength)
		r.end()
		stopped := r.waitDone()
		assert.Equal(t, endpoint.StopMaxSize, stopped.Reason)
		info, err := os.Stat(path)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, info.Size(), int64(limit))
		assert.Less(t, info.Size(), int64(limit+64<<10))
		res, err := ffmpeg.Probe(context.Background(), path)
		require.NoError(t, err)
		assert.Len(t, res.Streams, 2)
		errs, err := ffmpeg.DecodeErrors(context.Background(), path)
		require.NoError(t, err)
		assert.Empty(t, errs)
	})
}

// TestRecorderStop: Stop returns once the file is complete (its header
// has the duration, which only the trailer writes); the recorder then
// refuses Pause and Resume.
func TestRecorderStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mkv")
	rec, err := endpoint.NewRecorder("rec", path, endpoint.WithRecorderQueue(4096, element.Block))
	require.NoError(t, err)
	r := startRecording(t, rec, rtpFeed(t, "video", codec.MIMEH264), rtpFeed(t, "audio", codec.MIMEOpus))
	r.push(0, 2*time.Second)
	waitWritten(t, r, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, rec.Stop(ctx))
	assert.Equal(t, endpoint.RecorderStopped, rec.State())
	res, err := ffmpeg.Probe(ctx, path)
	require.NoError(t, err)
	assert.InDelta(t, 2, res.Duration.Seconds(), 0.1, "the trailer's duration")
	require.NoError(t, rec.Stop(ctx), "Stop twice")
	assert.ErrorIs(t, rec.Pause(), endpoint.ErrRecorderStopped)
	assert.ErrorIs(t, rec.Resume(), endpoint.ErrRecorderStopped)
	stopped := r.waitDone()
	assert.Equal(t, endpoint.StopRequested, stopped.Reason)
	probe(t, path, 2*time.Second, "h264", "opus")
}

// TestRecorderNothingRecorded: a recorder that got no media leaves no
// file when it stops.
func TestRecorderNothingRecorded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.webm")
	rec, err := endpoint.NewRecorder("rec", path)
	require.NoError(t, err)
	_, err = os.Stat(path)
	require.NoError(t, err, "the file exists from NewRecorder on")
	r := startRecording(t, rec, rtpFeed(t, "video", codec.MIMEVP8))
	require.NoError(t, rec.Stop(context.Background()))
	stopped := r.waitDone()
	assert.Equal(t, endpoint.StopRequested, stopped.Reason)
	assert.Zero(t, stopped.Size)
	_, err = os.Stat(path)
	assert.True(t, os.IsNotExist(err), "no empty file left behind")
}

// TestRecorderBaseDir: within a base directory, "../", absolute paths
// elsewhere and symbolic links out are refused, and nothing outside is
// created or truncated; subdirectories inside are made.
func TestRecorderBaseDir(t *testing.T) {
	base, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim.webm")
	require.NoError(t, os.WriteFile(victim, []byte("keep me"), 0o644))
	require.NoError(t, os.Symlink(outside, filepath.Join(base, "out")))
	require.NoError(t, os.Symlink(victim, filepath.Join(base, "victim.webm")))
	require.NoError(t, os.Symlink("../"+filepath.Base(outside), filepath.Join(base, "rel")))
	for _, p := range []string{
		"../x.webm",
		"a/../../x.webm",
		filepath.Join(outside, "x.webm"),
		"out/x.webm",
		"victim.webm",
		"rel/x.webm",
		"out/victim.webm",
	} {
		_, err := endpoint.NewRecorder("rec", p, endpoint.WithBaseDir(base))
		assert.ErrorIs(t, err, endpoint.ErrPathOutsideBase, "%s", p)
	}
	data, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(data))
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "nothing created outside")

	for _, p := range []string{"ok.webm", "sub/dir/ok.webm", filepath.Join(base, "abs.webm")} {
		rec, err := endpoint.NewRecorder("rec", p, endpoint.WithBaseDir(base))
		require.NoError(t, err, p)
		assert.True(t, filepath.IsAbs(rec.Path()))
		_, err = os.Stat(rec.Path())
		assert.NoError(t, err)
		require.NoError(t, rec.Close())
	}
}

// TestMediaProfile: names and extensions.
func TestMediaProfile(t *testing.T) {
	for name, want := range map[string]endpoint.MediaProfile{
		"webm":                      endpoint.ProfileWebM,
		"WEBM_AUDIO_ONLY":           endpoint.ProfileWebMAudioOnly,
		"mkv-video":                 endpoint.ProfileMKVVideoOnly,
		"matroska":                  endpoint.ProfileMKV,
		"mp4":                       endpoint.ProfileMP4,
		"fmp4-audio-only":           endpoint.ProfileFragmentedMP4AudioOnly,
		"fragmented-mp4":            endpoint.ProfileFragmentedMP4,
		"mp4_video_only":            endpoint.ProfileMP4VideoOnly,
		"fmp4-video-only":           endpoint.ProfileFragmentedMP4VideoOnly,
		"mkv-audio-only":            endpoint.ProfileMKVAudioOnly,
		" webm-video-only ":         endpoint.ProfileWebMVideoOnly,
		"mp4-audio":                 endpoint.ProfileMP4AudioOnly,
		"fmp4":                      endpoint.ProfileFragmentedMP4,
		"mkv":                       endpoint.ProfileMKV,
		"webm-video":                endpoint.ProfileWebMVideoOnly,
		"mkv_video_only":            endpoint.ProfileMKVVideoOnly,
		"fmp4_audio":                endpoint.ProfileFragmentedMP4AudioOnly,
		"MP4-AUDIO-ONLY":            endpoint.ProfileMP4AudioOnly,
		"webm-audio":                endpoint.ProfileWebMAudioOnly,
		"fragmented-mp4-video-only": endpoint.ProfileFragmentedMP4VideoOnly,
	} {
		got, err := endpoint.ParseMediaProfile(name)
		require.NoError(t, err, name)
		assert.Equal(t, want, got, name)
		back, err := endpoint.ParseMediaProfile(got.String())
		require.NoError(t, err)
		assert.Equal(t, got, back)
	}
	_, err := endpoint.ParseMediaProfile("avi")
	assert.ErrorIs(t, err, endpoint.ErrUnknownProfile)

	for path, want := range map[string]endpoint.MediaProfile{
		"a.webm": endpoint.ProfileWebM, "b.WEBA": endpoint.ProfileWebMAudioOnly,
		"c.mkv": endpoint.ProfileMKV, "d.mka": endpoint.ProfileMKVAudioOnly,
		"e.mp4": endpoint.ProfileMP4, "f.m4a": endpoint.ProfileMP4AudioOnly, "g.m4v": endpoint.ProfileMP4VideoOnly,
	} {
		got, ok := endpoint.MediaProfileFor(path)
		assert.True(t, ok, path)
		assert.Equal(t, want, got, path)
	}
	_, err = endpoint.NewRecorder("rec", filepath.Join(t.TempDir(), "a.avi"))
	assert.ErrorIs(t, err, endpoint.ErrUnknownProfile)
	assert.Equal(t, []string{codec.MIMEH264}, endpoint.MP4.Codecs(element.KindVideo))
}

// TestRecorderAsksForKeyframe: video that starts between keyframes is
// dropped up to the next one, and the recorder asks its source for one.
func TestRecorderAsksForKeyframe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.webm")
	rec, err := endpoint.NewRecorder("rec", path, endpoint.WithMediaProfile(endpoint.ProfileWebMVideoOnly),
		endpoint.WithRecorderQueue(4096, element.Block))
	require.NoError(t, err)
	asked := make(chan struct{}, 1)
	vp8, _ := codec.Lookup(codec.MIMEVP8)
	src := element.NewAppSource("video", element.CapsList{vp8.Caps(element.FormatSample)},
		element.WithUpstream(func(ev element.Event) {
			if _, ok := ev.(element.KeyframeRequest); ok {
				select {
				case asked <- struct{}{}:
				default:
				}
			}
		}))
	f := &feed{src: src, kind: element.KindVideo, smp: media(t, codec.MIMEVP8)}
	r := startRecording(t, rec, f)
	r.push(100*time.Millisecond, mediaLength) // frames 3.. : the next keyframe is at 1 s
	select {
	case <-asked:
	case <-time.After(5 * time.Second):
		t.Fatal("no keyframe request")
	}
	r.end()
	require.NoError(t, r.waitDone().Err)
	spans, err := ffmpeg.ProbePackets(context.Background(), path)
	require.NoError(t, err)
	require.Len(t, spans, 1)
	assert.Equal(t, 9*mediaFPS, spans[0].Packets, "from the keyframe at 1 s")
	assert.Zero(t, spans[0].Start, "the file starts at the keyframe")
}

// TestRecorderTranscodes: VP8, which MP4 does not take, is transcoded to
// H.264 by the converters the pipeline inserts; Opus, which it takes, is
// not.
func TestRecorderTranscodes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mp4")
	rec, err := endpoint.NewRecorder("rec", path, endpoint.WithRecorderQueue(4096, element.Block))
	require.NoError(t, err)
	r := startRecording(t, rec, rtpFeed(t, "video", codec.MIMEVP8), rtpFeed(t, "audio", codec.MIMEOpus))
	tc := r.log.waitFor(isType[*element.TranscodingStateChanged])
	require.NotNil(t, tc)
	// The transcoder's queues drop what they cannot take, as a live
	// branch should: send video no further ahead of the recorder than
	// they hold.
	r.throttle = func(f *feed, pts time.Duration) {
		frame := uint64(pts * mediaFPS / time.Second)
		for f.kind == element.KindVideo && rec.Stats().VideoFrames+30 < frame {
			time.Sleep(time.Millisecond)
		}
	}
	r.push(0, mediaLength)
	r.end()
	require.NoError(t, r.waitDone().Err)
	var transcoded []string
	for _, m := range r.log.all(isType[*element.TranscodingStateChanged]) {
		tc := m.(*element.TranscodingStateChanged)
		if tc.State == element.Transcoding && tc.From.Codec != tc.To.Codec {
			transcoded = append(transcoded, tc.From.Codec+" -> "+tc.To.Codec)
		}
	}
	assert.Equal(t, []string{codec.MIMEVP8 + " -> " + codec.MIMEH264}, transcoded)
	probe(t, path, mediaLength, "h264", "opus")
}
