package codec

import (
	"fmt"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/internal/ffmpeg"
)

// Frame is a decoded video or audio frame: what Buffer.Frame holds on a
// pad of element.FormatRaw, as a *Frame. It is reference counted (Ref,
// Unref); a buffer made with NewFrameBuffer holds one reference, dropped
// when the buffer's last reference goes. A frame in a pushed buffer is
// read-only, like the buffer.
type Frame = ffmpeg.Frame

// FramePool recycles frames by format (GetVideo, GetAudio), so that a
// steady stream allocates no frame memory. Close it when done; frames still
// held are freed when their last reference goes.
type FramePool = ffmpeg.FramePool

// NewFramePool returns an empty frame pool.
func NewFramePool() *FramePool { return ffmpeg.NewFramePool() }

// The raw formats medley's elements produce and take by default.
const (
	// PixelFormatI420 is the pixel format of raw video: planar YUV 4:2:0,
	// what every encoder here takes and every decoder here makes.
	PixelFormatI420 = "yuv420p"
)

// RawVideoCaps returns the caps of raw video of that size (0 by 0: any
// size, see the package documentation) in pixel format pix.
func RawVideoCaps(width, height int, pix string) element.Caps {
	return element.Caps{Kind: element.KindVideo, Format: element.FormatRaw, Width: width, Height: height, PixelFormat: pix}
}

// RawAudioCaps returns the caps of raw audio at rate samples per second
// with channels channels in sample format sf ("s16", "flt", "fltp").
func RawAudioCaps(rate int, channels int, sf string) element.Caps {
	return element.Caps{Kind: element.KindAudio, Format: element.FormatRaw, ClockRate: uint32(rate), Channels: uint16(channels), SampleFormat: sf}
}

// NewFrameBuffer returns a reference-counted buffer carrying f with the
// given times and flags. The buffer takes over the caller's reference to f
// (Ref first to keep one) and drops it when its own last reference goes;
// the caller holds the buffer's first reference: Push it, then Unref it.
func NewFrameBuffer(f *Frame, pts, duration time.Duration, flags element.Flags) *element.Buffer {
	b := element.NewBuffer(releaseFrame)
	b.Frame, b.PTS, b.Duration, b.Flags = f, pts, duration, flags
	return b
}

func releaseFrame(b *element.Buffer) {
	if f, ok := b.Frame.(*Frame); ok {
		f.Unref()
	}
	b.Frame = nil
}

// bufferFrame returns the frame a raw buffer carries.
func bufferFrame(b *element.Buffer) (*Frame, error) {
	f, ok := b.Frame.(*Frame)
	if !ok || f == nil {
		return nil, fmt.Errorf("codec: raw buffer carries %T, not a *codec.Frame", b.Frame)
	}
	return f, nil
}

// pixelFormat returns FFmpeg's pixel format of that name.
func pixelFormat(name string) (astiav.PixelFormat, error) {
	if name == "" {
		name = PixelFormatI420
	}
	pf := astiav.FindPixelFormatByName(name)
	if pf == astiav.PixelFormatNone {
		return pf, fmt.Errorf("codec: unknown pixel format %q", name)
	}
	return pf, nil
}

// sampleFormats maps the sample format names caps use to FFmpeg's.
var sampleFormats = map[string]astiav.SampleFormat{
	"u8": astiav.SampleFormatU8, "u8p": astiav.SampleFormatU8P,
	"s16": astiav.SampleFormatS16, "s16p": astiav.SampleFormatS16P,
	"s32": astiav.SampleFormatS32, "s32p": astiav.SampleFormatS32P,
	"flt": astiav.SampleFormatFlt, "fltp": astiav.SampleFormatFltp,
	"dbl": astiav.SampleFormatDbl, "dblp": astiav.SampleFormatDblp,
}

// audioFormat returns the FFmpeg audio format raw audio caps describe.
func audioFormat(c element.Caps) (ffmpeg.AudioFormat, error) {
	sf, ok := sampleFormats[c.SampleFormat]
	if !ok || c.ClockRate == 0 || c.Channels == 0 {
		return ffmpeg.AudioFormat{}, fmt.Errorf("codec: raw audio caps %v need a rate, channels and a known sample format", c)
	}
	return ffmpeg.AudioFormat{SampleRate: int(c.ClockRate), SampleFormat: sf, Channels: int(c.Channels)}, nil
}

// audioCaps returns the raw caps of an FFmpeg audio format.
func audioCaps(a ffmpeg.AudioFormat) element.Caps {
	return RawAudioCaps(a.SampleRate, a.Channels, a.SampleFormat.Name())
}

// videoCaps returns the raw caps of an FFmpeg video format.
func videoCaps(v ffmpeg.VideoFormat) element.Caps {
	return RawVideoCaps(v.Width, v.Height, v.PixelFormat.Name())
}

// ticksToDuration converts ticks of a clock of rate Hz to a duration,
// without overflowing for streams of any length.
func ticksToDuration(t int64, rate int) time.Duration {
	r := int64(rate)
	return time.Duration(t/r)*time.Second + time.Duration(t%r*int64(time.Second)/r)
}

// fitVideo returns the video format an element whose src pad's caps are
// out should make from frames of format have: out's size and pixel format
// where it names them; where it leaves the size open (0 by 0), the size
// the first sink fed that does not take have's size asks for, else have's.
func fitVideo(src *element.Pad, out element.Caps, outPix astiav.PixelFormat, have ffmpeg.VideoFormat) ffmpeg.VideoFormat {
	want := ffmpeg.VideoFormat{Width: out.Width, Height: out.Height, PixelFormat: outPix}
	if want.Width > 0 && want.Height > 0 {
		return want
	}
	want.Width, want.Height = have.Width, have.Height
	actual := RawVideoCaps(have.Width, have.Height, out.PixelFormat)
	for _, s := range src.Sinks() {
		t := s.Templates()
		if _, ok := t.Accepts(actual); ok {
			continue
		}
		if c, ok := t.Accepts(out); ok && c.Width > 0 && c.Height > 0 {
			want.Width, want.Height = c.Width, c.Height
			break
		}
	}
	return want
}

// heavySinkOptions returns the pad options of a heavy element's sink pad:
// a queue of its own (WithQueue's, or size and Live) unless WithInline.
func (c config) heavySinkOptions(events element.EventFunc, size int) []element.PadOption {
	opts := []element.PadOption{element.WithEventHandler(events)}
	switch {
	case c.inline:
		return append(opts, element.Inline())
	case c.queued:
		return append(opts, element.WithQueue(c.queueSize, c.queuePolicy))
	}
	return append(opts, element.WithQueue(size, element.Live))
}
