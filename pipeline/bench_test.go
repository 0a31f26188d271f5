package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/pion/rtp"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/pipeline"
)

// benchPayloadSize is the RTP payload size the fan-out benchmarks push.
const benchPayloadSize = 1200

var benchSinkCounts = []int{1, 10, 100}

// countingSink counts the buffers reaching its sink pad and closes done when
// it has seen want of them.
type countingSink struct {
	element.Base
	n, want int
	done    chan struct{}
}

func newCountingSink(name string, want int, queue int) *countingSink {
	s := &countingSink{Base: element.NewBase(name), want: want, done: make(chan struct{})}
	s.AddPad(element.NewSinkPad("sink", element.CapsList{element.AnyVideo}, func(b *element.Buffer) error {
		s.n++
		if s.n == s.want {
			close(s.done)
		}
		return nil
	}, element.WithQueue(queue, element.Block)))
	return s
}

// BenchmarkFanout pushes 1200-byte RTP packets from one src pad through
// Connect links to N counting sinks, each behind its own queue and goroutine.
// One op is one packet delivered to every sink; ns/pkt/sink divides by N.
// The queues block when full (element.Block), so nothing is dropped and
// every packet is counted by every sink before the clock stops.
func BenchmarkFanout(b *testing.B) {
	payload := make([]byte, benchPayloadSize)
	for _, n := range benchSinkCounts {
		b.Run(fmt.Sprintf("sinks=%d", n), func(b *testing.B) {
			p, err := pipeline.New()
			if err != nil {
				b.Fatal(err)
			}
			src := element.NewAppSource("src", element.CapsList{vp8RTP})
			if err := p.Add(src); err != nil {
				b.Fatal(err)
			}
			sinks := make([]*countingSink, n)
			for i := range sinks {
				sinks[i] = newCountingSink(fmt.Sprintf("sink%d", i), b.N, 512)
				if err := p.Add(sinks[i]); err != nil {
					b.Fatal(err)
				}
				if err := p.Connect(src, sinks[i], element.KindVideo); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			pool := element.NewBufferPool(0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				buf := pool.Get()
				buf.RTP = rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), Timestamp: uint32(i) * 3000, SSRC: 1}
				buf.Data = payload
				src.Push(buf)
				buf.Unref()
			}
			for _, s := range sinks {
				<-s.done
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/pkt/sink")
			for _, s := range sinks {
				if d := s.Pads()[0].Stats().Drops; d != 0 {
					b.Fatalf("sink dropped %d packets", d)
				}
			}
		})
	}
}

// BenchmarkFanoutChannels is the same fan-out written by hand: a buffered
// channel (of the same capacity as the pipeline's queues) and a goroutine per
// sink, the same pooled, reference-counted buffers. The ratio of the two
// benchmarks is what the graph costs.
func BenchmarkFanoutChannels(b *testing.B) {
	payload := make([]byte, benchPayloadSize)
	for _, n := range benchSinkCounts {
		b.Run(fmt.Sprintf("sinks=%d", n), func(b *testing.B) {
			chans := make([]chan *element.Buffer, n)
			var wg sync.WaitGroup
			for i := range chans {
				c := make(chan *element.Buffer, 512)
				chans[i] = c
				wg.Add(1)
				go func() {
					defer wg.Done()
					count := 0
					for buf := range c {
						count++
						buf.Unref()
					}
					if count != b.N {
						panic(fmt.Sprintf("sink got %d of %d", count, b.N))
					}
				}()
			}
			pool := element.NewBufferPool(0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				buf := pool.Get()
				buf.RTP = rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), Timestamp: uint32(i) * 3000, SSRC: 1}
				buf.Data = payload
				for _, c := range chans {
					c <- buf.Ref()
				}
				buf.Unref()
			}
			for _, c := range chans {
				close(c)
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/pkt/sink")
		})
	}
}
