package ffmpeg

import (
	"encoding/binary"
	"fmt"
	"image"
	"math"

	"github.com/asticode/go-astiav"
)

// This file holds helpers to put Go media into frames and read it back:
// images, samples, a synthetic moving picture and tone, and PSNR, for tests
// here and in the packages that build on this one.

// FromImage copies img into f, which must be a sole holder's writable frame
// of img's size: *image.YCbCr 4:2:0 into yuv420p (or yuvj420p), *image.Gray
// into gray.
func (f *Frame) FromImage(img image.Image) error {
	v := f.Video()
	if img.Bounds().Dx() != v.Width || img.Bounds().Dy() != v.Height {
		return fmt.Errorf("%w: image %v into frame %v", ErrFormat, img.Bounds().Size(), v)
	}
	switch m := img.(type) {
	case *image.YCbCr:
		if m.SubsampleRatio != image.YCbCrSubsampleRatio420 ||
			(v.PixelFormat != astiav.PixelFormatYuv420P && v.PixelFormat != astiav.PixelFormatYuvj420P) {
			return fmt.Errorf("%w: %v image into %v frame", ErrFormat, m.SubsampleRatio, v.PixelFormat)
		}
		y0 := m.YOffset(m.Rect.Min.X, m.Rect.Min.Y)
		c0 := m.COffset(m.Rect.Min.X, m.Rect.Min.Y)
		if err := f.CopyPlane(0, m.Y[y0:], m.YStride); err != nil {
			return err
		}
		if err := f.CopyPlane(1, m.Cb[c0:], m.CStride); err != nil {
			return err
		}
		return f.CopyPlane(2, m.Cr[c0:], m.CStride)
	case *image.Gray:
		if v.PixelFormat != astiav.PixelFormatGray8 {
			return fmt.Errorf("%w: gray image into %v frame", ErrFormat, v.PixelFormat)
		}
		return f.CopyPlane(0, m.Pix[m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y):], m.Stride)
	}
	return fmt.Errorf("%w: image type %T", ErrFormat, img)
}

// YCbCr copies a yuv420p frame into a new image.
func (f *Frame) YCbCr() (*image.YCbCr, error) {
	v := f.Video()
	if v.PixelFormat != astiav.PixelFormatYuv420P && v.PixelFormat != astiav.PixelFormatYuvj420P {
		return nil, fmt.Errorf("%w: %v frame to YCbCr", ErrFormat, v)
	}
	img := image.NewYCbCr(image.Rect(0, 0, v.Width, v.Height), image.YCbCrSubsampleRatio420)
	for i, dst := range [][]byte{img.Y, img.Cb, img.Cr} {
		stride := img.YStride
		if i > 0 {
			stride = img.CStride
		}
		src, ls, row := f.Plane(i), f.Linesize(i), f.RowBytes(i)
		for y := 0; y*stride < len(dst) && y*ls < len(src); y++ {
			copy(dst[y*stride:y*stride+row], src[y*ls:y*ls+row])
		}
	}
	return img, nil
}

// PSNR returns the peak signal-to-noise ratio in dB between plane i of two
// 8-bit video frames of the same format (+Inf when they are equal).
func PSNR(a, b *Frame, plane int) (float64, error) {
	if a.Video() != b.Video() || !a.Video().valid() {
		return 0, fmt.Errorf("%w: PSNR of %v and %v", ErrFormat, a.Video(), b.Video())
	}
	pa, pb := a.Plane(plane), b.Plane(plane)
	la, lb, row := a.Linesize(plane), b.Linesize(plane), a.RowBytes(plane)
	if pa == nil || pb == nil || row <= 0 {
		return 0, fmt.Errorf("%w: no plane %d", ErrFormat, plane)
	}
	rows := len(pa) / la
	var sum float64
	for y := range rows {
		ra, rb := pa[y*la:y*la+row], pb[y*lb:y*lb+row]
		for x := range ra {
			d := float64(ra[x]) - float64(rb[x])
			sum += d * d
		}
	}
	mse := sum / float64(rows*row)
	if mse == 0 {
		return math.Inf(1), nil
	}
	return 10 * math.Log10(255*255/mse), nil
}

// sine is one period of a sine in 256 steps, scaled to ±64.
var sine = func() (t [256]int) {
	for i := range t {
		t[i] = int(math.Round(64 * math.Sin(2*math.Pi*float64(i)/256)))
	}
	return t
}()

// texture is a fixed pseudo-random grain, 256x256, ±6.
var texture = func() (t [256 * 256]int8) {
	x := uint32(0x6d65646c)
	for i := range t {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		t[i] = int8(int(x>>24)%13 - 6)
	}
	return t
}()

// DrawPattern draws frame n of a synthetic moving picture into a yuv420p
// frame f: drifting smooth waves over a panning grain, a bright box
// crossing the picture and shifting colours, so that consecutive frames
// differ and an encoder has detail and motion to code, as a camera would
// give.
func DrawPattern(f *Frame, n int) error {
	v := f.Video()
	if v.PixelFormat != astiav.PixelFormatYuv420P {
		return fmt.Errorf("%w: pattern into %v", ErrFormat, v)
	}
	y, ly := f.Plane(0), f.Linesize(0)
	bx, by := (n*6)%(v.Width+v.Height/3)-v.Height/3, v.Height/3+(n*2)%(v.Height/3)
	bs := v.Height / 3
	for r := range v.Height {
		row := y[r*ly : r*ly+v.Width]
		wr := sine[(r*2+n*3)&255]
		inBoxRow := r >= by && r < by+bs
		tex := texture[((r+n)&255)*256:][:256]
		for c := range row {
			val := 128 + (sine[(c*3+n*5)&255]+wr)*3/4 + int(tex[(c+2*n)&255])
			if inBoxRow && c >= bx && c < bx+bs {
				val = 230 - (c-bx)/4
			}
			row[c] = byte(val)
		}
	}
	cw, ch := (v.Width+1)/2, (v.Height+1)/2
	for p := 1; p <= 2; p++ {
		pl, lc := f.Plane(p), f.Linesize(p)
		for r := range ch {
			row := pl[r*lc : r*lc+cw]
			for c := range row {
				row[c] = byte(128 + sine[(c+r*p+n*(p+1))&255]/2)
			}
		}
	}
	return nil
}

// FillTone writes a sine of freq Hz at amplitude (0 to 1 of full scale)
// into every channel of audio frame f, whose first sample is sample number
// start of the tone. Formats: s16, s16p, flt, fltp.
func FillTone(f *Frame, freq, amplitude float64, start int64) error {
	a := f.Audio()
	planar := false
	size := 0
	switch a.SampleFormat {
	case astiav.SampleFormatS16, astiav.SampleFormatS16P:
		size, planar = 2, a.SampleFormat == astiav.SampleFormatS16P
	case astiav.SampleFormatFlt, astiav.SampleFormatFltp:
		size, planar = 4, a.SampleFormat == astiav.SampleFormatFltp
	default:
		return fmt.Errorf("%w: tone into %v", ErrFormat, a)
	}
	n := f.Samples()
	for i := range n {
		s := amplitude * math.Sin(2*math.Pi*freq*float64(start+int64(i))/float64(a.SampleRate))
		for ch := range a.Channels {
			var b []byte
			if planar {
				b = f.Plane(ch)[i*size:]
			} else {
				b = f.Plane(0)[(i*a.Channels+ch)*size:]
			}
			if size == 2 {
				binary.LittleEndian.PutUint16(b, uint16(int16(math.Round(s*32767))))
			} else {
				binary.LittleEndian.PutUint32(b, math.Float32bits(float32(s)))
			}
		}
	}
	return nil
}

// AppendSamples appends channel ch of audio frame f to dst as float32 in
// [-1, 1]. Formats: u8, s16, s32, flt, dbl, planar or not.
func (f *Frame) AppendSamples(dst []float32, ch int) ([]float32, error) {
	a := f.Audio()
	if ch < 0 || ch >= a.Channels {
		return dst, fmt.Errorf("%w: channel %d of %v", ErrFormat, ch, a)
	}
	var size int
	var planar bool
	var conv func([]byte) float32
	switch a.SampleFormat {
	case astiav.SampleFormatU8, astiav.SampleFormatU8P:
		size, conv = 1, func(b []byte) float32 { return (float32(b[0]) - 128) / 128 }
	case astiav.SampleFormatS16, astiav.SampleFormatS16P:
		size, conv = 2, func(b []byte) float32 { return float32(int16(binary.LittleEndian.Uint16(b))) / 32768 }
	case astiav.SampleFormatS32, astiav.SampleFormatS32P:
		size, conv = 4, func(b []byte) float32 { return float32(int32(binary.LittleEndian.Uint32(b))) / 2147483648 }
	case astiav.SampleFormatFlt, astiav.SampleFormatFltp:
		size, conv = 4, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }
	case astiav.SampleFormatDbl, astiav.SampleFormatDblp:
		size, conv = 8, func(b []byte) float32 { return float32(math.Float64frombits(binary.LittleEndian.Uint64(b))) }
	default:
		return dst, fmt.Errorf("%w: samples of %v", ErrFormat, a)
	}
	switch a.SampleFormat {
	case astiav.SampleFormatU8P, astiav.SampleFormatS16P, astiav.SampleFormatS32P, astiav.SampleFormatFltp, astiav.SampleFormatDblp:
		planar = true
	}
	n := f.Samples()
	if planar {
		p := f.Plane(ch)
		for i := range n {
			dst = append(dst, conv(p[i*size:]))
		}
		return dst, nil
	}
	p := f.Plane(0)
	for i := range n {
		dst = append(dst, conv(p[(i*a.Channels+ch)*size:]))
	}
	return dst, nil
}

// ToneFrequency estimates the frequency of a tone from its zero crossings,
// leaving out the first and last 50 ms (codec start-up and end); for tests.
func ToneFrequency(samples []float32, rate int) float64 {
	edge := rate / 20
	if len(samples) < 4*edge {
		return 0
	}
	s := samples[edge : len(samples)-edge]
	first, last, crossings := -1, -1, 0
	for i := 1; i < len(s); i++ {
		if (s[i-1] < 0) != (s[i] < 0) {
			if first < 0 {
				first = i
			}
			last = i
			crossings++
		}
	}
	if crossings < 2 {
		return 0
	}
	return float64(crossings-1) / 2 / (float64(last-first) / float64(rate))
}
