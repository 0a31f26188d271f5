package pipeline_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/element/elementtest"
)

// graphPusher emits frames from Manual sources, three at a time with a
// short pause between, each source from its own goroutine, until halted.
type graphPusher struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func startGraphPusher(srcs ...*elementtest.Source) *graphPusher {
	g := &graphPusher{stop: make(chan struct{})}
	for _, s := range srcs {
		g.wg.Go(func() {
			for {
				select {
				case <-g.stop:
					return
				default:
				}
				s.Emit(3)
				time.Sleep(100 * time.Microsecond)
			}
		})
	}
	return g
}

func (g *graphPusher) halt() {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	g.wg.Wait()
}

// Must hold 6: 100 random connect/disconnect operations while data flows
// lose no buffer on the links that stay, keep every link in order, and leak
// nothing (goleak in TestMain; run under -race).
func TestDynamicConnectDisconnect(t *testing.T) {
	const (
		seed = 20250611
		ops  = 100
	)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	// Two sources, told apart at the sinks by their frame size (one RTP
	// packet a frame).
	srcA := elementtest.NewSource("srcA", elementtest.SourceConfig{Caps: vp8RTP, FrameSize: 100, Manual: true})
	srcB := elementtest.NewSource("srcB", elementtest.SourceConfig{Caps: vp8RTP, FrameSize: 200, Manual: true})
	sizeOf := map[*elementtest.Source]int{srcA: 100, srcB: 200}
	srcs := []*elementtest.Source{srcA, srcB}

	// Stayers are connected to srcA throughout, behind queues that never
	// drop (Block) or never overflow (Live, large), or inline.
	stayers := []*elementtest.Sink{
		elementtest.NewSink("stayBlock", element.CapsList{element.AnyVideo}, elementtest.WithQueue(64, element.Block)),
		elementtest.NewSink("stayLive", element.CapsList{element.AnyVideo}, elementtest.WithQueue(1<<16, element.Live)),
		elementtest.NewSink("stayInline", element.CapsList{element.AnyVideo}, elementtest.WithInline()),
	}
	// Churners are connected, switched between sources and disconnected at
	// random.
	var churners []*elementtest.Sink
	for i := range 6 {
		var opts []elementtest.SinkOption
		switch i % 3 {
		case 0:
			opts = append(opts, elementtest.WithQueue(128, element.Block))
		case 1:
			opts = append(opts, elementtest.WithInline())
		}
		churners = append(churners, elementtest.NewSink(fmt.Sprintf("churn%d", i), element.CapsList{element.AnyVideo}, opts...))
	}

	p := graphPipeline(t, srcA, srcB)
	for _, s := range stayers {
		require.NoError(t, p.Add(s))
		require.NoError(t, p.Connect(srcA, s, element.KindVideo))
	}
	peer := make(map[*elementtest.Sink]*elementtest.Source) // the model: who feeds each churner and guest
	for _, c := range churners {
		require.NoError(t, p.Add(c))
	}
	ctx := graphStart(t, p, 15*time.Second)
	push := startGraphPusher(srcA, srcB)
	defer push.halt()

	// Guests join (Add + Connect) and leave (Remove) while running.
	var guests []*elementtest.Sink
	var guestN int
	counts := make(map[string]int)
	for op := range ops {
		c := churners[rng.IntN(len(churners))]
		switch k := rng.IntN(10); {
		case k < 4: // connect, or switch source (a sink has one source at a time)
			s := srcs[rng.IntN(len(srcs))]
			require.NoError(t, p.Connect(s, c, element.KindVideo), "op %d: connect %s to %s", op, s.Name(), c.Name())
			peer[c] = s
			counts["connect"]++
		case k < 8: // disconnect
			if peer[c] == nil && rng.IntN(4) > 0 {
				// Mostly pick a churner that is connected.
				for _, o := range churners {
					if peer[o] != nil {
						c = o
						break
					}
				}
			}
			s := peer[c]
			if s == nil {
				err := p.Disconnect(srcA, c, element.KindVideo)
				require.True(t, errors.Is(err, element.ErrNotLinked), "op %d: disconnect unconnected %s: %v", op, c.Name(), err)
				counts["disconnect-unlinked"]++
				break
			}
			require.NoError(t, p.Disconnect(s, c, element.KindVideo), "op %d: disconnect %s from %s", op, c.Name(), s.Name())
			delete(peer, c)
			counts["disconnect"]++
		case k < 9: // a guest joins
			guestN++
			g := elementtest.NewSink(fmt.Sprintf("guest%d", guestN), element.CapsList{element.AnyVideo})
			s := srcs[rng.IntN(len(srcs))]
			require.NoError(t, p.Add(g))
			require.NoError(t, p.Connect(s, g, element.KindVideo))
			guests = append(guests, g)
			peer[g] = s
			counts["join"]++
		default: // a guest leaves
			if len(guests) == 0 {
				break
			}
			i := rng.IntN(len(guests))
			require.NoError(t, p.Remove(guests[i]), "op %d: remove %s", op, guests[i].Name())
			assert.Nil(t, guests[i].SinkPad().Peer(), "op %d: removed %s is unlinked", op, guests[i].Name())
			delete(peer, guests[i])
			guests = append(guests[:i], guests[i+1:]...)
			counts["leave"]++
		}
		time.Sleep(time.Duration(rng.IntN(4000)) * time.Microsecond)
	}
	push.halt()
	t.Logf("operations: %v; srcA sent %d, srcB sent %d", counts, srcA.Packets(), srcB.Packets())

	// The graph is what the operations say it is.
	for _, c := range append(churners, guests...) {
		var want *element.Pad
		if s := peer[c]; s != nil {
			want = s.SrcPad()
		}
		assert.Same(t, want, c.SinkPad().Peer(), "%s's source", c.Name())
	}
	for _, s := range srcs {
		var want int
		for _, v := range peer {
			if v == s {
				want++
			}
		}
		if s == srcA {
			want += len(stayers)
		}
		assert.Len(t, s.SrcPad().Sinks(), want, "%s's links", s.Name())
	}

	// Stayers: every buffer of srcA, in order, none dropped.
	total := srcA.Packets()
	require.Positive(t, total)
	for _, s := range stayers {
		require.NoError(t, s.WaitCount(ctx, total), s.Name())
		got := s.Received()
		require.Len(t, got, total, s.Name())
		graphSeqRun(t, got, 0, s.Name())
		assert.Zero(t, graphPadStats(t, p, s.Name(), "sink").Drops, s.Name())
		assert.Empty(t, graphEvents[element.DiscontEvent](s.Events()), s.Name())
	}

	// Churners and guests: whatever they got from each source came in
	// order, without duplicates.
	for _, c := range append(churners, guests...) {
		last := make(map[int]int) // frame size -> last seq seen
		for i, r := range c.Received() {
			require.Contains(t, []int{sizeOf[srcA], sizeOf[srcB]}, r.Size, "%s buffer %d", c.Name(), i)
			if prev, ok := last[r.Size]; ok {
				require.Greater(t, int(r.Seq), prev, "%s buffer %d: from the source of %d-byte frames, out of order", c.Name(), i, r.Size)
			}
			last[r.Size] = int(r.Seq)
		}
	}
}
