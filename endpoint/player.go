package endpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/internal/ffmpeg"
)

// Player is an element that plays a file or URL into the pipeline: what
// FFmpeg 5.1 demuxes (MP4, WebM, Matroska, MPEG-TS, ...) from what it
// reads (files, HTTP(S), RTSP), as Kurento's PlayerEndpoint.
//
// It has a src pad "audio" and a src pad "video" (WithPlayerTracks), which
// the host connects before or after Start. When it runs, the player opens
// the input, fixes each pad's caps to the codec of the input's first
// stream of that kind, and sends that stream's packets as encoded samples
// (element.FormatSample), undecoded: the pipeline inserts a payloader for
// an RTP sink, a transcoder where the sink takes another codec. Samples
// are in the forms package codec's are: H.264 in Annex B with its SPS and
// PPS before each keyframe (MP4 and Matroska store it otherwise), AV1
// temporal units with their temporal delimiter. A pad whose kind the
// input lacks, or whose codec medley does not know, is ended at once with
// a Warning.
//
// Samples go out in real time by their timestamps (a live input's as
// they arrive, see below; WithoutPacing: as fast as they are read), with
// PTS from 0 at the input's start. At the end of the input every pad
// sends end of stream (an EndOfStream message per pad), unless WithLoop
// starts it again. An input that cannot be opened
// or breaks is an Error message (the pipeline's, for the player's Run),
// never a crash; what was read before a break is sent, then end of
// stream (WithReconnect: a live input is opened again instead).
//
// A sample's Data is FFmpeg's packet memory, not a copy (read-only once
// pushed, as every buffer is; a sink that keeps it past its ChainFunc
// Refs the buffer or Clones it); the last Unref gives it back. The player
// reads on a goroutine of its own, up to 128 samples ahead of what it
// sends from a local file, two from a stream, 256 from a live input (so
// that its arrivals are seen as they happen), so that demuxing overlaps
// sending.
//
// Pause, Resume and Seek control a running player; Position and Duration
// report where it is. After a Seek, samples carry the input's times from
// the keyframe at or before the target (plus what loops have added), the
// first of each pad flagged element.FlagDiscont.
//
// Live inputs. A network input (rtsp://, http://, any URL but file:)
// opens with little probing: FFmpeg reads for no longer than the jitter
// buffer (WithJitterBuffer, 200 ms by default) to learn the streams,
// instead of its 5 s. One of unknown duration (an IP camera, a live
// stream over HTTP) is live: the player reads it as it comes, stamping
// each sample's arrival, and sends it within the jitter buffer, rather
// than by its timestamps from the first sample (which would keep any
// delay the start or a stall caused). A network input that sends nothing
// for 5 s fails (FFmpeg's I/O timeout: RTSP's timeout and HTTP's
// rw_timeout options, which WithInputOptions may change). WithRTSPTransport
// chooses RTP over TCP or UDP; WithReconnect opens a live input again
// when it breaks, with backoff, with timestamps that go on forward.
//
// Keyframe requests from downstream (a browser's PLI reaching the pad)
// are counted (PlayerStats.KeyframeRequests) but cannot be honoured: the
// player sends the input's own packets, whose keyframes are where its
// encoder put them, and making one would take decoding and encoding
// again. The next keyframe is the input's next one: a file's within its
// GOP, a camera's at its own interval. A sink that needs keyframes on
// demand gets them through a transcoder (connect it with caps of its own,
// raw or another codec, and the pipeline inserts one), or from an input
// encoded with short GOPs. Connected to a raw sink (decoded frames:
// codec.RawVideoCaps, codec.RawAudioCaps), the player's encoded samples
// go through the decoder the pipeline inserts.
type Player struct {
	element.Base
	url  string
	cfg  playerConfig
	pads []*playerPad
	pool *element.BufferPool
	done chan struct{}

	duration, position     atomic.Int64
	kfRequests, reconnects atomic.Uint64

	// Control: paused is read by the play loop at each packet; wake
	// (1 buffered) tells a paused loop to look again; seekc carries Seek
	// requests to the loop, which answers on the request's channel.
	paused  atomic.Bool
	running atomic.Bool
	wake    chan struct{}
	seekc   chan seekRequest
	mu      sync.Mutex
	startAt time.Duration // a Seek before Run: where to start
}

type seekRequest struct {
	to  time.Duration
	err chan error
}

// ErrPlayerDone is what Seek returns once the player has finished.
var ErrPlayerDone = errors.New("endpoint: player finished")

// ErrPlayerReconnecting is what Seek returns while the player waits to
// open its input again (WithReconnect).
var ErrPlayerReconnecting = errors.New("endpoint: player reconnecting")

// PlayerReconnecting reports that a Player (WithReconnect) lost its input,
// or failed to open it, and tries again after Wait.
type PlayerReconnecting struct {
	element.MessageHeader
	// URL is the input.
	URL string
	// Attempt counts the attempts since the input last played, from 1.
	Attempt int
	Wait    time.Duration
	// Err is why: the break (io.EOF for a live input that ended), or the
	// failure of the attempt before.
	Err error
}

// PlayerReconnected reports that a Player opened its input again after
// Attempts attempts, Downtime after it was lost.
type PlayerReconnected struct {
	element.MessageHeader
	URL      string
	Attempts int
	Downtime time.Duration
}

type playerPad struct {
	kind   element.Kind
	pad    *element.Pad
	stream int // the demuxer's, or -1
	info   ffmpeg.StreamInfo
	codec  codec.Codec
	avc    *ffmpeg.AVCConfig // H.264 stored length-prefixed
	av1    bool
	// prev and interval are the last sample's time and the interval
	// before it (for durations the container leaves out); seen says
	// prev is set.
	prev, interval time.Duration
	seen           bool
	// discont flags the next sample after a seek or a reopening, which
	// also sends a DiscontEvent before it (discontEvent); needKey drops
	// video until a keyframe after either.
	discont, discontEvent, needKey bool
	sent                           atomic.Uint64
	bad                            atomic.Uint64
}

// NewPlayer returns a player named name of url: a file path or any URL
// FFmpeg reads. The input is opened when the player runs, so that a
// missing file is an Error message, as a broken one is.
func NewPlayer(name, url string, opts ...PlayerOption) (*Player, error) {
	cfg := defaultPlayerConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if url == "" {
		return nil, errors.New("endpoint: NewPlayer: empty URL")
	}
	p := &Player{
		Base:  element.NewBase(name),
		url:   url,
		cfg:   cfg,
		pool:  element.NewBufferPool(4 << 10),
		done:  make(chan struct{}),
		wake:  make(chan struct{}, 1),
		seekc: make(chan seekRequest),
	}
	for _, k := range []element.Kind{element.KindAudio, element.KindVideo} {
		if !cfg.tracks.Has(k) {
			continue
		}
		pp := &playerPad{kind: k, stream: -1}
		pp.pad = element.NewSrcPad(k.String(), element.CapsList{{Kind: k, Format: element.FormatSample}},
			element.WithEventHandler(p.upstream))
		p.AddPad(pp.pad)
		p.pads = append(p.pads, pp)
	}
	return p, nil
}

// upstream takes the events sinks send up a pad: it counts keyframe
// requests, which it cannot honour (see Player).
func (p *Player) upstream(ev element.Event) {
	if _, ok := ev.(element.KeyframeRequest); ok {
		p.kfRequests.Add(1)
	}
}

// URL returns what the player plays.
func (p *Player) URL() string { return p.url }

// AudioPad returns the audio src pad, or nil.
func (p *Player) AudioPad() *element.Pad { return p.padOf(element.KindAudio) }

// VideoPad returns the video src pad, or nil.
func (p *Player) VideoPad() *element.Pad { return p.padOf(element.KindVideo) }

func (p *Player) padOf(k element.Kind) *element.Pad {
	for _, pp := range p.pads {
		if pp.kind == k {
			return pp.pad
		}
	}
	return nil
}

// Duration returns the input's duration once it is open, 0 before or when
// unknown (a live source).
func (p *Player) Duration() time.Duration { return time.Duration(p.duration.Load()) }

// Position returns the PTS of the latest sample sent, or after a Seek the
// target until a sample is sent.
func (p *Player) Position() time.Duration { return time.Duration(p.position.Load()) }

// Pause stops sending (and, paced, the clock) until Resume; the input
// stays open. It is idempotent, and a paused player still serves Seek.
func (p *Player) Pause() {
	p.paused.Store(true)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Resume goes on after Pause; paced, from the current sample in real time
// again.
func (p *Player) Resume() {
	p.paused.Store(false)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Paused reports whether the player is paused.
func (p *Player) Paused() bool { return p.paused.Load() }

// Seek moves the player to the keyframe at or before d (from the input's
// start), so that what follows decodes from there; it lands within one
// GOP of d. On a running player it returns once the input has moved (or
// failed to: an input that cannot seek, such as a live one); before Run
// it sets where the player starts. It fails for a negative d, a d past a
// known duration, a player that has finished (ErrPlayerDone) or waits to
// open its input again (ErrPlayerReconnecting).
func (p *Player) Seek(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("endpoint: Player.Seek(%v): negative", d)
	}
	if dur := p.Duration(); dur > 0 && d > dur {
		return fmt.Errorf("endpoint: Player.Seek(%v): past the end (%v)", d, dur)
	}
	if !p.running.Load() {
		select {
		case <-p.done:
			return ErrPlayerDone
		default:
		}
		p.mu.Lock()
		p.startAt = d
		p.mu.Unlock()
		p.position.Store(int64(d))
		if !p.running.Load() {
			return nil
		}
		// Run began meanwhile: it may or may not have taken startAt;
		// seek through the loop as well.
	}
	req := seekRequest{to: d, err: make(chan error, 1)}
	select {
	case p.seekc <- req:
	case <-p.done:
		return ErrPlayerDone
	}
	select {
	case err := <-req.err:
		return err
	case <-p.done:
		return ErrPlayerDone
	}
}

// Done is closed when the player has finished: the input ended (without
// WithLoop) or broke, or the pipeline stopped it.
func (p *Player) Done() <-chan struct{} { return p.done }

// PlayerStats are a Player's counters.
type PlayerStats struct {
	// AudioSamples and VideoFrames count the samples sent; Malformed
	// those dropped for a bitstream that could not be converted.
	AudioSamples, VideoFrames, Malformed uint64
	// KeyframeRequests counts the keyframe requests that reached the
	// player's pads (after the pads merged bursts), none of which it can
	// honour; Reconnects the times it opened its input again
	// (WithReconnect).
	KeyframeRequests, Reconnects uint64
}

// Stats returns the player's counters.
func (p *Player) Stats() PlayerStats {
	s := PlayerStats{KeyframeRequests: p.kfRequests.Load(), Reconnects: p.reconnects.Load()}
	for _, pp := range p.pads {
		if pp.kind == element.KindAudio {
			s.AudioSamples = pp.sent.Load()
		} else {
			s.VideoFrames = pp.sent.Load()
		}
		s.Malformed += pp.bad.Load()
	}
	return s
}

// Run plays the input; the pipeline runs it and cancels ctx to stop it.
func (p *Player) Run(ctx context.Context) error {
	defer close(p.done)
	p.running.Store(true)
	err := p.run(ctx)
	p.endAll()
	if err != nil && ctx.Err() == nil {
		// Posted here rather than returned, so that it is on the bus
		// before Done closes.
		p.PostError(fmt.Errorf("player %s: %w", p.url, err))
	}
	return nil
}

func (p *Player) run(ctx context.Context) error {
	st := &playState{}
	network := urlScheme(p.url) != "" && urlScheme(p.url) != "file"
	// attempt counts the attempts since the input last played; broke is
	// when it was lost.
	attempt := 0
	var broke time.Time
	for {
		d, pads, err := p.open(ctx, st.sessions == 0)
		if err == nil {
			if attempt > 0 {
				p.reconnects.Add(1)
				p.Post(&PlayerReconnected{MessageHeader: element.Header(p.Name()), URL: p.url,
					Attempts: attempt, Downtime: time.Since(broke)})
			}
			live := !d.IsFile() && d.Duration() == 0
			sent := st.sent
			err = p.session(ctx, d, pads, st, live)
			_ = d.Close()
			if ctx.Err() != nil {
				return nil
			}
			if st.sent > sent {
				attempt = 0 // it played: count again
			}
			if err == nil {
				return nil
			}
			if !live || p.cfg.reconnect == nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		} else if ctx.Err() != nil {
			return nil
		} else if p.cfg.reconnect == nil || !network {
			return err
		}
		// The input broke, ended live, or could not be opened: try again.
		if attempt == 0 {
			broke = time.Now()
		}
		rc := p.cfg.reconnect
		if rc.attempts > 0 && attempt >= rc.attempts {
			return fmt.Errorf("gave up reconnecting after %d attempts: %w", attempt, err)
		}
		wait := rc.initial
		for range attempt {
			if wait >= rc.max/2 {
				wait = rc.max
				break
			}
			wait *= 2
		}
		wait = min(wait, rc.max)
		attempt++
		p.Post(&PlayerReconnecting{MessageHeader: element.Header(p.Name()), URL: p.url,
			Attempt: attempt, Wait: wait, Err: err})
		if !p.sleep(ctx, wait) {
			return nil
		}
	}
}

// A playState is what carries over from one opening of the input to the
// next: where timestamps are, and how much was sent.
type playState struct {
	// sessions counts the openings played (0 during the first).
	sessions int
	// offset is added to the input's timestamps: what loops and
	// reconnections have added. lastEnd is the end of the latest sample of
	// this round, where a loop goes on from.
	offset, lastEnd time.Duration
	// rebase: the next sample, the first after a reopening, sets offset
	// so that timestamps go on from maxEnd, the end of the latest sample
	// sent, plus the time since lastSent (live inputs only).
	rebase   bool
	maxEnd   time.Duration
	lastSent time.Time
	sent     uint64
}

// open opens the input and chooses its streams.
func (p *Player) open(ctx context.Context, warn bool) (*ffmpeg.Demuxer, []*playerPad, error) {
	size, analyze, opts := p.inputOptions()
	d, err := ffmpeg.OpenDemuxer(ctx, p.url, ffmpeg.DemuxerConfig{
		Format: p.cfg.format, Options: opts,
		ProbeSize: size, AnalyzeDuration: analyze,
	})
	if err != nil {
		return nil, nil, err
	}
	p.duration.Store(int64(d.Duration()))
	pads := p.choose(d.Streams(), warn)
	if !slices.ContainsFunc(pads, func(pp *playerPad) bool { return pp != nil }) {
		_ = d.Close()
		return nil, nil, errors.New("no audio or video stream medley can send")
	}
	return d, pads, nil
}

// Network inputs open with these unless the host says otherwise.
const (
	// networkProbeSize bounds the bytes FFmpeg reads to learn the
	// streams (its default is 5 MB): a live source's bytes come in real
	// time, so the time bound (the jitter buffer) is what ends probing;
	// this one bounds a burst.
	networkProbeSize = 1 << 20
	// minProbeTime is the least time FFmpeg analyzes a network input for
	// (a zero jitter buffer still needs a packet or two of each stream).
	minProbeTime = 100 * time.Millisecond
	// ioTimeout is how long a network input may send nothing before its
	// read fails (RTSP's timeout, HTTP's rw_timeout).
	ioTimeout = 5 * time.Second
)

// inputOptions returns the probe bounds and the demuxer options to open
// the input with: for a network input, probing bounded by the jitter
// buffer and no frame-rate probing (FFmpeg would otherwise read 20
// frames), the I/O timeout, and for RTSP the transport and the jitter
// buffer as the RTP reordering delay; the host's options over them.
// fflags nobuffer is not set: it would make FFmpeg drop the packets read
// while probing, among them the first keyframe, and the jitter buffer
// already sends them as soon as the latest is due.
func (p *Player) inputOptions() (int, time.Duration, map[string]string) {
	size, analyze := p.cfg.probeSize, p.cfg.probeTime
	scheme := urlScheme(p.url)
	if scheme == "" || scheme == "file" {
		return size, analyze, p.cfg.options
	}
	us := func(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) }
	opts := map[string]string{}
	if size == 0 && analyze == 0 {
		size, analyze = networkProbeSize, max(p.cfg.jitter, minProbeTime)
		opts["fpsprobesize"] = "0"
	}
	switch scheme {
	case "rtsp", "rtsps":
		opts["timeout"] = us(ioTimeout)
		opts["max_delay"] = us(p.cfg.jitter)
		if p.cfg.transport != "" {
			opts["rtsp_transport"] = p.cfg.transport
		}
	case "http", "https":
		opts["rw_timeout"] = us(ioTimeout)
	}
	maps.Copy(opts, p.cfg.options)
	return size, analyze, opts
}

// urlScheme returns the scheme of a URL in lower case ("rtsp", "http"),
// "" for a path.
func urlScheme(url string) string {
	i := strings.Index(url, "://")
	if i <= 0 {
		return ""
	}
	for _, c := range url[:i] {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') {
			return ""
		}
	}
	return strings.ToLower(url[:i])
}

// sleep waits d before a reconnection attempt, answering Seek meanwhile
// (ErrPlayerReconnecting); it returns false when ctx ended.
func (p *Player) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case req := <-p.seekc:
			req.err <- ErrPlayerReconnecting
		case <-p.wake:
		case <-ctx.Done():
			return false
		}
	}
}

// session plays one opening of the input: from where Seek put it before
// Run, the first time; after a reopening, flagging each pad's next
// sample a discontinuity.
func (p *Player) session(ctx context.Context, d *ffmpeg.Demuxer, pads []*playerPad, st *playState, live bool) error {
	defer func() { st.sessions++ }()
	if st.sessions == 0 {
		p.mu.Lock()
		at := p.startAt
		p.mu.Unlock()
		if at > 0 {
			if err := d.Seek(at); err != nil {
				return err
			}
			p.seeked(pads, at)
		}
	} else {
		st.rebase = true
		for _, pp := range pads {
			if pp != nil {
				pp.seen, pp.discont, pp.discontEvent = false, true, true
				pp.needKey = pp.kind == element.KindVideo
			}
		}
	}
	return p.play(ctx, d, pads, st, live)
}

// choose assigns each pad the first stream of its kind with a codec
// medley knows, fixes its caps, and returns the pads by stream index (nil
// for a stream not sent); warn posts a Warning for each pad left out.
func (p *Player) choose(streams []ffmpeg.StreamInfo, warn bool) []*playerPad {
	byStream := make([]*playerPad, len(streams))
	for _, pp := range p.pads {
		pp.stream, pp.info, pp.codec, pp.avc, pp.av1 = -1, ffmpeg.StreamInfo{}, codec.Codec{}, nil, false
		for _, s := range streams {
			if kindOf(s) != pp.kind {
				continue
			}
			c, ok := codecNamed(s.Codec)
			if !ok {
				if !warn {
					continue
				}
				p.Post(&element.Warning{MessageHeader: element.Header(p.Name()), Pad: pp.pad.FullName(),
					Text: fmt.Sprintf("player: %s stream %d is %s, which medley does not know: skipped", pp.kind, s.Index, s.Codec)})
				continue
			}
			caps := c.Caps(element.FormatSample)
			switch pp.kind {
			case element.KindVideo:
				caps.Width, caps.Height = s.Width, s.Height
			case element.KindAudio:
				if c.MIME != codec.MIMEOpus && c.MIME != codec.MIMEG722 && s.SampleRate > 0 {
					caps.ClockRate = uint32(s.SampleRate)
				}
				if c.MIME != codec.MIMEOpus && s.Channels > 0 {
					caps.Channels = uint16(s.Channels)
				}
			}
			if c.MIME == codec.MIMEH264 && ffmpeg.IsAVCC(s.ExtraData) {
				avc, err := ffmpeg.ParseAVCC(s.ExtraData)
				if err != nil {
					continue
				}
				pp.avc = &avc
			}
			pp.av1 = c.MIME == codec.MIMEAV1
			if err := pp.pad.SetCaps(caps); err != nil {
				p.PostError(fmt.Errorf("player: %s caps %v: %w", pp.pad.FullName(), caps, err))
				continue
			}
			pp.stream, pp.info, pp.codec = s.Index, s, c
			if s.Index >= 0 && s.Index < len(byStream) {
				byStream[s.Index] = pp
			}
			break
		}
		if pp.stream < 0 && warn {
			p.Post(&element.Warning{MessageHeader: element.Header(p.Name()), Pad: pp.pad.FullName(),
				Text: fmt.Sprintf("player: %s has no %s stream medley can send", p.url, pp.kind)})
		}
	}
	return byStream
}

func kindOf(s ffmpeg.StreamInfo) element.Kind {
	switch {
	case s.IsVideo():
		return element.KindVideo
	case s.IsAudio():
		return element.KindAudio
	}
	return 0
}

// codecNamed finds a codec by its short name, which internal/ffmpeg's
// stream info uses too.
func codecNamed(name string) (codec.Codec, bool) {
	for _, c := range codec.Codecs() {
		if c.Name == name {
			return c, true
		}
	}
	return codec.Codec{}, false
}

// play sends what its reader reads until the end (io.EOF), ctx ends
// (nil) or the input fails.
func (p *Player) play(ctx context.Context, d *ffmpeg.Demuxer, pads []*playerPad, st *playState, live bool) error {
	pool := &samplePool{}
	defer pool.close()
	r := newReader(d, pads, pool, live, p.cfg.loop)
	rctx, cancel := context.WithCancel(ctx)
	go r.run(rctx)
	defer r.stop(cancel)
	// bt is the batch being sent, next its next item.
	var bt *readBatch
	var next int
	defer func() {
		if bt != nil {
			r.recycle(bt)
		}
	}()

	start := d.Start()
	// A file is paced from t0, when the sample due at first was sent;
	// paced is false until the first sample and after a pause or seek,
	// which start the clock again. A live input is paced by its arrivals
	// (see reader.due).
	var t0 time.Time
	var first time.Duration
	var paced bool
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if p.paused.Load() {
			if _, stop := p.hold(ctx, r, pads); stop {
				return nil
			}
			paced = false
		}
		select {
		case req := <-p.seekc:
			req.err <- p.seek(r, pads, req.to)
			paced = false
		default:
		}
		if bt != nil && (next == bt.n || bt.epoch != r.epoch) {
			r.recycle(bt) // done, or read before a seek
			bt = nil
		}
		if bt == nil {
			select {
			case bt = <-r.out:
				next = 0
			case req := <-p.seekc:
				req.err <- p.seek(r, pads, req.to)
				paced = false
			case <-p.wake: // paused, or not: looked at above
			case <-ctx.Done():
				return nil
			}
			continue
		}
		it := bt.items[next]
		bt.items[next] = readItem{}
		next++
		if it.err != nil {
			if !errors.Is(it.err, io.EOF) {
				return it.err
			}
			if !p.cfg.loop || st.lastEnd == 0 {
				return io.EOF
			}
			if it.looped {
				r.looped(it) // the reader went back to the start already
			} else if err := r.Seek(0); err != nil {
				return fmt.Errorf("loop: %w", err)
			}
			st.offset += st.lastEnd
			st.lastEnd = 0
			for _, pp := range pads {
				if pp != nil {
					pp.seen = false
				}
			}
			continue
		}
		pkt := &it.s.pkt.StreamPacket
		b := it.s.buf
		pp := pads[pkt.Stream]
		pts := pkt.PTS
		if pts == ffmpeg.NoTimestamp {
			pts = pkt.DTS
		}
		if pts == ffmpeg.NoTimestamp {
			b.Unref()
			pp.bad.Add(1)
			continue
		}
		if pp.needKey {
			if !pkt.Keyframe {
				b.Unref()
				continue
			}
			pp.needKey = false
		}
		at := pp.info.Time(pts) - start
		if st.rebase {
			// The first sample after a reopening: go on from the latest
			// sample sent, plus the time the input was away.
			st.offset = st.maxEnd - at
			if !st.lastSent.IsZero() {
				st.offset += time.Since(st.lastSent)
			}
			st.lastEnd, st.rebase = 0, false
		}
		b.PTS = st.offset + at
		b.Duration = pp.info.Time(pkt.Duration)
		if pkt.Keyframe || pp.kind == element.KindAudio {
			b.Flags |= element.FlagKeyframe
		}
		if pp.discont {
			b.Flags |= element.FlagDiscont
			pp.discont = false
		}
		// The end of the sample, for a loop to go on from: with the
		// duration the container gives, else the stream's last interval.
		dur := b.Duration
		if dur <= 0 {
			dur = pp.interval
		}
		if at > pp.prev && pp.seen {
			pp.interval = at - pp.prev
		}
		pp.prev, pp.seen = at, true
		st.lastEnd = max(st.lastEnd, at+dur)
		// The due time is read before convert, which may release the
		// sample (and its packet) for a copy.
		due := at
		if pkt.DTS != ffmpeg.NoTimestamp {
			due = pp.info.Time(pkt.DTS) - start
		}
		var liveDue time.Time
		if live {
			liveDue = r.due(it.arrived, due, p.cfg.jitter)
		}
		if b = p.convert(pp, b); b == nil {
			continue
		}
		if !p.cfg.unpaced {
			// Pace by decoding time, which only goes forward.
			due += st.offset
			drop := false
			for {
				var wait time.Duration
				if live {
					wait = time.Until(liveDue)
				} else {
					if !paced {
						t0, first, paced = time.Now(), due, true
					}
					wait = time.Until(t0.Add(due - first))
				}
				if wait <= 0 {
					break
				}
				timer.Reset(wait)
				select {
				case <-timer.C:
					continue
				case <-p.wake:
					timer.Stop()
					if !p.paused.Load() {
						continue
					}
					seeked, stop := p.hold(ctx, r, pads)
					if stop {
						b.Unref()
						return nil
					}
					drop = seeked
				case req := <-p.seekc:
					timer.Stop()
					req.err <- p.seek(r, pads, req.to)
					drop = true
				case <-ctx.Done():
					b.Unref()
					return nil
				}
				// Resumed or moved: b is due now (or dropped).
				paced = false
				if drop {
					break
				}
				if live {
					break // what was held while paused goes at once
				}
			}
			if drop {
				b.Unref()
				continue
			}
		}
		if pp.discontEvent {
			_ = pp.pad.PushEvent(element.DiscontEvent{})
			pp.discontEvent = false
		}
		p.position.Store(int64(b.PTS))
		if end := b.PTS + b.Duration; end > st.maxEnd {
			st.maxEnd = end
		}
		if live {
			st.lastSent = time.Now()
		}
		pp.pad.Push(b)
		b.Unref()
		pp.sent.Add(1)
		st.sent++
		if ctx.Err() != nil {
			return nil
		}
	}
}

// hold waits while the player is paused, serving Seek; it returns
// whether it seeked, and stop when ctx ended.
func (p *Player) hold(ctx context.Context, r *reader, pads []*playerPad) (seeked, stop bool) {
	for p.paused.Load() {
		select {
		case <-p.wake:
		case req := <-p.seekc:
			req.err <- p.seek(r, pads, req.to)
			seeked = true
		case <-ctx.Done():
			return seeked, true
		}
	}
	return seeked, false
}

// seek moves the input to the keyframe at or before to.
func (p *Player) seek(r *reader, pads []*playerPad, to time.Duration) error {
	if err := r.Seek(to); err != nil {
		return err
	}
	p.seeked(pads, to)
	return nil
}

// seeked flags each pad's next sample a discontinuity, makes video wait
// for a keyframe, and sets the position to the target.
func (p *Player) seeked(pads []*playerPad, to time.Duration) {
	for _, pp := range pads {
		if pp != nil {
			pp.seen, pp.discont = false, true
			pp.needKey = pp.kind == element.KindVideo
		}
	}
	p.position.Store(int64(to))
}

// convert puts a sample in medley's form for its codec; nil drops it.
func (p *Player) convert(pp *playerPad, b *element.Buffer) *element.Buffer {
	switch {
	case pp.avc != nil:
		if !b.Keyframe() && pp.avc.LengthSize == 4 {
			if !ffmpeg.AnnexBInPlace(b.Data) {
				break
			}
			return b
		}
		nb := p.pool.Get()
		nb.PTS, nb.Duration, nb.Flags = b.PTS, b.Duration, b.Flags
		if b.Keyframe() {
			nb.Data = append(nb.Data, pp.avc.ParameterSets...)
		}
		var err error
		nb.Data, err = ffmpeg.AppendAnnexB(nb.Data, b.Data, pp.avc.LengthSize)
		b.Unref()
		if err != nil {
			nb.Unref()
			pp.bad.Add(1)
			return nil
		}
		return nb
	case pp.av1 && !ffmpeg.HasAV1TemporalDelimiter(b.Data):
		nb := p.pool.Get()
		nb.PTS, nb.Duration, nb.Flags = b.PTS, b.Duration, b.Flags
		nb.Data = append(append(nb.Data, ffmpeg.AV1TemporalDelimiter...), b.Data...)
		b.Unref()
		return nb
	default:
		return b
	}
	b.Unref()
	pp.bad.Add(1)
	return nil
}

// endAll sends end of stream on every pad.
func (p *Player) endAll() {
	for _, pp := range p.pads {
		_ = pp.pad.PushEvent(element.EOSEvent{})
	}
}
