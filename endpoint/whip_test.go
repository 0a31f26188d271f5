package endpoint_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/pipeline"
)

// whipServer is a host serving WHIP at /whip and WHEP at /whep on
// 127.0.0.1, with one pipeline: the last WHIP publisher feeds every WHEP
// viewer.
type whipServer struct {
	p          *pipeline.Pipeline
	bus        *busLog
	whip, whep *endpoint.HTTPHandler
	srv        *httptest.Server
	publisher  atomic.Pointer[endpoint.WebRTC]
	left       atomic.Int64 // leave calls
}

func newWHIPServer(t *testing.T) *whipServer {
	t.Helper()
	s := &whipServer{}
	var err error
	s.p, err = pipeline.New(pipeline.WithFlowTimeout(400 * time.Millisecond))
	require.NoError(t, err)
	s.bus = newBusLog(t, s.p.Subscribe(4096), nil)
	require.NoError(t, s.p.Start(context.Background()))
	leave := func(ep *endpoint.WebRTC) func() {
		return func() {
			s.left.Add(1)
			s.publisher.CompareAndSwap(ep, nil)
			if err := s.p.Remove(ep); err != nil && !errors.Is(err, element.ErrClosed) {
				t.Errorf("leave %s: %v", ep.Name(), err)
			}
		}
	}
	s.whip, err = endpoint.NewWHIPHandler(func(ep *endpoint.WebRTC) (func(), error) {
		if err := s.p.Add(ep); err != nil {
			return nil, err
		}
		s.publisher.Store(ep)
		return leave(ep), nil
	}, endpoint.WithEndpointOptions(loopbackOptions()...))
	require.NoError(t, err)
	s.whep, err = endpoint.NewWHEPHandler(func(ep *endpoint.WebRTC) (func(), error) {
		pub := s.publisher.Load()
		if pub == nil {
			return nil, errors.New("nobody publishes")
		}
		if err := s.p.Add(ep); err != nil {
			return nil, err
		}
		if err := s.p.Connect(pub, ep, element.KindAudio|element.KindVideo); err != nil {
			_ = s.p.Remove(ep)
			return nil, err
		}
		return leave(ep), nil
	}, endpoint.WithEndpointOptions(loopbackOptions()...))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/whip", s.whip)
	mux.Handle("/whip/", s.whip)
	mux.Handle("/whep", s.whep)
	mux.Handle("/whep/", s.whep)
	s.srv = httptest.NewServer(mux) // on 127.0.0.1
	t.Cleanup(func() {
		s.srv.Close()
		assert.NoError(t, s.whip.Close())
		assert.NoError(t, s.whep.Close())
		assert.NoError(t, s.p.Close())
	})
	return s
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, method, url, contentType, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestWHIPPublishWHEPPlay: a pion client publishes over WHIP, trickling its
// candidates with PATCH; another plays over WHEP (JSON form) and receives
// the publisher's video and audio through the pipeline; DELETE ends the
// viewer's session, and the publisher leaving ends its own.
func TestWHIPPublishWHEPPlay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := newWHIPServer(t)

	// Publish: the offer goes before any candidate, which follow by PATCH.
	pub := newPeer(t, peerConfig{dir: webrtc.RTPTransceiverDirectionSendonly})
	var mu sync.Mutex
	var cands []string
	gathered := make(chan struct{})
	pub.pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			close(gathered)
			return
		}
		mu.Lock()
		cands = append(cands, c.ToJSON().Candidate)
		mu.Unlock()
	})
	o, err := pub.pc.CreateOffer(nil)
	require.NoError(t, err)
	require.NoError(t, pub.pc.SetLocalDescription(o))
	resp, answer := do(t, http.MethodPost, s.srv.URL+"/whip", "application/sdp", o.SDP)
	require.Equal(t, http.StatusCreated, resp.StatusCode, answer)
	assert.Equal(t, "application/sdp", resp.Header.Get("Content-Type"))
	assert.Equal(t, "application/trickle-ice-sdpfrag", resp.Header.Get("Accept-Patch"))
	pubURL := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(pubURL, "/whip/"), "Location %q", pubURL)
	assert.Contains(t, answer, "a=recvonly")
	assert.Contains(t, answer, "a=end-of-candidates", "the answer is complete")
	require.NoError(t, pub.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	select {
	case <-gathered:
	case <-ctx.Done():
		t.Fatal("the publisher did not gather its candidates")
	}
	mu.Lock()
	require.NotEmpty(t, cands)
	ufrag := iceUfragOf(o.SDP)
	frag := "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + icePwdOf(o.SDP) + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
	for _, c := range cands {
		frag += "a=" + c + "\r\n"
	}
	frag += "a=end-of-candidates\r\n"
	mu.Unlock()
	resp, body := do(t, http.MethodPatch, s.srv.URL+pubURL, "application/trickle-ice-sdpfrag", frag)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, body)
	pub.send()
	require.Eventually(t, func() bool {
		return pub.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
	}, waitFor, tick, "the publisher connects with the trickled candidates")
	pubEP := s.whip.Endpoint(pubURL[len("/whip/"):])
	require.NotNil(t, pubEP)
	require.Eventually(t, func() bool {
		for _, st := range pubEP.RTCStats() {
			if c, ok := st.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeRemoteCandidate && c.CandidateType == webrtc.ICECandidateTypeHost {
				return true // not peer-reflexive: it came by PATCH
			}
		}
		return false
	}, waitFor, tick, "the endpoint knows the publisher's host candidate")

	// Play, in the JSON form.
	viewer := newPeer(t, peerConfig{dir: webrtc.RTPTransceiverDirectionRecvonly})
	js, err := json.Marshal(map[string]string{"type": "offer", "sdp": viewer.offer(ctx)})
	require.NoError(t, err)
	resp, body = do(t, http.MethodPost, s.srv.URL+"/whep", "application/json", string(js))
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	viewURL := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(viewURL, "/whep/"), "Location %q", viewURL)
	var sd struct{ Type, SDP string }
	require.NoError(t, json.Unmarshal([]byte(body), &sd))
	assert.Equal(t, "answer", sd.Type)
	assert.Contains(t, sd.SDP, "a=sendonly")
	require.NoError(t, viewer.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sd.SDP}))
	require.Eventually(t, func() bool {
		return viewer.videoIn.Load() > 50 && viewer.audioIn.Load() > 25 && viewer.videoKeysIn.Load() > 0
	}, waitFor, tick, "the viewer receives the publisher's media: video %d (keyframes %d), audio %d",
		viewer.videoIn.Load(), viewer.videoKeysIn.Load(), viewer.audioIn.Load())
	assert.Greater(t, viewer.maxFrameIn.Load(), int64(10), "the frames are the publisher's")
	assert.Equal(t, 1, s.whip.Sessions())
	assert.Equal(t, 1, s.whep.Sessions())
	viewerName := "whep-" + viewURL[len("/whep/"):]
	assert.NotNil(t, s.whep.Endpoint(viewURL[len("/whep/"):]))
	assert.NotNil(t, s.p.Element(viewerName))

	// DELETE ends the viewer's session: the endpoint leaves the pipeline
	// and the viewer sees its connection close.
	resp, body = do(t, http.MethodDelete, s.srv.URL+viewURL, "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, 0, s.whep.Sessions())
	assert.Nil(t, s.p.Element(viewerName))
	require.Eventually(t, func() bool {
		st := viewer.pc.ConnectionState()
		return st == webrtc.PeerConnectionStateClosed || st == webrtc.PeerConnectionStateFailed
	}, waitFor, tick, "the viewer's connection closes")
	resp, _ = do(t, http.MethodDelete, s.srv.URL+viewURL, "", "")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "a deleted session is gone")

	// The publisher goes away: its session ends by itself.
	require.NoError(t, pub.pc.GracefulClose())
	require.Eventually(t, func() bool { return s.whip.Sessions() == 0 }, waitFor, tick, "the publisher's session ends when it leaves")
	assert.Nil(t, s.p.Element("whip-"+pubURL[len("/whip/"):]))
	assert.Equal(t, int64(2), s.left.Load(), "leave ran once per session")
	assert.Empty(t, s.bus.find(func(m element.Message) bool { _, ok := m.(*element.Error); return ok }), "no errors")
}

// TestWHIPErrors: what the handler answers to requests it cannot take.
func TestWHIPErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := newWHIPServer(t)
	pub := newPeer(t, peerConfig{dir: webrtc.RTPTransceiverDirectionSendonly})
	offer := pub.offer(ctx)
	resp, body := do(t, http.MethodPost, s.srv.URL+"/whip", "application/sdp", offer)
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	res := s.srv.URL + resp.Header.Get("Location")

	for _, tc := range []struct {
		name, method, path, ctype, body string
		status                          int
	}{
		{"offer of another media type", "POST", "/whip", "text/plain", offer, http.StatusUnsupportedMediaType},
		{"offer without a media type", "POST", "/whip", "", offer, http.StatusUnsupportedMediaType},
		{"malformed offer", "POST", "/whip", "application/sdp", "v=0\r\nnonsense", http.StatusBadRequest},
		{"offer over MaxSDPSize", "POST", "/whip", "application/sdp", strings.Repeat("a", endpoint.MaxSDPSize+1), http.StatusRequestEntityTooLarge},
		{"JSON that is not an offer", "POST", "/whip", "application/json", `{"type":"answer","sdp":"v=0"}`, http.StatusBadRequest},
		{"bad JSON", "POST", "/whip", "application/json", `{"type":`, http.StatusBadRequest},
		{"offer with no codec in common", "POST", "/whip", "application/sdp", rtpmap.ReplaceAllString(offer, "a=rtpmap:$1 X-NONE/"), http.StatusBadRequest},
		{"WHEP with nobody publishing", "POST", "/whep", "application/sdp", offer, http.StatusInternalServerError},
		{"PATCH of another media type", "PATCH", resp.Header.Get("Location"), "application/sdp", "a=end-of-candidates\r\n", http.StatusUnsupportedMediaType},
		{"PATCH restarting ICE", "PATCH", resp.Header.Get("Location"), "application/trickle-ice-sdpfrag", "a=ice-ufrag:new\r\na=ice-pwd:newnewnewnewnewnewnewnew\r\n", http.StatusUnprocessableEntity},
		{"PATCH with a bad candidate", "PATCH", resp.Header.Get("Location"), "application/trickle-ice-sdpfrag", "a=candidate:garbage\r\n", http.StatusBadRequest},
		{"PATCH of an unknown session", "PATCH", "/whip/0123456789abcdef", "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n", http.StatusNotFound},
		{"DELETE of an unknown session", "DELETE", "/whip/0123456789abcdef", "", "", http.StatusNotFound},
		{"GET", "GET", "/whip", "", "", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "WHEP with nobody publishing" {
				s.publisher.Store(nil)
			}
			resp, body := do(t, tc.method, s.srv.URL+tc.path, tc.ctype, tc.body)
			assert.Equal(t, tc.status, resp.StatusCode, body)
			assert.NotEmpty(t, body, "the error is explained")
		})
	}
	resp, _ = do(t, http.MethodOptions, s.srv.URL+"/whip", "", "")
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Accept-Post"), "application/sdp")
	resp, _ = do(t, http.MethodOptions, res, "", "")
	assert.Equal(t, "application/trickle-ice-sdpfrag", resp.Header.Get("Accept-Patch"))
	assert.Equal(t, 1, s.whip.Sessions(), "the failed requests left no session")
	assert.Equal(t, int64(len(s.p.Elements())), int64(1), "nor any endpoint in the pipeline")

	// Options are checked when the handler is made.
	_, err := endpoint.NewWHIPHandler(nil)
	assert.Error(t, err)
	_, err = endpoint.NewWHEPHandler(func(*endpoint.WebRTC) (func(), error) { return nil, nil },
		endpoint.WithEndpointOptions(endpoint.WithCodecs("video/nonesuch")))
	assert.Error(t, err)
	_, err = endpoint.NewHTTPHandler(func(*endpoint.WebRTC) (func(), error) { return nil, nil }, endpoint.WithOfferTimeout(0))
	assert.Error(t, err)

	// WithMaxSessions: a POST beyond the bound is refused. (An endpoint in
	// no pipeline: the handler closes it.)
	capped, err := endpoint.NewHTTPHandler(func(*endpoint.WebRTC) (func(), error) { return nil, nil },
		endpoint.WithMaxSessions(1), endpoint.WithEndpointOptions(loopbackOptions()...))
	require.NoError(t, err)
	for i, want := range []int{http.StatusCreated, http.StatusServiceUnavailable} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/call", strings.NewReader(offer))
		req.Header.Set("Content-Type", "application/sdp")
		capped.ServeHTTP(rec, req)
		assert.Equal(t, want, rec.Code, "POST %d: %s", i+1, rec.Body)
	}
	assert.Equal(t, 1, capped.Sessions())
	require.NoError(t, capped.Close())
	assert.Equal(t, 0, capped.Sessions())

	// Close ends the sessions left, and refuses new ones.
	require.NoError(t, s.whip.Close())
	assert.Equal(t, 0, s.whip.Sessions())
	resp, _ = do(t, http.MethodPost, s.srv.URL+"/whip", "application/sdp", offer)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

var rtpmap = regexp.MustCompile(`a=rtpmap:(\d+) [^/]+/`)

func iceUfragOf(sdp string) string { return sdpAttr(sdp, "a=ice-ufrag:") }
func icePwdOf(sdp string) string   { return sdpAttr(sdp, "a=ice-pwd:") }

func sdpAttr(sdp, prefix string) string {
	for _, line := range strings.Split(sdp, "\r\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	return ""
}
