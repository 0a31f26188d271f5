package endpoint

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
)

// Container is a file format a Recorder writes.
type Container uint8

// The containers.
const (
	// WebM: VP8, VP9 or AV1 video, Opus audio.
	WebM Container = iota + 1
	// MKV (Matroska): VP8, VP9, H.264 or AV1 video; Opus, AAC, G.711 or
	// G.722 audio.
	MKV
	// MP4: H.264 video, AAC or Opus audio; the index (moov) is written at
	// the end, so a file cut short by a crash does not play.
	MP4
	// FragmentedMP4: MP4 written as a sequence of fragments, readable
	// while it grows and after a crash.
	FragmentedMP4
)

// containerSpec is what a Recorder needs to know of a container: FFmpeg's
// muxer and the codecs it takes, most preferred first.
type containerSpec struct {
	name, format string
	video, audio []string
}

var containers = map[Container]containerSpec{
	WebM: {"webm", "webm",
		[]string{codec.MIMEVP8, codec.MIMEVP9, codec.MIMEAV1},
		[]string{codec.MIMEOpus}},
	MKV: {"mkv", "matroska",
		[]string{codec.MIMEVP8, codec.MIMEVP9, codec.MIMEH264, codec.MIMEAV1},
		[]string{codec.MIMEOpus, codec.MIMEAAC, codec.MIMEPCMU, codec.MIMEPCMA, codec.MIMEG722}},
	MP4: {"mp4", "mp4",
		[]string{codec.MIMEH264},
		[]string{codec.MIMEAAC, codec.MIMEOpus}},
	FragmentedMP4: {"fmp4", "fmp4",
		[]string{codec.MIMEH264},
		[]string{codec.MIMEAAC, codec.MIMEOpus}},
}

func (c Container) String() string {
	if s, ok := containers[c]; ok {
		return s.name
	}
	return fmt.Sprintf("container(%d)", uint8(c))
}

// Codecs returns the MIME types of the codecs the container takes for a
// kind, most preferred first: what a Recorder's sink pad of that kind
// accepts as samples.
func (c Container) Codecs(k element.Kind) []string {
	s := containers[c]
	switch k {
	case element.KindVideo:
		return append([]string(nil), s.video...)
	case element.KindAudio:
		return append([]string(nil), s.audio...)
	}
	return nil
}

// MediaProfile is what a Recorder writes: a container and the tracks it
// holds (Kurento's MediaProfileSpecType).
type MediaProfile struct {
	Container Container
	// Tracks is element.KindAudio|element.KindVideo, or one of them for
	// the audio-only and video-only variants.
	Tracks element.Kind
}

const audioVideo = element.KindAudio | element.KindVideo

// The media profiles.
var (
	ProfileWebM                   = MediaProfile{WebM, audioVideo}
	ProfileWebMAudioOnly          = MediaProfile{WebM, element.KindAudio}
	ProfileWebMVideoOnly          = MediaProfile{WebM, element.KindVideo}
	ProfileMKV                    = MediaProfile{MKV, audioVideo}
	ProfileMKVAudioOnly           = MediaProfile{MKV, element.KindAudio}
	ProfileMKVVideoOnly           = MediaProfile{MKV, element.KindVideo}
	ProfileMP4                    = MediaProfile{MP4, audioVideo}
	ProfileMP4AudioOnly           = MediaProfile{MP4, element.KindAudio}
	ProfileMP4VideoOnly           = MediaProfile{MP4, element.KindVideo}
	ProfileFragmentedMP4          = MediaProfile{FragmentedMP4, audioVideo}
	ProfileFragmentedMP4AudioOnly = MediaProfile{FragmentedMP4, element.KindAudio}
	ProfileFragmentedMP4VideoOnly = MediaProfile{FragmentedMP4, element.KindVideo}
)

// ErrUnknownProfile: ParseMediaProfile or a Recorder met a profile name or
// file extension it does not know.
var ErrUnknownProfile = errors.New("endpoint: unknown media profile")

func (p MediaProfile) valid() bool {
	_, ok := containers[p.Container]
	return ok && (p.Tracks == audioVideo || p.Tracks == element.KindAudio || p.Tracks == element.KindVideo)
}

// String returns the profile's name: "webm", "mkv", "mp4", "fmp4", with
// "-audio-only" or "-video-only" for the variants.
func (p MediaProfile) String() string {
	s := p.Container.String()
	switch p.Tracks {
	case element.KindAudio:
		s += "-audio-only"
	case element.KindVideo:
		s += "-video-only"
	case audioVideo:
	default:
		s += "-" + p.Tracks.String()
	}
	return s
}

// ParseMediaProfile reads a profile name as String writes it, ignoring case
// and taking '_' for '-' and "-audio" for "-audio-only" ("webm",
// "MP4_VIDEO_ONLY", "fmp4-audio"); "matroska" is "mkv" and
// "fragmented-mp4" is "fmp4".
func ParseMediaProfile(s string) (MediaProfile, error) {
	n := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", "-")
	tracks := audioVideo
	for suffix, k := range map[string]element.Kind{
		"-audio-only": element.KindAudio, "-video-only": element.KindVideo,
		"-audio": element.KindAudio, "-video": element.KindVideo,
	} {
		if base, ok := strings.CutSuffix(n, suffix); ok {
			n, tracks = base, k
			break
		}
	}
	switch n {
	case "matroska":
		n = "mkv"
	case "fragmented-mp4", "mp4-fragmented":
		n = "fmp4"
	}
	for c, spec := range containers {
		if spec.name == n {
			return MediaProfile{Container: c, Tracks: tracks}, nil
		}
	}
	return MediaProfile{}, fmt.Errorf("%w: %q", ErrUnknownProfile, s)
}

// MediaProfileFor returns the profile a file name's extension implies:
// .webm, .mkv, .mp4 for audio and video; .weba, .mka, .m4a for audio only;
// .m4v for MP4 video only. Fragmented MP4 has no extension of its own:
// choose it with WithMediaProfile.
func MediaProfileFor(path string) (MediaProfile, bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".webm":
		return ProfileWebM, true
	case ".weba":
		return ProfileWebMAudioOnly, true
	case ".mkv":
		return ProfileMKV, true
	case ".mka":
		return ProfileMKVAudioOnly, true
	case ".mp4":
		return ProfileMP4, true
	case ".m4a":
		return ProfileMP4AudioOnly, true
	case ".m4v":
		return ProfileMP4VideoOnly, true
	}
	return MediaProfile{}, false
}

// sinkCaps are the templates of a Recorder's sink pad of kind k: samples of
// every codec the container takes.
func (p MediaProfile) sinkCaps(k element.Kind) element.CapsList {
	var caps element.CapsList
	for _, mime := range p.Container.Codecs(k) {
		caps = append(caps, element.Caps{Kind: k, Format: element.FormatSample, Codec: mime})
	}
	return caps
}
