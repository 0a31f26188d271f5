package endpoint_test

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/pipeline"
)

func rtpFFmpeg(t *testing.T) string {
	t.Helper()
	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg not installed")
	}
	return ff
}

// rtpPipeline starts a pipeline of els; Close runs at cleanup.
func rtpPipeline(t *testing.T, els ...element.Element) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.New()
	require.NoError(t, err)
	require.NoError(t, p.Add(els...))
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// sectionPort returns the port of the first section of kind media.
func sectionPort(t *testing.T, s, media string) int {
	t.Helper()
	var sd sdp.SessionDescription
	require.NoError(t, sd.UnmarshalString(s))
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media == media {
			return md.MediaName.Port.Value
		}
	}
	t.Fatalf("no %s section in %s", media, s)
	return 0
}

// rtpCollector is an app sink counting the RTP packets of one pad.
type rtpCollector struct {
	*element.AppSink
	packets, keyframes, ends atomic.Int64
	ssrc, pt                 atomic.Uint32
	mu                       sync.Mutex
	caps                     element.Caps
}

func newRTPCollector(name string, k element.Kind) *rtpCollector {
	c := &rtpCollector{}
	var tmpl element.CapsList
	for _, cd := range codec.Codecs() {
		if cd.Kind == k && cd.RTP {
			cp := cd.Caps(element.FormatRTP)
			cp.Fmtp = ""
			tmpl = append(tmpl, cp)
		}
	}
	c.AppSink = element.NewAppSink(name, tmpl,
		element.WithBufferFunc(func(b *element.Buffer) {
			c.packets.Add(1)
			c.ssrc.Store(b.RTP.SSRC)
			c.pt.Store(uint32(b.RTP.PayloadType))
			if b.Keyframe() {
				c.keyframes.Add(1)
			}
			if b.Flags&element.FlagEndOfFrame != 0 {
				c.ends.Add(1)
			}
		}),
		element.WithEventFunc(func(ev element.Event) {
			if ce, ok := ev.(element.CapsEvent); ok {
				c.mu.Lock()
				c.caps = ce.Caps
				c.mu.Unlock()
			}
		}))
	return c
}

func (c *rtpCollector) Caps() element.Caps {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.caps
}

// TestRTPFromFFmpeg: the ffmpeg CLI sends VP8 RTP to the port of the
// endpoint's offer; the packets come out of the video src pad with VP8
// caps, keyframes and frame ends flagged. ffmpeg's own SDP (-sdp_file) is
// then a valid offer for a second endpoint.
func TestRTPFromFFmpeg(t *testing.T) {
	ff := rtpFFmpeg(t)
	ep, err := endpoint.NewRTP("rtp")
	require.NoError(t, err)
	offer, err := ep.GenerateOffer()
	require.NoError(t, err)
	assert.Contains(t, offer, "RTP/AVP")
	assert.Contains(t, offer, "a=rtpmap:96 VP8/90000")
	port := sectionPort(t, offer, "video")
	assert.Equal(t, ep.Port(element.KindVideo), port)
	assert.Contains(t, offer, "a=rtcp:"+strconv.Itoa(port+1))

	sink := newRTPCollector("sink", element.KindVideo)
	p := rtpPipeline(t, ep, sink)
	require.NoError(t, p.ConnectPads(ep.Pad("video"), sink.SinkPad()))
	require.NoError(t, p.Start(context.Background()))

	sdpFile := filepath.Join(t.TempDir(), "ffmpeg.sdp")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ff, "-hide_banner", "-nostdin", "-v", "error",
		"-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "3",
		"-c:v", "libvpx", "-deadline", "realtime", "-g", "30",
		"-sdp_file", sdpFile,
		"-f", "rtp", "rtp://127.0.0.1:"+strconv.Itoa(port)).CombinedOutput()
	require.NoError(t, err, "ffmpeg: %s", out)

	require.Eventually(t, func() bool { return sink.packets.Load() >= 80 }, 5*time.Second, 20*time.Millisecond,
		"packets received: %d", sink.packets.Load())
	c := sink.Caps()
	assert.Equal(t, element.FormatRTP, c.Format)
	assert.True(t, strings.EqualFold(codec.MIMEVP8, c.Codec), "caps %v", c)
	assert.EqualValues(t, 90000, c.ClockRate)
	assert.GreaterOrEqual(t, sink.keyframes.Load(), int64(3), "a keyframe a second")
	assert.GreaterOrEqual(t, sink.ends.Load(), int64(80), "frame ends")
	t.Logf("received %d packets, %d keyframes, %d frames; stats %+v",
		sink.packets.Load(), sink.keyframes.Load(), sink.ends.Load(), ep.Stats())

	// ffmpeg's SDP as an offer.
	ffsdp, err := os.ReadFile(sdpFile)
	require.NoError(t, err)
	assert.NotContains(t, string(ffsdp), "a=crypto")
	ep2, err := endpoint.NewRTP("rtp2")
	require.NoError(t, err)
	defer ep2.Close()
	answer, err := ep2.ProcessOffer(string(ffsdp))
	require.NoError(t, err, "offer:\n%s", ffsdp)
	assert.Contains(t, answer, "a=rtpmap:96 VP8/90000")
	assert.Equal(t, ep2.Port(element.KindVideo), sectionPort(t, answer, "video"))
}

// ivfFrames encodes n frames of VP8 with ffmpeg and returns them.
func ivfFrames(t *testing.T, ff string, n int) [][]byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.ivf")
	out, err := exec.Command(ff, "-hide_banner", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-frames:v", strconv.Itoa(n),
		"-c:v", "libvpx", "-deadline", "realtime", "-g", "30", "-f", "ivf", path).CombinedOutput()
	require.NoError(t, err, "ffmpeg: %s", out)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Greater(t, len(data), 32)
	data = data[binary.LittleEndian.Uint16(data[6:8]):]
	var frames [][]byte
	for len(data) >= 12 {
		size := int(binary.LittleEndian.Uint32(data[:4]))
		data = data[12:]
		require.LessOrEqual(t, size, len(data))
		frames = append(frames, data[:size])
		data = data[size:]
	}
	require.Len(t, frames, n)
	return frames
}

// freePortPair returns an even UDP port whose successor is free too.
func freePortPair(t *testing.T) int {
	t.Helper()
	for range 100 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		port := c.LocalAddr().(*net.UDPAddr).Port
		if port%2 == 1 {
			_ = c.Close()
			continue
		}
		c2, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
		_ = c.Close()
		if err == nil {
			_ = c2.Close()
			return port
		}
	}
	t.Fatal("no free port pair")
	return 0
}

// TestRTPToFFmpeg: ffmpeg offers to receive VP8 (the SDP it reads is the
// offer the endpoint answers); medley sends payloaded VP8 from an app
// source through the video sink pad, and ffmpeg decodes the frames without
// errors.
func TestRTPToFFmpeg(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testRTPToFFmpeg(t, false) })
	t.Run("sdes", func(t *testing.T) { testRTPToFFmpeg(t, true) })
}

func testRTPToFFmpeg(t *testing.T, sdes bool) {
	ff := rtpFFmpeg(t)
	frames := ivfFrames(t, ff, 150)

	ffPort := freePortPair(t)
	proto, crypto := "RTP/AVP", ""
	if sdes {
		key := make([]byte, 30)
		_, _ = cryptorand.Read(key)
		proto, crypto = "RTP/SAVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+base64.StdEncoding.EncodeToString(key)+"\r\n"
	}
	offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=ffmpeg\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=video " + strconv.Itoa(ffPort) + " " + proto + " 97\r\na=rtpmap:97 VP8/90000\r\n" + crypto + "a=recvonly\r\n"
	ep, err := endpoint.NewRTP("rtp")
	require.NoError(t, err)
	answer, err := ep.ProcessOffer(offer)
	require.NoError(t, err)
	assert.Contains(t, answer, "a=rtpmap:97 VP8/90000")
	assert.Contains(t, answer, "a=sendonly")
	// ffmpeg reads what it receives: its port, and with SDES the key of
	// the sender, the endpoint's, from the answer.
	input := offer
	if sdes {
		i := strings.Index(answer, "a=crypto:")
		require.GreaterOrEqual(t, i, 0, "answer:\n%s", answer)
		j := strings.Index(answer[i:], "\r\n")
		require.Positive(t, j)
		input = strings.Replace(offer, crypto, answer[i:i+j]+"\r\n", 1)
	}
	sdpFile := filepath.Join(t.TempDir(), "offer.sdp")
	require.NoError(t, os.WriteFile(sdpFile, []byte(input), 0o600))

	vp8, _ := codec.Lookup(codec.MIMEVP8)
	src := element.NewAppSource("src", element.CapsList{vp8.Caps(element.FormatRTP)})
	p := rtpPipeline(t, ep, src)
	require.NoError(t, p.ConnectPads(src.SrcPad(), ep.Pad("video_sink")))
	require.NoError(t, p.Start(context.Background()))

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var stderr, progress bytes.Buffer
	cmd := exec.CommandContext(ctx, ff, "-hide_banner", "-nostdin", "-v", "error",
		"-protocol_whitelist", "file,udp,rtp", "-i", sdpFile,
		"-frames:v", "90", "-progress", "pipe:1", "-f", "null", "-")
	cmd.Stderr, cmd.Stdout = &stderr, &progress
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	time.Sleep(500 * time.Millisecond) // ffmpeg opens its sockets

	pk := rtp.NewPacketizer(1200, 96, 1234, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	var werr error
	sent := 0
send:
	for i := 0; ; i++ {
		select {
		case werr = <-exited:
			break send
		case <-tick.C:
		}
		if i >= 3*len(frames) {
			werr = <-exited
			break
		}
		f := frames[i%len(frames)]
		key := f[0]&1 == 0
		for _, pkt := range pk.Packetize(f, 3000) {
			src.PushRTP(pkt, key)
			sent++
		}
	}
	require.NoError(t, werr, "ffmpeg: %s", stderr.String())
	assert.Empty(t, strings.TrimSpace(stderr.String()), "ffmpeg reported errors")
	decoded := 0
	for line := range strings.Lines(progress.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "frame="); ok {
			decoded, _ = strconv.Atoi(v)
		}
	}
	assert.Equal(t, 90, decoded, "frames ffmpeg decoded")
	st := ep.Stats()
	t.Logf("sent %d packets; ffmpeg decoded %d frames; stats %+v", sent, decoded, st)
	assert.Positive(t, st.PacketsSent)
}

// TestRTPLoopback: two endpoints negotiate (offer with rtcp-mux) and VP8
// and Opus packets go from one to the other with the offerer's SSRC and the
// answer's payload types, the source's buffers left as they were.
func TestRTPLoopback(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testRTPLoopback(t, false) })
	t.Run("sdes", func(t *testing.T) { testRTPLoopback(t, true) })
}

func testRTPLoopback(t *testing.T, sdes bool) {
	opts := []endpoint.RTPOption{endpoint.WithRTCPMux(), endpoint.WithRTPBindAddress("127.0.0.1")}
	if sdes {
		opts = append(opts, endpoint.WithSDES())
	}
	a, err := endpoint.NewRTP("a", opts...)
	require.NoError(t, err)
	b, err := endpoint.NewRTP("b")
	require.NoError(t, err)
	offer, err := a.GenerateOffer()
	require.NoError(t, err)
	assert.Contains(t, offer, "a=rtcp-mux")
	answer, err := b.ProcessOffer(offer)
	require.NoError(t, err)
	assert.Contains(t, answer, "a=rtcp-mux")
	if sdes {
		assert.Contains(t, offer, "RTP/SAVP")
		assert.Contains(t, offer, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")
		assert.Contains(t, answer, "RTP/SAVP")
		assert.Contains(t, answer, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")
	} else {
		assert.NotContains(t, answer, "a=crypto")
	}
	require.NoError(t, a.ProcessAnswer(answer))

	vp8, _ := codec.Lookup(codec.MIMEVP8)
	opus, _ := codec.Lookup(codec.MIMEOpus)
	var keyReqs atomic.Int64
	vsrc := element.NewAppSource("vsrc", element.CapsList{vp8.Caps(element.FormatRTP)},
		element.WithUpstream(func(ev element.Event) {
			if _, ok := ev.(element.KeyframeRequest); ok {
				keyReqs.Add(1)
			}
		}))
	asrc := element.NewAppSource("asrc", element.CapsList{opus.Caps(element.FormatRTP)})
	vsink := newRTPCollector("vsink", element.KindVideo)
	asink := newRTPCollector("asink", element.KindAudio)
	p := rtpPipeline(t, a, b, vsrc, asrc, vsink, asink)
	require.NoError(t, p.ConnectPads(vsrc.SrcPad(), a.Pad("video_sink")))
	require.NoError(t, p.ConnectPads(asrc.SrcPad(), a.Pad("audio_sink")))
	require.NoError(t, p.ConnectPads(b.Pad("video"), vsink.SinkPad()))
	require.NoError(t, p.ConnectPads(b.Pad("audio"), asink.SinkPad()))
	require.NoError(t, p.Start(context.Background()))

	for i := range 50 {
		vpkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 50, SequenceNumber: uint16(i), Timestamp: uint32(i * 3000), SSRC: 7, Marker: true},
			Payload: []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}}
		vsrc.PushRTP(vpkt, i%10 == 0)
		apkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 50, SequenceNumber: uint16(i), Timestamp: uint32(i * 960), SSRC: 8},
			Payload: []byte{0xfc, 1, 2, 3}}
		asrc.PushRTP(apkt, true)
		time.Sleep(5 * time.Millisecond)
	}
	require.Eventually(t, func() bool { return vsink.packets.Load() >= 45 && asink.packets.Load() >= 45 },
		5*time.Second, 20*time.Millisecond, "video %d audio %d", vsink.packets.Load(), asink.packets.Load())
	assert.True(t, strings.EqualFold(codec.MIMEVP8, vsink.Caps().Codec))
	assert.True(t, strings.EqualFold(codec.MIMEOpus, asink.Caps().Codec))
	assert.Positive(t, vsink.ends.Load())
	assert.Positive(t, vsink.keyframes.Load())
	assert.EqualValues(t, 96, vsink.pt.Load(), "VP8's payload type in the offer")
	assert.EqualValues(t, 111, asink.pt.Load(), "Opus's payload type in the offer")
	assert.NotEqualValues(t, 7, vsink.ssrc.Load(), "the endpoint's SSRC, not the source's")
	assert.NotEqualValues(t, 8, asink.ssrc.Load(), "the endpoint's SSRC, not the source's")
	assert.Zero(t, a.Stats().Drops)

	// A keyframe request from b's receiving side goes as RTCP PLI (on the
	// multiplexed port) to a, which asks its source.
	before := keyReqs.Load()
	require.True(t, vsink.RequestKeyframe())
	require.Eventually(t, func() bool { return keyReqs.Load() > before }, 5*time.Second, 20*time.Millisecond,
		"PLI should reach the source: a %+v, b %+v", a.Stats(), b.Stats())
	assert.Positive(t, b.Stats().PLIsSent)
	assert.Positive(t, a.Stats().PLIsReceived)
}

// TestRTPBadSDP: malformed SDP, nothing in common and an answer without an
// offer are error values.
func TestRTPBadSDP(t *testing.T) {
	ep, err := endpoint.NewRTP("rtp")
	require.NoError(t, err)
	defer ep.Close()
	for _, s := range []string{"", "garbage", "v=0\r\no=- 1 1 IN IP4", strings.Repeat("a", 1<<20)} {
		_, err := ep.ProcessOffer(s)
		assert.ErrorIs(t, err, endpoint.ErrInvalidSDP)
	}
	noAddr := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
	_, err = ep.ProcessOffer(noAddr)
	assert.ErrorIs(t, err, endpoint.ErrInvalidSDP)
	vp9 := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 98\r\na=rtpmap:98 VP9/90000\r\n"
	_, err = ep.ProcessOffer(vp9)
	assert.ErrorIs(t, err, endpoint.ErrNoCommonCodec)
	assert.ErrorContains(t, err, "VP9")
	err = ep.ProcessAnswer(vp9)
	assert.ErrorIs(t, err, endpoint.ErrSignalingState)
	_, err = endpoint.NewRTP("x", endpoint.WithRTPBindAddress("not-an-ip"))
	assert.Error(t, err)
	require.NoError(t, ep.Close())
	_, err = ep.GenerateOffer()
	assert.ErrorIs(t, err, element.ErrClosed)
}

// TestRTPFromFFmpegSRTP: the ffmpeg CLI sends SDES-SRTP (its -sdp_file, with
// its key, is the answer to the endpoint's RTP/SAVP offer); the endpoint
// decrypts the packets.
func TestRTPFromFFmpegSRTP(t *testing.T) {
	ff := rtpFFmpeg(t)
	ep, err := endpoint.NewRTP("rtp", endpoint.WithSDES())
	require.NoError(t, err)
	offer, err := ep.GenerateOffer()
	require.NoError(t, err)
	assert.Contains(t, offer, "RTP/SAVP")
	port := sectionPort(t, offer, "video")

	sink := newRTPCollector("sink", element.KindVideo)
	p := rtpPipeline(t, ep, sink)
	require.NoError(t, p.ConnectPads(ep.Pad("video"), sink.SinkPad()))
	require.NoError(t, p.Start(context.Background()))

	key := make([]byte, 30)
	_, _ = cryptorand.Read(key)
	sdpFile := filepath.Join(t.TempDir(), "ffmpeg.sdp")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, ff, "-hide_banner", "-nostdin", "-v", "error",
		"-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "3",
		"-c:v", "libvpx", "-deadline", "realtime", "-g", "30",
		"-sdp_file", sdpFile, "-f", "rtp",
		"-srtp_out_suite", "AES_CM_128_HMAC_SHA1_80", "-srtp_out_params", base64.StdEncoding.EncodeToString(key),
		"srtp://127.0.0.1:"+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	var answer []byte
	require.Eventually(t, func() bool {
		answer, _ = os.ReadFile(sdpFile)
		return bytes.Contains(answer, []byte("a=crypto:"))
	}, 10*time.Second, 10*time.Millisecond, "ffmpeg writes its SDP")
	require.NoError(t, ep.ProcessAnswer(string(answer)), "answer:\n%s", answer)
	require.NoError(t, cmd.Wait(), "ffmpeg: %s", out.String())

	require.Eventually(t, func() bool { return sink.packets.Load() >= 60 }, 5*time.Second, 20*time.Millisecond,
		"packets received: %d, stats %+v", sink.packets.Load(), ep.Stats())
	assert.True(t, strings.EqualFold(codec.MIMEVP8, sink.Caps().Codec))
	assert.Positive(t, sink.keyframes.Load())
	t.Logf("received %d packets, %d keyframes; stats %+v", sink.packets.Load(), sink.keyframes.Load(), ep.Stats())
}
