package endpoint

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/medley-go/medley/element"
)

// ErrUnknownLayer is returned by SimulcastSelector.Select for a layer the
// selector was not made with.
var ErrUnknownLayer = errors.New("endpoint: unknown simulcast layer")

// SimulcastSelector turns the layers of a simulcast track (the rid src pads
// a WebRTC endpoint adds, "video_0_h", "video_0_l", ...) into one RTP
// stream, as an SFU does for each of its viewers: it forwards one layer and
// drops the others, and switches only where the new layer starts a
// keyframe, so that the decoder downstream never sees a frame it cannot
// decode. Its output is one continuous stream: a fixed SSRC, sequence
// numbers without a jump, timestamps that go on from the last forwarded
// packet.
//
// Select switches by hand: the selector asks the new layer for a keyframe
// and keeps forwarding the current one until it comes. WithAutoSelect makes
// it follow the BitrateHint events from downstream (a WebRTC endpoint's
// bandwidth estimate) instead: the layer with the highest measured bitrate
// that fits. Keyframe requests from downstream go to the layer being
// forwarded. Each switch posts a SimulcastLayerChanged message.
//
// Its sink pads are named after the layers and are inline: the layers'
// packets are handled on their pushers' goroutines, one at a time.
type SimulcastSelector struct {
	element.Base
	src    *element.Pad
	layers []*simLayer
	auto   bool

	// pushMu orders what the layers' goroutines push; mu guards the
	// state and is never held while pushing, so that an inline element
	// downstream may send events upstream from inside Push.
	pushMu  sync.Mutex
	mu      sync.Mutex
	cur     int // the layer forwarded, -1 before the first keyframe
	want    int // the layer to switch to at its next keyframe
	hint    int64
	pool    *element.BufferPool
	ssrc    uint32
	started bool
	seqOff  uint16
	tsOff   uint32
	lastSeq uint16
	lastTS  uint32
	lastOut time.Time
	inFrame bool // the last packet forwarded did not end its frame
	eos     int  // layers that ended
	clock   uint32
}

type simLayer struct {
	rid  string
	pad  *element.Pad
	caps element.Caps
	eos  bool
	// asked is when the layer was last asked for a keyframe while the
	// selector waited for one.
	asked time.Time

	// The layer's measured bitrate, over windows of rateWindow.
	bytes   int
	since   time.Time
	bitrate int64
}

// rateWindow is the span over which a layer's bitrate is measured.
const rateWindow = time.Second

// askInterval is how often, at most, the selector asks a layer it waits
// for to send a keyframe.
const askInterval = time.Second

// upgradeMargin is how much room a higher layer needs under the bitrate
// hint before the automatic selection moves up to it, so that a layer
// near the limit is not picked and dropped at every hint.
const upgradeMargin = 1.15

// SimulcastSelectorOption configures a SimulcastSelector.
type SimulcastSelectorOption func(*SimulcastSelector)

// WithAutoSelect makes the selector choose the layer from the bitrate
// hints that reach its src pad: the one with the highest measured bitrate
// at or under the hint (the lowest when none fits, the highest when the
// hint lifts the limit). Select still works and moves the start point.
func WithAutoSelect() SimulcastSelectorOption {
	return func(s *SimulcastSelector) { s.auto = true }
}

// NewSimulcastSelector returns a selector with one sink pad per layer, named
// by the layers' rids, and an RTP video src pad "src". The first layer is
// forwarded from its first keyframe on.
func NewSimulcastSelector(name string, rids []string, opts ...SimulcastSelectorOption) (*SimulcastSelector, error) {
	if len(rids) == 0 {
		return nil, fmt.Errorf("endpoint: simulcast selector %s: no layers", name)
	}
	s := &SimulcastSelector{Base: element.NewBase(name), cur: -1, pool: element.NewBufferPool(receiveBufferSize)}
	var b [4]byte
	_, _ = rand.Read(b[:])
	s.ssrc = binary.BigEndian.Uint32(b[:])
	caps := element.CapsList{{Kind: element.KindVideo, Format: element.FormatRTP}}
	s.src = element.NewSrcPad("src", caps, element.WithEventHandler(s.upstream))
	s.AddPad(s.src)
	for i, rid := range rids {
		if rid == "" {
			return nil, fmt.Errorf("endpoint: simulcast selector %s: empty layer name", name)
		}
		for _, l := range s.layers {
			if l.rid == rid {
				return nil, fmt.Errorf("endpoint: simulcast selector %s: layer %q twice", name, rid)
			}
		}
		l := &simLayer{rid: rid}
		l.pad = element.NewSinkPad(rid, caps, func(b *element.Buffer) error {
			s.chain(i, b)
			return nil
		}, element.Inline(), element.WithEventHandler(func(ev element.Event) { s.event(i, ev) }))
		s.layers = append(s.layers, l)
		s.AddPad(l.pad)
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// SinkPad returns the sink pad of layer rid, or nil.
func (s *SimulcastSelector) SinkPad(rid string) *element.Pad {
	for _, l := range s.layers {
		if l.rid == rid {
			return l.pad
		}
	}
	return nil
}

// SrcPad returns the output pad.
func (s *SimulcastSelector) SrcPad() *element.Pad { return s.src }

// Layer returns the rid of the layer being forwarded ("" before the first
// keyframe) and of the layer it will switch to at that layer's next
// keyframe (the same when no switch is pending).
func (s *SimulcastSelector) Layer() (current, next string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur >= 0 {
		current = s.layers[s.cur].rid
	}
	return current, s.layers[s.want].rid
}

// Bitrates returns each layer's bitrate measured over the last second, in
// bits per second, by rid.
func (s *SimulcastSelector) Bitrates() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int64, len(s.layers))
	for _, l := range s.layers {
		m[l.rid] = l.bitrate
	}
	return m
}

// Select switches to layer rid at its next keyframe, which it asks for.
func (s *SimulcastSelector) Select(rid string) error {
	for i, l := range s.layers {
		if l.rid == rid {
			s.mu.Lock()
			ask := s.setWantLocked(i)
			s.mu.Unlock()
			if ask {
				l.pad.RequestKeyframe()
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %q (selector %s)", ErrUnknownLayer, rid, s.Name())
}

// setWantLocked makes layer i the one to switch to and tells whether to
// ask it for a keyframe.
func (s *SimulcastSelector) setWantLocked(i int) bool {
	if s.want == i {
		return false
	}
	s.want = i
	if i == s.cur {
		return false
	}
	s.layers[i].asked = time.Now()
	return true
}

// chain takes one packet of layer i.
func (s *SimulcastSelector) chain(i int, b *element.Buffer) {
	now := time.Now()
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	s.mu.Lock()
	l := s.layers[i]
	ask := s.measureLocked(l, len(b.Data), now)
	if i != s.cur && (i != s.want || !b.Keyframe()) {
		if i == s.want && now.Sub(l.asked) >= askInterval {
			// Waiting for a keyframe that may never come unasked (the
			// request of Select may have been lost, or there was none
			// for the first layer).
			l.asked, ask = now, l.pad
		}
		s.mu.Unlock()
		s.ask(ask)
		return
	}
	var changed *SimulcastLayerChanged
	var caps element.Caps
	if i != s.cur {
		changed, caps = s.switchLocked(i, b, now)
	}
	out := s.pool.Get()
	out.SetRTPHeader(&b.RTP)
	out.RTP.SSRC = s.ssrc
	out.RTP.SequenceNumber = b.RTP.SequenceNumber + s.seqOff
	out.RTP.Timestamp = b.RTP.Timestamp + s.tsOff
	out.Data = append(out.Data[:0], b.Data...)
	out.PTS, out.Duration, out.Flags = b.PTS, b.Duration, b.Flags
	s.lastSeq, s.lastTS, s.lastOut = out.RTP.SequenceNumber, out.RTP.Timestamp, now
	s.inFrame = b.Flags&element.FlagEndOfFrame == 0 && !b.RTP.Marker
	s.mu.Unlock()
	s.ask(ask)
	if changed != nil {
		s.setCaps(l.rid, caps)
		s.Post(changed)
	}
	s.src.Push(out)
	out.Unref()
}

// ask sends a keyframe request to pad p, if any.
func (s *SimulcastSelector) ask(p *element.Pad) {
	if p != nil {
		p.RequestKeyframe()
	}
}

// setCaps announces the caps of layer rid on the src pad if they differ
// from the current ones.
func (s *SimulcastSelector) setCaps(rid string, c element.Caps) {
	if c.Codec == "" {
		return
	}
	if cur, ok := s.src.Caps(); ok && cur.String() == c.String() {
		return
	}
	if err := s.src.SetCaps(c); err != nil {
		s.PostError(fmt.Errorf("endpoint: simulcast selector %s: layer %s: %w", s.Name(), rid, err))
	}
}

// switchLocked makes layer i, whose keyframe starts with b, the one
// forwarded: its numbering is shifted to follow the last packet sent. It
// returns the message to post and the caps to announce.
func (s *SimulcastSelector) switchLocked(i int, b *element.Buffer, now time.Time) (*SimulcastLayerChanged, element.Caps) {
	from := ""
	if s.cur >= 0 {
		from = s.layers[s.cur].rid
	}
	l := s.layers[i]
	if !s.started {
		s.started = true
		s.seqOff, s.tsOff = 0, 0
	} else {
		next := s.lastSeq + 1
		if s.inFrame {
			// The frame of the old layer will never end: leave a
			// sequence gap so that the depayloader downstream drops it
			// as lost rather than emitting half a frame.
			next++
		}
		s.seqOff = next - b.RTP.SequenceNumber
		clock := l.caps.ClockRate
		if clock == 0 {
			clock = 90000
		}
		step := uint32(max(now.Sub(s.lastOut).Seconds()*float64(clock), 1))
		s.tsOff = s.lastTS + step - b.RTP.Timestamp
	}
	s.cur = i
	return &SimulcastLayerChanged{MessageHeader: element.Header(s.Name()), From: from, To: l.rid}, l.caps
}

// measureLocked counts n bytes of layer l and rolls its bitrate window;
// with automatic selection, each new measure may move the choice: it
// returns the pad to ask for a keyframe then.
func (s *SimulcastSelector) measureLocked(l *simLayer, n int, now time.Time) *element.Pad {
	if l.since.IsZero() {
		l.since = now
	}
	l.bytes += n
	if d := now.Sub(l.since); d >= rateWindow {
		l.bitrate = int64(float64(l.bytes*8) / d.Seconds())
		l.bytes, l.since = 0, now
		if s.auto {
			return s.autoLocked()
		}
	}
	return nil
}

// autoLocked picks the layer for the last bitrate hint from the measured
// bitrates; it returns the layer's pad when that is a change, to ask it for
// a keyframe.
func (s *SimulcastSelector) autoLocked() *element.Pad {
	best, lowest := -1, -1
	cur := s.want
	for i, l := range s.layers {
		if l.eos || l.bitrate == 0 {
			continue
		}
		if lowest < 0 || l.bitrate < s.layers[lowest].bitrate {
			lowest = i
		}
		fits := s.hint == 0 || l.bitrate <= s.hint
		if i != cur && s.hint > 0 && l.bitrate > s.layers[cur].bitrate {
			// Moving up needs room to spare.
			fits = float64(l.bitrate)*upgradeMargin <= float64(s.hint)
		}
		if fits && (best < 0 || l.bitrate > s.layers[best].bitrate) {
			best = i
		}
	}
	if best < 0 {
		best = lowest
	}
	if best >= 0 && s.setWantLocked(best) {
		return s.layers[best].pad
	}
	return nil
}

// event handles a downstream event of layer i.
func (s *SimulcastSelector) event(i int, ev element.Event) {
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	s.mu.Lock()
	l := s.layers[i]
	switch e := ev.(type) {
	case element.CapsEvent:
		l.caps = e.Caps
		cur := i == s.cur
		s.mu.Unlock()
		if cur {
			s.setCaps(l.rid, e.Caps)
		}
	case element.EOSEvent:
		if !l.eos {
			l.eos = true
			s.eos++
		}
		if s.eos == len(s.layers) {
			s.mu.Unlock()
			_ = s.src.PushEvent(ev)
			return
		}
		var ask *element.Pad
		if i == s.want {
			// Go on with the layer of highest bitrate still there.
			next := -1
			for j, o := range s.layers {
				if !o.eos && (next < 0 || o.bitrate > s.layers[next].bitrate) {
					next = j
				}
			}
			if next >= 0 && s.setWantLocked(next) {
				ask = s.layers[next].pad
			}
		}
		s.mu.Unlock()
		s.ask(ask)
	case element.DiscontEvent:
		cur := i == s.cur
		s.mu.Unlock()
		if cur {
			_ = s.src.PushEvent(ev)
		}
	default:
		s.mu.Unlock()
	}
}

// upstream handles an event from downstream at the src pad. It may come
// from an inline element downstream while chain pushes: it takes mu only.
func (s *SimulcastSelector) upstream(ev element.Event) {
	s.mu.Lock()
	switch e := ev.(type) {
	case element.BitrateHint:
		s.hint = e.BitsPerSecond
		var ask *element.Pad
		if s.auto {
			ask = s.autoLocked()
		}
		s.mu.Unlock()
		s.ask(ask)
	case element.KeyframeRequest:
		// The layer forwarded, and the one waited for.
		pads := []*element.Pad{s.layers[s.want].pad}
		if s.cur >= 0 && s.cur != s.want {
			pads = append(pads, s.layers[s.cur].pad)
		}
		s.mu.Unlock()
		for _, p := range pads {
			p.RequestKeyframe()
		}
	default:
		s.mu.Unlock()
	}
}

// SimulcastLayerChanged is posted when a SimulcastSelector starts
// forwarding a layer: From is "" for the first.
type SimulcastLayerChanged struct {
	element.MessageHeader
	From, To string
}
