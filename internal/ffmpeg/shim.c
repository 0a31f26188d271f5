#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/channel_layout.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>

#include "shim.h"
#include "_cgo_export.h"

// medley_frame_planes stores the data pointers, line sizes and byte sizes of
// f's planes (at most MEDLEY_MAX_PLANES) and returns how many there are, 0
// for a frame without buffers and -1 for a format it cannot size.
int medley_frame_planes(const AVFrame *f, uint8_t **data, int *linesize, int *size) {
	if (!f->data[0])
		return 0;
	if (f->width > 0 && f->height > 0) {
		size_t sizes[4] = {0};
		ptrdiff_t ls[4];
		for (int i = 0; i < 4; i++)
			ls[i] = f->linesize[i];
		if (av_image_fill_plane_sizes(sizes, f->format, f->height, ls) < 0)
			return -1;
		int n = av_pix_fmt_count_planes(f->format);
		if (n < 0 || n > 4)
			return -1;
		for (int i = 0; i < n; i++) {
			data[i] = f->data[i];
			linesize[i] = f->linesize[i];
			size[i] = (int)sizes[i];
		}
		return n;
	}
	if (f->nb_samples > 0) {
		int channels = f->ch_layout.nb_channels;
		int bps = av_get_bytes_per_sample(f->format);
		if (channels <= 0 || bps <= 0)
			return -1;
		int planar = av_sample_fmt_is_planar(f->format);
		int n = planar ? channels : 1;
		if (n > MEDLEY_MAX_PLANES)
			return -1;
		int bytes = f->nb_samples * bps * (planar ? 1 : channels);
		for (int i = 0; i < n; i++) {
			data[i] = f->extended_data[i];
			linesize[i] = f->linesize[0];
			size[i] = bytes;
		}
		return n;
	}
	return -1;
}

// medley_frame_row_bytes is the number of bytes of pixels in one row of a
// video plane (its line size less alignment padding).
int medley_frame_row_bytes(const AVFrame *f, int plane) {
	return av_image_get_linesize(f->format, f->width, plane);
}

int medley_frame_is_writable(AVFrame *f) { return av_frame_is_writable(f); }

int medley_frame_make_writable(AVFrame *f) { return av_frame_make_writable(f); }

int medley_frame_ref(AVFrame *dst, const AVFrame *src) { return av_frame_ref(dst, src); }

void medley_frame_unref(AVFrame *f) { av_frame_unref(f); }

// medley_frame_reset_props clears what a previous use of a pooled frame may
// have left in it, but its format and buffers.
void medley_frame_reset_props(AVFrame *f) {
	f->pts = AV_NOPTS_VALUE;
	f->pkt_dts = AV_NOPTS_VALUE;
	f->pkt_duration = 0;
	f->pict_type = AV_PICTURE_TYPE_NONE;
	f->key_frame = 0;
	f->flags = 0;
}

int medley_frame_set_channels(AVFrame *f, int channels) {
	av_channel_layout_uninit(&f->ch_layout);
	av_channel_layout_default(&f->ch_layout, channels);
	return f->ch_layout.nb_channels == channels ? 0 : AVERROR(EINVAL);
}

int medley_frame_channels(const AVFrame *f) { return f->ch_layout.nb_channels; }

int medley_frame_corrupt(const AVFrame *f) {
	return f->decode_error_flags != 0 || (f->flags & AV_FRAME_FLAG_CORRUPT) != 0;
}

// medley_packet_fill makes p a reference-counted copy of data, with FFmpeg's
// zeroed input padding after it (av_new_packet pads; Packet.FromData does
// not, and decoders may read past the end).
int medley_packet_fill(AVPacket *p, const uint8_t *data, int size) {
	av_packet_unref(p);
	int ret = av_new_packet(p, size);
	if (ret < 0)
		return ret;
	if (size > 0)
		memcpy(p->data, data, size);
	return 0;
}

void medley_codec_set_rates(AVCodecContext *c, int64_t bitrate, int64_t minrate, int64_t maxrate, int bufsize) {
	c->bit_rate = bitrate;
	c->rc_min_rate = minrate;
	c->rc_max_rate = maxrate;
	c->rc_buffer_size = bufsize;
}

void medley_codec_flush(AVCodecContext *c) { avcodec_flush_buffers(c); }

void medley_codec_set_pkt_timebase(AVCodecContext *c, int num, int den) {
	c->pkt_timebase = (AVRational){num, den};
}

int medley_codec_set_channels(AVCodecContext *c, int channels) {
	av_channel_layout_uninit(&c->ch_layout);
	av_channel_layout_default(&c->ch_layout, channels);
	return c->ch_layout.nb_channels == channels ? 0 : AVERROR(EINVAL);
}

int medley_layout_describe(int channels, char *buf, int size) {
	AVChannelLayout l;
	av_channel_layout_default(&l, channels);
	int ret = av_channel_layout_describe(&l, buf, size);
	av_channel_layout_uninit(&l);
	return ret;
}

// The log bridge. FFmpeg calls medley_log from any thread, its own included;
// the level test is an atomic load, the line is formatted with vsnprintf into
// a bounded stack buffer, and the Go side copies it before returning.
static atomic_int medley_log_max = AV_LOG_ERROR;

static void medley_log(void *avcl, int level, const char *fmt, va_list vl) {
	level &= 0xff;
	if (level > atomic_load_explicit(&medley_log_max, memory_order_relaxed))
		return;
	char line[MEDLEY_LOG_LINE];
	int n = vsnprintf(line, sizeof line, fmt, vl);
	if (n <= 0)
		return;
	int truncated = n >= (int)sizeof line;
	if (truncated)
		n = (int)sizeof line - 1;
	const char *item = "";
	if (avcl) {
		const AVClass *avc = *(const AVClass **)avcl;
		if (avc) {
			const char *name = avc->item_name ? avc->item_name(avcl) : avc->class_name;
			if (name)
				item = name;
		}
	}
	goMedleyLog(level, (char *)item, line, n, truncated);
}

void medley_log_route(int max_level) {
	atomic_store(&medley_log_max, max_level);
	av_log_set_level(max_level);
	av_log_set_callback(medley_log);
}

void medley_log_default(int level) {
	av_log_set_callback(av_log_default_callback);
	av_log_set_level(level);
	atomic_store(&medley_log_max, level);
}
