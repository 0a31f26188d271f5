package ffmpeg

import "sync/atomic"

// Objects counts the FFmpeg objects this package's wrappers hold right now:
// allocated and not yet freed. A pipeline in steady state keeps them flat;
// after every Close (and the release of every frame) they are all zero.
type Objects struct {
	Frames        int64 // AVFrame, pooled or in use
	Packets       int64 // AVPacket
	CodecContexts int64 // AVCodecContext
	FilterGraphs  int64 // AVFilterGraph
	ScaleContexts int64 // SwsContext
	// FormatContexts counts muxers and demuxers (AVFormatContext).
	FormatContexts int64
}

// Zero reports whether no object is alive.
func (o Objects) Zero() bool { return o == Objects{} }

var live struct {
	frames, packets, codecs, graphs, scalers, formats atomic.Int64
}

// LiveObjects returns the current counts.
func LiveObjects() Objects {
	return Objects{
		Frames:        live.frames.Load(),
		Packets:       live.packets.Load(),
		CodecContexts: live.codecs.Load(),
		FilterGraphs:  live.graphs.Load(),
		ScaleContexts: live.scalers.Load(),

		FormatContexts: live.formats.Load(),
	}
}
