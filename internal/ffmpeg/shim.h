// The C half of medley's FFmpeg layer: what go-astiav v0.16.0 lacks.
#ifndef MEDLEY_FFMPEG_SHIM_H
#define MEDLEY_FFMPEG_SHIM_H

#include <stdint.h>
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>

// MEDLEY_LOG_LINE bounds one formatted FFmpeg log line (terminating NUL
// included); longer lines are cut, never overflowed.
#define MEDLEY_LOG_LINE 1024

// MEDLEY_MAX_PLANES is the number of data planes medley exposes (AVFrame's
// data array; audio beyond 8 planar channels is not supported).
#define MEDLEY_MAX_PLANES AV_NUM_DATA_POINTERS

int medley_frame_planes(const AVFrame *f, uint8_t **data, int *linesize, int *size);
int medley_frame_row_bytes(const AVFrame *f, int plane);
int medley_frame_is_writable(AVFrame *f);
int medley_frame_make_writable(AVFrame *f);
int medley_frame_ref(AVFrame *dst, const AVFrame *src);
void medley_frame_unref(AVFrame *f);
void medley_frame_reset_props(AVFrame *f);
int medley_frame_set_channels(AVFrame *f, int channels);
int medley_frame_channels(const AVFrame *f);
int medley_frame_corrupt(const AVFrame *f);

int medley_packet_fill(AVPacket *p, const uint8_t *data, int size);

void medley_codec_set_rates(AVCodecContext *c, int64_t bitrate, int64_t minrate, int64_t maxrate, int bufsize);
void medley_codec_flush(AVCodecContext *c);
void medley_codec_set_pkt_timebase(AVCodecContext *c, int num, int den);
int medley_codec_set_channels(AVCodecContext *c, int channels);

int medley_layout_describe(int channels, char *buf, int size);

void medley_log_route(int max_level);
void medley_log_default(int level);

#endif
