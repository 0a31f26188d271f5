package endpoint_test

import (
	"context"
	"errors"
	"io"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/internal/ffmpeg"
	"github.com/medley-go/medley/pipeline"
)

// Lip sync: media with a mark captured at one instant in both tracks, a
// white video frame and the start of a beep, which the test finds again in
// the decoded file.

const (
	markLength = 3 * time.Second
	markAt     = 1500 * time.Millisecond
)

// ticksToDuration converts n ticks of a clock of num/den seconds each.
func ticksToDuration(n int64, num, den int) time.Duration {
	return time.Duration(n * int64(time.Second) * int64(num) / int64(den))
}

// markedSamples encodes markLength of VP8 (30 fps, black but for one white
// frame at markAt) and of Opus (silent but for a 1 kHz beep from markAt),
// both from capture time 0.
func markedSamples() (video, audio []ffmpeg.Sample, err error) {
	pool := ffmpeg.NewFramePool()
	defer pool.Close()

	venc, err := ffmpeg.NewEncoder(ffmpeg.EncoderConfig{Codec: "vp8", Width: mediaWidth, Height: mediaHeight,
		BitRate: 400_000, KeyframeInterval: mediaFPS})
	if err != nil {
		return nil, nil, err
	}
	defer venc.Close()
	frame := time.Second / mediaFPS
	vtb := venc.TimeBase()
	vemit := func(p *ffmpeg.Packet) error {
		video = append(video, ffmpeg.Sample{Data: append([]byte(nil), p.Data...),
			PTS: ticksToDuration(p.PTS, vtb.Num(), vtb.Den()), Duration: frame, Keyframe: p.Keyframe})
		return nil
	}
	for i := range int(markLength / frame) {
		f, err := pool.GetVideo(venc.VideoFormat())
		if err != nil {
			return nil, nil, err
		}
		luma := byte(16)
		if i == int(markAt*mediaFPS/time.Second) {
			luma = 235
		}
		for p := range 3 {
			v := byte(128)
			if p == 0 {
				v = luma
			}
			plane := f.Plane(p)
			for j := range plane {
				plane[j] = v
			}
		}
		// The encoder's time base ticks: frame i at i/fps s.
		pts := int64(i) * int64(vtb.Den()) / (int64(mediaFPS) * int64(vtb.Num()))
		err = venc.EncodeAt(f, pts, vemit)
		f.Unref()
		if err != nil {
			return nil, nil, err
		}
	}
	if err := venc.Flush(vemit); err != nil {
		return nil, nil, err
	}

	aenc, err := ffmpeg.NewEncoder(ffmpeg.EncoderConfig{Codec: "opus", BitRate: 64000})
	if err != nil {
		return nil, nil, err
	}
	defer aenc.Close()
	a := aenc.AudioFormat()
	atb := aenc.TimeBase()
	chunk := aenc.FrameSize()
	var first int64
	aemit := func(p *ffmpeg.Packet) error {
		if len(audio) == 0 {
			first = p.PTS // Opus starts at minus its pre-skip
		}
		audio = append(audio, ffmpeg.Sample{Data: append([]byte(nil), p.Data...),
			PTS:      ticksToDuration(p.PTS-first, atb.Num(), atb.Den()),
			Duration: ticksToDuration(int64(chunk), 1, a.SampleRate), Keyframe: true})
		return nil
	}
	beep := int64(markAt.Seconds() * float64(a.SampleRate))
	for n := int64(0); n < int64(markLength.Seconds()*float64(a.SampleRate)); n += int64(chunk) {
		f, err := pool.GetAudio(a, chunk)
		if err != nil {
			return nil, nil, err
		}
		amp := 0.0
		if n >= beep && n < beep+int64(a.SampleRate)/5 {
			amp = 0.5
		}
		err = ffmpeg.FillTone(f, 1000, amp, n)
		if err == nil {
			err = aenc.EncodeAt(f, n*int64(atb.Den())/(int64(a.SampleRate)*int64(atb.Num())), aemit)
		}
		f.Unref()
		if err != nil {
			return nil, nil, err
		}
	}
	if err := aenc.Flush(aemit); err != nil {
		return nil, nil, err
	}
	return video, audio, nil
}

var markedRTP = sync.OnceValues(func() ([2][]rtpPacket, error) {
	v, a, err := markedSamples()
	if err != nil {
		return [2][]rtpPacket{}, err
	}
	vp, err := payload(codec.MIMEVP8, v)
	if err != nil {
		return [2][]rtpPacket{}, err
	}
	ap, err := payload(codec.MIMEOpus, a)
	return [2][]rtpPacket{vp, ap}, err
})

// markTimes decodes the file at path and returns the file times of the
// first white frame and of the beep's first loud sample.
func markTimes(t *testing.T, path string) (flash, beep time.Duration) {
	t.Helper()
	d, err := ffmpeg.OpenDemuxer(context.Background(), path, ffmpeg.DemuxerConfig{})
	require.NoError(t, err)
	defer d.Close()
	decs := map[int]*ffmpeg.Decoder{}
	emits := map[int]func(*ffmpeg.Frame) error{}
	flash, beep = -1, -1
	for _, st := range d.Streams() {
		dec, err := ffmpeg.NewDecoder(ffmpeg.DecoderConfig{CodecID: st.CodecID, ExtraData: st.ExtraData,
			SampleRate: st.SampleRate, Channels: st.Channels, TimeBase: st.TimeBase}, nil)
		require.NoError(t, err, "decoder for %s", st.Codec)
		defer dec.Close()
		decs[st.Index] = dec
		if st.IsVideo() {
			emits[st.Index] = func(f *ffmpeg.Frame) error {
				if flash >= 0 {
					return nil
				}
				y, w := f.Plane(0), f.RowBytes(0)
				var sum, n int
				for row := 0; row+w <= len(y); row += f.Linesize(0) {
					for _, v := range y[row : row+w] {
						sum += int(v)
					}
					n += w
				}
				if n > 0 && sum/n > 128 {
					flash = st.Time(f.PTS())
				}
				return nil
			}
		} else {
			emits[st.Index] = func(f *ffmpeg.Frame) error {
				if beep >= 0 {
					return nil
				}
				s, err := f.AppendSamples(nil, 0)
				if err != nil {
					return err
				}
				if i := slices.IndexFunc(s, func(x float32) bool { return math.Abs(float64(x)) > 0.1 }); i >= 0 {
					beep = st.Time(f.PTS()) + ticksToDuration(int64(i), 1, f.Audio().SampleRate)
				}
				return nil
			}
		}
	}
	var p ffmpeg.StreamPacket
	for {
		err := d.ReadPacket(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if dec := decs[p.Stream]; dec != nil {
			require.NoError(t, dec.Decode(p.Data, p.PTS, p.Keyframe, emits[p.Stream]))
		}
	}
	for i, dec := range decs {
		require.NoError(t, dec.Flush(emits[i]))
	}
	require.GreaterOrEqual(t, flash, time.Duration(0), "a white frame in the file")
	require.GreaterOrEqual(t, beep, time.Duration(0), "a beep in the file")
	return flash, beep
}

// TestRecorderLipSync: video and audio captured together from time 0,
// marked at 1.5 s by a white frame and a beep, reach the recorder as a
// receiving endpoint stamps RTP: each packet's PTS is its stream's first
// packet's arrival plus its capture time, the audio's first packet
// arriving 300 ms after the video's. With a sender clock on each track
// (SenderClockEvents after the first half second, as RTCP sender reports
// come, through the depayloaders the pipeline inserts) the file has the
// beep within 40 ms of the white frame; without, 300 ms after it, as it
// does when only the video has one (with a warning).
func TestRecorderLipSync(t *testing.T) {
	for _, c := range []struct {
		name         string
		video, audio bool // which tracks get a sender clock
	}{
		{"sender-clocks", true, true},
		{"no-clocks", false, false},
		{"video-clock-only", true, false},
	} {
		t.Run(c.name, func(t *testing.T) { testRecorderLipSync(t, c.video, c.audio) })
	}
}

func testRecorderLipSync(t *testing.T, videoClock, audioClock bool) {
	pkts, err := markedRTP()
	require.NoError(t, err)
	const late = 300 * time.Millisecond
	// Where each stream's PTS count from: the arrival of its first
	// packet, on the receiver's clock. Both first packets were captured
	// at ntp0 on the sender's.
	vbase := 7 * time.Second
	abase := vbase + late
	ntp0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

	path := filepath.Join(t.TempDir(), "sync.webm")
	rec, err := endpoint.NewRecorder("rec", path, endpoint.WithRecorderQueue(4096, element.Block))
	require.NoError(t, err)
	vp8, _ := codec.Lookup(codec.MIMEVP8)
	opus, _ := codec.Lookup(codec.MIMEOpus)
	vsrc := element.NewAppSource("video", element.CapsList{vp8.Caps(element.FormatRTP)})
	asrc := element.NewAppSource("audio", element.CapsList{opus.Caps(element.FormatRTP)})
	p, err := pipeline.New()
	require.NoError(t, err)
	log := newRecBus(p.Subscribe(1 << 14))
	require.NoError(t, p.Add(rec, vsrc, asrc))
	require.NoError(t, p.Connect(vsrc, rec, element.KindVideo))
	require.NoError(t, p.Connect(asrc, rec, element.KindAudio))
	require.NoError(t, p.Start(context.Background()))
	t.Cleanup(func() {
		require.NoError(t, p.Close())
		log.wait()
	})

	// Send in capture order, each sender clock after the first packet
	// captured from its time on: the video's at 100 ms (250 ms off, as a
	// sender's first report may be), 400 and 700 ms, the audio's at 350
	// and 650 ms.
	type clock struct{ at, off time.Duration }
	type stream struct {
		src    *element.AppSource
		pkts   []rtpPacket
		base   time.Duration
		clocks []clock
		i      int
	}
	var vclocks, aclocks []clock
	if videoClock {
		vclocks = []clock{{100 * time.Millisecond, 250 * time.Millisecond}, {400 * time.Millisecond, 0}, {700 * time.Millisecond, 0}}
	}
	if audioClock {
		aclocks = []clock{{350 * time.Millisecond, 0}, {650 * time.Millisecond, 0}}
	}
	streams := []*stream{{vsrc, pkts[0], vbase, vclocks, 0}, {asrc, pkts[1], abase, aclocks, 0}}
	pool := element.NewBufferPool(1500)
	for {
		var s *stream
		for _, x := range streams {
			if x.i < len(x.pkts) && (s == nil || x.pkts[x.i].pts < s.pkts[s.i].pts) {
				s = x
			}
		}
		if s == nil {
			break
		}
		pk := s.pkts[s.i]
		s.i++
		b := pool.Get()
		b.SetRTPHeader(&pk.pkt.Header)
		b.Data = append(b.Data, pk.pkt.Payload...)
		b.PTS = s.base + pk.pts
		if pk.key {
			b.Flags |= element.FlagKeyframe
		}
		if pk.pkt.Marker {
			b.Flags |= element.FlagEndOfFrame
		}
		s.src.Push(b)
		b.Unref()
		if len(s.clocks) > 0 && pk.pts >= s.clocks[0].at {
			c := s.clocks[0]
			s.clocks = s.clocks[1:]
			require.NoError(t, s.src.SrcPad().PushEvent(element.SenderClockEvent{PTS: s.base + c.at, NTP: ntp0.Add(c.at + c.off)}))
		}
	}
	require.NoError(t, vsrc.EndOfStream())
	require.NoError(t, asrc.EndOfStream())
	select {
	case <-rec.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("the recorder did not stop; stats %+v", rec.Stats())
	}
	st := rec.Stats()
	t.Logf("stats %+v", st)
	require.NotNil(t, log.waitFor(isType[*endpoint.Stopped]))
	warnings := log.all(isType[*element.Warning])

	flash, beep := markTimes(t, path)
	t.Logf("white frame at %v, beep at %v: %v apart", flash, beep, beep-flash)
	assert.InDelta(t, markAt.Seconds(), flash.Seconds(), 0.040, "the white frame")
	if videoClock && audioClock {
		assert.True(t, st.SenderClock)
		assert.InDelta(t, (-late).Seconds(), st.AudioShift.Seconds(), 0.001)
		assert.InDelta(t, 0, (beep - flash).Seconds(), 0.040, "the beep with the white frame")
		assert.Empty(t, warnings)
		res, err := ffmpeg.Probe(context.Background(), path)
		require.NoError(t, err)
		v, _ := res.Stream("video")
		a, _ := res.Stream("audio")
		assert.InDelta(t, v.Start.Seconds(), a.Start.Seconds(), 0.040, "audio starts at %v, video at %v", a.Start, v.Start)
		return
	}
	assert.False(t, st.SenderClock)
	assert.Zero(t, st.AudioShift)
	assert.InDelta(t, late.Seconds(), (beep - flash).Seconds(), 0.040, "the beep as late as the audio's first packet")
	if videoClock {
		require.Len(t, warnings, 1)
		assert.Equal(t, "rec.audio", warnings[0].(*element.Warning).Pad)
		assert.Contains(t, warnings[0].(*element.Warning).Text, "no sender clock")
	} else {
		assert.Empty(t, warnings)
	}
}
