package ffmpeg

import (
	"fmt"
	"slices"
	"strings"

	"github.com/asticode/go-astiav"
)

// Short names for the codecs medley uses, tried in order: the first that
// FFmpeg here has wins. Any other FFmpeg codec name is accepted as is.
var (
	decoderNames = map[string][]string{
		"vp8":  {"vp8"},
		"vp9":  {"vp9"},
		"h264": {"h264"},
		// FFmpeg 5.1's native av1 decoder needs a hardware accelerator.
		"av1":  {"libdav1d", "libaom-av1", "av1"},
		"opus": {"opus", "libopus"},
		"pcmu": {"pcm_mulaw"},
		"pcma": {"pcm_alaw"},
		"g722": {"g722"},
		"aac":  {"aac"},
	}
	encoderNames = map[string][]string{
		"vp8":  {"libvpx"},
		"vp9":  {"libvpx-vp9"},
		"h264": {"libx264"},
		"av1":  {"libaom-av1", "libsvtav1"},
		// FFmpeg's native opus encoder is experimental.
		"opus": {"libopus"},
		"pcmu": {"pcm_mulaw"},
		"pcma": {"pcm_alaw"},
		"g722": {"g722"},
		"aac":  {"aac"},
	}
)

// findCodec looks name up as a short name, then as an FFmpeg codec name.
func findCodec(name string, encoder bool) (*astiav.Codec, error) {
	short := strings.ToLower(name)
	names, find := decoderNames[short], astiav.FindDecoderByName
	if encoder {
		names, find = encoderNames[short], astiav.FindEncoderByName
	}
	if names == nil {
		names = []string{name}
	}
	for _, n := range names {
		if c := find(n); c != nil {
			return c, nil
		}
	}
	role := "decoder"
	if encoder {
		role = "encoder"
	}
	return nil, &Error{Component: name, Role: role, Op: "find", Err: ErrUnknownCodec}
}

// HasEncoder reports whether an encoder of that name (short or FFmpeg's)
// exists here, and returns FFmpeg's name of it.
func HasEncoder(name string) (string, bool) {
	c, err := findCodec(name, true)
	if err != nil {
		return "", false
	}
	return c.Name(), true
}

// HasDecoder is HasEncoder for decoders.
func HasDecoder(name string) (string, bool) {
	c, err := findCodec(name, false)
	if err != nil {
		return "", false
	}
	return c.Name(), true
}

// dictionary builds an FFmpeg dictionary from ordered key/value pairs; the
// caller frees it.
func dictionary(kv [][2]string) (*astiav.Dictionary, error) {
	d := astiav.NewDictionary()
	for _, p := range kv {
		if err := d.Set(p[0], p[1], 0); err != nil {
			d.Free()
			return nil, fmt.Errorf("option %s=%s: %w", p[0], p[1], err)
		}
	}
	return d, nil
}

// leftover returns the keys Open did not consume (trap: FFmpeg leaves
// unknown options in the dictionary without a word).
func leftover(d *astiav.Dictionary) []string {
	var keys []string
	var e *astiav.DictionaryEntry
	for {
		e = d.Get("", e, astiav.NewDictionaryFlags(astiav.DictionaryFlagIgnoreSuffix))
		if e == nil {
			return keys
		}
		keys = append(keys, e.Key())
	}
}

// mergeOptions returns defaults overridden and extended by user, in a
// stable order: defaults first, then the user's keys sorted.
func mergeOptions(defaults [][2]string, user map[string]string) [][2]string {
	out := make([][2]string, 0, len(defaults)+len(user))
	for _, p := range defaults {
		if v, ok := user[p[0]]; ok {
			p[1] = v
		}
		out = append(out, p)
	}
	keys := make([]string, 0, len(user))
	for k := range user {
		found := false
		for _, p := range defaults {
			if p[0] == k {
				found = true
				break
			}
		}
		if !found {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, [2]string{k, user[k]})
	}
	return out
}
