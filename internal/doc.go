// Package internal will hold what no user of medley imports: the FFmpeg
// wrappers over go-astiav that codec and endpoint share (frame pools,
// free-once ownership, error mapping, a log bridge to log/slog, custom IO),
// jitter and reorder buffers, A/V clock mapping, and test helpers (synthetic
// media, ffprobe checks, a browser driver). Code moves here once two
// elements need it.
//
// Not implemented yet in this release: the package is empty; it fills with
// the codecs and endpoints of issues 3 to 5. Test helpers users may call are
// in element/elementtest, not here.
package internal
