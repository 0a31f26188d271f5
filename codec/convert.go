package codec

import (
	"fmt"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/pipeline"
)

// Importing package codec registers its converters with
// pipeline.DefaultRegistry, as importing image/png registers PNG with
// package image.
func init() { RegisterConverters(pipeline.DefaultRegistry) }

// RegisterConverters adds package codec's converters to r: for every codec
// with RTP support a depayloader ("vp8-depay": RTP to samples) and a
// payloader ("vp8-pay": samples to RTP, in each of the codec's fmtp
// variants); then, for those FFmpeg here can decode or encode, a decoder
// ("vp8-dec": samples to raw) and an encoder ("h264-enc": raw to samples);
// last a scaler ("scale") and a resampler ("resample") between raw
// formats. A host that builds pipelines on a registry of its own
// (pipeline.WithRegistry) calls it to get them there.
func RegisterConverters(r *pipeline.Registry) {
	for _, c := range registry {
		if c.RTP {
			r.Register(depayConverter{c})
			r.Register(payConverter{c})
		}
	}
	registerTranscoders(r)
}

// depayConverter makes Depayloaders.
type depayConverter struct{ c Codec }

func (v depayConverter) Name() string { return v.c.Name + "-depay" }

func (v depayConverter) Outputs(in element.Caps) []element.Caps {
	if in.Kind != v.c.Kind || in.Format != element.FormatRTP || !v.c.Matches(in) {
		return nil
	}
	return []element.Caps{sampleCaps(v.c, in)}
}

func (v depayConverter) New(name string, in, out element.Caps) (element.Element, error) {
	if !hasCaps(v.Outputs(in), out) {
		return nil, fmt.Errorf("codec: %s cannot make %v from %v", v.Name(), out, in)
	}
	return newDepayloader(name, v.c, out)
}

// payConverter makes Payloaders.
type payConverter struct{ c Codec }

func (v payConverter) Name() string { return v.c.Name + "-pay" }

func (v payConverter) Outputs(in element.Caps) []element.Caps {
	if in.Kind != v.c.Kind || in.Format != element.FormatSample || !v.c.Matches(in) {
		return nil
	}
	outs := make([]element.Caps, 0, len(v.c.FmtpVariants))
	for _, fmtp := range v.c.FmtpVariants {
		out := v.c.Caps(element.FormatRTP)
		out.Fmtp = fmtp
		if in.Channels != 0 && v.c.MIME != MIMEOpus {
			out.Channels = in.Channels
		}
		outs = append(outs, out)
	}
	return outs
}

func (v payConverter) New(name string, in, out element.Caps) (element.Element, error) {
	if !hasCaps(v.Outputs(in), out) {
		return nil, fmt.Errorf("codec: %s cannot make %v from %v", v.Name(), out, in)
	}
	return newPayloader(name, v.c, out)
}

func hasCaps(l []element.Caps, c element.Caps) bool {
	for _, o := range l {
		if o == c {
			return true
		}
	}
	return false
}
