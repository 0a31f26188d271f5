package ffmpeg

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/asticode/go-astiav"
)

// EncoderConfig says what to encode and how. Zero fields take the defaults
// stated beside them, chosen for real time.
type EncoderConfig struct {
	// Codec is a short name (vp8, vp9, h264, av1, opus, pcmu, pcma, g722,
	// aac) or an FFmpeg encoder name (libvpx, libvpx-vp9, libx264,
	// libaom-av1, libsvtav1, libopus, pcm_mulaw, pcm_alaw, g722, aac).
	Codec string

	// Width and Height are the video frame size. Frames are yuv420p.
	Width, Height int
	// FrameRate is the nominal frame rate; 30/1 by default.
	FrameRate astiav.Rational
	// KeyframeInterval is the longest distance between keyframes in
	// frames; 3 s worth of FrameRate by default. RequestKeyframe makes
	// one sooner.
	KeyframeInterval int
	// Profile is the H.264 profile for libx264: "baseline" (which x264
	// makes constrained baseline, what browsers take; also spelt
	// "constrained_baseline"), "main" or "high". Other encoders take
	// theirs through Options.
	Profile string
	// Preset is libx264's preset; "veryfast" by default ("ultrafast" is
	// about twice as fast for a lower quality). tune=zerolatency always.
	Preset string
	// Speed is cpu-used for libvpx (default 8) and libaom-av1 (default 8),
	// preset for libsvtav1 (default 12).
	Speed int

	// SampleRate and Channels describe audio input: 48000 Hz stereo for
	// Opus and AAC, 8000 Hz mono for G.711, 16000 Hz mono for G.722 by
	// default.
	SampleRate, Channels int
	// SampleFormat is the input sample format's FFmpeg name ("s16",
	// "flt"); the encoder's first supported one by default.
	SampleFormat string

	// BitRate is the target in bits per second (not for G.711 and G.722).
	// Video encoders run in constant-bit-rate mode (x264 with VBV maxrate
	// and bufsize, libvpx CBR) so that SetBitrate can steer them.
	BitRate int64
	// Threads is the number of encoder threads; 0 means 1.
	Threads int
	// TimeBase is the unit of frame and packet timestamps: 1/90000 for
	// video and 1/SampleRate for audio by default.
	TimeBase astiav.Rational
	// GlobalHeader puts the codec headers in ExtraData (for MP4 and
	// Matroska) instead of in the stream.
	GlobalHeader bool
	// Options are private options (deadline, cpu-used, x264-params,
	// application, ...), passed in the dictionary given to Open after the
	// defaults above, which they override. A key the encoder leaves
	// unused fails NewEncoder with ErrUnknownOption.
	Options map[string]string
}

// Packet is one encoded packet, handed to the emit callback of Encode.
//
// Ownership: Data aliases the encoder's memory. The callback must not
// retain the Packet or Data after it returns; it copies what it keeps.
type Packet struct {
	Data []byte
	// PTS, DTS and Duration are in the encoder's time base.
	PTS, DTS, Duration int64
	Keyframe           bool
}

// Encoder encodes frames into packets. Encode, Flush and Close belong to
// one owner goroutine; RequestKeyframe and SetBitrate may be called from any
// goroutine and take effect at the next Encode.
type Encoder struct {
	cfg   EncoderConfig
	codec *astiav.Codec
	name  string
	cc    *astiav.CodecContext
	pkt   *astiav.Packet
	in    *astiav.Frame // reference to the frame being sent, ours to mark
	out   Packet
	video VideoFormat
	audio AudioFormat
	tb    astiav.Rational

	// gop is the keyframe interval in frames, sinceKey the packets since
	// the last keyframe.
	gop, sinceKey int
	// bitrate is what the open encoder targets; runtimeRate says whether
	// it follows a change without reopening (x264, when opened with a bit
	// rate: in CRF mode it does not).
	bitrate     int64
	runtimeRate bool
	flushed     bool

	keyRequested   atomic.Bool
	pendingBitrate atomic.Int64
}

// NewEncoder opens an encoder.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	if err := bindingOK(); err != nil {
		return nil, err
	}
	codec, err := findCodec(cfg.Codec, true)
	if err != nil {
		return nil, err
	}
	e := &Encoder{cfg: cfg, codec: codec, name: codec.Name(), bitrate: cfg.BitRate}
	e.runtimeRate = e.name == "libx264"
	e.pkt = astiav.AllocPacket()
	live.packets.Add(1)
	e.in = astiav.AllocFrame()
	live.frames.Add(1)
	if err := e.open(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Encoder) fail(op string, err error) error { return wrap(e.name, "encoder", op, err) }

// open allocates and opens the codec context for e.cfg at e.bitrate; on
// failure e.cc is nil.
func (e *Encoder) open() (err error) {
	cfg := e.cfg
	cc := astiav.AllocCodecContext(e.codec)
	if cc == nil {
		return e.fail("alloc context", astiav.ErrUnknown)
	}
	live.codecs.Add(1)
	e.cc = cc
	defer func() {
		if err != nil {
			e.freeContext()
		}
	}()
	threads := max(cfg.Threads, 1)
	cc.SetThreadCount(threads)
	cc.SetThreadType(astiav.ThreadTypeSlice)
	if cfg.GlobalHeader {
		cc.SetFlags(cc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	}
	if cfg.Profile != "" && e.name != "libx264" {
		return e.fail("open", fmt.Errorf("%w: Profile is for libx264; use Options", ErrUnknownOption))
	}
	var opts [][2]string
	switch cc.MediaType() {
	case astiav.MediaTypeVideo:
		if cfg.Width <= 0 || cfg.Height <= 0 {
			return e.fail("open", fmt.Errorf("%w: video size %dx%d", ErrFormat, cfg.Width, cfg.Height))
		}
		e.video = VideoFormat{Width: cfg.Width, Height: cfg.Height, PixelFormat: astiav.PixelFormatYuv420P}
		fr := cfg.FrameRate
		if fr.Num() <= 0 || fr.Den() <= 0 {
			fr = astiav.NewRational(30, 1)
		}
		e.gop = cfg.KeyframeInterval
		if e.gop <= 0 {
			e.gop = max(1, int(3*fr.Float64()+0.5))
		}
		e.tb = cfg.TimeBase
		if e.tb.Num() <= 0 || e.tb.Den() <= 0 {
			e.tb = astiav.NewRational(1, 90000)
		}
		cc.SetWidth(cfg.Width)
		cc.SetHeight(cfg.Height)
		cc.SetPixelFormat(e.video.PixelFormat)
		cc.SetFramerate(fr)
		cc.SetTimeBase(e.tb)
		cc.SetGopSize(e.gop)
		cc.SetSampleAspectRatio(astiav.NewRational(1, 1))
		opts = e.videoOptions()
	case astiav.MediaTypeAudio:
		rate, channels := audioEncoderDefaults(e.name, cfg.SampleRate, cfg.Channels)
		sf := astiav.SampleFormatNone
		if cfg.SampleFormat != "" {
			for _, f := range e.codec.SampleFormats() {
				if f.Name() == cfg.SampleFormat {
					sf = f
				}
			}
			if sf == astiav.SampleFormatNone {
				return e.fail("open", fmt.Errorf("%w: sample format %q", ErrFormat, cfg.SampleFormat))
			}
		} else if fs := e.codec.SampleFormats(); len(fs) > 0 {
			sf = fs[0]
		}
		e.audio = AudioFormat{SampleRate: rate, SampleFormat: sf, Channels: channels}
		if !e.audio.valid() {
			return e.fail("open", fmt.Errorf("%w: audio %v", ErrFormat, e.audio))
		}
		e.tb = astiav.NewRational(1, rate)
		if cfg.TimeBase.Num() > 0 && cfg.TimeBase.Den() > 0 {
			e.tb = cfg.TimeBase
		}
		cc.SetSampleRate(rate)
		cc.SetSampleFormat(sf)
		if err := codecSetChannels(cc, channels); err != nil {
			return e.fail("set channels", err)
		}
		cc.SetTimeBase(e.tb)
		if e.bitrate > 0 {
			cc.SetBitRate(e.bitrate)
		}
	default:
		return e.fail("open", fmt.Errorf("%w: neither audio nor video", ErrFormat))
	}
	dict, err := dictionary(mergeOptions(opts, cfg.Options))
	if err != nil {
		return e.fail("options", err)
	}
	defer dict.Free()
	if err := cc.Open(e.codec, dict); err != nil {
		return e.fail("open", err)
	}
	if keys := leftover(dict); len(keys) > 0 {
		return e.fail("open", fmt.Errorf("%w: %v", ErrUnknownOption, keys))
	}
	e.flushed = false
	e.sinceKey = 0
	return nil
}

// videoOptions sets the rate control fields for e.bitrate and returns the
// real-time private options of the codec.
func (e *Encoder) videoOptions() [][2]string {
	cfg, cc := e.cfg, e.cc
	if e.bitrate > 0 {
		// One second of buffer: x264's VBV, libvpx's rc_buf_sz. Equal
		// min and max rates put libvpx and libaom in CBR mode.
		switch e.name {
		case "libx264":
			codecSetRates(cc, e.bitrate, 0, e.bitrate, int(e.bitrate))
		case "libvpx", "libvpx-vp9", "libaom-av1":
			codecSetRates(cc, e.bitrate, e.bitrate, e.bitrate, int(e.bitrate))
		default:
			cc.SetBitRate(e.bitrate)
		}
	}
	speed := func(def int) string {
		if cfg.Speed != 0 {
			return strconv.Itoa(cfg.Speed)
		}
		return strconv.Itoa(def)
	}
	switch e.name {
	case "libx264":
		preset := cfg.Preset
		if preset == "" {
			preset = "veryfast"
		}
		opts := [][2]string{{"preset", preset}, {"tune", "zerolatency"}, {"forced-idr", "1"}}
		switch cfg.Profile {
		case "":
		case "constrained_baseline", "constrained-baseline":
			// x264's baseline is constrained baseline: no FMO/ASO.
			opts = append(opts, [2]string{"profile", "baseline"})
		default:
			opts = append(opts, [2]string{"profile", cfg.Profile})
		}
		return opts
	case "libvpx", "libvpx-vp9":
		opts := [][2]string{{"deadline", "realtime"}, {"cpu-used", speed(8)}, {"lag-in-frames", "0"}}
		if e.name == "libvpx" {
			opts = append(opts, [2]string{"auto-alt-ref", "0"})
		}
		return opts
	case "libaom-av1":
		return [][2]string{{"usage", "realtime"}, {"cpu-used", speed(8)}, {"lag-in-frames", "0"}}
	case "libsvtav1":
		return [][2]string{{"preset", speed(12)}}
	}
	return nil
}

// audioEncoderDefaults fills in the usual rate and channels of a codec.
func audioEncoderDefaults(codec string, rate, channels int) (int, int) {
	r, c := 48000, 2
	switch codec {
	case "pcm_mulaw", "pcm_alaw":
		r, c = 8000, 1
	case "g722":
		r, c = 16000, 1
	}
	if rate == 0 {
		rate = r
	}
	if channels == 0 {
		channels = c
	}
	return rate, channels
}

// Name returns FFmpeg's name of the encoder ("libx264").
func (e *Encoder) Name() string { return e.name }

// VideoFormat returns the frame format Encode takes (zero for audio).
func (e *Encoder) VideoFormat() VideoFormat { return e.video }

// AudioFormat returns the sample format Encode takes (zero for video).
func (e *Encoder) AudioFormat() AudioFormat { return e.audio }

// FrameSize returns the number of samples per channel each audio frame
// must have (960 for Opus at 48 kHz, 1024 for AAC), or 0 when any number
// will do. An AudioConverter cuts frames to this size.
func (e *Encoder) FrameSize() int {
	if e.cc == nil {
		return 0
	}
	return e.cc.FrameSize()
}

// TimeBase returns the unit of timestamps.
func (e *Encoder) TimeBase() astiav.Rational { return e.tb }

// KeyframeInterval returns the longest distance between keyframes, in
// frames (video).
func (e *Encoder) KeyframeInterval() int { return e.gop }

// ExtraData returns the codec's global header (with GlobalHeader, or
// Opus's head), or nil.
func (e *Encoder) ExtraData() []byte {
	if e.cc == nil {
		return nil
	}
	return e.cc.ExtraData()
}

// InitialPadding returns the number of priming samples an audio encoder
// puts before the first input sample (Opus' pre-skip, 312 for libopus):
// its first packet's PTS is minus that.
func (e *Encoder) InitialPadding() int {
	if e.cc == nil {
		return 0
	}
	return codecInitialPadding(e.cc)
}

// BitRate returns the target bit rate the encoder runs at now.
func (e *Encoder) BitRate() int64 { return e.bitrate }

// RequestKeyframe makes the next frame encoded a keyframe.
func (e *Encoder) RequestKeyframe() { e.keyRequested.Store(true) }

// SetBitrate changes the target bit rate without restarting the stream.
// libx264 follows at the next frame. libvpx, libaom and SVT-AV1 in FFmpeg
// 5.1 ignore changes at run time, so the encoder is reopened at its next
// keyframe (when the keyframe interval is up or one is requested), which
// then costs nothing extra; audio encoders are reopened at the next frame.
func (e *Encoder) SetBitrate(bps int64) {
	if bps > 0 {
		e.pendingBitrate.Store(bps)
	}
}

// Encode encodes f and calls emit with each packet that comes out, in
// decoding order. f must have the encoder's format (VideoFormat or
// AudioFormat, and FrameSize samples when that is not 0) and a
// presentation timestamp in the encoder's time base, increasing.
//
// f is not modified and may be shared: the encoder sends its own reference
// to f's buffers (FFmpeg may keep it past the call; a FramePool then hands
// out new buffers instead of those). Frames from a decoder keep their
// picture type; it is reset here so that only requested keyframes and the
// keyframe interval make keyframes.
//
// An error from emit stops encoding and is returned as is.
func (e *Encoder) Encode(f *Frame, emit func(*Packet) error) error {
	return e.encode(f, f.av.Pts(), emit)
}

// EncodeAt is Encode with the frame's presentation timestamp given as pts
// (in the encoder's time base) instead of read from f, which is not
// modified: for frames shared read-only whose own timestamp is another
// element's business.
func (e *Encoder) EncodeAt(f *Frame, pts int64, emit func(*Packet) error) error {
	return e.encode(f, pts, emit)
}

func (e *Encoder) encode(f *Frame, pts int64, emit func(*Packet) error) error {
	if e.pkt == nil {
		return e.fail("encode", ErrClosed)
	}
	if e.video.valid() {
		if v := f.Video(); v != e.video {
			return e.fail("encode", fmt.Errorf("%w: frame %v, encoder %v", ErrFormat, v, e.video))
		}
	} else if a := f.Audio(); a != e.audio {
		return e.fail("encode", fmt.Errorf("%w: frame %v, encoder %v", ErrFormat, a, e.audio))
	}
	if err := e.applyBitrate(emit); err != nil {
		return err
	}
	if e.cc == nil || e.flushed {
		if e.cc != nil {
			e.freeContext()
		}
		if err := e.open(); err != nil {
			return err
		}
	}
	if err := frameRef(e.in, f.av); err != nil {
		return e.fail("ref frame", err)
	}
	e.in.SetPts(pts)
	key := e.keyRequested.Swap(false)
	if e.video.valid() {
		if key {
			e.in.SetPictureType(astiav.PictureTypeI)
		} else {
			e.in.SetPictureType(astiav.PictureTypeNone)
		}
		e.in.SetKeyFrame(key)
	}
	err := e.cc.SendFrame(e.in)
	if errors.Is(err, astiav.ErrEagain) {
		if err := e.drain(emit); err != nil {
			frameUnref(e.in)
			return err
		}
		err = e.cc.SendFrame(e.in)
	}
	frameUnref(e.in)
	if err != nil {
		if key {
			e.keyRequested.Store(true)
		}
		return e.fail("send frame", err)
	}
	return e.drain(emit)
}

// applyBitrate puts a pending bit rate into effect when it can.
func (e *Encoder) applyBitrate(emit func(*Packet) error) error {
	bps := e.pendingBitrate.Load()
	if bps == 0 || e.cc == nil {
		return nil
	}
	if bps == e.bitrate {
		e.pendingBitrate.CompareAndSwap(bps, 0)
		return nil
	}
	if e.runtimeRate && e.bitrate > 0 {
		// x264 reconfigures when it sees bit_rate or the VBV fields
		// change before a frame (they were set at open).
		_, _, _, bufsize := codecRates(e.cc)
		if e.bitrate > 0 {
			bufsize = int(int64(bufsize) * bps / e.bitrate)
		}
		codecSetRates(e.cc, bps, 0, bps, bufsize)
		e.bitrate = bps
		e.pendingBitrate.CompareAndSwap(bps, 0)
		return nil
	}
	if e.video.valid() && !e.keyRequested.Load() && e.sinceKey+1 < e.gop {
		return nil // wait for the next keyframe
	}
	if !e.flushed {
		if err := e.Flush(emit); err != nil {
			return err
		}
	}
	e.freeContext()
	e.bitrate = bps
	e.pendingBitrate.CompareAndSwap(bps, 0)
	if err := e.open(); err != nil {
		return err
	}
	// A new encoder starts with a keyframe anyway.
	e.keyRequested.Store(false)
	return nil
}

func (e *Encoder) drain(emit func(*Packet) error) error {
	for {
		err := e.cc.ReceivePacket(e.pkt)
		if err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			return e.fail("receive packet", err)
		}
		e.out = Packet{
			Data:     packetBytes(e.pkt),
			PTS:      e.pkt.Pts(),
			DTS:      e.pkt.Dts(),
			Duration: e.pkt.Duration(),
			Keyframe: e.pkt.Flags().Has(astiav.PacketFlagKey),
		}
		if e.out.Keyframe {
			e.sinceKey = 0
		} else {
			e.sinceKey++
		}
		if err := e.emitPacket(emit); err != nil {
			return err
		}
	}
}

func (e *Encoder) emitPacket(emit func(*Packet) error) error {
	defer func() {
		e.out = Packet{}
		e.pkt.Unref()
	}()
	if emit == nil {
		return nil
	}
	return emit(&e.out)
}

// Flush signals the end of the stream and emits the packets the encoder
// still holds. A later Encode starts a new stream (with a keyframe).
func (e *Encoder) Flush(emit func(*Packet) error) error {
	if e.pkt == nil {
		return e.fail("flush", ErrClosed)
	}
	if e.cc == nil || e.flushed {
		return nil
	}
	e.flushed = true
	if err := e.cc.SendFrame(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return e.fail("flush", err)
	}
	return e.drain(emit)
}

func (e *Encoder) freeContext() {
	e.cc.Free()
	e.cc = nil
	live.codecs.Add(-1)
}

// Close frees the encoder without flushing it. Close is idempotent.
func (e *Encoder) Close() error {
	if e.cc != nil {
		e.freeContext()
	}
	if e.pkt != nil {
		e.pkt.Free()
		e.pkt = nil
		live.packets.Add(-1)
	}
	if e.in != nil {
		e.in.Free()
		e.in = nil
		live.frames.Add(-1)
	}
	return nil
}
