package endpoint_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/endpoint"
)

// sendOnRequest starts writing what send writes (50 frames per second of
// two-packet VP8, Opus beside) but with keyframes only on the first frame
// and when asked (PLI or FIR): no periodic keyframe, so that a keyframe
// after the first comes only from a request.
func (p *peer) sendOnRequest() { p.sendFrames(0) }

// TestOutageResumesWithKeyframe: after 3 s in which every datagram between
// a peer and a looped-back endpoint is lost, each way, the video the peer
// gets back resumes with a keyframe within a second. The peer sends
// keyframes only when asked, so the keyframe is the endpoint's doing: it
// sees the gap in what it receives and asks the peer for one (PLI), and
// what it sends waits for it.
func TestOutageResumesWithKeyframe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep, err := endpoint.NewWebRTC("ep", loopbackOptions(endpoint.WithCompleteSDP())...)
	require.NoError(t, err)
	loopback(t, ep)
	p := newPeer(t, peerConfig{})

	x := connectViaProxy(ctx, t, ep, p)
	p.sendOnRequest()
	require.Eventually(t, func() bool { return p.videoKeysIn.Load() > 0 && p.videoIn.Load() > 50 }, waitFor, tick,
		"video, starting with a keyframe, comes back before the outage")
	// Let the start-up requests settle: from here on the peer sends
	// interframes only, unless asked.
	time.Sleep(500 * time.Millisecond)
	plis := p.plisIn.Load()

	x.setLoss(1)
	time.Sleep(3 * time.Second)
	keys, frames := p.videoKeysIn.Load(), p.maxFrameIn.Load()
	x.setLoss(0)
	resumed := time.Now()

	var first time.Duration
	ok := assert.Eventually(t, func() bool {
		if p.videoKeysIn.Load() > keys {
			first = time.Since(resumed)
			return true
		}
		return false
	}, time.Second, 5*time.Millisecond, "a keyframe comes back within 1 s of the recovery")
	t.Logf("keyframe back %v after the recovery (ok %v); PLIs to the peer since the outage: %d; dropped by the proxy: %d to the endpoint, %d back",
		first, ok, p.plisIn.Load()-plis, x.dropped[0].Load(), x.dropped[1].Load())
	assert.Positive(t, x.dropped[0].Load(), "the proxy cut the peer's media")
	require.Eventually(t, func() bool { return p.maxFrameIn.Load() > frames+50 }, waitFor, tick, "the video goes on after the outage")
}
