// The C half of medley's muxer and demuxer: custom IO through Go readers
// and writers, an interrupt flag in C memory, and the fields go-astiav
// v0.16.0 does not reach.
#ifndef MEDLEY_FFMPEG_FORMAT_H
#define MEDLEY_FFMPEG_FORMAT_H

#include <stdatomic.h>
#include <stdint.h>
#include <libavformat/avformat.h>

AVIOContext *medley_avio_alloc(int size, int writable, uintptr_t handle, int can_read, int can_write, int can_seek);
void medley_avio_free(AVIOContext **pb);
void medley_avio_flush(AVIOContext *pb);
int medley_avio_error(const AVIOContext *pb);

atomic_int *medley_interrupt_new(void);
void medley_interrupt_set(atomic_int *flag, int v);
void medley_interrupt_free(atomic_int *flag);

void medley_format_setup(AVFormatContext *fc, AVIOContext *pb, atomic_int *interrupt);
void medley_format_detach_pb(AVFormatContext *fc);

int medley_format_is_file(const AVFormatContext *fc);
int medley_read_packet(AVFormatContext *fc, AVPacket *pkt, int writable);
// medley_read_result: how many packets medley_read_packets read, and the
// error that stopped it early (0: none).
typedef struct {
	int n;
	int err;
} medley_read_result;
medley_read_result medley_read_packets(AVFormatContext *fc, AVPacket **pkts, int n, int writable, const atomic_int *stop);
AVPacket *medley_packet_alloc(void);
void medley_packet_unref(AVPacket *pkt);
void medley_packet_free(AVPacket *pkt);

int medley_par_set_channels(AVCodecParameters *par, int channels);
int medley_par_channels(const AVCodecParameters *par);

#endif
