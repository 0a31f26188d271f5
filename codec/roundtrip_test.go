package codec_test

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
)

// payOpts are the payloader options of the round trips: fixed values, and
// a sequence number and timestamp about to wrap.
func payOpts(mtu int) []codec.Option {
	return []codec.Option{
		codec.WithMTU(mtu), codec.WithSSRC(0xdecafbad), codec.WithPayloadType(100),
		codec.WithSequenceNumber(65500), codec.WithTimestamp(0xffffff00), codec.WithPictureID(0x7ff0),
	}
}

// assertSame checks that got, the depayloader's samples, are want: same
// bytes, order, keyframe flags, PTS (to within one clock tick) and, for
// audio, duration.
func assertSame(t *testing.T, want []sample, got []*element.Buffer, clock uint32) {
	t.Helper()
	require.Len(t, got, len(want))
	tick := time.Second / time.Duration(clock)
	for i, b := range got {
		w := want[i]
		require.Equal(t, w.data, b.Data, "sample %d bytes", i)
		assert.Equal(t, w.key, b.Keyframe(), "sample %d keyframe flag", i)
		assert.InDelta(t, float64(w.pts-want[0].pts), float64(b.PTS), float64(tick), "sample %d PTS", i)
		assert.Equal(t, w.dur, b.Duration, "sample %d duration", i)
	}
}

// checkPackets checks what a payloader made: sizes within the MTU, one
// SSRC and payload type, consecutive sequence numbers, one timestamp per
// frame, the marker bit and FlagEndOfFrame on each video frame's last
// packet, FlagKeyframe on a keyframe's first.
func checkPackets(t *testing.T, tc codecCase, samples []sample, pkts []*element.Buffer, mtu int) {
	t.Helper()
	require.NotEmpty(t, pkts)
	seq := pkts[0].RTP.SequenceNumber
	frame := -1
	var ts uint32
	for i, p := range pkts {
		h := p.RTP
		assert.LessOrEqual(t, 12+len(p.Data), mtu, "packet %d size", i)
		assert.Equal(t, uint8(2), h.Version)
		assert.Equal(t, uint32(0xdecafbad), h.SSRC)
		assert.Equal(t, uint8(100), h.PayloadType)
		assert.Equal(t, seq, h.SequenceNumber, "packet %d sequence number", i)
		seq++
		first := i == 0 || h.Timestamp != ts || !tc.video
		if first {
			frame++
			ts = h.Timestamp
		}
		if tc.video {
			last := i == len(pkts)-1 || pkts[i+1].RTP.Timestamp != h.Timestamp
			assert.Equal(t, last, h.Marker, "packet %d marker", i)
			assert.Equal(t, last, p.Flags&element.FlagEndOfFrame != 0, "packet %d end of frame", i)
			assert.Equal(t, first && samples[frame].key, p.Keyframe(), "packet %d keyframe flag", i)
		} else {
			assert.Equal(t, i == 0, h.Marker, "audio marker on the first packet only")
		}
	}
	assert.Equal(t, len(samples)-1, frame, "frames by timestamp")
}

// TestRoundTrip: samples → payloader → depayloader → the same samples, for
// every codec, at the default MTU and a small one that fragments more.
func TestRoundTrip(t *testing.T) {
	for _, tc := range codecCases(t) {
		for _, mtu := range []int{codec.DefaultMTU, 300} {
			t.Run(tc.name+"/mtu="+strconv.Itoa(mtu), func(t *testing.T) {
				samples := tc.gen(rand.New(rand.NewPCG(1, uint64(mtu))), 40, 10)
				if tc.name == "h264-mode0" && mtu < codec.DefaultMTU {
					t.Skip("packetization-mode 0 cannot fragment")
				}
				pkts := payloadAll(t, tc.caps, samples, payOpts(mtu)...)
				checkPackets(t, tc, samples, pkts, mtu)
				if tc.check != nil && mtu == codec.DefaultMTU {
					tc.check(t, pkts)
				}
				r, d := depayloadAll(t, tc.caps, pkts)
				assertSame(t, samples, r.bufs, tc.caps.ClockRate)
				st := d.Stats()
				assert.Equal(t, uint64(len(samples)), st.Frames)
				assert.Zero(t, st.DroppedFrames)
				assert.Zero(t, st.LostPackets)
				assert.Zero(t, r.keyframeRequests())
			})
		}
	}
}

// videoCases are the codecCases with keyframes.
func videoCases(t *testing.T) []codecCase {
	var out []codecCase
	for _, tc := range codecCases(t) {
		if tc.video {
			out = append(out, tc)
		}
	}
	return out
}

// frameOf maps each packet to the index of its sample, by timestamp.
func frameOf(pkts []*element.Buffer) []int {
	idx := make([]int, len(pkts))
	f := 0
	for i := range pkts {
		if i > 0 && pkts[i].RTP.Timestamp != pkts[i-1].RTP.Timestamp {
			f++
		}
		idx[i] = f
	}
	return idx
}

// expectAfterLoss returns the sample indices a depayloader emits when the
// frames in damaged are lost: every frame but those, and, after each, the
// delta frames before the next keyframe.
func expectAfterLoss(samples []sample, damaged map[int]bool) []int {
	var out []int
	waiting := false
	for i, s := range samples {
		if damaged[i] {
			waiting = true
			continue
		}
		if waiting && !s.key {
			continue
		}
		waiting = false
		out = append(out, i)
	}
	return out
}

// assertSubset checks that got are the samples want[idx...], byte for byte;
// the depayloader's PTS are the samples' minus base.
func assertSubset(t *testing.T, samples []sample, idx []int, got []*element.Buffer, base time.Duration) {
	t.Helper()
	want := make([]sample, len(idx))
	for i, j := range idx {
		want[i] = samples[j]
	}
	gotIdx := make([]int, len(got))
	for i, b := range got {
		gotIdx[i] = -1
		for j, s := range samples {
			if absDur(s.pts-base-b.PTS) < 20*time.Microsecond {
				gotIdx[i] = j
				break
			}
		}
	}
	require.Equal(t, idx, gotIdx, "samples emitted")
	for i, b := range got {
		require.Equal(t, want[i].data, b.Data, "sample %d bytes", idx[i])
		require.Equal(t, want[i].key, b.Keyframe(), "sample %d keyframe", idx[i])
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// TestLossDropsFrame: one packet lost inside a frame drops that frame and
// the deltas after it until the next keyframe, asks for a keyframe, and
// never yields wrong bytes; for every video codec and wherever in the
// frame the packet was (first, middle, last).
func TestLossDropsFrame(t *testing.T) {
	for _, tc := range videoCases(t) {
		samples := tc.gen(rand.New(rand.NewPCG(7, 7)), 30, 10)
		pkts := payloadAll(t, tc.caps, samples, payOpts(codec.DefaultMTU)...)
		frames := frameOf(pkts)
		for _, where := range []struct {
			name  string
			frame int // sample whose packet goes
			pick  func(first, n int) int
		}{
			{"delta-middle", 5, func(f, n int) int { return f + n/2 }},
			{"delta-first", 6, func(f, n int) int { return f }},
			{"delta-last", 7, func(f, n int) int { return f + n - 1 }},
			{"keyframe-first", 10, func(f, n int) int { return f }},
			{"keyframe-last", 20, func(f, n int) int { return f + n - 1 }},
		} {
			t.Run(tc.name+"/"+where.name, func(t *testing.T) {
				first := slices.Index(frames, where.frame)
				n := 0
				for _, f := range frames {
					if f == where.frame {
						n++
					}
				}
				require.Positive(t, n)
				drop := where.pick(first, n)
				kept := slices.Delete(slices.Clone(pkts), drop, drop+1)
				r, d := depayloadAll(t, tc.caps, kept)
				want := expectAfterLoss(samples, map[int]bool{where.frame: true})
				assertSubset(t, samples, want, r.bufs, 0)
				assert.Positive(t, r.keyframeRequests(), "keyframe requested")
				st := d.Stats()
				assert.Equal(t, uint64(1), st.LostPackets)
				// Dropped are the frames not emitted of which a packet came.
				seen := map[int]bool{}
				for i, f := range frames {
					if i != drop {
						seen[f] = true
					}
				}
				assert.Equal(t, uint64(len(seen)-len(want)), st.DroppedFrames)
				// The first sample after the loss says so.
				for _, b := range r.bufs {
					if b.PTS > samples[where.frame].pts-samples[0].pts {
						assert.NotZero(t, b.Flags&element.FlagDiscont, "FlagDiscont after the loss")
						break
					}
				}
			})
		}
	}
}

// TestLossAudio: a lost audio packet loses exactly its sample; the next is
// flagged FlagDiscont and nobody asks for a keyframe.
func TestLossAudio(t *testing.T) {
	for _, tc := range codecCases(t) {
		if tc.video {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			samples := tc.gen(rand.New(rand.NewPCG(3, 3)), 20, 1)
			pkts := payloadAll(t, tc.caps, samples, payOpts(codec.DefaultMTU)...)
			require.Len(t, pkts, len(samples))
			kept := slices.Delete(slices.Clone(pkts), 7, 8)
			r, _ := depayloadAll(t, tc.caps, kept)
			want := slices.Delete(seq(len(samples)), 7, 8)
			assertSubset(t, samples, want, r.bufs, 0)
			assert.NotZero(t, r.bufs[7].Flags&element.FlagDiscont)
			assert.Zero(t, r.bufs[6].Flags&element.FlagDiscont)
			assert.Zero(t, r.keyframeRequests())
		})
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestRandomLoss: with 5% of packets lost at random, every sample a
// depayloader emits is one of the originals, byte for byte; it recovers at
// keyframes and asks for them.
func TestRandomLoss(t *testing.T) {
	for _, tc := range codecCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			samples := tc.gen(rand.New(rand.NewPCG(11, 13)), 300, 15)
			pkts := payloadAll(t, tc.caps, samples, payOpts(codec.DefaultMTU)...)
			loss := rand.New(rand.NewPCG(5, 5))
			kept := slices.DeleteFunc(slices.Clone(pkts), func(*element.Buffer) bool { return loss.Float64() < 0.05 })
			r, d := depayloadAll(t, tc.caps, kept)
			byPTS := map[time.Duration]sample{}
			for _, s := range samples {
				byPTS[s.pts] = s
			}
			require.NotEmpty(t, r.bufs)
			var keys int
			for _, b := range r.bufs {
				w, ok := byPTS[b.PTS]
				if !ok {
					// PTS rounded to the RTP clock.
					for p, s := range byPTS {
						if absDur(p-b.PTS) < 20*time.Microsecond {
							w, ok = s, true
						}
					}
				}
				require.True(t, ok, "sample at %v is none of the originals", b.PTS)
				require.Equal(t, w.data, b.Data, "sample at %v differs from the original", b.PTS)
				require.Equal(t, w.key, b.Keyframe())
				if b.Keyframe() {
					keys++
				}
			}
			st := d.Stats()
			assert.Positive(t, st.LostPackets)
			t.Logf("%d packets, %d lost; %d of %d samples out (%d keyframes), %d dropped, %d keyframe requests",
				len(pkts), st.LostPackets, len(r.bufs), len(samples), keys, st.DroppedFrames, r.keyframeRequests())
			if tc.video {
				assert.Positive(t, r.keyframeRequests())
				assert.Greater(t, len(r.bufs), len(samples)/4, "recovers at keyframes")
			} else {
				assert.Equal(t, len(samples)-int(st.LostPackets), len(r.bufs))
			}
		})
	}
}
