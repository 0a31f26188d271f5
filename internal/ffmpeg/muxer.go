package ffmpeg

// #include "format.h"
import "C"

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asticode/go-astiav"
)

// MuxerConfig says what container a Muxer writes.
type MuxerConfig struct {
	// Format is the container: "webm", "matroska" (or "mkv"), "mp4",
	// "fmp4" (fragmented MP4), or another FFmpeg muxer name.
	Format string
	// Fragmented writes MP4 as a sequence of fragments
	// (movflags=frag_keyframe+empty_moov+default_base_moof): readable while
	// it grows and after a crash, and writable to an output that cannot
	// seek, for which it is chosen by itself.
	Fragmented bool
	// FragmentDuration bounds how much media the container holds in memory
	// before writing it out: the longest MP4 fragment (frag_duration) or
	// Matroska cluster (cluster_time_limit). A process killed mid-file
	// loses about this much. 0 keeps FFmpeg's defaults: a fragment per
	// video keyframe for MP4, clusters of 5 s (1 s when the output cannot
	// seek) for Matroska.
	FragmentDuration time.Duration
	// Options are private muxer options (movflags, cluster_size_limit,
	// live, ...), given to FFmpeg when the header is written after those
	// the fields above make, which they override. A key FFmpeg leaves
	// unused fails the header with ErrUnknownOption.
	Options map[string]string
}

// StreamConfig describes one stream of a Muxer.
type StreamConfig struct {
	// Codec is a short name (vp8, vp9, h264, av1, opus, aac, pcmu, pcma,
	// g722, pcm for s16le) or an FFmpeg codec name.
	Codec string
	// Width and Height are the video size. When zero, they are read from
	// the stream's first keyframe (by decoding it).
	Width, Height int
	// SampleRate and Channels describe audio: 48000 Hz stereo for Opus and
	// AAC, 8000 Hz mono for G.711, 16000 Hz mono for G.722 by default.
	SampleRate, Channels int
	// ExtraData is the codec's global header. When empty the muxer makes
	// it: for H.264 from the SPS and PPS of the first keyframe (packets
	// before it are dropped; trap 4), for Opus an OpusHead, for AAC an
	// AAC-LC AudioSpecificConfig (or the one ADTS headers imply).
	//
	// H.264 packets are Annex B, unless ExtraData is an avcC record (as a
	// demuxer of MP4 gives), and then length-prefixed. AAC packets are raw
	// or ADTS (whose headers are removed).
	ExtraData []byte
	// TimeBase is the unit of the timestamps given to WritePacket: 1/90000
	// for video and 1/SampleRate for audio by default. The muxer rescales
	// them to the container's.
	TimeBase astiav.Rational
}

// ErrNoHeader: a stream's codec header could not be made before the file
// had to start (an H.264 stream whose keyframes carry no SPS and PPS).
var ErrNoHeader = errors.New("ffmpeg: no codec header for a stream")

// maxPending bounds the packets a Muxer holds while it waits for a codec
// header (an H.264 stream's first keyframe): 10 s of 50 audio packets per
// second and 30 video frames per second is 800.
const (
	maxPending      = 1024
	maxPendingBytes = 32 << 20
)

// Muxer writes encoded packets into a container (WebM, Matroska, MP4,
// fragmented MP4) on a file or any io.Writer. It is not safe for
// concurrent use: one goroutine at a time (Bytes excepted).
//
// Streams are added first (AddStream), then packets written
// (WritePacket). The header is written at the first packet once every
// stream can be described (an H.264 stream without ExtraData needs its
// first keyframe); packets written before wait for it, in memory, in
// order. A video stream's packets before its first keyframe are dropped.
// Timestamps are rescaled from each stream's TimeBase to the container's
// and kept increasing per stream. Close writes the trailer and frees
// everything, once.
type Muxer struct {
	cfg    MuxerConfig
	format string
	fc     *astiav.FormatContext
	io     *customIO
	file   *os.File // when CreateMuxer opened it
	pkt    *astiav.Packet
	live   bool // the output cannot seek

	streams      []*muxStream
	header       bool
	pending      []StreamPacket
	pendingBytes int
	err          error
	closed       bool
	closeErr     error

	dropped atomic.Uint64
}

type muxStream struct {
	cfg   StreamConfig
	st    *astiav.Stream
	in    astiav.Rational
	video bool
	// needParams: H.264 or AV1 without a header yet; needSize: video without a
	// size yet; started: a video keyframe passed (earlier packets drop).
	needParams, needSize, started bool
	// aac: AAC, whose ADTS headers are removed; adts: some were.
	aac, adts bool
	// userExtra: ExtraData came from the StreamConfig.
	userExtra bool
	lastDTS   int64
	end       time.Duration
}

// LiveFormatContexts returns the number of muxers and demuxers not yet
// closed.
func LiveFormatContexts() int64 { return live.formats.Load() }

// CreateMuxer creates (or truncates) the file at path and returns a Muxer
// writing to it; Close closes the file.
func CreateMuxer(path string, cfg MuxerConfig) (*Muxer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	m, err := NewMuxer(f, cfg)
	if err != nil {
		f.Close()
		return nil, err
	}
	m.file = f
	return m, nil
}

// NewMuxer returns a Muxer writing to w. When w is also an io.Seeker that
// can seek, the container is finished by seeking back (durations, index,
// MP4's moov at the end); otherwise it is written as a live stream
// (Matroska and WebM live=1, MP4 fragmented). w is not closed by Close.
func NewMuxer(w io.Writer, cfg MuxerConfig) (*Muxer, error) {
	if err := bindingOK(); err != nil {
		return nil, err
	}
	format := strings.ToLower(cfg.Format)
	switch format {
	case "mkv":
		format = "matroska"
	case "fmp4":
		format, cfg.Fragmented = "mp4", true
	}
	m := &Muxer{cfg: cfg, format: format}
	var seeker io.Seeker
	if s, ok := w.(io.Seeker); ok {
		if _, err := s.Seek(0, io.SeekCurrent); err == nil {
			seeker = s
		}
	}
	m.live = seeker == nil
	if m.live && m.isMP4() {
		m.cfg.Fragmented = true
	}
	if astiav.FindOutputFormat(format) == nil {
		return nil, m.fail("alloc", fmt.Errorf("%w: no container %q", ErrFormat, cfg.Format))
	}
	fc, err := astiav.AllocOutputFormatContext(nil, format, "")
	if err != nil || fc == nil {
		if err == nil {
			err = astiav.ErrUnknown
		}
		return nil, m.fail("alloc", fmt.Errorf("%w: container %q: %w", ErrFormat, cfg.Format, err))
	}
	m.fc = fc
	live.formats.Add(1)
	if m.io, err = newCustomIO(nil, w, seeker); err != nil {
		m.free()
		return nil, err
	}
	C.medley_format_setup(cFormat(fc), m.io.pb, nil)
	m.pkt = astiav.AllocPacket()
	live.packets.Add(1)
	return m, nil
}

func (m *Muxer) fail(op string, err error) error { return wrap(m.format, "muxer", op, err) }

func (m *Muxer) isMP4() bool {
	switch m.format {
	case "mp4", "mov", "ismv", "ipod":
		return true
	}
	return false
}

func (m *Muxer) isMatroska() bool { return m.format == "matroska" || m.format == "webm" }

// AddStream adds a stream and returns its index, for StreamPacket.Stream.
// Streams are added before the first WritePacket.
func (m *Muxer) AddStream(sc StreamConfig) (int, error) {
	if m.closed {
		return 0, m.fail("add stream", ErrClosed)
	}
	if m.header || len(m.pending) > 0 {
		return 0, m.fail("add stream", errors.New("streams must be added before the first packet"))
	}
	id, ok := codecID(sc.Codec)
	if !ok {
		return 0, &Error{Component: sc.Codec, Role: "muxer stream", Op: "find", Err: ErrUnknownCodec}
	}
	st := m.fc.NewStream(nil)
	if st == nil {
		return 0, m.fail("new stream", astiav.ErrUnknown)
	}
	s := &muxStream{cfg: sc, st: st, lastDTS: NoTimestamp, userExtra: len(sc.ExtraData) > 0}
	par := st.CodecParameters()
	par.SetCodecID(id)
	var hint astiav.Rational
	switch mt := id.MediaType(); mt {
	case astiav.MediaTypeVideo:
		s.video = true
		par.SetCodecType(mt)
		par.SetWidth(sc.Width)
		par.SetHeight(sc.Height)
		par.SetPixelFormat(astiav.PixelFormatYuv420P)
		par.SetSampleAspectRatio(astiav.NewRational(1, 1))
		s.needSize = sc.Width <= 0 || sc.Height <= 0
		hint = astiav.NewRational(1, 90000)
		if (id == astiav.CodecIDH264 || id == codecIDAV1) && len(sc.ExtraData) == 0 {
			s.needParams = true
		}
	case astiav.MediaTypeAudio:
		par.SetCodecType(mt)
		rate, channels := sc.SampleRate, sc.Channels
		switch id {
		case astiav.CodecIDOpus:
			rate = 48000 // Opus always decodes at 48 kHz
			if channels == 0 {
				channels = 2
			}
		case astiav.CodecIDPcmMulaw, astiav.CodecIDPcmAlaw:
			rate, channels = orInt(rate, 8000), orInt(channels, 1)
		case astiav.CodecIDAdpcmG722:
			rate, channels = orInt(rate, 16000), orInt(channels, 1)
		default:
			rate, channels = orInt(rate, 48000), orInt(channels, 2)
		}
		if err := parSetChannels(par, channels); err != nil {
			return 0, m.fail("set channels", err)
		}
		par.SetSampleRate(rate)
		s.cfg.SampleRate, s.cfg.Channels = rate, channels
		hint = astiav.NewRational(1, rate)
		if len(sc.ExtraData) == 0 {
			switch id {
			case astiav.CodecIDOpus:
				s.cfg.ExtraData = OpusHead(channels, 0)
			case astiav.CodecIDAac:
				s.cfg.ExtraData = AACConfig(rate, channels)
			}
		}
		s.aac = id == astiav.CodecIDAac
	default:
		return 0, m.fail("add stream", fmt.Errorf("%w: %s is neither audio nor video", ErrFormat, sc.Codec))
	}
	if len(s.cfg.ExtraData) > 0 {
		if err := par.SetExtraData(s.cfg.ExtraData); err != nil {
			return 0, m.fail("set extradata", err)
		}
	}
	st.SetTimeBase(hint)
	s.in = sc.TimeBase
	if s.in.Num() <= 0 || s.in.Den() <= 0 {
		s.in = hint
	}
	m.streams = append(m.streams, s)
	return len(m.streams) - 1, nil
}

func orInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// WritePacket writes one packet. Its Data is copied. Packets of each
// stream come in decoding order; across streams, in roughly increasing
// time (FFmpeg interleaves them). A failure to write is returned by this
// and every later call, and by Close.
func (m *Muxer) WritePacket(p *StreamPacket) error {
	if m.closed {
		return m.fail("write", ErrClosed)
	}
	if m.err != nil {
		return m.err
	}
	if p.Stream < 0 || p.Stream >= len(m.streams) {
		return m.fail("write", fmt.Errorf("no stream %d", p.Stream))
	}
	s := m.streams[p.Stream]
	data := p.Data
	if s.video && !s.started {
		if !p.Keyframe {
			m.dropped.Add(1)
			return nil
		}
		s.started = true
	}
	if s.aac {
		if n, asc, ok := adtsHeader(data); ok {
			data = data[n:]
			if !m.header && !s.adts && !s.userExtra {
				if err := s.st.CodecParameters().SetExtraData(asc); err != nil {
					return m.fail("set extradata", err)
				}
			}
			s.adts = true
		}
	}
	if m.header {
		return m.write(s, p.Stream, data, p.PTS, p.DTS, p.Duration, p.Keyframe)
	}
	if s.needParams {
		var ps []byte
		if s.st.CodecParameters().CodecID() == astiav.CodecIDH264 {
			ps = h264ParameterSets(data)
		} else {
			ps = av1SequenceHeader(data)
		}
		if ps == nil {
			// A keyframe without its codec header: wait for one with it.
			s.started = false
			m.dropped.Add(1)
			return nil
		}
		if err := s.st.CodecParameters().SetExtraData(ps); err != nil {
			return m.fail("set extradata", err)
		}
		s.needParams = false
	}
	if s.needSize {
		m.probeSize(s, data)
	}
	if len(m.pending) >= maxPending || m.pendingBytes+len(data) > maxPendingBytes {
		return m.fail("write", fmt.Errorf("%w: %d packets waiting", ErrNoHeader, len(m.pending)))
	}
	q := *p
	q.Data = append([]byte(nil), data...)
	m.pending = append(m.pending, q)
	m.pendingBytes += len(data)
	if !m.ready() {
		return nil
	}
	return m.writeHeader()
}

// ready reports whether every stream can be described.
func (m *Muxer) ready() bool {
	for _, s := range m.streams {
		if s.needParams || s.needSize {
			return false
		}
	}
	return true
}

// probeSize reads a video stream's size from a keyframe by decoding it.
func (m *Muxer) probeSize(s *muxStream, keyframe []byte) {
	s.needSize = false
	par := s.st.CodecParameters()
	d, err := NewDecoder(DecoderConfig{Codec: CodecName(par.CodecID()), ExtraData: par.ExtraData()}, nil)
	if err != nil {
		return
	}
	defer d.Close()
	var v VideoFormat
	grab := func(f *Frame) error {
		if !v.valid() {
			v = f.Video()
		}
		return nil
	}
	if d.Decode(keyframe, 0, true, grab) == nil && !v.valid() {
		_ = d.Flush(grab)
	}
	if v.valid() {
		par.SetWidth(v.Width)
		par.SetHeight(v.Height)
	}
}

// writeHeader writes the container's header and the packets that waited
// for it.
func (m *Muxer) writeHeader() error {
	var opts [][2]string
	if m.isMP4() && m.cfg.Fragmented {
		opts = append(opts, [2]string{"movflags", "frag_keyframe+empty_moov+default_base_moof"})
	}
	if d := m.cfg.FragmentDuration; d > 0 {
		switch {
		case m.isMP4() && m.cfg.Fragmented:
			opts = append(opts, [2]string{"frag_duration", strconv.FormatInt(d.Microseconds(), 10)})
		case m.isMatroska():
			opts = append(opts, [2]string{"cluster_time_limit", strconv.FormatInt(d.Milliseconds(), 10)})
		}
	}
	if m.live && m.isMatroska() {
		opts = append(opts, [2]string{"live", "1"})
	}
	dict, err := dictionary(mergeOptions(opts, m.cfg.Options))
	if err != nil {
		m.err = m.fail("options", err)
		return m.err
	}
	defer dict.Free()
	if err := m.fc.WriteHeader(dict); err != nil {
		m.err = m.ioFail("write header", err)
		return m.err
	}
	if keys := leftover(dict); len(keys) > 0 {
		m.err = m.fail("write header", fmt.Errorf("%w: %v", ErrUnknownOption, keys))
		return m.err
	}
	m.header = true
	pending := m.pending
	m.pending, m.pendingBytes = nil, 0
	for i := range pending {
		p := &pending[i]
		if err := m.write(m.streams[p.Stream], p.Stream, p.Data, p.PTS, p.DTS, p.Duration, p.Keyframe); err != nil {
			return err
		}
	}
	return nil
}

// ioFail prefers the Go error behind an FFmpeg IO failure.
func (m *Muxer) ioFail(op string, err error) error {
	if ioErr := m.io.failure(); ioErr != nil {
		err = fmt.Errorf("%w (%w)", ioErr, err)
	}
	return m.fail(op, err)
}

func (m *Muxer) write(s *muxStream, index int, data []byte, pts, dts, dur int64, key bool) error {
	tb := s.st.TimeBase()
	rescale := func(ts int64) int64 {
		if ts == NoTimestamp {
			return ts
		}
		return astiav.RescaleQ(ts, s.in, tb)
	}
	pts, dts = rescale(pts), rescale(dts)
	if dts == NoTimestamp {
		dts = pts
	}
	if dts != NoTimestamp && s.lastDTS != NoTimestamp && dts <= s.lastDTS {
		// Equal or earlier timestamps (after rescaling to a coarser
		// time base, or from the source) fail most muxers.
		dts = s.lastDTS + 1
		if pts != NoTimestamp && pts < dts {
			pts = dts
		}
	}
	if err := packetFill(m.pkt, data); err != nil {
		return m.fail("copy packet", err)
	}
	m.pkt.SetPts(pts)
	m.pkt.SetDts(dts)
	if dur > 0 {
		m.pkt.SetDuration(astiav.RescaleQ(dur, s.in, tb))
	}
	m.pkt.SetStreamIndex(index)
	if key {
		m.pkt.SetFlags(astiav.NewPacketFlags(astiav.PacketFlagKey))
	}
	s.lastDTS = dts
	if pts != NoTimestamp {
		end := toDuration(pts, tb)
		if dur > 0 {
			end += toDuration(dur, s.in)
		}
		s.end = max(s.end, end)
	}
	// WriteInterleavedFrame takes the packet's reference (trap 7) and
	// leaves it blank; Unref covers its failure.
	err := m.fc.WriteInterleavedFrame(m.pkt)
	m.pkt.Unref()
	if err != nil {
		m.err = m.ioFail("write packet", err)
		return m.err
	}
	return nil
}

// Streams returns the number of streams.
func (m *Muxer) Streams() int { return len(m.streams) }

// Started reports whether the header has been written.
func (m *Muxer) Started() bool { return m.header }

// Bytes returns the size of what has reached the output so far.
func (m *Muxer) Bytes() int64 {
	if m.io == nil {
		return 0
	}
	return m.io.written()
}

// End returns the end time of stream i's latest packet (its PTS plus
// duration, in the stream's own timeline).
func (m *Muxer) End(i int) time.Duration {
	if i < 0 || i >= len(m.streams) {
		return 0
	}
	return m.streams[i].end
}

// Dropped counts the packets dropped: video before its first keyframe,
// H.264 keyframes without parameter sets before the header.
func (m *Muxer) Dropped() uint64 { return m.dropped.Load() }

// Close writes what is pending and the container's trailer, flushes the
// output and frees the muxer (closing the file CreateMuxer opened). It
// returns the first failure of the file's life. Close is idempotent.
func (m *Muxer) Close() error {
	if m.closed {
		return m.closeErr
	}
	m.closed = true
	err := m.err
	if err == nil && !m.header && len(m.streams) > 0 {
		if len(m.pending) > 0 || m.ready() {
			if m.ready() {
				err = m.writeHeader()
			} else {
				err = m.fail("close", fmt.Errorf("%w: no H.264 keyframe with SPS and PPS", ErrNoHeader))
			}
		}
	}
	if m.header && m.fc != nil {
		if terr := m.fc.WriteTrailer(); terr != nil && err == nil {
			err = m.ioFail("write trailer", terr)
		}
	}
	if m.io != nil {
		m.io.flush()
		if ioErr := m.io.failure(); ioErr != nil && err == nil {
			err = m.fail("flush", ioErr)
		}
	}
	m.free()
	if m.file != nil {
		if cerr := m.file.Close(); cerr != nil && err == nil {
			err = cerr
		}
		m.file = nil
	}
	m.closeErr = err
	return err
}

// free releases the FFmpeg objects, each once (trap 6: a FormatContext
// freed twice is a double free).
func (m *Muxer) free() {
	if m.fc != nil {
		C.medley_format_detach_pb(cFormat(m.fc))
		m.fc.Free()
		m.fc = nil
		live.formats.Add(-1)
	}
	if m.io != nil {
		m.io.free()
	}
	if m.pkt != nil {
		m.pkt.Free()
		m.pkt = nil
		live.packets.Add(-1)
	}
	m.pending = nil
}
