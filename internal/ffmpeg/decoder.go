package ffmpeg

import (
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"
)

// DecoderConfig says what to decode.
type DecoderConfig struct {
	// Codec is a short name (vp8, vp9, h264, av1, opus, pcmu, pcma, g722,
	// aac) or an FFmpeg decoder name (libdav1d, pcm_mulaw, ...).
	Codec string
	// CodecID names the codec by FFmpeg's ID instead (a demuxer's stream
	// has one), when Codec is empty.
	CodecID astiav.CodecID
	// Threads is the number of FFmpeg threads; 0 means 1. With many
	// sessions on few cores keep 1: FFmpeg's threads are invisible to the
	// Go scheduler.
	Threads int
	// FrameThreads allows frame threading when Threads > 1; it adds a
	// frame of latency per thread. By default threads split slices.
	FrameThreads bool
	// SampleRate and Channels describe audio streams that do not carry
	// them (G.711, G.722, Opus without extradata). 0 picks the codec's
	// usual value: 8000 Hz mono for G.711, 16000 Hz mono for G.722,
	// 48000 Hz stereo for Opus.
	SampleRate, Channels int
	// ExtraData is the codec's global header (AAC AudioSpecificConfig,
	// Opus head, avcC), if any.
	ExtraData []byte
	// TimeBase is the unit of the timestamps given to Decode and found in
	// the frames: 1/90000 for video and 1/SampleRate for audio by default.
	TimeBase astiav.Rational
	// Options are private decoder options; a key the decoder does not
	// know fails NewDecoder with ErrUnknownOption.
	Options map[string]string
}

// Decoder decodes packets into frames. It is not safe for concurrent use:
// one goroutine owns it.
type Decoder struct {
	name  string
	cc    *astiav.CodecContext
	pkt   *astiav.Packet
	pool  *FramePool
	owned bool // pool is ours to close
	tb    astiav.Rational
	video bool
}

// NewDecoder opens a decoder. Frames come from pool, or from a pool of the
// decoder's own if pool is nil.
func NewDecoder(cfg DecoderConfig, pool *FramePool) (*Decoder, error) {
	if err := bindingOK(); err != nil {
		return nil, err
	}
	var codec *astiav.Codec
	if cfg.Codec == "" && cfg.CodecID != astiav.CodecIDNone {
		if codec = astiav.FindDecoder(cfg.CodecID); codec == nil {
			return nil, &Error{Component: cfg.CodecID.String(), Role: "decoder", Op: "find", Err: ErrUnknownCodec}
		}
	} else {
		var err error
		if codec, err = findCodec(cfg.Codec, false); err != nil {
			return nil, err
		}
	}
	d := &Decoder{name: codec.Name(), pool: pool}
	if d.pool == nil {
		d.pool, d.owned = NewFramePool(), true
	}
	fail := func(op string, err error) (*Decoder, error) {
		d.Close()
		return nil, wrap(d.name, "decoder", op, err)
	}
	d.cc = astiav.AllocCodecContext(codec)
	if d.cc == nil {
		return fail("alloc context", astiav.ErrUnknown)
	}
	live.codecs.Add(1)
	d.pkt = astiav.AllocPacket()
	live.packets.Add(1)

	threads := max(cfg.Threads, 1)
	d.cc.SetThreadCount(threads)
	d.cc.SetThreadType(astiav.ThreadTypeSlice)
	if threads > 1 && cfg.FrameThreads {
		d.cc.SetThreadType(astiav.ThreadTypeFrame)
	}
	d.tb = cfg.TimeBase
	switch d.cc.MediaType() {
	case astiav.MediaTypeAudio:
		rate, channels := audioDefaults(codec.Name(), cfg.SampleRate, cfg.Channels)
		if rate > 0 {
			d.cc.SetSampleRate(rate)
		}
		if channels > 0 {
			if err := codecSetChannels(d.cc, channels); err != nil {
				return fail("set channels", err)
			}
		}
		if d.tb.Num() <= 0 && rate > 0 {
			d.tb = astiav.NewRational(1, rate)
		}
	case astiav.MediaTypeVideo:
		d.video = true
	}
	if d.tb.Num() <= 0 || d.tb.Den() <= 0 {
		d.tb = astiav.NewRational(1, 90000)
	}
	d.cc.SetTimeBase(d.tb)
	codecSetPktTimebase(d.cc, d.tb)
	if len(cfg.ExtraData) > 0 {
		if err := d.cc.SetExtraData(cfg.ExtraData); err != nil {
			return fail("set extradata", err)
		}
	}
	dict, err := dictionary(mergeOptions(nil, cfg.Options))
	if err != nil {
		return fail("options", err)
	}
	defer dict.Free()
	if err := d.cc.Open(codec, dict); err != nil {
		return fail("open", err)
	}
	if keys := leftover(dict); len(keys) > 0 {
		return fail("open", fmt.Errorf("%w: %v", ErrUnknownOption, keys))
	}
	return d, nil
}

// audioDefaults fills in what G.711, G.722 and Opus streams leave unsaid.
func audioDefaults(codec string, rate, channels int) (int, int) {
	def := func(r, c int) (int, int) {
		if rate == 0 {
			rate = r
		}
		if channels == 0 {
			channels = c
		}
		return rate, channels
	}
	switch codec {
	case "pcm_mulaw", "pcm_alaw":
		return def(8000, 1)
	case "g722":
		return def(16000, 1)
	case "opus", "libopus":
		return def(48000, 2)
	}
	return rate, channels
}

// Name returns FFmpeg's name of the decoder ("vp8", "libdav1d").
func (d *Decoder) Name() string { return d.name }

// TimeBase returns the unit of packet and frame timestamps.
func (d *Decoder) TimeBase() astiav.Rational { return d.tb }

// Decode decodes one packet (a whole access unit or audio packet) with its
// presentation timestamp, and calls emit with each frame it completes, in
// order. data is copied (with FFmpeg's input padding) and not retained.
//
// emit may use the frame only until it returns, unless it calls Ref (and
// later Unref). An error from emit stops decoding and is returned as is.
// Errors from FFmpeg name the decoder and the operation; a corrupt packet is
// such an error, after which decoding goes on with the next packet (a
// caller of video usually waits for a keyframe). An empty packet does
// nothing.
func (d *Decoder) Decode(data []byte, pts int64, keyframe bool, emit func(*Frame) error) error {
	if d.cc == nil {
		return wrap(d.name, "decoder", "decode", ErrClosed)
	}
	if len(data) == 0 {
		return nil
	}
	if err := packetFill(d.pkt, data); err != nil {
		return wrap(d.name, "decoder", "copy packet", err)
	}
	d.pkt.SetPts(pts)
	if keyframe {
		d.pkt.SetFlags(astiav.NewPacketFlags(astiav.PacketFlagKey))
	}
	err := d.cc.SendPacket(d.pkt)
	if errors.Is(err, astiav.ErrEagain) {
		// Output is waiting (frame threads): read it, then send again.
		if err := d.drain(emit); err != nil {
			d.pkt.Unref()
			return err
		}
		err = d.cc.SendPacket(d.pkt)
	}
	d.pkt.Unref()
	if err != nil {
		return wrap(d.name, "decoder", "send packet", err)
	}
	return d.drain(emit)
}

// Flush signals the end of the stream, emits the frames the decoder still
// holds, and resets it, ready for a new stream (which must start with a
// keyframe).
func (d *Decoder) Flush(emit func(*Frame) error) error {
	if d.cc == nil {
		return wrap(d.name, "decoder", "flush", ErrClosed)
	}
	if err := d.cc.SendPacket(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return wrap(d.name, "decoder", "flush", err)
	}
	err := d.drain(emit)
	codecFlush(d.cc)
	return err
}

func (d *Decoder) drain(emit func(*Frame) error) error {
	for {
		f, err := d.pool.empty()
		if err != nil {
			return wrap(d.name, "decoder", "get frame", err)
		}
		err = d.cc.ReceiveFrame(f.av)
		if err != nil {
			f.Unref()
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			return wrap(d.name, "decoder", "receive frame", err)
		}
		if err := emitFrame(emit, f); err != nil {
			return err
		}
	}
}

// emitFrame hands f to emit and drops the caller's reference, even if emit
// panics.
func emitFrame(emit func(*Frame) error, f *Frame) error {
	defer f.Unref()
	if emit == nil {
		return nil
	}
	return emit(f)
}

// Close frees the decoder. Frames already emitted and still referenced stay
// valid. Close is idempotent.
func (d *Decoder) Close() error {
	if d.cc != nil {
		d.cc.Free()
		d.cc = nil
		live.codecs.Add(-1)
	}
	if d.pkt != nil {
		d.pkt.Free()
		d.pkt = nil
		live.packets.Add(-1)
	}
	if d.owned && d.pool != nil {
		d.pool.Close()
		d.pool = nil
	}
	return nil
}
