package ffmpeg

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemuxerReadPacketRefs: reading in batches gives the packets
// ReadPacket does, in order, each with its own payload; the end stops a
// batch part way with io.EOF, the packet it would have filled left empty;
// a seek starts again from the first packets; after the end of ctx or
// Close no packet is read.
func TestDemuxerReadPacketRefs(t *testing.T) {
	checkNoLiveObjects(t)
	path := writeFile(t, "mp4", "a.mp4", []string{"h264", "aac"})
	d, err := OpenDemuxer(context.Background(), path, DemuxerConfig{})
	require.NoError(t, err)
	want := readAll(t, d)
	require.NoError(t, d.Close())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err = OpenDemuxer(ctx, path, DemuxerConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	const batch = 7
	ps := make([]*DemuxedPacket, batch)
	for i := range ps {
		ps[i], err = NewDemuxedPacket()
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		for _, p := range ps {
			p.Free()
		}
	})
	got := map[int][]StreamPacket{}
	var first StreamPacket
	for {
		n, err := d.ReadPacketRefs(ps)
		for _, p := range ps[:n] {
			if first.Data == nil {
				first = p.StreamPacket
				first.Data = append([]byte(nil), p.Data...)
			}
			sp := p.StreamPacket
			sp.Data = append([]byte(nil), p.Data...)
			got[sp.Stream] = append(got[sp.Stream], sp)
		}
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			require.Less(t, n, batch)
			assert.Nil(t, ps[n].Data, "nothing held by the packet the end stopped at")
			break
		}
		require.Equal(t, batch, n)
	}
	require.Equal(t, len(want), len(got))
	total := 0
	for s := range want {
		require.Len(t, got[s], len(want[s]), "stream %d", s)
		for i := range want[s] {
			assert.Equal(t, want[s][i], got[s][i], "stream %d packet %d", s, i)
		}
		total += len(want[s])
	}
	require.NotZero(t, total%batch, "the end falls inside a batch")

	require.NoError(t, d.Seek(0))
	n, err := d.ReadPacketRefs(ps[:2])
	require.NoError(t, err)
	require.Equal(t, 2, n)
	assert.Equal(t, first, StreamPacket{Stream: ps[0].Stream, PTS: ps[0].PTS, DTS: ps[0].DTS,
		Duration: ps[0].Duration, Keyframe: ps[0].Keyframe, Data: append([]byte(nil), ps[0].Data...)})
	n, err = d.ReadPacketRefs(nil)
	assert.NoError(t, err)
	assert.Zero(t, n)

	// The end of ctx reaches the demuxer from a goroutine of its own.
	require.NoError(t, d.Seek(0))
	cancel()
	require.Eventually(t, func() bool {
		n, err = d.ReadPacketRefs(ps[:1])
		return err != nil
	}, 5*time.Second, time.Millisecond)
	assert.ErrorIs(t, err, context.Canceled)
	n, err = d.ReadPacketRefs(ps)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, n)
	assert.Nil(t, ps[0].Data)
	require.NoError(t, d.Close())
	n, err = d.ReadPacketRefs(ps)
	assert.True(t, errors.Is(err, ErrClosed), "%v", err)
	assert.Zero(t, n)
}
