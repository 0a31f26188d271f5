package endpoint

import (
	"context"
	"errors"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/internal/ffmpeg"
)

// A Player reads its input on a goroutine of its own, ahead of the loop
// that paces and sends, so that FFmpeg's demuxing overlaps sending. The
// reader hands samples over in batches: from a local file batchSize at a
// time, so that the loop, and the sinks it pushes to, wake once a batch
// rather than once a sample (each wake of a parked goroutine costs more
// CPU than the sending of a sample: with batches of 16, as much again as
// the reading; 64 leave a tenth of that); from any other input (network,
// pipe), whose next read may wait for data, each sample at once.
// readBatches batches exist, so the reader is at most
// readBatches*batchSize samples ahead (1.5 MB of 720p H.264 and AAC at
// 7.5 Mbit/s; a paced player holds that many of its next samples).
//
// From a live input the reader reads on as samples come, liveReadAhead
// of them ahead at most, stamping each with its arrival: the jitter
// buffer paces by arrivals, which a reader that waited for the loop would
// see late. 256 samples are over 3 s of 30 fps video with 48 kHz Opus
// audio, more than a jitter buffer holds.
const (
	batchSize     = 64
	readBatches   = 2
	liveReadAhead = 256
)

// maxFreeSamples bounds the samples a samplePool keeps for reuse: more
// than are ever out at once in steady state (read ahead, and queued in
// sinks), fewer than a burst that would pin memory for nothing.
const maxFreeSamples = 1024

// maxDirtySamples bounds the samples that come back to a samplePool with
// their payload: the reader frees a payload just before its next read
// (into the same packet), on its own thread, which then gets the same,
// still mapped and cached memory back from malloc, as a program that
// reads and frees in one loop does. Freed on the sinks' threads instead,
// payloads make malloc's arenas contend and its heap shrink and grow.
// Past the bound (a reader that is not reading: paused, or waiting for a
// slow loop), a sample drops its payload as it comes back.
const maxDirtySamples = readBatches * batchSize

// A sample is one demuxed packet sent without copying: buf's Data aliases
// pkt's payload in FFmpeg's memory, and the last Unref of buf (by whichever
// sink drops it) gives the sample back to its pool. buf, pkt and the
// release function are made once and reused, so a playing Player
// allocates nothing per packet.
type sample struct {
	buf  *element.Buffer
	pkt  *ffmpeg.DemuxedPacket
	pool *samplePool
}

// samplePool recycles samples. Samples come back from the goroutines of the
// sinks that drop the last reference, possibly after the player has
// finished: a closed pool frees what comes back, so every AVPacket is
// freed exactly once, by close or by the last release.
type samplePool struct {
	// mine is the reader's own: samples taken from dirty, payload and
	// all, to read into. Only the reader's goroutine (get) touches it,
	// and close once the reader has stopped.
	mine []*sample

	mu sync.Mutex
	// dirty came back with their payload, at most maxDirtySamples;
	// clean without.
	dirty, clean []*sample
	closed       bool
}

// get returns a sample whose buffer holds one reference, the caller's.
// Its packet may still hold a payload, which the next ReadPacketRef into
// it drops: the caller reads into it at once.
func (sp *samplePool) get() (*sample, error) {
	if len(sp.mine) == 0 {
		sp.mu.Lock()
		sp.mine, sp.dirty = sp.dirty, sp.mine
		if len(sp.mine) == 0 {
			if n := len(sp.clean); n > 0 {
				s := sp.clean[n-1]
				sp.clean[n-1] = nil
				sp.clean = sp.clean[:n-1]
				sp.mu.Unlock()
				return s, nil
			}
		}
		sp.mu.Unlock()
	}
	if n := len(sp.mine); n > 0 {
		s := sp.mine[n-1]
		sp.mine[n-1] = nil
		sp.mine = sp.mine[:n-1]
		return s, nil
	}
	pkt, err := ffmpeg.NewDemuxedPacket()
	if err != nil {
		return nil, err
	}
	s := &sample{pkt: pkt, pool: sp}
	s.buf = element.NewBuffer(s.release)
	return s, nil
}

// release runs when the last reference to s.buf is dropped: it puts s
// back, its buffer holding one reference again for the next get
// (element.Buffer's Ref on a released buffer re-arms it, as BufferPool
// does for its own), or frees the packet if the pool is closed or full.
func (s *sample) release(b *element.Buffer) {
	b.Data = nil
	b.PTS, b.Duration, b.Flags = 0, 0, 0
	sp := s.pool
	sp.mu.Lock()
	if !sp.closed && len(sp.dirty) < maxDirtySamples {
		b.Ref()
		sp.dirty = append(sp.dirty, s)
		sp.mu.Unlock()
		return
	}
	sp.mu.Unlock()
	// Enough payloads kept: drop this one here, before anyone can get s.
	s.pkt.Unref()
	sp.mu.Lock()
	if sp.closed || len(sp.clean) >= maxFreeSamples {
		sp.mu.Unlock()
		s.pkt.Free()
		return
	}
	b.Ref()
	sp.clean = append(sp.clean, s)
	sp.mu.Unlock()
}

// close frees the pooled samples and makes the pool free those that come
// back later. The reader must have stopped.
func (sp *samplePool) close() {
	sp.mu.Lock()
	free := slices.Concat(sp.mine, sp.dirty, sp.clean)
	sp.mine, sp.dirty, sp.clean, sp.closed = nil, nil, nil, true
	sp.mu.Unlock()
	for _, s := range free {
		s.pkt.Free()
	}
}

// A readItem is a sample, or the error (io.EOF at the end of the input)
// after which the reader reads no more until a seek. arrived is when a
// live input's sample was read. looped marks an io.EOF after which a
// looping reader went back to the start itself, into epoch next.
type readItem struct {
	s       *sample
	err     error
	arrived time.Time
	looped  bool
	next    uint64
}

// A readBatch is what the reader hands over at once: samples read in
// one epoch, the last item possibly an error.
type readBatch struct {
	items []readItem
	n     int
	epoch uint64
}

// release drops the samples of the batch and empties it.
func (bt *readBatch) release() {
	for i := range bt.items[:bt.n] {
		if s := bt.items[i].s; s != nil {
			s.buf.Unref()
		}
		bt.items[i] = readItem{}
	}
	bt.n = 0
}

// A reader reads a Player's input on its own goroutine. It owns the
// demuxer while it runs: seeks go to it as commands, and each successful
// seek starts a new epoch, so that the loop can tell batches read before
// the seek (dropped) from those after. The loop and the reader count
// epochs in step: only the loop asks for seeks.
type reader struct {
	d *ffmpeg.Demuxer
	// pads are the player's pads by stream index (nil: not sent); the
	// reader drops the other streams' packets at once.
	pads []*playerPad
	pool *samplePool
	// batch is how many samples a batch takes before it goes; stamp
	// says to stamp each with its arrival (a live input); loop, to go
	// back to the start at the end at once, reading on while the loop
	// sends the end, rather than wait for the loop to ask.
	batch int
	stamp bool
	loop  bool
	// A live input's arrivals: base is the first sample's (set before it
	// is handed over, read-only after), start the input's start time;
	// minTransit the smallest transit seen (see due).
	base       time.Time
	start      time.Duration
	minTransit atomic.Int64
	// free holds the batches not in use, out those handed over: the loop
	// gives each back once done with it.
	free, out chan *readBatch
	cmd       chan readCmd
	done      chan struct{}
	// epoch is the loop's: that of the batches it sends from.
	epoch uint64
	// many: read a local file's batch with one ReadPacketRefs (into
	// taken's samples, whose packets are pkts) rather than a call a
	// packet.
	many  bool
	taken []*sample
	pkts  []*ffmpeg.DemuxedPacket
}

// A readCmd asks the reader to seek; the answer comes on err (buffered),
// with the reader's epoch after it (its own loops count too).
type readCmd struct {
	to  time.Duration
	err chan seekResult
}

type seekResult struct {
	err   error
	epoch uint64
}

// errReaderStopped: a seek asked of a reader that has stopped.
var errReaderStopped = errors.New("endpoint: player: reader stopped")

func newReader(d *ffmpeg.Demuxer, pads []*playerPad, pool *samplePool, live, loop bool) *reader {
	batches := readBatches
	r := &reader{d: d, pads: pads, pool: pool, batch: 1, stamp: live, loop: loop && !live, start: d.Start(),
		cmd: make(chan readCmd), done: make(chan struct{})}
	switch {
	case d.IsFile():
		r.batch = batchSize
		r.many = true
		r.taken = make([]*sample, 0, batchSize)
		r.pkts = make([]*ffmpeg.DemuxedPacket, 0, batchSize)
	case live:
		batches = liveReadAhead
	}
	r.free = make(chan *readBatch, batches)
	r.out = make(chan *readBatch, batches)
	for range batches {
		r.free <- &readBatch{items: make([]readItem, r.batch)}
	}
	return r
}

// run reads until ctx ends, pausing after an error (or the end) until a
// seek starts it again. It keeps to one thread, so that FFmpeg's reading
// does too: the payloads it frees and allocates (see maxDirtySamples) stay
// in one malloc arena and one core's caches, which a goroutine moving
// between threads would scatter (it measured a fifth more CPU a packet).
func (r *reader) run(ctx context.Context) {
	defer close(r.done)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var epoch uint64
	for ctx.Err() == nil {
		var bt *readBatch
		select {
		case bt = <-r.free:
		case c := <-r.cmd:
			r.seek(c, &epoch)
			continue
		case <-ctx.Done():
			return
		}
		bt.epoch = epoch
		failed := r.fill(bt)
		if last := &bt.items[bt.n-1]; failed && r.loop && errors.Is(last.err, io.EOF) && r.d.Seek(0) == nil {
			epoch++
			last.looped, last.next = true, epoch
			failed = false
		}
		// Hand it over, serving seeks meanwhile: after a successful one,
		// what was read before is stale.
		stale := false
	deliver:
		for {
			select {
			case r.out <- bt:
				break deliver
			case c := <-r.cmd:
				if r.seek(c, &epoch) {
					bt.release()
					r.free <- bt // there is room: bt came from free
					stale = true
					break deliver
				}
			case <-ctx.Done():
				bt.release()
				return
			}
		}
		if stale || !failed {
			continue
		}
		// At the end or broken: read again only after a seek.
		for seeked := false; !seeked; {
			select {
			case c := <-r.cmd:
				seeked = r.seek(c, &epoch)
			case <-ctx.Done():
				return
			}
		}
	}
}

// fill reads samples of the streams the player sends into bt, up to
// r.batch of them or an error, which ends the batch; it reports whether
// one did.
func (r *reader) fill(bt *readBatch) (failed bool) {
	if r.many {
		return r.fillMany(bt)
	}
	for bt.n < r.batch {
		s, err := r.pool.get()
		if err == nil {
			if err = r.d.ReadPacketRef(s.pkt); err != nil {
				s.buf.Unref()
			}
		}
		if err != nil {
			bt.items[bt.n] = readItem{err: err}
			bt.n++
			return true
		}
		if st := s.pkt.Stream; st >= 0 && st < len(r.pads) && r.pads[st] != nil && len(s.pkt.Data) > 0 {
			s.buf.Data = s.pkt.Data
			bt.items[bt.n] = readItem{s: s}
			if r.stamp {
				now := time.Now()
				bt.items[bt.n].arrived = now
				r.arrived(now, r.pads[st], &s.pkt.StreamPacket)
			}
			bt.n++
			continue
		}
		s.buf.Unref()
	}
	return false
}

// fillMany is fill for a local file: it reads what the batch lacks with
// one ReadPacketRefs, again while samples of streams not sent leave room.
func (r *reader) fillMany(bt *readBatch) (failed bool) {
	for bt.n < r.batch {
		want := r.batch - bt.n
		for range want {
			s, err := r.pool.get()
			if err != nil {
				r.dropTaken(0)
				bt.items[bt.n] = readItem{err: err}
				bt.n++
				return true
			}
			r.taken = append(r.taken, s)
			r.pkts = append(r.pkts, s.pkt)
		}
		n, err := r.d.ReadPacketRefs(r.pkts)
		for _, s := range r.taken[:n] {
			if st := s.pkt.Stream; st >= 0 && st < len(r.pads) && r.pads[st] != nil && len(s.pkt.Data) > 0 {
				s.buf.Data = s.pkt.Data
				bt.items[bt.n] = readItem{s: s}
				bt.n++
				continue
			}
			s.buf.Unref()
		}
		r.dropTaken(n)
		if err != nil {
			bt.items[bt.n] = readItem{err: err}
			bt.n++
			return true
		}
	}
	return false
}

// dropTaken gives back the samples taken from from on, unread, and empties
// taken and pkts.
func (r *reader) dropTaken(from int) {
	for _, s := range r.taken[from:] {
		s.buf.Unref()
	}
	clear(r.taken)
	clear(r.pkts)
	r.taken, r.pkts = r.taken[:0], r.pkts[:0]
}

// The jitter buffer of a live input. A sample's transit is its arrival
// minus its timestamp (both from the first sample's): the network's delay
// plus a constant. Each sample goes out delay after the earliest its
// timestamp let it arrive, judged by the smallest transit of all the
// samples read so far (including those read ahead of it), but never
// later than delay after it arrived. So samples that arrive bunched go
// out spaced as their timestamps are; a sample that beats the smallest
// transit (the network sped up, the source's clock runs fast) lowers it;
// those that arrive late (a stall, or the burst of what FFmpeg read while
// probing, once later samples show it late) go at once. The delay a
// sample gets is at most delay, and is delay once the network is steady.

// jitterReset is how much later than the smallest transit a sample may
// arrive before the buffer takes its transit as the smallest: a source
// that jumped back in time, or stalled that long, would otherwise never
// be smoothed again.
const jitterReset = 2 * time.Second

// arrived takes the arrival of a sample into the smallest transit.
func (r *reader) arrived(now time.Time, pp *playerPad, pkt *ffmpeg.StreamPacket) {
	ts := pkt.DTS
	if ts == ffmpeg.NoTimestamp {
		ts = pkt.PTS
	}
	if ts == ffmpeg.NoTimestamp {
		return
	}
	if r.base.IsZero() {
		r.base = now
		r.minTransit.Store(int64(now.Sub(r.base) - (pp.info.Time(ts) - r.start)))
		return
	}
	transit := int64(now.Sub(r.base) - (pp.info.Time(ts) - r.start))
	if m := r.minTransit.Load(); transit < m || transit > m+int64(jitterReset) {
		r.minTransit.Store(transit)
	}
}

// due returns when the loop is to send a live sample of timestamp ts
// (from the input's start) that arrived at arrived.
func (r *reader) due(arrived time.Time, ts, delay time.Duration) time.Time {
	early := r.base.Add(ts + time.Duration(r.minTransit.Load()))
	if early.After(arrived) {
		early = arrived
	}
	return early.Add(delay)
}

// seek serves a seek command; it reports whether the demuxer moved.
func (r *reader) seek(c readCmd, epoch *uint64) bool {
	err := r.d.Seek(c.to)
	if err == nil {
		*epoch++
	}
	c.err <- seekResult{err: err, epoch: *epoch}
	return err == nil
}

// Seek moves the input, from the loop's goroutine; after it, the loop
// drops batches of earlier epochs.
func (r *reader) Seek(to time.Duration) error {
	c := readCmd{to: to, err: make(chan seekResult, 1)}
	select {
	case r.cmd <- c:
	case <-r.done:
		return errReaderStopped
	}
	res := <-c.err
	if res.err == nil {
		r.epoch = res.epoch
	}
	return res.err
}

// looped takes the reader's own return to the start after an end the loop
// has reached: the loop sends from its epoch on.
func (r *reader) looped(it readItem) { r.epoch = it.next }

// recycle gives a batch the loop is done with back to the reader.
func (r *reader) recycle(bt *readBatch) {
	bt.release()
	r.free <- bt // never blocks: free has room for every batch
}

// stop ends the reader (cancel cancels the context it runs under; closing
// the demuxer interrupts a read in progress), waits for it, and releases
// what it had read ahead.
func (r *reader) stop(cancel context.CancelFunc) {
	cancel()
	_ = r.d.Close()
	<-r.done
	for {
		select {
		case bt := <-r.out:
			bt.release()
		default:
			return
		}
	}
}
