package endpoint_test

import (
	"context"
	"math"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/endpoint"
)

// lossyProxy relays UDP on 127.0.0.1 between a peer and an endpoint and
// drops a share of the datagrams each way, at random (seeded: a run is
// reproducible but for timing). The peer talks to front; back talks to the
// endpoint's candidate, so that the endpoint sees the proxy as the peer.
type lossyProxy struct {
	front, back net.PacketConn
	target      net.Addr
	peer        atomic.Pointer[net.UDPAddr] // where the peer last wrote from
	loss        atomic.Uint64               // float64 bits: the share dropped
	wg          sync.WaitGroup

	forwarded, dropped [2]atomic.Int64 // [0]: peer to endpoint, [1]: back
}

func newLossyProxy(t *testing.T, target string) *lossyProxy {
	t.Helper()
	taddr, err := net.ResolveUDPAddr("udp4", target)
	require.NoError(t, err)
	require.True(t, taddr.IP.IsLoopback(), "the proxy relays to loopback only")
	x := &lossyProxy{target: taddr}
	x.front, err = net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	x.back, err = net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	x.wg.Add(2)
	go x.relay(0, rand.New(rand.NewPCG(4, 1)))
	go x.relay(1, rand.New(rand.NewPCG(4, 2)))
	t.Cleanup(func() {
		_ = x.front.Close()
		_ = x.back.Close()
		x.wg.Wait()
	})
	return x
}

func (x *lossyProxy) setLoss(share float64) { x.loss.Store(math.Float64bits(share)) }

// relay copies datagrams one way until the sockets close.
func (x *lossyProxy) relay(dir int, rng *rand.Rand) {
	defer x.wg.Done()
	from := x.front
	if dir == 1 {
		from = x.back
	}
	buf := make([]byte, 1500)
	for {
		n, addr, err := from.ReadFrom(buf)
		if err != nil {
			return
		}
		var to net.Addr
		out := x.back
		if dir == 0 {
			ua, ok := addr.(*net.UDPAddr)
			if !ok || !ua.IP.IsLoopback() {
				continue
			}
			x.peer.Store(ua)
			to = x.target
		} else {
			if addr.String() != x.target.String() {
				continue
			}
			p := x.peer.Load()
			if p == nil {
				continue
			}
			to, out = p, x.front
		}
		if rng.Float64() < math.Float64frombits(x.loss.Load()) {
			x.dropped[dir].Add(1)
			continue
		}
		x.forwarded[dir].Add(1)
		_, _ = out.WriteTo(buf[:n], to)
	}
}

var (
	candidateLine = regexp.MustCompile(`(?m)^a=candidate:.*\r?\n`)
	firstMid      = regexp.MustCompile(`(?m)^a=mid:.*\r?\n`)
)

// viaProxy replaces the candidates of sdp by one at addr (or by none if
// addr is nil).
func viaProxy(sdp string, addr net.Addr) string {
	sdp = candidateLine.ReplaceAllString(sdp, "")
	if addr == nil {
		return sdp
	}
	ua := addr.(*net.UDPAddr)
	line := "a=candidate:1 1 udp 2130706431 127.0.0.1 " + strconv.Itoa(ua.Port) + " typ host\r\n"
	loc := firstMid.FindStringIndex(sdp)
	return sdp[:loc[1]] + line + sdp[loc[1]:]
}

// TestLoss: with 5% of the datagrams lost each way between a peer and a
// looped-back endpoint, NACK and retransmission (the peer's and the
// endpoint's interceptors, both ways) recover nearly every frame, and the
// video keeps coming back.
func TestLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep, err := endpoint.NewWebRTC("ep", loopbackOptions(endpoint.WithCompleteSDP())...)
	require.NoError(t, err)
	loopback(t, ep)
	p := newPeer(t, peerConfig{})

	x := connectViaProxy(ctx, t, ep, p)
	p.send()
	require.Eventually(t, func() bool { return p.videoIn.Load() > 20 }, waitFor, tick, "video comes back before the loss")

	x.setLoss(0.05)
	from := p.framesOut.Load() + 5
	time.Sleep(3 * time.Second)
	to := p.framesOut.Load()
	// Give the last retransmissions time to come (a few NACK intervals).
	require.Eventually(t, func() bool { return p.maxFrameIn.Load() >= to+20 }, waitFor, tick, "the video keeps coming back")
	time.Sleep(300 * time.Millisecond)

	got, sent := p.framesEchoed(from, to), int(to-from)
	share := float64(got) / float64(sent)
	lost := [2]int64{x.dropped[0].Load(), x.dropped[1].Load()}
	fwd := [2]int64{x.forwarded[0].Load(), x.forwarded[1].Load()}
	t.Logf("frames %d..%d: %d of %d came back (%.1f%%); the proxy dropped %d of %d datagrams to the endpoint, %d of %d back",
		from, to, got, sent, 100*share, lost[0], lost[0]+fwd[0], lost[1], lost[1]+fwd[1])
	assert.Positive(t, lost[0], "the proxy dropped datagrams to the endpoint")
	assert.Positive(t, lost[1], "the proxy dropped datagrams from the endpoint")
	// Without retransmission a frame's first packet is lost one time in
	// ten over the two hops (1 - 0.95²); with it, nearly never.
	assert.GreaterOrEqual(t, share, 0.98, "NACK should recover the lost packets")

	assert.Positive(t, p.nacksIn.Load(), "the endpoint asked the peer to resend (NACK)")
}

// connectViaProxy connects peer p to endpoint ep through a new lossy proxy
// (no loss yet) and returns the proxy. The endpoint learns no candidate of
// the peer: it sees the proxy's back socket as a peer-reflexive one. The
// peer learns only the proxy's front socket.
func connectViaProxy(ctx context.Context, t *testing.T, ep *endpoint.WebRTC, p *peer) *lossyProxy {
	t.Helper()
	answer, err := ep.ProcessOffer(ctx, viaProxy(p.offer(ctx), nil))
	require.NoError(t, err)
	m := candidatePort.FindStringSubmatch(answer)
	require.NotNil(t, m, "the answer has a loopback UDP candidate")
	x := newLossyProxy(t, "127.0.0.1:"+m[2])
	require.NoError(t, p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: viaProxy(answer, x.front.LocalAddr())}))
	require.Eventually(t, func() bool {
		return p.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
	}, waitFor, tick, "the peer connects through the proxy")
	return x
}
