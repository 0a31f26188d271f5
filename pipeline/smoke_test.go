package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
	"github.com/medley-go/medley/pipeline"
)

var vp8RTP = element.Caps{Kind: element.KindVideo, Format: element.FormatRTP, Codec: "video/VP8", ClockRate: 90000}

func TestSmokeFanout(t *testing.T) {
	p, err := pipeline.New()
	require.NoError(t, err)
	src := elementtest.NewSource("src", elementtest.SourceConfig{Caps: vp8RTP, Rate: 100, Frames: 50})
	sinks := []*elementtest.Sink{}
	require.NoError(t, p.Add(src))
	for i := range 3 {
		s := elementtest.NewSink("sink"+string(rune('a'+i)), element.CapsList{element.AnyVideo})
		sinks = append(sinks, s)
		require.NoError(t, p.Add(s))
		require.NoError(t, p.Connect(src, s, element.KindAll))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, p.Start(ctx))
	for _, s := range sinks {
		require.NoError(t, s.WaitCount(ctx, 150))
	}
	require.NoError(t, p.Close())
	t.Log(p.DOT())
}
