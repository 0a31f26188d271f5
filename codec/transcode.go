package codec

import (
	"fmt"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/internal/ffmpeg"
	"github.com/medley-go/medley/pipeline"
)

// registerTranscoders adds the FFmpeg converters to r: a decoder for every
// RTP codec FFmpeg here decodes, an encoder for every one it encodes, a
// scaler and a resampler. Each proposes fixed caps from a short list, so
// that a chain search stays small: decoders and encoders one output each,
// the scaler yuv420p and five other pixel formats (sizes are fitted to the
// sink at run time, see Scaler), the resampler the rates 48, 16 and 8 kHz
// (and the input's), mono and stereo, s16, flt and fltp.
func registerTranscoders(r *pipeline.Registry) {
	for _, c := range registry {
		if _, ok := ffmpeg.HasDecoder(c.Name); ok && c.RTP {
			r.Register(decodeConverter{c})
		}
	}
	for _, c := range registry {
		if _, ok := encoderInput(c); ok && c.RTP {
			r.Register(encodeConverter{c})
		}
	}
	r.Register(scaleConverter{})
	r.Register(resampleConverter{})
}

// decodeConverter makes Decoders.
type decodeConverter struct{ c Codec }

func (v decodeConverter) Name() string { return v.c.Name + "-dec" }

func (v decodeConverter) Outputs(in element.Caps) []element.Caps {
	if in.Kind != v.c.Kind || in.Format != element.FormatSample || !v.c.Matches(in) {
		return nil
	}
	out, ok := DecoderOutput(in)
	if !ok {
		return nil
	}
	return []element.Caps{out}
}

func (v decodeConverter) New(name string, in, out element.Caps) (element.Element, error) {
	if !hasCaps(v.Outputs(in), out) {
		return nil, fmt.Errorf("codec: %s cannot make %v from %v", v.Name(), out, in)
	}
	return newDecoder(name, v.c, out)
}

// encodeConverter makes Encoders.
type encodeConverter struct{ c Codec }

func (v encodeConverter) Name() string { return v.c.Name + "-enc" }

func (v encodeConverter) Outputs(in element.Caps) []element.Caps {
	if in.Kind != v.c.Kind || in.Format != element.FormatRaw {
		return nil
	}
	accepts, ok := encoderInput(v.c)
	if !ok {
		return nil
	}
	if v.c.Kind == element.KindAudio && (in.ClockRate == 0 || in.Channels == 0 || in.SampleFormat == "") {
		return nil // an encoder needs to know what it takes
	}
	if _, ok := accepts.Accepts(in); !ok {
		return nil
	}
	return []element.Caps{v.c.Caps(element.FormatSample)}
}

func (v encodeConverter) New(name string, in, out element.Caps) (element.Element, error) {
	if !hasCaps(v.Outputs(in), out) {
		return nil, fmt.Errorf("codec: %s cannot make %v from %v", v.Name(), out, in)
	}
	return newEncoder(name, v.c)
}

// scalePixelFormats are the pixel formats the scaler converter proposes,
// yuv420p first.
var scalePixelFormats = []string{PixelFormatI420, "nv12", "rgba", "bgra", "rgb24", "gray"}

// scaleConverter makes Scalers. From raw video of a known size it
// proposes yuv420p of any size, which the scaler fits to what the sink
// asks; from any raw video, the other pixel formats.
type scaleConverter struct{}

func (scaleConverter) Name() string { return "scale" }

func (scaleConverter) Outputs(in element.Caps) []element.Caps {
	if in.Kind != element.KindVideo || in.Format != element.FormatRaw {
		return nil
	}
	var outs []element.Caps
	for _, pix := range scalePixelFormats {
		out := RawVideoCaps(0, 0, pix)
		if out != in {
			outs = append(outs, out)
		}
	}
	return outs
}

func (v scaleConverter) New(name string, in, out element.Caps) (element.Element, error) {
	if !hasCaps(v.Outputs(in), out) {
		return nil, fmt.Errorf("codec: %s cannot make %v from %v", v.Name(), out, in)
	}
	return NewScaler(name, out)
}

// resampleConverter makes Resamplers.
type resampleConverter struct{}

func (resampleConverter) Name() string { return "resample" }

var (
	resampleRates   = []uint32{48000, 16000, 8000}
	resampleFormats = []string{"s16", "flt", "fltp"}
)

func (resampleConverter) Outputs(in element.Caps) []element.Caps {
	if in.Kind != element.KindAudio || in.Format != element.FormatRaw {
		return nil
	}
	rates := resampleRates
	if in.ClockRate != 0 {
		rates = appendNew([]uint32{in.ClockRate}, resampleRates...)
	}
	chans := []uint16{1, 2}
	if in.Channels != 0 {
		chans = appendNew([]uint16{in.Channels}, 1, 2)
	}
	formats := resampleFormats
	if in.SampleFormat != "" {
		formats = appendNew([]string{in.SampleFormat}, resampleFormats...)
	}
	var outs []element.Caps
	for _, r := range rates {
		for _, ch := range chans {
			for _, sf := range formats {
				out := RawAudioCaps(int(r), int(ch), sf)
				if out != in {
					outs = append(outs, out)
				}
			}
		}
	}
	return outs
}

func (v resampleConverter) New(name string, in, out element.Caps) (element.Element, error) {
	if !hasCaps(v.Outputs(in), out) {
		return nil, fmt.Errorf("codec: %s cannot make %v from %v", v.Name(), out, in)
	}
	return NewResampler(name, out)
}

// appendNew appends the values of vs not already in l.
func appendNew[T comparable](l []T, vs ...T) []T {
	for _, v := range vs {
		found := false
		for _, x := range l {
			if x == v {
				found = true
				break
			}
		}
		if !found {
			l = append(l, v)
		}
	}
	return l
}
