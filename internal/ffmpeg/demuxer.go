package ffmpeg

// #include "format.h"
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// DemuxerConfig says how to open an input.
type DemuxerConfig struct {
	// Format forces FFmpeg's demuxer ("matroska", "mov", "rtsp", "h264");
	// empty probes the input.
	Format string
	// ProbeSize and AnalyzeDuration bound how much of the input FFmpeg
	// reads to learn its streams before the first packet is returned
	// (probesize, analyzeduration): FFmpeg's defaults (5 MB, 5 s) suit
	// files; a live source (RTSP, HTTP) wants little, such as 32 KiB and
	// 200 ms, so that it starts without seconds of buffering.
	ProbeSize       int
	AnalyzeDuration time.Duration
	// Options are demuxer and protocol options (rtsp_transport, timeout,
	// fflags, user_agent, ...), after those above, which they override. A
	// key nobody uses fails the open with ErrUnknownOption.
	Options map[string]string
}

// StreamInfo describes one stream of a Demuxer's input.
type StreamInfo struct {
	Index int
	// Type is audio, video, or another FFmpeg media type (subtitles, data).
	Type astiav.MediaType
	// Codec is medley's short name (vp8, h264, opus, aac, pcmu, ...) or
	// FFmpeg's ("hevc", "mp3"); CodecID is FFmpeg's ID.
	Codec   string
	CodecID astiav.CodecID
	// TimeBase is the unit of the stream's packet timestamps.
	TimeBase astiav.Rational
	// Width and Height are the video size; FrameRate its average frame
	// rate, if known.
	Width, Height int
	FrameRate     astiav.Rational
	// SampleRate and Channels describe audio.
	SampleRate, Channels int
	// ExtraData is the codec's global header (avcC, OpusHead,
	// AudioSpecificConfig), if any. It must not be modified.
	ExtraData []byte
	// Start and Duration are the stream's start time and length, 0 when
	// unknown.
	Start, Duration time.Duration
}

// Time converts a timestamp of the stream to a duration.
func (s StreamInfo) Time(ts int64) time.Duration { return toDuration(ts, s.TimeBase) }

// StreamConfig returns the muxer stream configuration that copies this
// stream as it is (remuxing): same codec, header and time base.
func (s StreamInfo) StreamConfig() StreamConfig {
	return StreamConfig{
		Codec: s.Codec, Width: s.Width, Height: s.Height,
		SampleRate: s.SampleRate, Channels: s.Channels,
		ExtraData: s.ExtraData, TimeBase: s.TimeBase,
	}
}

// Demuxer reads the packets of a file, URL (HTTP, RTSP, any protocol FFmpeg
// has) or io.Reader. ReadPacket, Seek and the other reads belong to one
// goroutine; Close may be called from any goroutine, and makes a
// ReadPacket blocked on the network return: the demuxer has an interrupt
// callback (its flag in C memory, read atomically, alive as long as the
// demuxer: trap 11), raised by Close and by the end of the context given to
// Open. A local file's read is not cut short (it never waits: Close waits
// for it instead), and no read starts after either.
type Demuxer struct {
	ctx     context.Context
	stopCtx func() bool

	mu   sync.Mutex // held by ReadPacket and Seek; Close takes it to free
	fc   *astiav.FormatContext
	io   *customIO
	pkt  *astiav.Packet
	imu  sync.Mutex // guards intr and stop against free while interrupt runs
	intr *C.atomic_int
	// stop, in C memory, is raised with interrupted, for every input: a
	// ReadPacketRefs reads no packet more after it (where intr, which
	// only network inputs raise, would cut a file's read short).
	stop *C.atomic_int
	// cps holds the packets of a ReadPacketRefs for FFmpeg (C pointers,
	// in Go memory); under mu.
	cps     []*C.AVPacket
	streams []StreamInfo
	url     string
	// file: a local file (IsFile), which interrupt does not cut; set
	// under imu once open.
	file    bool
	closing bool
	// interrupted: the interrupt flag was raised (by ctx or Close);
	// closeAsked: by Close.
	interrupted, closeAsked atomic.Bool
}

// OpenDemuxer opens url (a path or any URL FFmpeg reads) and reads enough
// of it to know its streams. Cancelling ctx interrupts the open and any
// later read.
func OpenDemuxer(ctx context.Context, url string, cfg DemuxerConfig) (*Demuxer, error) {
	return openDemuxer(ctx, url, nil, cfg)
}

// NewDemuxer opens the input r carries. When r is also an io.Seeker the
// demuxer can seek in it (and MP4 files whose index is at the end can be
// read). The demuxer does not close r; a Read blocked in r is not
// interrupted by Close or ctx: unblock it by closing r.
func NewDemuxer(ctx context.Context, r io.Reader, cfg DemuxerConfig) (*Demuxer, error) {
	return openDemuxer(ctx, "", r, cfg)
}

func openDemuxer(ctx context.Context, url string, r io.Reader, cfg DemuxerConfig) (_ *Demuxer, err error) {
	if err := bindingOK(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d := &Demuxer{ctx: ctx, url: url}
	if r != nil {
		d.url = "reader"
	}
	defer func() {
		if err != nil {
			d.free()
		}
	}()
	d.intr = C.medley_interrupt_new()
	d.stop = C.medley_interrupt_new()
	if d.intr == nil || d.stop == nil {
		return nil, d.fail("alloc", astiav.Error(-C.ENOMEM))
	}
	d.stopCtx = context.AfterFunc(ctx, d.interrupt)
	d.fc = astiav.AllocFormatContext()
	if d.fc == nil {
		return nil, d.fail("alloc", astiav.Error(-C.ENOMEM))
	}
	live.formats.Add(1)
	var pb *C.AVIOContext
	if r != nil {
		var seeker io.Seeker
		if s, ok := r.(io.Seeker); ok {
			if _, err := s.Seek(0, io.SeekCurrent); err == nil {
				seeker = s
			}
		}
		if d.io, err = newCustomIO(r, nil, seeker); err != nil {
			return nil, err
		}
		pb = d.io.pb
	}
	C.medley_format_setup(cFormat(d.fc), pb, d.intr)
	var ifmt *astiav.InputFormat
	if cfg.Format != "" {
		if ifmt = astiav.FindInputFormat(cfg.Format); ifmt == nil {
			return nil, d.fail("open", fmt.Errorf("%w: no demuxer %q", ErrFormat, cfg.Format))
		}
	}
	var opts [][2]string
	if cfg.ProbeSize > 0 {
		opts = append(opts, [2]string{"probesize", strconv.Itoa(max(cfg.ProbeSize, 32))})
	}
	if cfg.AnalyzeDuration > 0 {
		opts = append(opts, [2]string{"analyzeduration", strconv.FormatInt(cfg.AnalyzeDuration.Microseconds(), 10)})
	}
	dict, err := dictionary(mergeOptions(opts, cfg.Options))
	if err != nil {
		return nil, d.fail("options", err)
	}
	defer dict.Free()
	if err := d.fc.OpenInput(url, ifmt, dict); err != nil {
		// avformat_open_input freed the context on failure; Free only
		// drops go-astiav's bookkeeping of it (its pointer is NULL now).
		d.fc.Free()
		d.fc = nil
		live.formats.Add(-1)
		return nil, d.readFail("open", err)
	}
	if keys := leftover(dict); len(keys) > 0 {
		return nil, d.fail("open", fmt.Errorf("%w: %v", ErrUnknownOption, keys))
	}
	if err := d.fc.FindStreamInfo(nil); err != nil {
		return nil, d.readFail("find stream info", err)
	}
	d.pkt = astiav.AllocPacket()
	live.packets.Add(1)
	d.imu.Lock()
	d.file = C.medley_format_is_file(cFormat(d.fc)) != 0
	d.imu.Unlock()
	for _, st := range d.fc.Streams() {
		d.streams = append(d.streams, streamInfo(st))
	}
	return d, nil
}

func streamInfo(st *astiav.Stream) StreamInfo {
	par := st.CodecParameters()
	tb := st.TimeBase()
	s := StreamInfo{
		Index:    st.Index(),
		Type:     par.MediaType(),
		Codec:    CodecName(par.CodecID()),
		CodecID:  par.CodecID(),
		TimeBase: tb,
	}
	if extra := par.ExtraData(); len(extra) > 0 {
		s.ExtraData = append([]byte(nil), extra...)
	}
	switch s.Type {
	case astiav.MediaTypeVideo:
		s.Width, s.Height = par.Width(), par.Height()
		s.FrameRate = st.AvgFrameRate()
	case astiav.MediaTypeAudio:
		s.SampleRate, s.Channels = par.SampleRate(), parChannels(par)
	}
	if v := st.StartTime(); v != NoTimestamp {
		s.Start = toDuration(v, tb)
	}
	if v := st.Duration(); v != NoTimestamp && v > 0 {
		s.Duration = toDuration(v, tb)
	}
	return s
}

func (d *Demuxer) fail(op string, err error) error { return wrap(d.url, "demuxer", op, err) }

// readFail explains a failure: interrupted by ctx or Close, a Go reader's
// error, or FFmpeg's.
func (d *Demuxer) readFail(op string, err error) error {
	// An interrupted read fails in many ways (AVERROR_EXIT, an IO error, a
	// parse error of what was cut short): the interruption is the cause.
	if d.interrupted.Load() || errors.Is(err, astiav.ErrExit) {
		if d.closeAsked.Load() {
			return d.fail(op, fmt.Errorf("%w (%w)", ErrClosed, err))
		}
		if cerr := context.Cause(d.ctx); cerr != nil {
			return d.fail(op, fmt.Errorf("%w (%w)", cerr, err))
		}
	}
	if d.io != nil {
		if ioErr := d.io.failure(); ioErr != nil {
			return d.fail(op, fmt.Errorf("%w (%w)", ioErr, err))
		}
	}
	return d.fail(op, err)
}

// interrupt makes FFmpeg give up what it is waiting for, now and from now
// on, and the reads not yet started fail (see interruptedRead).
//
// A local file's reads wait for nothing, so one in progress is let finish
// (Close waits for it): the flag would not shorten it by much, but it
// would cut it between two reads of the file, and FFmpeg returns what
// it had read by then as a packet, truncated and flagged corrupt, which
// its parsers (H.264's in MP4) complain about ("Invalid NAL unit size").
// A network read is cut, its truncated packet dropped (see
// interruptedRead).
func (d *Demuxer) interrupt() {
	d.interrupted.Store(true)
	d.imu.Lock()
	defer d.imu.Unlock()
	if d.intr != nil && !d.file {
		C.medley_interrupt_set(d.intr, 1)
	}
	if d.stop != nil {
		C.medley_interrupt_set(d.stop, 1)
	}
}

// interruptedRead reports why a read must fail once the demuxer has been
// interrupted: before it starts (c nil), or after it returned c, a packet
// that the interruption may have cut short (FFmpeg flags it corrupt);
// nil if the read may go on, or its packet stand.
func (d *Demuxer) interruptedRead(op string, c *C.AVPacket) error {
	if !d.interrupted.Load() || c != nil && c.flags&C.AV_PKT_FLAG_CORRUPT == 0 {
		return nil
	}
	return d.readFail(op, astiav.ErrExit)
}

// Streams returns the input's streams. The slice must not be modified.
func (d *Demuxer) Streams() []StreamInfo { return d.streams }

// Duration returns the input's duration, 0 when unknown (live sources).
func (d *Demuxer) Duration() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fc == nil {
		return 0
	}
	if v := d.fc.Duration(); v != NoTimestamp && v > 0 {
		return toDuration(v, microsecond)
	}
	return 0
}

// Start returns the input's start time: the timestamp, as a duration,
// that Seek(0) goes to.
func (d *Demuxer) Start() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fc == nil {
		return 0
	}
	if v := d.fc.StartTime(); v != NoTimestamp {
		return toDuration(v, microsecond)
	}
	return 0
}

// IsFile reports whether the input is a local, seekable file, read by
// FFmpeg: one whose reads never wait for data to arrive, unlike a network
// stream, a pipe or a Go reader.
func (d *Demuxer) IsFile() bool { return d.file }

// FormatName returns the name of FFmpeg's demuxer for the input
// ("matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2").
func (d *Demuxer) FormatName() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fc == nil {
		return ""
	}
	if f := d.fc.InputFormat(); f != nil {
		return f.Name()
	}
	return ""
}

// ReadPacket reads the next packet of any stream into p: p.Data is
// appended to p.Data[:0], reusing its memory (a pooled buffer's), and the
// timestamps are in the stream's time base. At the end of the input it
// returns io.EOF; after Close, an error matching ErrClosed; after ctx
// ended, one matching ctx's error. ReadPacketRef does the same without
// copying the payload.
func (d *Demuxer) ReadPacket(p *StreamPacket) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fc == nil || d.closing {
		return d.fail("read", ErrClosed)
	}
	if err := d.interruptedRead("read", nil); err != nil {
		return err
	}
	// d.pkt keeps the payload until the next read (which drops it first)
	// or free: one cgo call a packet.
	c := cPacket(d.pkt)
	if ret := C.medley_read_packet(cFormat(d.fc), c, 0); ret < 0 {
		return d.readError(ret)
	}
	if err := d.interruptedRead("read", c); err != nil {
		return err
	}
	setPacketFields(p, c)
	p.Data = append(p.Data[:0], cBytes(c)...)
	return nil
}

// ReadPacketRef reads the next packet of any stream into p, as ReadPacket
// does, but leaves the payload where FFmpeg put it: p.Data aliases the
// packet's own memory (see DemuxedPacket for how long it lives), which
// the holder may rewrite. What p held before is dropped first. On failure
// p holds nothing.
func (d *Demuxer) ReadPacketRef(p *DemuxedPacket) error {
	_, err := d.ReadPacketRefs([]*DemuxedPacket{p})
	return err
}

// ReadPacketRefs reads the next len(ps) packets into ps, each as
// ReadPacketRef does, in one call into FFmpeg: for a local file (IsFile),
// whose reads never wait, it spares a batch of reads a cgo call and a lock
// each. It returns how many it filled, ps[:n], and the error that ended
// the batch early, if any (io.EOF at the end of the input, ErrClosed, a
// corrupt packet): ps[n] then holds nothing, and those after it are not
// to be read (a payload they may hold goes with their next read, Unref or
// Free). No read starts once Close has been called or ctx has
// ended.
func (d *Demuxer) ReadPacketRefs(ps []*DemuxedPacket) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(ps) == 0 {
		return 0, nil
	}
	if d.fc == nil || d.closing {
		ps[0].Unref()
		return 0, d.fail("read", ErrClosed)
	}
	if err := d.interruptedRead("read", nil); err != nil {
		ps[0].Unref()
		return 0, err
	}
	d.cps = d.cps[:0]
	for _, p := range ps {
		d.cps = append(d.cps, p.c)
	}
	res := C.medley_read_packets(cFormat(d.fc), &d.cps[0], C.int(len(d.cps)), 1, d.stop)
	clear(d.cps)
	n := int(res.n)
	for i, p := range ps[:n] {
		if err := d.interruptedRead("read", p.c); err != nil {
			p.Unref()
			return i, err
		}
		setPacketFields(&p.StreamPacket, p.c)
		p.Data = cBytes(p.c)
	}
	if n == len(ps) {
		return n, nil
	}
	ps[n].StreamPacket = StreamPacket{}
	if err := d.interruptedRead("read", nil); err != nil {
		return n, err
	}
	return n, d.readError(res.err)
}

// readError explains a failed read: io.EOF at the end of the input (an
// end that a Go reader's failure caused is that failure), else as
// readFail.
func (d *Demuxer) readError(ret C.int) error {
	err := astiav.Error(ret)
	if errors.Is(err, astiav.ErrEof) && (d.io == nil || d.io.failure() == nil) {
		return io.EOF
	}
	return d.readFail("read", err)
}

// setPacketFields copies all but the payload of c into p.
func setPacketFields(p *StreamPacket, c *C.AVPacket) {
	p.Stream = int(c.stream_index)
	p.PTS, p.DTS, p.Duration = int64(c.pts), int64(c.dts), int64(c.duration)
	p.Keyframe = c.flags&C.AV_PKT_FLAG_KEY != 0
}

// cBytes returns c's payload without copying, nil if empty.
func cBytes(c *C.AVPacket) []byte {
	if c.data == nil || c.size <= 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(c.data)), int(c.size))
}

// DemuxedPacket is a demuxed packet whose payload stays in FFmpeg's memory:
// Demuxer.ReadPacketRef fills it without copying, for a source that hands
// the payload on as it is (the Player's samples).
//
// Ownership: the holder of a DemuxedPacket reads Data, and may rewrite it
// in place (the payload is the packet's own, unshared), until Unref or the
// next ReadPacketRef into it, which drop the payload: Data must not be
// used after. Free frees the AVPacket with what it holds; nothing may use
// the DemuxedPacket after. A DemuxedPacket may change goroutines (a reader
// fills it, a sink unrefs it) but serves one at a time, and it outlives
// the Demuxer that filled it.
type DemuxedPacket struct {
	// StreamPacket holds the packet's stream and times; its Data aliases
	// C memory.
	StreamPacket
	c *C.AVPacket
}

// NewDemuxedPacket allocates an empty DemuxedPacket.
func NewDemuxedPacket() (*DemuxedPacket, error) {
	c := C.medley_packet_alloc()
	if c == nil {
		return nil, wrap("", "packet", "alloc", astiav.Error(-C.ENOMEM))
	}
	live.packets.Add(1)
	return &DemuxedPacket{c: c}, nil
}

// Unref drops the payload; the packet stays allocated for another read.
func (p *DemuxedPacket) Unref() {
	p.StreamPacket = StreamPacket{}
	if p.c != nil {
		C.medley_packet_unref(p.c)
	}
}

// Free frees the packet and its payload. A second Free does nothing.
func (p *DemuxedPacket) Free() {
	p.StreamPacket = StreamPacket{}
	if p.c != nil {
		C.medley_packet_free(p.c)
		p.c = nil
		live.packets.Add(-1)
	}
}

// Seek moves to the keyframe at or before t (counted from Start) so that
// the next packets decode from there; each stream starts at its own
// keyframe before t.
func (d *Demuxer) Seek(t time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fc == nil || d.closing {
		return d.fail("seek", ErrClosed)
	}
	if err := d.interruptedRead("seek", nil); err != nil {
		return err
	}
	ts := t.Microseconds()
	if v := d.fc.StartTime(); v != NoTimestamp {
		ts += v
	}
	if err := d.fc.SeekFrame(-1, ts, astiav.NewSeekFlags(astiav.SeekFlagBackward)); err != nil {
		return d.readFail("seek", err)
	}
	return nil
}

// Close interrupts a read in progress, waits for it to return and frees
// the demuxer. It is idempotent and safe from any goroutine.
func (d *Demuxer) Close() error {
	d.closeAsked.Store(true)
	d.interrupt()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closing = true
	d.free()
	return nil
}

// free releases everything, each once. The interrupt flag goes last: the
// format context reads it until it is closed.
func (d *Demuxer) free() {
	if d.stopCtx != nil {
		d.stopCtx()
		d.stopCtx = nil
	}
	if d.fc != nil {
		d.fc.CloseInput()
		d.fc = nil
		live.formats.Add(-1)
	}
	if d.io != nil {
		d.io.free()
	}
	if d.pkt != nil {
		d.pkt.Free()
		d.pkt = nil
		live.packets.Add(-1)
	}
	d.imu.Lock()
	if d.intr != nil {
		C.medley_interrupt_free(d.intr)
		d.intr = nil
	}
	if d.stop != nil {
		C.medley_interrupt_free(d.stop)
		d.stop = nil
	}
	d.imu.Unlock()
}

// IsVideo reports whether the stream is video.
func (s StreamInfo) IsVideo() bool { return s.Type == astiav.MediaTypeVideo }

// IsAudio reports whether the stream is audio.
func (s StreamInfo) IsAudio() bool { return s.Type == astiav.MediaTypeAudio }
