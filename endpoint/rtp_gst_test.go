package endpoint_test

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
)

// gstRTCP is the RTCP interval of both sides in the GStreamer tests
// (rtpbin's default minimum is RFC 3550's 5 s).
const gstRTCP = 300 * time.Millisecond

// gstSection is what a test needs of one section of the endpoint's SDP.
type gstSection struct {
	port, rtcpPort int
	ssrc           uint32
	key            []byte // SDES master key and salt, nil without SRTP
}

func sdpSection(t *testing.T, s, media string) gstSection {
	t.Helper()
	var sd sdp.SessionDescription
	require.NoError(t, sd.UnmarshalString(s))
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media != media {
			continue
		}
		sec := gstSection{port: md.MediaName.Port.Value, rtcpPort: md.MediaName.Port.Value + 1}
		if v, ok := md.Attribute("rtcp"); ok {
			p, err := strconv.Atoi(strings.Fields(v)[0])
			require.NoError(t, err)
			sec.rtcpPort = p
		}
		v, ok := md.Attribute("ssrc")
		require.True(t, ok, "a=ssrc in %s", s)
		n, err := strconv.ParseUint(strings.Fields(v)[0], 10, 32)
		require.NoError(t, err)
		sec.ssrc = uint32(n)
		if v, ok := md.Attribute("crypto"); ok {
			f := strings.Fields(v)
			require.Len(t, f, 3)
			sec.key, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(f[2], "inline:"))
			require.NoError(t, err)
		}
		return sec
	}
	t.Fatalf("no %s section in %s", media, s)
	return gstSection{}
}

func srtpKey(t *testing.T) []byte {
	k := make([]byte, 30)
	_, err := cryptorand.Read(k)
	require.NoError(t, err)
	return k
}

// gstSDPSection is an SDP media section of GStreamer's side: its RTP port
// (RTCP on the next), codec, direction, and the crypto line of key.
func gstSDPSection(media string, port int, pt int, rtpmap string, dir string, key []byte) string {
	proto, crypto := "RTP/AVP", ""
	if key != nil {
		proto = "RTP/SAVP"
		crypto = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(key) + "\r\n"
	}
	return fmt.Sprintf("m=%s %d %s %d\r\na=rtpmap:%d %s\r\n%sa=%s\r\n", media, port, proto, pt, pt, rtpmap, crypto, dir)
}

const gstSDPHeader = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=gstreamer\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"

// srtpCaps are the caps srtpdec takes its key from: the stream of ssrc,
// protected with key in AES_CM_128_HMAC_SHA1_80.
func srtpCaps(media string, ssrc uint32, key []byte) string {
	return fmt.Sprintf(`%s,ssrc=(uint)%d,srtp-key=(buffer)%s,srtp-cipher=(string)aes-128-icm,srtp-auth=(string)hmac-sha1-80,srtcp-cipher=(string)aes-128-icm,srtcp-auth=(string)hmac-sha1-80`,
		media, ssrc, hex.EncodeToString(key))
}

// srtpEncoder is an srtpenc of key in AES_CM_128_HMAC_SHA1_80.
func srtpEncoder(name string, key []byte) string {
	return fmt.Sprintf("srtpenc name=%s key=%s rtp-cipher=aes-128-icm rtp-auth=hmac-sha1-80 rtcp-cipher=aes-128-icm rtcp-auth=hmac-sha1-80",
		name, hex.EncodeToString(key))
}

// gstSendSession is the gst-launch text of rtpbin session i sending enc
// (raw media to RTP) to the endpoint's section sec, RTCP both ways; with
// gkey GStreamer's SRTP key (sec.key, the endpoint's, decrypts its RTCP).
func gstSendSession(i int, enc string, sec gstSection, rtcpPort int, gkey []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s ! rtpbin.send_rtp_sink_%d ", enc, i)
	if gkey == nil {
		fmt.Fprintf(&b, "rtpbin.send_rtp_src_%d ! udpsink host=127.0.0.1 port=%d ", i, sec.port)
		fmt.Fprintf(&b, "rtpbin.send_rtcp_src_%d ! udpsink host=127.0.0.1 port=%d sync=false async=false ", i, sec.rtcpPort)
		fmt.Fprintf(&b, "udpsrc address=127.0.0.1 port=%d ! rtpbin.recv_rtcp_sink_%d ", rtcpPort, i)
		return b.String()
	}
	// An srtpenc each for RTP and RTCP, as srtpdecs in testRTPToGStreamer:
	// each sets its libsrtp session up on its first buffer.
	fmt.Fprintf(&b, "%s %s ", srtpEncoder(fmt.Sprintf("enc%d", i), gkey), srtpEncoder(fmt.Sprintf("rtcpenc%d", i), gkey))
	fmt.Fprintf(&b, "rtpbin.send_rtp_src_%d ! enc%d.rtp_sink_0 enc%d.rtp_src_0 ! udpsink host=127.0.0.1 port=%d ", i, i, i, sec.port)
	fmt.Fprintf(&b, "rtpbin.send_rtcp_src_%d ! rtcpenc%d.rtcp_sink_0 rtcpenc%d.rtcp_src_0 ! udpsink host=127.0.0.1 port=%d sync=false async=false ", i, i, i, sec.rtcpPort)
	fmt.Fprintf(&b, "srtpdec name=dec%d udpsrc address=127.0.0.1 port=%d caps=\"%s\" ! dec%d.rtcp_sink dec%d.rtcp_src ! rtpbin.recv_rtcp_sink_%d ",
		i, rtcpPort, srtpCaps("application/x-srtcp", sec.ssrc, sec.key), i, i, i)
	return b.String()
}

// rtpTap records the RTP timestamp of the last packet of a pad and when it
// came.
type rtpTap struct {
	*element.AppSink
	mu   sync.Mutex
	ts   uint32
	at   time.Time
	ssrc uint32
}

func newRTPTap(name string, c codec.Codec) *rtpTap {
	tp := &rtpTap{}
	caps := c.Caps(element.FormatRTP)
	caps.Fmtp = ""
	tp.AppSink = element.NewAppSink(name, element.CapsList{caps}, element.WithBufferFunc(func(b *element.Buffer) {
		now := time.Now()
		tp.mu.Lock()
		tp.ts, tp.at, tp.ssrc = b.RTP.Timestamp, now, b.RTP.SSRC
		tp.mu.Unlock()
	}))
	return tp
}

func (tp *rtpTap) last() (uint32, time.Time, uint32) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.ts, tp.at, tp.ssrc
}

// TestRTPFromGStreamer: gst-launch's rtpbin sends VP8 and Opus with RTCP
// to the ports of the endpoint's answer to the offer describing it; medley
// decodes the frames (the pipeline inserts depayloaders and decoders),
// maps RTP timestamps to GStreamer's wall clock with its sender reports,
// and its receiver reports reach rtpbin (which echoes their LSR). With
// sdes, both ways are SRTP/SRTCP keyed by the SDP's crypto lines.
func TestRTPFromGStreamer(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testRTPFromGStreamer(t, false) })
	t.Run("sdes", func(t *testing.T) { testRTPFromGStreamer(t, true) })
}

func testRTPFromGStreamer(t *testing.T, sdes bool) {
	ga, gv := freePortPair(t), freePortPair(t)
	var akey, vkey []byte
	if sdes {
		akey, vkey = srtpKey(t), srtpKey(t)
	}
	offer := gstSDPHeader + gstSDPSection("audio", ga, 111, "opus/48000/2", "sendonly", akey) +
		gstSDPSection("video", gv, 96, "VP8/90000", "sendonly", vkey)
	ep, err := endpoint.NewRTP("rtp", endpoint.WithRTCPInterval(gstRTCP))
	require.NoError(t, err)
	answer, err := ep.ProcessOffer(offer)
	require.NoError(t, err)
	asec, vsec := sdpSection(t, answer, "audio"), sdpSection(t, answer, "video")
	assert.Equal(t, sdes, vsec.key != nil, "answer:\n%s", answer)
	assert.Contains(t, answer, "a=recvonly")

	vp8, _ := codec.Lookup(codec.MIMEVP8)
	opus, _ := codec.Lookup(codec.MIMEOpus)
	var vframes, aframes, corrupt atomic.Int64
	vsink := element.NewAppSink("vframes", element.CapsList{codec.RawVideoCaps(0, 0, codec.PixelFormatI420)},
		element.WithBufferFunc(func(b *element.Buffer) {
			vframes.Add(1)
			if b.Frame.(*codec.Frame).Corrupt() {
				corrupt.Add(1)
			}
		}))
	araw, ok := codec.DecoderOutput(opus.Caps(element.FormatSample))
	require.True(t, ok)
	asink := element.NewAppSink("aframes", element.CapsList{araw},
		element.WithBufferFunc(func(*element.Buffer) { aframes.Add(1) }))
	vtap, atap := newRTPTap("vtap", vp8), newRTPTap("atap", opus)
	p := rtpPipeline(t, ep, vsink, asink, vtap, atap)
	require.NoError(t, p.ConnectPads(ep.Pad("video"), vsink.SinkPad()))
	require.NoError(t, p.ConnectPads(ep.Pad("video"), vtap.SinkPad()))
	require.NoError(t, p.ConnectPads(ep.Pad("audio"), asink.SinkPad()))
	require.NoError(t, p.ConnectPads(ep.Pad("audio"), atap.SinkPad()))
	require.NoError(t, p.Start(context.Background()))

	video := "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! " +
		"vp8enc deadline=1 keyframe-max-dist=30 target-bitrate=300000 ! rtpvp8pay pt=96"
	audio := "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111"
	desc := "rtpbin name=rtpbin " + gstSendSession(0, video, vsec, gv+1, vkey) + gstSendSession(1, audio, asec, ga+1, akey)
	g := startGst(t, desc, []int{0, 1}, gstRTCP)

	srs := func() (a, v endpoint.RTPSenderReport, ok bool) {
		a, aok := ep.RemoteSenderReport(element.KindAudio)
		v, vok := ep.RemoteSenderReport(element.KindVideo)
		return a, v, aok && vok
	}
	ok = assert.Eventually(t, func() bool {
		_, _, ok := srs()
		return vframes.Load() >= 60 && aframes.Load() >= 100 && ok
	}, 10*time.Second, 20*time.Millisecond)
	if ok {
		// Two more reports each, which echo GStreamer's SR.
		st := ep.Stats()
		ok = assert.Eventually(t, func() bool {
			s := ep.Stats()
			return s.Video.ReportsSent >= st.Video.ReportsSent+2 && s.Audio.ReportsSent >= st.Audio.ReportsSent+2
		}, 5*time.Second, 20*time.Millisecond)
	}
	res := g.stop()
	assert.Empty(t, res.Messages, "GStreamer's errors and warnings")
	require.True(t, ok, "video frames %d, audio frames %d, stats %+v, GStreamer %+v", vframes.Load(), aframes.Load(), ep.Stats(), res)
	assert.Zero(t, corrupt.Load(), "corrupt frames")

	// GStreamer's sender reports: its SSRC, the codec's clock, a wall
	// clock like ours (rtpbin's ntp-time-source is the real-time clock),
	// and an RTP/NTP mapping that dates the last packet received when it
	// came, give or take the path's latency.
	a, v, _ := srs()
	for _, c := range []struct {
		sr   endpoint.RTPSenderReport
		tap  *rtpTap
		rate uint32
		ss   endpoint.RTPStreamStats
	}{{v, vtap, 90000, ep.Stats().Video}, {a, atap, 48000, ep.Stats().Audio}} {
		ts, at, ssrc := c.tap.last()
		assert.Equal(t, ssrc, c.sr.SSRC)
		assert.Equal(t, c.rate, c.sr.ClockRate)
		assert.Positive(t, c.sr.PacketCount)
		assert.WithinDuration(t, time.Now(), c.sr.Wallclock, 3*time.Second)
		assert.WithinDuration(t, at, c.sr.Time(ts), 300*time.Millisecond, "RTP %d at %v", ts, at)
		t.Logf("SR %+v: last packet RTP %d at %v, mapped to %v", c.sr, ts, at.Format("15:04:05.000"), c.sr.Time(ts).Format("15:04:05.000"))
		// The endpoint's own receiver statistics.
		assert.Equal(t, ssrc, c.ss.RemoteSSRC)
		assert.Zero(t, c.ss.PacketsLost)
		assert.Less(t, c.ss.Jitter, 50*time.Millisecond)
		assert.Positive(t, c.ss.ReportsReceived)
	}

	// The endpoint's receiver reports reached rtpbin: its sources carry
	// the last report block about them.
	for i, sec := range []gstSection{vsec, asec} {
		src, ok := res.internal(strconv.Itoa(i))
		require.True(t, ok, "session %d: %v", i, res.Stats[strconv.Itoa(i)])
		t.Logf("GStreamer session %d, its source: %v", i, src)
		remote, ok := res.source(strconv.Itoa(i), sec.ssrc)
		require.True(t, ok, "session %d knows the endpoint's SSRC %d: %v", i, sec.ssrc, res.Stats[strconv.Itoa(i)])
		t.Logf("GStreamer session %d, the endpoint's source: %v", i, remote)
		assert.True(t, remote.bool("have-rb"), "a report block from the endpoint")
		assert.Equal(t, src.uint("ssrc"), remote.uint("rb-ssrc"), "about GStreamer's source")
		assert.Zero(t, remote.uint("rb-packetslost"))
		assert.NotZero(t, remote.uint("rb-lsr"), "the endpoint echoed GStreamer's SR")
		// GStreamer's round trip from the LSR and DLSR the endpoint sent,
		// in 1/65536 s: positive and under a second on 127.0.0.1.
		rtt := remote.uint("rb-round-trip")
		assert.Positive(t, rtt)
		assert.Less(t, rtt, uint64(65536))
	}
}

// TestRTPToGStreamer: medley sends VP8 RTP (synthetic frames, encoded by
// FFmpeg, payloaded by codec's payloader) to a gst-launch pipeline
// (udpsrc -> rtpbin -> rtpvp8depay -> vp8dec) that offered to receive it
// with its port; GStreamer decodes every frame without an error, receives
// the endpoint's sender reports and sends receiver reports, which reach
// the endpoint's stats. With sdes, srtpdec decrypts the endpoint's SRTP and
// SRTCP with the key of its answer, and srtpenc protects GStreamer's RTCP
// with the key of its offer.
func TestRTPToGStreamer(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testRTPToGStreamer(t, false) })
	t.Run("sdes", func(t *testing.T) { testRTPToGStreamer(t, true) })
}

func testRTPToGStreamer(t *testing.T, sdes bool) {
	pkts := rtpStream(t, codec.MIMEVP8)
	gv := freePortPair(t)
	var gkey []byte
	if sdes {
		gkey = srtpKey(t)
	}
	offer := gstSDPHeader + gstSDPSection("video", gv, 97, "VP8/90000", "recvonly", gkey)
	ep, err := endpoint.NewRTP("rtp", endpoint.WithRTCPInterval(gstRTCP))
	require.NoError(t, err)
	answer, err := ep.ProcessOffer(offer)
	require.NoError(t, err)
	assert.Contains(t, answer, "a=sendonly")
	sec := sdpSection(t, answer, "video")
	require.Equal(t, sdes, sec.key != nil, "answer:\n%s", answer)

	vp8, _ := codec.Lookup(codec.MIMEVP8)
	src := element.NewAppSource("src", element.CapsList{vp8.Caps(element.FormatRTP)})
	p := rtpPipeline(t, ep, src)
	require.NoError(t, p.ConnectPads(src.SrcPad(), ep.Pad("video_sink")))
	require.NoError(t, p.Start(context.Background()))

	rtpCaps := "application/x-rtp,media=(string)video,clock-rate=(int)90000,encoding-name=(string)VP8,payload=(int)97"
	recv := fmt.Sprintf("udpsrc address=127.0.0.1 port=%d caps=\"%s\" ! rtpbin.recv_rtp_sink_0 ", gv, rtpCaps)
	rtcpIn := fmt.Sprintf("udpsrc address=127.0.0.1 port=%d ! rtpbin.recv_rtcp_sink_0 ", gv+1)
	rtcpOut := fmt.Sprintf("rtpbin.send_rtcp_src_0 ! udpsink host=127.0.0.1 port=%d sync=false async=false ", sec.rtcpPort)
	if sdes {
		// One srtpdec for SRTP, one for SRTCP: srtpdec 1.22 sets up its
		// libsrtp stream from the caps of each pad's first buffer, and the
		// two streaming threads doing so at once lose the first packets
		// ("unprotect failed code 13", no context), then a keyframe.
		recv = fmt.Sprintf("srtpdec name=dec udpsrc address=127.0.0.1 port=%d caps=\"%s\" ! dec.rtp_sink dec.rtp_src ! rtpbin.recv_rtp_sink_0 ",
			gv, srtpCaps(strings.Replace(rtpCaps, "x-rtp", "x-srtp", 1), sec.ssrc, sec.key))
		rtcpIn = fmt.Sprintf("srtpdec name=rtcpdec udpsrc address=127.0.0.1 port=%d caps=\"%s\" ! rtcpdec.rtcp_sink rtcpdec.rtcp_src ! rtpbin.recv_rtcp_sink_0 ",
			gv+1, srtpCaps("application/x-srtcp", sec.ssrc, sec.key))
		rtcpOut = fmt.Sprintf("%s rtpbin.send_rtcp_src_0 ! enc.rtcp_sink_0 enc.rtcp_src_0 ! udpsink host=127.0.0.1 port=%d sync=false async=false ",
			srtpEncoder("enc", gkey), sec.rtcpPort)
	}
	// A jitter buffer of a second: a packet later than the latency counts
	// as lost, and a loaded machine can stall either side that long.
	desc := "rtpbin name=rtpbin latency=1000 " + recv + rtcpIn + rtcpOut + "rtpbin. ! rtpvp8depay ! vp8dec ! fakesink name=frames sync=false"
	g := startGst(t, desc, []int{0}, gstRTCP, "frames")

	// 90 frames (3 s) in real time, from a keyframe.
	const frames = 90
	start := time.Now()
	sent := 0
	for _, pk := range pkts {
		if pk.pts >= frames*time.Second/30 {
			break
		}
		if d := pk.pts - time.Since(start); d > 0 {
			time.Sleep(d)
		}
		src.PushRTP(&pk.pkt, pk.key)
		sent++
	}
	assert.Eventually(t, func() bool { return g.count("frames") >= frames && ep.Stats().Video.PeerReports >= 2 },
		5*time.Second, 20*time.Millisecond)
	res := g.stop()
	remote, ok := res.source("0", sec.ssrc)
	require.True(t, ok, "GStreamer knows the endpoint's SSRC %d: %v", sec.ssrc, res.Stats["0"])
	t.Logf("GStreamer, the endpoint's source: %v", remote)
	assert.Empty(t, res.Messages, "GStreamer's errors and warnings")
	assert.Equal(t, frames, res.Counts["frames"], "GStreamer decoded each frame once")
	assert.Contains(t, res.Caps["frames"], "width=(int)320, height=(int)240")

	// rtpbin got the endpoint's sender reports (an RTP time, counts) and
	// sent receiver reports (about the endpoint's SSRC, nothing lost).
	assert.True(t, remote.bool("have-sr"), "an SR from the endpoint")
	assert.Positive(t, remote.uint("sr-packet-count"))
	assert.LessOrEqual(t, remote.uint("sr-packet-count"), uint64(sent))
	assert.Positive(t, remote.uint("sr-octet-count"))
	assert.EqualValues(t, sent, remote.uint("packets-received"))
	assert.True(t, remote.bool("sent-rb"), "GStreamer sent report blocks about the endpoint")

	st := ep.Stats()
	t.Logf("sent %d packets; endpoint stats %+v", sent, st)
	assert.EqualValues(t, sent, st.PacketsSent)
	assert.Equal(t, sec.ssrc, st.Video.SSRC)
	assert.Positive(t, st.Video.ReportsSent)
	assert.Positive(t, st.Video.ReportsReceived)
	// rtpbin's count of the lost starts at the second packet (its
	// probation of two sequential packets), hence -1 on a lossless path:
	// the signed 24-bit field the endpoint decodes as GStreamer sent it.
	assert.Equal(t, remote.int("sent-rb-packetslost"), st.Video.PeerPacketsLost)
	assert.LessOrEqual(t, st.Video.PeerPacketsLost, int64(0))
	assert.Zero(t, st.Video.PeerFractionLost)
	assert.Less(t, st.Video.PeerJitter, 50*time.Millisecond)
	assert.Positive(t, st.Video.RoundTripTime, "GStreamer echoed an SR")
	assert.Less(t, st.Video.RoundTripTime, time.Second)
}
