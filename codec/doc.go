// Package codec will hold medley's codecs: a registry of codecs (MIME type,
// clock rate, fmtp, RTP payload rules, keyframe detection), RTP payloader and
// depayloader elements, and FFmpeg (go-astiav) Decoder, Encoder, Scaler and
// Resampler elements. Imported, it will register its converters with
// pipeline.RegisterConverter, so that connecting pads whose codecs or formats
// differ inserts a transcoding chain by itself.
//
// Not implemented yet in this release: the package is empty. Until it comes
// (issue 3), pipeline.Connect links only caps that meet, or caps joined by
// converters the host registers itself.
package codec
