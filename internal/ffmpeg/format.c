#include <stdlib.h>
#include <string.h>

#include <libavutil/channel_layout.h>
#include <libavutil/mem.h>

#include "format.h"
#include "_cgo_export.h"

// Custom IO: the opaque pointer FFmpeg hands back to the callbacks is a
// cgo.Handle value, never a Go pointer, and the Go side gets FFmpeg's
// buffer as a slice without copying.
static int medley_avio_read(void *opaque, uint8_t *buf, int size) {
	return medleyAVIORead((uintptr_t)opaque, buf, size);
}

static int medley_avio_write(void *opaque, uint8_t *buf, int size) {
	return medleyAVIOWrite((uintptr_t)opaque, buf, size);
}

static int64_t medley_avio_seek(void *opaque, int64_t offset, int whence) {
	return medleyAVIOSeek((uintptr_t)opaque, offset, whence);
}

AVIOContext *medley_avio_alloc(int size, int writable, uintptr_t handle, int can_read, int can_write, int can_seek) {
	unsigned char *buf = av_malloc(size);
	if (!buf)
		return NULL;
	AVIOContext *pb = avio_alloc_context(buf, size, writable, (void *)handle,
		can_read ? medley_avio_read : NULL,
		can_write ? medley_avio_write : NULL,
		can_seek ? medley_avio_seek : NULL);
	if (!pb)
		av_free(buf);
	return pb;
}

// medley_avio_free frees the context and its buffer, which FFmpeg may have
// replaced since allocation (so the one to free is the context's own).
void medley_avio_free(AVIOContext **pb) {
	if (!*pb)
		return;
	av_freep(&(*pb)->buffer);
	avio_context_free(pb);
}

void medley_avio_flush(AVIOContext *pb) { avio_flush(pb); }

int medley_avio_error(const AVIOContext *pb) { return pb->error; }

// The interrupt flag lives in C memory and is read atomically, unlike
// go-astiav's, which points FFmpeg at a plain int inside a Go object.
static int medley_interrupt_cb(void *opaque) { return atomic_load((atomic_int *)opaque); }

atomic_int *medley_interrupt_new(void) {
	atomic_int *flag = malloc(sizeof(atomic_int));
	if (flag)
		atomic_init(flag, 0);
	return flag;
}

void medley_interrupt_set(atomic_int *flag, int v) { atomic_store(flag, v); }

void medley_interrupt_free(atomic_int *flag) { free(flag); }

// medley_format_setup gives a format context custom IO (which FFmpeg must
// then neither close nor free) and an interrupt callback, either optional.
void medley_format_setup(AVFormatContext *fc, AVIOContext *pb, atomic_int *interrupt) {
	if (pb) {
		fc->pb = pb;
		fc->flags |= AVFMT_FLAG_CUSTOM_IO;
	}
	if (interrupt) {
		fc->interrupt_callback.callback = medley_interrupt_cb;
		fc->interrupt_callback.opaque = interrupt;
	}
}

void medley_format_detach_pb(AVFormatContext *fc) { fc->pb = NULL; }

// medley_read_packet reads the next packet into pkt in one call, dropping
// what pkt held before. With writable set the payload is then the packet's
// own (a demuxer may share one buffer among packets, as Matroska lacing
// does): its holder may rewrite it in place.
int medley_read_packet(AVFormatContext *fc, AVPacket *pkt, int writable) {
	av_packet_unref(pkt);
	int err = av_read_frame(fc, pkt);
	if (err < 0)
		return err;
	if (writable && (err = av_packet_make_writable(pkt)) < 0) {
		av_packet_unref(pkt);
		return err;
	}
	return 0;
}

// medley_read_packets reads up to n packets into pkts[0..n-1] in one
// call, each as medley_read_packet does, stopping at the first error (the
// packet it was read into is left blank, those after it untouched) or
// before a read once *stop is set (AVERROR_EXIT). It returns how many were
// read, and the error that ended the batch early (0 if none did).
medley_read_result medley_read_packets(AVFormatContext *fc, AVPacket **pkts, int n, int writable, const atomic_int *stop) {
	medley_read_result r = {0, 0};
	for (; r.n < n; r.n++) {
		if (stop && atomic_load(stop)) {
			r.err = AVERROR_EXIT;
			break;
		}
		int err = medley_read_packet(fc, pkts[r.n], writable);
		if (err < 0) {
			r.err = err;
			break;
		}
	}
	return r;
}

// medley_format_is_file reports whether fc reads a local, seekable file
// through FFmpeg's own IO: an input whose reads never wait for data to
// arrive.
int medley_format_is_file(const AVFormatContext *fc) {
	if (!fc->pb || (fc->flags & AVFMT_FLAG_CUSTOM_IO) || !(fc->pb->seekable & AVIO_SEEKABLE_NORMAL) || !fc->url)
		return 0;
	const char *proto = avio_find_protocol_name(fc->url);
	return proto && strcmp(proto, "file") == 0;
}

AVPacket *medley_packet_alloc(void) { return av_packet_alloc(); }

void medley_packet_unref(AVPacket *pkt) { av_packet_unref(pkt); }

void medley_packet_free(AVPacket *pkt) { av_packet_free(&pkt); }

int medley_par_set_channels(AVCodecParameters *par, int channels) {
	av_channel_layout_uninit(&par->ch_layout);
	av_channel_layout_default(&par->ch_layout, channels);
	return par->ch_layout.nb_channels == channels ? 0 : AVERROR(EINVAL);
}

int medley_par_channels(const AVCodecParameters *par) { return par->ch_layout.nb_channels; }
