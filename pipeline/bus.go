package pipeline

import (
	"context"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/medley-go/medley/element"
)

// DefaultSubscriptionSize is the buffer of a Subscription made with size 0.
const DefaultSubscriptionSize = 256

// Bus carries the pipeline's messages (element.Message) to the host's
// subscribers. Posting never blocks: a subscriber that does not keep up
// loses messages, and counts them.
type Bus struct {
	mu     sync.Mutex
	subs   []*Subscription
	closed bool
}

// Subscription is one subscriber's bounded message channel.
type Subscription struct {
	c       chan element.Message
	dropped atomic.Uint64
	bus     *Bus
	once    sync.Once
}

// Subscribe returns a subscription whose channel buffers up to size
// messages (DefaultSubscriptionSize if size <= 0). Messages posted while its
// buffer is full are dropped for it alone and counted (Dropped). Its channel
// is closed when the pipeline closes, after the last message.
func (b *Bus) Subscribe(size int) *Subscription {
	if size <= 0 {
		size = DefaultSubscriptionSize
	}
	s := &Subscription{c: make(chan element.Message, size), bus: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.c)
		return s
	}
	b.subs = append(b.subs, s)
	return s
}

// Post delivers m to every subscriber that has room. It never blocks.
func (b *Bus) Post(m element.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	for _, s := range b.subs {
		select {
		case s.c <- m:
		default:
			s.dropped.Add(1)
		}
	}
}

func (b *Bus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for _, s := range b.subs {
		s.once.Do(func() { close(s.c) })
	}
	b.subs = nil
}

// C returns the channel messages arrive on.
func (s *Subscription) C() <-chan element.Message { return s.c }

// Dropped returns how many messages this subscriber lost for want of room.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes its channel.
func (s *Subscription) Close() {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, o := range b.subs {
		if o == s {
			b.subs = append(b.subs[:i:i], b.subs[i+1:]...)
			break
		}
	}
	s.once.Do(func() { close(s.c) })
}

// Messages yields the subscription's messages until ctx ends or the
// pipeline closes.
func (s *Subscription) Messages(ctx context.Context) iter.Seq[element.Message] {
	return func(yield func(element.Message) bool) {
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-s.c:
				if !ok || !yield(m) {
					return
				}
			}
		}
	}
}
