// Package internal holds what no user of medley imports: the FFmpeg
// wrappers over go-astiav that codec and endpoint share, and later jitter
// and reorder buffers, A/V clock mapping, and test helpers (synthetic media,
// ffprobe checks, a browser driver). Code moves here once two elements need
// it.
//
// In this release:
//   - internal/ffmpeg: decoders, encoders, scalers and audio converters
//     over go-astiav v0.16.0 (FFmpeg 5.1) with pooled, reference-counted
//     frames, error mapping, a log bridge to log/slog and FFmpeg object
//     accounting; also a synthetic picture and tone and PSNR for tests.
//
// Test helpers users may call are in element/elementtest, not here.
package internal
