package endpoint

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/internal/ffmpeg"
)

// ErrRecorderStopped: Pause or Resume after the recording stopped.
var ErrRecorderStopped = errors.New("endpoint: recorder stopped")

// maxClockShift bounds how far the sender clocks may move a track against
// the others: clocks further apart than that are taken for two senders'
// (or a wrong one), and the tracks are left where their PTS place them.
const maxClockShift = 5 * time.Second

// clockAgree is how close two sender clocks of a track must be to
// confirm each other. A sender report dates an RTP timestamp to within a
// millisecond when it comes from the capture clock, but some senders
// date the packet last sent instead (GStreamer's rtpbin by default), whose
// early reports can be off by the encoder's start-up.
const clockAgree = 5 * time.Millisecond

// maxHeld bounds the buffers a Recorder holds per track while it waits for
// its other tracks or a keyframe: 2 s of 50 audio packets, or of 30 video
// frames, and more, for media that arrives faster than real time.
const maxHeld = 1024

// Recorder is an element that writes what reaches it into a file: WebM,
// Matroska, MP4 or fragmented MP4 (Kurento's RecorderEndpoint).
//
// It has a sink pad "audio" and a sink pad "video" (only the one of an
// audio-only or video-only profile), each accepting encoded samples
// (element.FormatSample) of the codecs the container takes, most preferred
// first (Container.Codecs). Connected to RTP (a WebRTC endpoint), the
// pipeline inserts a depayloader by itself; the media is remuxed, never
// transcoded, unless the container cannot take the codec (VP8 into MP4),
// where the pipeline inserts a transcoder when one is registered.
//
// # Starting
//
// Recording starts when media arrives: the video track on a keyframe
// (frames before it are dropped and a keyframe is asked for upstream), the
// audio track on its first sample. Once one track has media the recorder
// waits for the others for WithTrackWait (2 s by default): a track that
// never sends does not hold the recording hostage, and is named in an
// element.Warning. Media faster than real time ends the wait sooner: when
// what is held spans the wait and nothing with caps feeds the missing
// track, or when the hold limit (1024 samples a track) is reached. The
// file starts at the video keyframe (audio before it is dropped) or, with
// no video, at the first audio sample.
//
// With two tracks, once both have media the recorder also waits, for
// WithSyncWait (1.5 s by default), for the sender clock of each to settle
// (see Timing) before it starts the file; media faster than real time
// ends the wait once what is held spans it, as does the hold limit.
// Sources that send no sender clocks (a Player, an application's) are
// recorded as before, only that much later.
//
// # Timing
//
// Tracks are placed by their buffers' PTS: a track that starts late or
// has a gap is placed at its time, not squeezed. A receiving endpoint
// stamps a stream's PTS with the arrival of its first packet plus the
// progress of its RTP timestamps (package codec's depayloader keeps
// that), so by PTS alone two tracks line up at their first packets' arrival,
// off by however far apart those were from their capture. The sender's
// clock corrects that: a track's element.SenderClockEvent (which the RTP
// endpoint pushes for each RTCP sender report) ties one of its PTS to the
// capture time on the sender's wall clock, which the sender's tracks
// share. When every track in the file has one at the start, each track is
// moved by how much its PTS-to-capture offset differs from the reference
// track's (the video, if there is one) so that what was captured at the
// same time lands at the same file time (RecorderStats.AudioShift says by
// how much the audio moved). A track without one leaves the tracks as
// their PTS place them, with an element.Warning. A track's clock has
// settled when two sender clocks in a row agree within 5 ms (some senders'
// first reports are off: GStreamer's rtpbin dates the packet last sent,
// late while its encoder starts); when the wait ends before that, its
// latest counts. The clocks decide once, at the start: later ones are
// ignored, even if they disagree (a source that restarted), so that a
// file never jumps.
//
// The PTS drive the file, not the wall clock: media pushed faster than
// real time records as fast. Video samples carry no DTS (no B-frames, as
// from WebRTC).
//
// # Control
//
// Pause drops what arrives until Resume, after which the file goes on
// where it paused (at a video keyframe): the file has no gap. Stop
// finalizes the file and returns when it is complete (Kurento's
// stopAndWait); so does the end of stream on every track, WithMaxDuration
// and WithMaxSize. Recording, Paused and Stopped messages go on the bus.
// Closing the recorder (the pipeline does, when it closes) stops it too.
// A recording that never started leaves no file.
//
// # Files
//
// The file is created (or truncated) by NewRecorder, so a bad path fails
// at once; WithBaseDir confines it to a directory. The container is
// written in clusters or fragments of at most WithFragmentDuration (1 s)
// flushed to the file as they complete, so that a process killed with
// SIGKILL leaves a WebM, Matroska or fragmented MP4 file that plays up to
// about a second before the kill (plain MP4 does not survive a crash).
//
// Muxing runs on the sink pads' goroutines, behind their queues
// (WithRecorderQueue), under one lock.
type Recorder struct {
	element.Base
	cfg    recorderConfig
	spec   containerSpec
	file   *recordFile
	tracks []*recTrack // audio, then video: those of the profile
	video  *recTrack   // or nil
	done   chan struct{}

	mu       sync.Mutex
	state    RecorderState
	synced   bool // media flows to the file (not waiting for tracks or a keyframe)
	started  bool // the file's tracks are chosen and the muxer made
	mux      *ffmpeg.Muxer
	base     time.Duration // file time = PTS - base
	end      time.Duration // file time of the end of the latest sample written
	payload  int64         // bytes of samples written
	gen      int           // sync generation: a stale timer is ignored
	timer    *time.Timer
	reason   StopReason
	stopErr  error
	posts    []element.Message
	askKey   bool
	doneNow  bool
	finished bool

	// Sender clocks: clockWait, holding for them since the latest held
	// PTS was clockFrom; clocked, the tracks are lined up by them.
	clockWait bool
	clockFrom time.Duration
	clocked   bool

	bytes atomic.Int64
}

// recTrack is one sink pad of a Recorder and its stream in the file.
type recTrack struct {
	kind   element.Kind
	pad    *element.Pad
	codec  codec.Codec
	stream int // the muxer's stream, or -1: not in the file
	// Sync state: ready has media (video: from a keyframe), first is the
	// PTS of its first held buffer.
	ready bool
	first time.Duration
	held  []*element.Buffer
	// waitKey: video drops until a keyframe.
	waitKey  bool
	eos      bool
	full     bool // reached the maximum duration
	mismatch bool // the caps changed to a codec the file's stream cannot take
	// Sender clock: clock says offset, the capture time on the sender's
	// wall clock (Unix time) less the PTS, came (the latest
	// SenderClockEvent's); settled, two in a row agreed; shift moves the
	// track's PTS in the file, fixed at the start.
	clock   bool
	settled bool
	offset  time.Duration
	shift   time.Duration

	written, dropped atomic.Uint64
}

// NewRecorder returns a recorder named name writing to path, created (or
// truncated) now. The profile comes from WithMediaProfile or path's
// extension.
func NewRecorder(name, path string, opts ...RecorderOption) (*Recorder, error) {
	cfg := defaultRecorderConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if !cfg.profileSet {
		p, ok := MediaProfileFor(path)
		if !ok {
			return nil, fmt.Errorf("%w: no profile for %q: use WithMediaProfile", ErrUnknownProfile, path)
		}
		cfg.profile = p
	}
	r := &Recorder{
		Base:  element.NewBase(name),
		cfg:   cfg,
		spec:  containers[cfg.profile.Container],
		done:  make(chan struct{}),
		state: RecorderWaiting,
	}
	for _, k := range []element.Kind{element.KindAudio, element.KindVideo} {
		if !cfg.profile.Tracks.Has(k) {
			continue
		}
		t := &recTrack{kind: k, stream: -1}
		t.pad = element.NewSinkPad(k.String(), cfg.profile.sinkCaps(k),
			func(b *element.Buffer) error { return r.chain(t, b) },
			element.WithEventHandler(func(ev element.Event) { r.event(t, ev) }),
			element.WithQueue(cfg.queueSize, cfg.queuePolicy))
		r.AddPad(t.pad)
		r.tracks = append(r.tracks, t)
		if k == element.KindVideo {
			r.video = t
		}
	}
	f, err := createRecordFile(cfg.baseDir, path)
	if err != nil {
		return nil, fmt.Errorf("endpoint: recorder %s: %w", name, err)
	}
	r.file = f
	return r, nil
}

// Path returns the file the recorder writes (absolute when it can be).
func (r *Recorder) Path() string { return r.file.path }

// Profile returns what the recorder writes.
func (r *Recorder) Profile() MediaProfile { return r.cfg.profile }

// AudioPad returns the audio sink pad, or nil for a video-only profile.
func (r *Recorder) AudioPad() *element.Pad { return r.pad(element.KindAudio) }

// VideoPad returns the video sink pad, or nil for an audio-only profile.
func (r *Recorder) VideoPad() *element.Pad { return r.pad(element.KindVideo) }

func (r *Recorder) pad(k element.Kind) *element.Pad {
	for _, t := range r.tracks {
		if t.kind == k {
			return t.pad
		}
	}
	return nil
}

// Done is closed when the recording has stopped and the file is complete.
func (r *Recorder) Done() <-chan struct{} { return r.done }

// State returns the recorder's state.
func (r *Recorder) State() RecorderState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// RecorderStats are a Recorder's counters.
type RecorderStats struct {
	State RecorderState
	// Duration is the media written so far (file time); Bytes the file's
	// size so far.
	Duration time.Duration
	Bytes    int64
	// AudioSamples and VideoFrames count the samples written; Dropped
	// those dropped (before a keyframe, while paused, over the hold
	// limit, before the start).
	AudioSamples, VideoFrames, Dropped uint64
	// SenderClock says the tracks were lined up by their sender's clock
	// (see Recorder); AudioShift is how much later in the file than its
	// PTS said the audio went for that (negative: earlier), 0 if not.
	SenderClock bool
	AudioShift  time.Duration
}

// Stats returns the recorder's counters.
func (r *Recorder) Stats() RecorderStats {
	r.mu.Lock()
	s := RecorderStats{State: r.state, Duration: r.end, SenderClock: r.clocked}
	for _, t := range r.tracks {
		if t.kind == element.KindAudio {
			s.AudioShift = t.shift
		}
	}
	r.mu.Unlock()
	s.Bytes = r.bytes.Load()
	for _, t := range r.tracks {
		if t.kind == element.KindAudio {
			s.AudioSamples = t.written.Load()
		} else {
			s.VideoFrames = t.written.Load()
		}
		s.Dropped += t.dropped.Load()
	}
	return s
}

// unlock releases r.mu, then does what was decided under it: posts the
// messages, asks for a keyframe, signals Done (never calling out while
// holding the lock).
func (r *Recorder) unlock() {
	posts := r.posts
	r.posts = nil
	ask := r.askKey
	r.askKey = false
	done := r.doneNow
	r.doneNow = false
	r.mu.Unlock()
	for _, m := range posts {
		r.Post(m)
	}
	if ask && r.video != nil {
		r.video.pad.RequestKeyframe()
	}
	if done {
		close(r.done)
	}
}

func (r *Recorder) post(m element.Message) { r.posts = append(r.posts, m) }

func (r *Recorder) header() element.MessageHeader { return element.Header(r.Name()) }

// chain takes one sample of track t.
func (r *Recorder) chain(t *recTrack, b *element.Buffer) error {
	r.mu.Lock()
	defer r.unlock()
	switch {
	case r.state == RecorderStopped:
		return nil
	case r.state == RecorderPaused, t.mismatch:
		t.dropped.Add(1)
		return nil
	case !r.synced:
		r.hold(t, b)
	case t.stream >= 0 && !t.full:
		r.write(t, b)
	default:
		t.dropped.Add(1)
	}
	return nil
}

// event takes a downstream event of track t.
func (r *Recorder) event(t *recTrack, ev element.Event) {
	r.mu.Lock()
	defer r.unlock()
	switch e := ev.(type) {
	case element.CapsEvent:
		c, ok := codec.Lookup(e.Caps.Codec)
		if !ok {
			return // the pad's templates let in only codecs medley knows
		}
		if r.started && t.stream >= 0 && c.MIME != t.codec.MIME {
			if !t.mismatch {
				t.mismatch = true
				r.post(&element.Error{MessageHeader: r.header(), Pad: t.pad.FullName(),
					Err: fmt.Errorf("recorder: the %s track changed from %s to %s, which its stream in the file cannot take; dropping it",
						t.kind, t.codec.MIME, c.MIME)})
			}
			return
		}
		t.codec, t.mismatch = c, false
		if t.kind == element.KindVideo && !r.synced {
			r.askKey = true
		}
	case element.DiscontEvent:
		if t.kind == element.KindVideo && r.synced {
			t.waitKey = true
			r.askKey = true
		}
	case element.EOSEvent:
		t.eos = true
		r.checkEOS()
	case element.SenderClockEvent:
		r.senderClock(t, e)
	}
}

// senderClock takes a sender clock of track t, until the file starts:
// the latest counts, and settles the track's clock when it agrees with the
// one before. The wait for the clocks ends when every track's has settled.
func (r *Recorder) senderClock(t *recTrack, e element.SenderClockEvent) {
	if r.started || e.NTP.IsZero() {
		return
	}
	off := time.Duration(e.NTP.UnixNano()) - e.PTS
	if t.clock && off-t.offset <= clockAgree && t.offset-off <= clockAgree {
		t.settled = true
	}
	t.clock, t.offset = true, off
	if r.clockWait && !r.synced && r.state == RecorderWaiting && r.clocksSettled() {
		r.sync()
	}
}

// waitForClocks reports whether the recorder, every track ready at the
// start, holds them on for their sender clocks: for WithSyncWait by the
// wall clock (a timer) or by the media held, and not beyond the hold
// limit.
func (r *Recorder) waitForClocks() bool {
	if r.started || r.cfg.syncWait <= 0 || r.clocksSettled() {
		return false
	}
	var last time.Duration
	for _, t := range r.tracks {
		if n := len(t.held); n > 0 {
			last = max(last, t.held[n-1].PTS)
			if n >= maxHeld {
				return false
			}
		}
	}
	if !r.clockWait {
		r.clockWait, r.clockFrom = true, last
		if r.timer != nil {
			r.timer.Stop()
		}
		r.gen++
		gen := r.gen
		r.timer = time.AfterFunc(r.cfg.syncWait, func() { r.trackWaitOver(gen) })
		return true
	}
	return last-r.clockFrom < r.cfg.syncWait
}

// clocksSettled reports whether the ready tracks need no more sender
// clocks: each has a settled one, or there is only one track.
func (r *Recorder) clocksSettled() bool {
	n, settled := 0, true
	for _, t := range r.tracks {
		if t.ready {
			n++
			settled = settled && t.settled
		}
	}
	return n < 2 || settled
}

// lineUp sets the tracks' shifts from their sender clocks as the file
// starts, when every track in it has one (else it warns of those without,
// if another has one).
func (r *Recorder) lineUp() {
	r.clockWait = false
	var in []*recTrack
	var ref *recTrack
	for _, t := range r.tracks {
		if t.stream < 0 {
			continue
		}
		in = append(in, t)
		if t.clock && (ref == nil || t.kind == element.KindVideo) {
			ref = t
		}
	}
	if len(in) < 2 || ref == nil {
		return
	}
	for _, t := range in {
		if !t.clock {
			r.post(&element.Warning{MessageHeader: r.header(), Pad: t.pad.FullName(),
				Text: fmt.Sprintf("recorder: the %s track had no sender clock (RTCP sender report) within %v: the tracks are lined up by their arrival, not their capture",
					t.kind, r.cfg.syncWait)})
			return
		}
		if d := t.offset - ref.offset; d > maxClockShift || d < -maxClockShift {
			r.post(&element.Warning{MessageHeader: r.header(), Pad: t.pad.FullName(),
				Text: fmt.Sprintf("recorder: the %s track's sender clock is %v from the %s track's: not one sender's; the tracks are lined up by their arrival",
					t.kind, d, ref.kind)})
			return
		}
	}
	for _, t := range in {
		t.shift = t.offset - ref.offset
	}
	r.clocked = true
}

// hold keeps a buffer while the recorder waits for its tracks (at the
// start, and after Resume), and ends the wait when it can.
func (r *Recorder) hold(t *recTrack, b *element.Buffer) {
	if t.kind == element.KindVideo && !t.ready && !b.Keyframe() {
		t.dropped.Add(1)
		r.askKey = true
		return
	}
	if !t.ready {
		t.ready, t.first = true, b.PTS
		if r.timer == nil {
			gen := r.gen
			r.timer = time.AfterFunc(r.cfg.trackWait, func() { r.trackWaitOver(gen) })
		}
	}
	t.held = append(t.held, b.Ref())
	switch {
	case r.allReady():
		if r.waitForClocks() {
			return
		}
	case len(t.held) >= maxHeld:
		// Media comes much faster than real time and a track lags
		// behind: record without it rather than lose the start.
	case r.heldSpan() >= r.cfg.trackWait && r.othersUnconnected():
		// Media comes faster than real time and the missing tracks
		// have nothing that could send: no need to wait out the clock.
	default:
		return
	}
	r.sync()
}

// othersUnconnected reports whether no track the recorder waits for is
// fed by a src pad with caps: one that is may be behind (a transcoder
// upstream, a goroutine that lags when media comes faster than real
// time), not missing, and gets the wall-clock wait.
func (r *Recorder) othersUnconnected() bool {
	for _, t := range r.tracks {
		if !r.expected(t) || t.ready {
			continue
		}
		if src := t.pad.Peer(); src != nil {
			if _, ok := src.Caps(); ok {
				return false
			}
		}
	}
	return true
}

// expected reports whether the recorder waits for track t: at the start,
// every track of the profile; after Resume, those in the file.
func (r *Recorder) expected(t *recTrack) bool {
	return !t.eos && (!r.started || t.stream >= 0)
}

func (r *Recorder) allReady() bool {
	for _, t := range r.tracks {
		if r.expected(t) && !t.ready {
			return false
		}
	}
	return true
}

// heldSpan is how much media the held buffers span, from the earliest
// track's first.
func (r *Recorder) heldSpan() time.Duration {
	var first, last time.Duration
	var any bool
	for _, t := range r.tracks {
		if !t.ready || len(t.held) == 0 {
			continue
		}
		if !any || t.first < first {
			first = t.first
		}
		last = max(last, t.held[len(t.held)-1].PTS)
		any = true
	}
	return last - first
}

func (r *Recorder) trackWaitOver(gen int) {
	r.mu.Lock()
	defer r.unlock()
	if gen == r.gen && !r.synced && r.state == RecorderWaiting {
		r.sync()
	}
}

// sync ends a wait for tracks: at the start it chooses the file's tracks
// (warning of those missing) and makes the muxer; then it sets where file
// time goes on and writes what was held from there.
func (r *Recorder) sync() {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.gen++
	var ready []*recTrack
	for _, t := range r.tracks {
		if t.ready {
			ready = append(ready, t)
		}
	}
	if len(ready) == 0 {
		return
	}
	if !r.started {
		if err := r.startFile(ready); err != nil {
			r.finish(StopError, err)
			return
		}
		r.lineUp()
	}
	// The sync point: the video keyframe, or the earliest audio.
	at := ready[0].first + ready[0].shift
	for _, t := range ready {
		at = min(at, t.first+t.shift)
	}
	if r.video != nil && r.video.ready {
		at = r.video.first + r.video.shift
	}
	r.base = at - r.end
	r.synced = true
	r.state = RecorderRecording
	var tracks element.Kind
	for _, t := range r.tracks {
		if t.stream >= 0 {
			tracks |= t.kind
			if t.kind == element.KindVideo && !t.ready {
				t.waitKey = true // joins at its first keyframe
			}
		}
	}
	r.post(&Recording{MessageHeader: r.header(), Path: r.file.path, Tracks: tracks, Position: r.end})

	// Write what was held, in time order across tracks, from the sync
	// point on.
	type item struct {
		t *recTrack
		b *element.Buffer
	}
	var items []item
	for _, t := range r.tracks {
		for _, b := range t.held {
			items = append(items, item{t, b})
		}
		t.held, t.ready = t.held[:0], false
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(a.b.PTS+a.t.shift, b.b.PTS+b.t.shift) })
	for _, it := range items {
		switch {
		case r.state != RecorderRecording, it.b.PTS+it.t.shift < at, it.t.stream < 0:
			it.t.dropped.Add(1)
		default:
			r.write(it.t, it.b)
		}
		it.b.Unref()
	}
}

// startFile makes the muxer with a stream per ready track, and warns of
// the tracks of the profile that sent nothing.
func (r *Recorder) startFile(ready []*recTrack) error {
	r.started = true
	for _, t := range r.tracks {
		if t.ready {
			continue
		}
		what := "no media"
		if t.kind == element.KindVideo {
			what = "no keyframe"
		}
		r.post(&element.Warning{MessageHeader: r.header(), Pad: t.pad.FullName(),
			Text: fmt.Sprintf("recorder: the %s track sent %s within %v: recording without it", t.kind, what, r.cfg.trackWait)})
	}
	mux, err := ffmpeg.NewMuxer(r.file, ffmpeg.MuxerConfig{
		Format:           r.spec.format,
		FragmentDuration: r.cfg.fragment,
		Options:          r.cfg.muxerOptions,
	})
	if err != nil {
		return err
	}
	r.mux = mux
	for _, t := range ready {
		sc := ffmpeg.StreamConfig{Codec: t.codec.Name, TimeBase: ffmpeg.Nanoseconds}
		if t.kind == element.KindAudio {
			sc.SampleRate, sc.Channels = audioRate(t.codec), int(t.codec.Channels)
		}
		if t.stream, err = mux.AddStream(sc); err != nil {
			return err
		}
	}
	return nil
}

// audioRate is the sample rate of an audio codec: its RTP clock rate, but
// for G.722 (16 kHz sampled, 8 kHz clock: RFC 3551, section 4.5.2).
func audioRate(c codec.Codec) int {
	if c.MIME == codec.MIMEG722 {
		return 16000
	}
	return int(c.ClockRate)
}

// write writes one sample of a track in the file.
func (r *Recorder) write(t *recTrack, b *element.Buffer) {
	if t.waitKey {
		if !b.Keyframe() {
			t.dropped.Add(1)
			r.askKey = true
			return
		}
		t.waitKey = false
	}
	at := b.PTS + t.shift - r.base
	if at < 0 {
		t.dropped.Add(1)
		return
	}
	if r.cfg.maxDuration > 0 && at >= r.cfg.maxDuration {
		// This track is full; the file is when every track is (the
		// tracks' goroutines may be apart), or when this one is a track
		// wait past the limit (the others went quiet).
		t.full = true
		t.dropped.Add(1)
		if r.allFull() || at >= r.cfg.maxDuration+r.cfg.trackWait {
			r.finish(StopMaxDuration, nil)
		}
		return
	}
	err := r.mux.WritePacket(&ffmpeg.StreamPacket{
		Stream: t.stream, Data: b.Data,
		PTS: int64(at), DTS: ffmpeg.NoTimestamp, Duration: int64(b.Duration),
		Keyframe: b.Keyframe() || t.kind == element.KindAudio,
	})
	if err != nil {
		r.finish(StopError, err)
		return
	}
	t.written.Add(1)
	r.end = max(r.end, at+b.Duration)
	// What reached the file lags what the muxer holds (a cluster or
	// fragment, the interleaving queue): the payload given is the better
	// measure until it catches up.
	r.payload += int64(len(b.Data))
	size := max(r.mux.Bytes(), r.payload)
	r.bytes.Store(size)
	if r.cfg.maxSize > 0 && size >= r.cfg.maxSize {
		r.finish(StopMaxSize, nil)
	}
}

// allFull reports whether every track in the file reached the maximum
// duration or ended.
func (r *Recorder) allFull() bool {
	for _, t := range r.tracks {
		if t.stream >= 0 && !t.full && !t.eos {
			return false
		}
	}
	return true
}

// checkEOS stops the recording when every track that matters ended.
func (r *Recorder) checkEOS() {
	if r.state == RecorderStopped {
		return
	}
	if r.cfg.maxDuration > 0 && r.synced && r.allFull() {
		for _, t := range r.tracks {
			if t.full {
				r.finish(StopMaxDuration, nil)
				return
			}
		}
	}
	for _, t := range r.tracks {
		if !t.eos && (!r.started || t.stream >= 0) {
			if !r.synced && r.state == RecorderWaiting && r.allReady() {
				r.sync() // the ended track no longer holds the others
			}
			return
		}
	}
	r.finish(StopEndOfStream, nil)
}

// releaseHeld drops the buffers held for a sync.
func (r *Recorder) releaseHeld() {
	for _, t := range r.tracks {
		for _, b := range t.held {
			b.Unref()
			t.dropped.Add(1)
		}
		t.held, t.ready = t.held[:0], false
	}
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.gen++
	r.clockWait = false
}

// Pause stops writing until Resume; what arrives meanwhile is dropped.
// Pausing a paused recorder does nothing.
func (r *Recorder) Pause() error {
	r.mu.Lock()
	defer r.unlock()
	switch r.state {
	case RecorderStopped:
		return ErrRecorderStopped
	case RecorderPaused:
		return nil
	}
	r.state = RecorderPaused
	r.synced = false
	r.releaseHeld()
	r.post(&Paused{MessageHeader: r.header(), Path: r.file.path, Position: r.end})
	return nil
}

// Resume goes on writing after Pause: at the next video keyframe (asked
// for), placed right after what was written before the pause. Resuming a
// recorder that is not paused does nothing.
func (r *Recorder) Resume() error {
	r.mu.Lock()
	defer r.unlock()
	switch r.state {
	case RecorderStopped:
		return ErrRecorderStopped
	case RecorderPaused:
		r.state = RecorderWaiting
		r.askKey = true
	}
	return nil
}

// Stop ends the recording: it writes the file's trailer, closes it, posts
// Stopped, and returns when the file is complete, or when ctx ends first
// (the file is completed anyway). What is still queued at the sink pads is
// not written: to record everything sent, end the stream instead (EOS on
// every track stops the recorder by itself). The error is the file's, if
// writing it failed. Stop after the recording stopped returns at once.
func (r *Recorder) Stop(ctx context.Context) error {
	go func() {
		r.mu.Lock()
		defer r.unlock()
		r.finish(StopRequested, nil)
	}()
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopErr
}

// Close stops the recording, if it is still going: the pipeline calls it
// when the recorder leaves it or the pipeline closes.
func (r *Recorder) Close() error {
	r.mu.Lock()
	r.finish(StopClosed, nil)
	r.unlock()
	<-r.done
	return nil
}

// finish completes the file and stops the recorder, once.
func (r *Recorder) finish(reason StopReason, err error) {
	if r.finished {
		return
	}
	if !r.synced && r.state == RecorderWaiting && err == nil {
		// Write what was held, with the tracks there are.
		r.sync()
		if r.finished {
			return
		}
	}
	r.finished = true
	r.state = RecorderStopped
	r.releaseHeld()
	var size int64
	if r.mux != nil {
		if cerr := r.mux.Close(); cerr != nil && err == nil {
			err = cerr
		}
		size = r.mux.Bytes()
	}
	if cerr := r.file.close(r.mux == nil); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		reason = StopError
		r.post(&element.Error{MessageHeader: r.header(), Err: fmt.Errorf("recorder %s: %w", r.file.path, err)})
	}
	r.reason, r.stopErr = reason, err
	r.bytes.Store(size)
	r.post(&Stopped{MessageHeader: r.header(), Path: r.file.path, Reason: reason, Duration: r.end, Size: size, Err: err})
	r.doneNow = true
}
