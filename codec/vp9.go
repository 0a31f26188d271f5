package codec

import (
	"errors"
	"time"
)

// VP9 over RTP, RFC 9628. The payloader writes the non-flexible mode with
// a 15-bit picture ID and, on keyframes, a scalability structure giving
// the frame size, as pion's VP9Payloader and libwebrtc do. Spatial layers
// (SVC) are not assembled into superframes: the layer frames of one
// picture are concatenated.

var (
	errVP9Descriptor = errors.New("vp9: malformed payload descriptor")
	errVP9Start      = errors.New("vp9: frame starts twice in a picture")
)

// vp9Descriptor is what the depacketizer needs of a payload descriptor.
type vp9Descriptor struct {
	size  int  // bytes before the VP9 data
	begin bool // B: first packet of a layer frame
	inter bool // P: inter-picture predicted
	sid   byte // spatial layer, 0 without layer indices
}

// parseVP9Descriptor parses a payload descriptor (RFC 9628 section 4.2).
func parseVP9Descriptor(p []byte) (vp9Descriptor, error) {
	var d vp9Descriptor
	if len(p) == 0 {
		return d, errVP9Descriptor
	}
	b0 := p[0]
	pic, layers, flexible := b0&0x80 != 0, b0&0x20 != 0, b0&0x10 != 0
	d.inter, d.begin = b0&0x40 != 0, b0&0x08 != 0
	ss := b0&0x02 != 0
	pos := 1
	need := func(n int) bool { return len(p) >= pos+n }
	if pic {
		if !need(1) {
			return d, errVP9Descriptor
		}
		if p[pos]&0x80 != 0 {
			pos++
		}
		pos++
	}
	if layers {
		if !need(1) {
			return d, errVP9Descriptor
		}
		d.sid = p[pos] >> 1 & 0x07
		pos++
		if !flexible {
			pos++ // TL0PICIDX
		}
	}
	if flexible && d.inter {
		for i := 0; ; i++ {
			if i == 3 || !need(1) {
				return d, errVP9Descriptor
			}
			more := p[pos]&0x01 != 0
			pos++
			if !more {
				break
			}
		}
	}
	if ss {
		if !need(1) {
			return d, errVP9Descriptor
		}
		ns, y, g := int(p[pos]>>5)+1, p[pos]&0x10 != 0, p[pos]&0x08 != 0
		pos++
		if y {
			pos += 4 * ns
		}
		if g {
			if !need(1) {
				return d, errVP9Descriptor
			}
			ng := int(p[pos])
			pos++
			for range ng {
				if !need(1) {
					return d, errVP9Descriptor
				}
				r := int(p[pos] >> 2 & 0x03)
				pos += 1 + r
			}
		}
	}
	if pos > len(p) {
		return d, errVP9Descriptor
	}
	d.size = pos
	return d, nil
}

// VP9Keyframe reports whether a VP9 RTP payload (RFC 9628) is the first
// packet of a keyframe: its descriptor has B set and P clear, on the base
// spatial layer.
func VP9Keyframe(payload []byte) bool {
	d, err := parseVP9Descriptor(payload)
	return err == nil && d.begin && !d.inter && d.sid == 0
}

// vp9Depacketizer strips the payload descriptors and concatenates the data.
type vp9Depacketizer struct{}

func (vp9Depacketizer) append(au, payload []byte) ([]byte, pktInfo, error) {
	d, err := parseVP9Descriptor(payload)
	if err != nil {
		return au, 0, err
	}
	var info pktInfo
	if d.begin && d.sid == 0 {
		if len(au) != 0 {
			return au, 0, errVP9Start
		}
		info |= infoStart
		if !d.inter {
			info |= infoKey
		}
	}
	return append(au, payload[d.size:]...), info, nil
}

func (vp9Depacketizer) finish(au []byte) ([]byte, time.Duration, error) { return au, 0, nil }

func (vp9Depacketizer) reset() {}

// vp9KeyframeSize parses the start of a VP9 frame's uncompressed header
// (VP9 bitstream specification, section 6.2) and returns, for a keyframe,
// its size; ok is false for other frames.
func vp9KeyframeSize(frame []byte) (width, height uint16, ok bool) {
	r := bitReader{data: frame}
	if r.bits(2) != 2 { // frame_marker
		return 0, 0, false
	}
	profile := r.bits(1) | r.bits(1)<<1
	if profile == 3 {
		r.bits(1) // reserved_zero
	}
	if r.bits(1) != 0 || r.bits(1) != 0 { // show_existing_frame, frame_type
		return 0, 0, false
	}
	r.bits(2) // show_frame, error_resilient_mode
	if r.bits(24) != 0x498342 {
		return 0, 0, false
	}
	if profile >= 2 {
		r.bits(1) // ten_or_twelve_bit
	}
	if r.bits(3) != 7 { // color_space != CS_RGB
		r.bits(1) // color_range
		if profile == 1 || profile == 3 {
			r.bits(3) // subsampling_x, subsampling_y, reserved_zero
		}
	} else if profile == 1 || profile == 3 {
		r.bits(1) // reserved_zero
	}
	w, h := r.bits(16)+1, r.bits(16)+1
	if r.err {
		return 0, 0, false
	}
	return uint16(w), uint16(h), true
}

// bitReader reads big-endian bit fields; reading past the end sets err.
type bitReader struct {
	data []byte
	pos  int
	err  bool
}

func (r *bitReader) bits(n int) uint32 {
	var v uint32
	for range n {
		if r.pos>>3 >= len(r.data) {
			r.err = true
			return 0
		}
		v = v<<1 | uint32(r.data[r.pos>>3]>>(7-r.pos&7)&1)
		r.pos++
	}
	return v
}

// vp9Packetizer cuts a frame into packets of even size behind
// non-flexible descriptors.
type vp9Packetizer struct {
	pictureID uint16
}

// vp9SSSize is the scalability structure the payloader writes on
// keyframes: N_S/Y/G, the size of the one layer, N_G=1 and its one
// picture description with one reference.
const vp9SSSize = 8

func (k *vp9Packetizer) packetize(p *Payloader, au []byte, _ bool) error {
	if len(au) == 0 {
		return errEmptyFrame
	}
	w, h, key := vp9KeyframeSize(au)
	hdr := 3
	if key {
		hdr += vp9SSSize
	}
	n, each, extra := splitEven(len(au), p.budget-hdr)
	id := k.pictureID
	k.pictureID = (k.pictureID + 1) & 0x7fff
	off := 0
	for i := range n {
		size := each
		if i < extra {
			size++
		}
		b := append(p.packet(), 0x80|0x01, 0x80|byte(id>>8), byte(id)) // I, Z; M and the picture ID
		if !key {
			b[0] |= 0x40 // P
		}
		if i == 0 {
			b[0] |= 0x08 // B
			if key {
				b[0] |= 0x02 // V
				b = append(b, 0x18, byte(w>>8), byte(w), byte(h>>8), byte(h), 0x01, 0x14, 0x01)
			}
		}
		if i == n-1 {
			b[0] |= 0x04 // E
		}
		b = append(b, au[off:off+size]...)
		off += size
		p.commit(b, 0)
	}
	return nil
}
