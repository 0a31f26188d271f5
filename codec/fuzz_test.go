package codec_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
)

// The fuzz input is a run of packets, each: a control byte (bit 0 marker,
// bit 1 skip a sequence number, bit 2 next timestamp, bit 3 repeat the
// last sequence number), a 2-byte length, then that many payload bytes (or
// what is left).
const (
	fuzzMarker = 1 << iota
	fuzzGap
	fuzzNextTS
	fuzzLate
)

// encodeFuzz turns packets into a fuzz input.
func encodeFuzz(pkts []*element.Buffer) []byte {
	var out []byte
	for i, p := range pkts {
		var ctl byte
		if p.RTP.Marker {
			ctl |= fuzzMarker
		}
		if i+1 < len(pkts) && pkts[i+1].RTP.Timestamp != p.RTP.Timestamp {
			ctl |= fuzzNextTS
		}
		out = append(out, ctl)
		out = binary.BigEndian.AppendUint16(out, uint16(len(p.Data)))
		out = append(out, p.Data...)
	}
	return out
}

// fuzzDepayload feeds random packets to a depayloader of mime: it must not
// panic, and what it emits must pass check. The seeds are small streams
// from the payloader. Run with a short -fuzzminimizetime (1s): minimizing
// a new input otherwise takes the whole of a short run.
func fuzzDepayload(f *testing.F, mime string, gen streamGen, check func(t *testing.T, b *element.Buffer)) {
	caps := rtpCaps(f, mime)
	videoSizeCap = 300
	for seed := range uint64(3) {
		samples := gen(rand.New(rand.NewPCG(seed, seed)), 4, 2)
		f.Add(encodeFuzz(payloadAll(f, caps, samples, codec.WithMTU(64+int(seed)*50))))
	}
	videoSizeCap = 0
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := codec.NewDepayloader("fuzz", caps, codec.WithMaxFrameSize(1<<16))
		require.NoError(t, err)
		r := newRig(t, d, caps, false)
		r.onBuffer = func(b *element.Buffer) {
			require.NotEmpty(t, b.Data)
			require.LessOrEqual(t, len(b.Data), 1<<16)
			if check != nil {
				check(t, b)
			}
		}
		var seq uint16
		var ts uint32
		pkt := &element.Buffer{}
		for len(data) >= 3 {
			ctl, n := data[0], int(binary.BigEndian.Uint16(data[1:]))
			data = data[3:]
			n = min(n, len(data))
			if ctl&fuzzGap != 0 {
				seq++
			}
			if ctl&fuzzLate != 0 {
				seq -= 2
			}
			pkt.RTP.SequenceNumber, pkt.RTP.Timestamp, pkt.RTP.Marker = seq, ts, ctl&fuzzMarker != 0
			pkt.Data = data[:n]
			data = data[n:]
			r.in.Push(pkt)
			seq++
			if ctl&fuzzNextTS != 0 {
				ts += 3000
			}
		}
		st := d.Stats()
		require.Equal(t, uint64(r.count), st.Frames)
	})
}

func FuzzVP8Depayload(f *testing.F) {
	fuzzDepayload(f, codec.MIMEVP8, videoStream(vp8Frame), nil)
}

func FuzzH264Depayload(f *testing.F) {
	fuzzDepayload(f, codec.MIMEH264, videoStream(h264Frame), func(t *testing.T, b *element.Buffer) {
		// An Annex B stream of NAL units behind 4-byte start codes, none
		// with forbidden_zero_bit set.
		require.GreaterOrEqual(t, len(b.Data), 5)
		require.Equal(t, []byte{0, 0, 0, 1}, b.Data[:4])
		require.Zero(t, b.Data[4]&0x80)
	})
}

func FuzzVP9Depayload(f *testing.F) {
	fuzzDepayload(f, codec.MIMEVP9, videoStream(vp9Frame), nil)
}

func FuzzAV1Depayload(f *testing.F) {
	fuzzDepayload(f, codec.MIMEAV1, videoStream(av1Frame), func(t *testing.T, b *element.Buffer) {
		// A temporal unit: a temporal delimiter first.
		require.Equal(t, []byte{0x12, 0x00}, b.Data[:2])
	})
}

// FuzzH264RoundTrip payloads random access units and depayloads them: the
// result is the input's NAL units, less delimiters and filler, behind
// 4-byte start codes.
func FuzzH264RoundTrip(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1))
	for i := range 4 {
		f.Add(h264Frame(r, i, i == 0), uint16(300))
	}
	f.Add([]byte{0, 0, 1, 0x65, 0, 0, 0, 1, 0x41}, uint16(64))
	caps := rtpCaps(f, codec.MIMEH264)
	f.Fuzz(func(t *testing.T, au []byte, mtu uint16) {
		mtu = max(64, mtu%1500)
		want := normalizeAnnexB(au)
		pay, err := codec.NewPayloader("pay", caps, codec.WithMTU(int(mtu)))
		require.NoError(t, err)
		depay, err := codec.NewDepayloader("depay", caps)
		require.NoError(t, err)
		c, _ := codec.Lookup(codec.MIMEH264)
		pr := newRig(t, pay, c.Caps(element.FormatSample), true)
		pr.in.Push(&element.Buffer{Data: au, Flags: element.FlagKeyframe})
		dr := newRig(t, depay, caps, true)
		for _, p := range pr.bufs {
			require.LessOrEqual(t, len(p.Data)+12, int(mtu))
			dr.in.Push(p)
		}
		if len(want) == 0 || !h264HasKeyframe(want) {
			// Nothing to send, or no keyframe to start from.
			require.Empty(t, dr.bufs)
			return
		}
		if !h264Resyncable(want) {
			// A NAL unit RTP cannot carry as such, or an access unit that
			// starts with nothing a receiver may start on: refused.
			require.Empty(t, dr.bufs)
			return
		}
		require.Len(t, dr.bufs, 1)
		require.Equal(t, want, dr.bufs[0].Data)
	})
}

// normalizeAnnexB is what an H.264 round trip should yield: the NAL units
// of au, without trailing zero bytes, delimiters and filler, behind 4-byte
// start codes.
func normalizeAnnexB(au []byte) []byte {
	var out []byte
	for _, nal := range splitNALs(au) {
		for len(nal) > 0 && nal[len(nal)-1] == 0 {
			nal = nal[:len(nal)-1]
		}
		if len(nal) == 0 || nal[0]&0x1f == 9 || nal[0]&0x1f == 12 {
			continue
		}
		out = append(out, 0, 0, 0, 1)
		out = append(out, nal...)
	}
	return out
}

func splitNALs(au []byte) [][]byte {
	var nals [][]byte
	start := -1
	for i := 0; i+2 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 {
			if start >= 0 {
				nals = append(nals, au[start:i])
			}
			start = i + 3
			i += 2
		}
	}
	if start < 0 {
		return [][]byte{au}
	}
	return append(nals, au[start:])
}

// h264Resyncable reports whether every NAL unit of a normalized access
// unit is one a single NAL unit packet carries (types 1-23, F clear) and
// the first is one a depayloader may start a stream on: an SPS, AUD, PPS,
// SEI, or a slice with first_mb_in_slice 0.
func h264Resyncable(annexB []byte) bool {
	nals := splitNALs(annexB)
	for _, nal := range nals {
		if typ := nal[0] & 0x1f; nal[0]&0x80 != 0 || typ == 0 || typ > 23 {
			return false
		}
	}
	first := nals[0]
	switch first[0] & 0x1f {
	case 6, 7, 8, 9:
		return true
	case 1, 5:
		return len(first) > 1 && first[1]&0x80 != 0
	}
	return false
}

func h264HasKeyframe(annexB []byte) bool {
	for _, nal := range splitNALs(annexB) {
		if len(nal) > 0 && (nal[0]&0x1f == 5 || nal[0]&0x1f == 7) {
			return true
		}
	}
	return false
}
