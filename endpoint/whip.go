package endpoint

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/medley-go/medley/element"
)

// The media types of the HTTP signalling.
const (
	// ContentTypeSDP is an SDP offer or answer (RFC 4566), the body of a
	// WHIP or WHEP POST and of its answer.
	ContentTypeSDP = "application/sdp"
	// ContentTypeJSON is the JSON form of a session description a
	// browser's RTCSessionDescription serialises to:
	// {"type":"offer","sdp":"v=0..."}.
	ContentTypeJSON = "application/json"
	// ContentTypeTrickleICE is an SDP fragment carrying ICE candidates
	// (RFC 8840), the body of a PATCH to a session's resource.
	ContentTypeTrickleICE = "application/trickle-ice-sdpfrag"
)

// JoinFunc connects a new endpoint into the host's pipeline: it adds the
// endpoint and connects its pads (a WHIP publisher's src pads to where the
// media goes, a WHEP viewer's sink pads to a source). The handler calls it
// before the endpoint takes the offer, so that the pads are connected
// before media flows. It returns leave, which the handler calls once when
// the session ends (its resource is deleted, its peer goes away, or the
// handler closes) to take the endpoint out of the pipeline; the handler
// closes the endpoint after leave returns. When JoinFunc fails the handler
// calls leave all the same if it is not nil, closes the endpoint and
// answers 500 with the error.
type JoinFunc func(ep *WebRTC) (leave func(), err error)

// HTTPHandler serves WebRTC signalling over HTTP as WHIP (RFC 9725,
// ingestion) and WHEP (egress) define it, for OBS, GStreamer's whipsink,
// browsers and any client that gathers its candidates before sending its
// offer:
//
//   - POST with an SDP offer (application/sdp) makes a WebRTC endpoint,
//     hands it to the host's JoinFunc, and answers 201 Created with the
//     complete SDP answer (every candidate gathered) and a Location header
//     naming the session's resource: the request's path, "/", and an ID.
//     A JSON body {"type":"offer","sdp":"..."} (application/json) is taken
//     too, and answered in JSON: {"type":"answer","sdp":"..."}.
//   - DELETE on the resource ends the session: 200 OK.
//   - PATCH on the resource with application/trickle-ice-sdpfrag (RFC 8840)
//     adds the client's late candidates: 204 No Content. An ICE restart
//     (new credentials) is not supported: 422.
//
// Mount it on the collection path and under it, and not behind
// http.StripPrefix (the Location is made from the request's path):
//
//	mux.Handle("/whip", h)
//	mux.Handle("/whip/", h)
//
// A session also ends when its peer goes away (the endpoint closes on a
// failed or closed connection). Errors are answered with a status and the
// error's text: 400 for an offer that is not valid SDP or has no codec in
// common, 404 for an unknown resource, 413 for a body over MaxSDPSize, 415
// for another media type, 503 when the handler is closed or full.
//
// The handler does no authentication and sends no CORS headers: wrap it
// for that. Close ends every session.
type HTTPHandler struct {
	cfg httpConfig

	mu       sync.Mutex
	sessions map[string]*session
	pending  int // POSTs admitted, not yet registered or failed
	closed   bool
	wg       sync.WaitGroup // the sessions' watchers
}

// session is one endpoint made by a POST, until its resource is deleted or
// its peer goes away.
type session struct {
	id    string
	ep    *WebRTC
	leave func()
	once  sync.Once
}

// HTTPOption configures an HTTPHandler.
type HTTPOption func(*httpConfig) error

type httpConfig struct {
	prefix       string
	join         JoinFunc
	epOpts       []Option
	offerTimeout time.Duration
	maxSessions  int
}

// DefaultOfferTimeout bounds the time a POST waits for the endpoint to take
// the offer and gather its candidates: host candidates come in
// milliseconds, server-reflexive ones within a STUN round trip or two.
const DefaultOfferTimeout = 10 * time.Second

// WithEndpointOptions adds options to every endpoint the handler makes
// (WithICELoopback, WithCodecs, WithUDPMux, ...). WithCompleteSDP is always
// on. Media declared here (WithAudio, WithVideo) replace the handler's
// default.
func WithEndpointOptions(opts ...Option) HTTPOption {
	return func(c *httpConfig) error {
		c.epOpts = append(c.epOpts, opts...)
		return nil
	}
}

// WithOfferTimeout sets how long a POST may wait for its answer
// (DefaultOfferTimeout).
func WithOfferTimeout(d time.Duration) HTTPOption {
	return func(c *httpConfig) error {
		if d <= 0 {
			return fmt.Errorf("endpoint: WithOfferTimeout(%v): must be positive", d)
		}
		c.offerTimeout = d
		return nil
	}
}

// WithMaxSessions bounds the sessions open at once; a POST beyond is
// answered 503 (0, the default: no bound).
func WithMaxSessions(n int) HTTPOption {
	return func(c *httpConfig) error {
		if n < 0 {
			return fmt.Errorf("endpoint: WithMaxSessions(%d): negative", n)
		}
		c.maxSessions = n
		return nil
	}
}

// WithEndpointNames sets the prefix of the endpoints' names, which are
// prefix-ID with the session's ID ("whip", "whep", "webrtc" by default).
func WithEndpointNames(prefix string) HTTPOption {
	return func(c *httpConfig) error {
		if prefix == "" || strings.ContainsAny(prefix, "./ ") {
			return fmt.Errorf("endpoint: WithEndpointNames(%q): need a name without dots, slashes or spaces", prefix)
		}
		c.prefix = prefix
		return nil
	}
}

// NewWHIPHandler returns a WHIP handler: each POST makes an endpoint that
// receives the client's audio and video (WithAudio(RecvOnly),
// WithVideo(RecvOnly), unless WithEndpointOptions declares media), for
// join to connect its src pads "audio_0" and "video_0".
func NewWHIPHandler(join JoinFunc, opts ...HTTPOption) (*HTTPHandler, error) {
	return newHTTPHandler("whip", join, []Option{WithAudio(RecvOnly), WithVideo(RecvOnly)}, opts)
}

// NewWHEPHandler returns a WHEP handler: each POST makes an endpoint that
// sends audio and video to the client (WithAudio(SendOnly),
// WithVideo(SendOnly), unless WithEndpointOptions declares media), for
// join to connect a source to its sink pads "audio_sink_0" and
// "video_sink_0".
func NewWHEPHandler(join JoinFunc, opts ...HTTPOption) (*HTTPHandler, error) {
	return newHTTPHandler("whep", join, []Option{WithAudio(SendOnly), WithVideo(SendOnly)}, opts)
}

// NewHTTPHandler returns a handler speaking the same signalling whose
// endpoints are as WithEndpointOptions declares them (by default one audio
// and one video transceiver, both ways, as NewWebRTC makes): for a client
// that both sends and receives, such as the loopback example's page.
func NewHTTPHandler(join JoinFunc, opts ...HTTPOption) (*HTTPHandler, error) {
	return newHTTPHandler("webrtc", join, nil, opts)
}

func newHTTPHandler(prefix string, join JoinFunc, media []Option, opts []HTTPOption) (*HTTPHandler, error) {
	if join == nil {
		return nil, errors.New("endpoint: HTTP handler: nil JoinFunc")
	}
	cfg := httpConfig{prefix: prefix, join: join, offerTimeout: DefaultOfferTimeout}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	// Check the endpoint options once here rather than at every POST, and
	// declare the handler's media unless they do.
	ec := defaultConfig()
	for _, o := range cfg.epOpts {
		if err := o(&ec); err != nil {
			return nil, fmt.Errorf("endpoint: HTTP handler: %w", err)
		}
	}
	if len(ec.media) == 0 && !ec.noMedia && media != nil {
		cfg.epOpts = append(append([]Option(nil), media...), cfg.epOpts...)
		for _, o := range media {
			if err := o(&ec); err != nil {
				return nil, err
			}
		}
	}
	if err := ec.validate(); err != nil {
		return nil, fmt.Errorf("endpoint: HTTP handler: %w", err)
	}
	cfg.epOpts = append(cfg.epOpts, WithCompleteSDP())
	return &HTTPHandler{cfg: cfg, sessions: make(map[string]*session)}, nil
}

// ServeHTTP implements http.Handler.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		h.create(w, r)
	case http.MethodDelete:
		h.delete(w, r)
	case http.MethodPatch:
		h.patch(w, r)
	case http.MethodOptions:
		if h.lookup(r) != nil {
			w.Header().Set("Allow", "DELETE, PATCH, OPTIONS")
			w.Header().Set("Accept-Patch", ContentTypeTrickleICE)
		} else {
			w.Header().Set("Allow", "POST, OPTIONS")
			w.Header().Set("Accept-Post", ContentTypeSDP+", "+ContentTypeJSON)
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "POST, DELETE, PATCH, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// sessionDescription is the JSON form of an offer or answer.
type sessionDescription struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

// maxJSONSize bounds a JSON offer: the SDP with its line ends escaped
// ("\r\n" takes four bytes for two), and the envelope.
const maxJSONSize = 2*MaxSDPSize + 1024

func (h *HTTPHandler) create(w http.ResponseWriter, r *http.Request) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (ct != ContentTypeSDP && ct != ContentTypeJSON) {
		w.Header().Set("Accept-Post", ContentTypeSDP+", "+ContentTypeJSON)
		http.Error(w, fmt.Sprintf("the offer must be %s or %s", ContentTypeSDP, ContentTypeJSON), http.StatusUnsupportedMediaType)
		return
	}
	limit := int64(MaxSDPSize)
	if ct == ContentTypeJSON {
		limit = maxJSONSize
	}
	body, status, err := readBody(w, r, limit)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	offer := string(body)
	if ct == ContentTypeJSON {
		var sd sessionDescription
		if err := json.Unmarshal(body, &sd); err != nil {
			http.Error(w, "bad JSON offer: "+err.Error(), http.StatusBadRequest)
			return
		}
		if sd.Type != "offer" {
			http.Error(w, fmt.Sprintf("JSON session description of type %q: want an offer", sd.Type), http.StatusBadRequest)
			return
		}
		offer = sd.SDP
	}
	if err := h.admit(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	admitted := true
	defer func() {
		if admitted {
			h.unadmit()
		}
	}()

	id, err := newSessionID()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ep, err := NewWebRTC(h.cfg.prefix+"-"+id, h.cfg.epOpts...)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	leave, err := h.cfg.join(ep)
	if err != nil {
		if leave != nil {
			leave()
		}
		_ = ep.Close()
		http.Error(w, "join: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if leave == nil {
		leave = func() {}
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.offerTimeout)
	answer, err := ep.ProcessOffer(ctx, offer)
	cancel()
	if err != nil {
		leave()
		_ = ep.Close()
		status := http.StatusInternalServerError
		if errors.Is(err, ErrInvalidSDP) || errors.Is(err, ErrNoCommonCodec) {
			status = http.StatusBadRequest
		}
		http.Error(w, err.Error(), status)
		return
	}

	s := &session{id: id, ep: ep, leave: leave}
	admitted = false
	if !h.register(s) {
		h.end(s)
		http.Error(w, "endpoint: HTTP handler closed", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Location", strings.TrimRight(r.URL.EscapedPath(), "/")+"/"+id)
	w.Header().Set("Accept-Patch", ContentTypeTrickleICE)
	if ct == ContentTypeJSON {
		js, err := json.Marshal(sessionDescription{Type: "answer", SDP: answer})
		if err != nil { // cannot happen: two strings
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ContentTypeJSON)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(js)
		return
	}
	w.Header().Set("Content-Type", ContentTypeSDP)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// readBody reads at most limit bytes of the request's body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes: %w", limit, ErrInvalidSDP)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("reading the body: %w", err)
	}
	return body, 0, nil
}

// admit tells whether a new session may start.
func (h *HTTPHandler) admit() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errors.New("endpoint: HTTP handler closed")
	}
	if n := len(h.sessions) + h.pending; h.cfg.maxSessions > 0 && n >= h.cfg.maxSessions {
		return fmt.Errorf("endpoint: HTTP handler: %d sessions open or opening, the most it takes", n)
	}
	h.pending++
	return nil
}

// unadmit gives back the place of a POST that failed.
func (h *HTTPHandler) unadmit() {
	h.mu.Lock()
	h.pending--
	h.mu.Unlock()
}

// register turns an admitted POST into session s and starts its watcher,
// unless the handler is closed.
func (h *HTTPHandler) register(s *session) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending--
	if h.closed {
		return false
	}
	h.sessions[s.id] = s
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		<-s.ep.Done() // the peer went away, or end closed the endpoint
		h.end(s)
	}()
	return true
}

// end ends a session once: it forgets it, calls the host's leave and
// closes the endpoint.
func (h *HTTPHandler) end(s *session) {
	s.once.Do(func() {
		h.mu.Lock()
		if h.sessions[s.id] == s {
			delete(h.sessions, s.id)
		}
		h.mu.Unlock()
		s.leave()
		_ = s.ep.Close()
	})
}

// lookup returns the session the request's last path segment names, or
// nil.
func (h *HTTPHandler) lookup(r *http.Request) *session {
	id := path.Base(r.URL.Path)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[id]
}

func (h *HTTPHandler) delete(w http.ResponseWriter, r *http.Request) {
	s := h.lookup(r)
	if s == nil {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	h.end(s)
	w.WriteHeader(http.StatusOK)
}

func (h *HTTPHandler) patch(w http.ResponseWriter, r *http.Request) {
	s := h.lookup(r)
	if s == nil {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != ContentTypeTrickleICE {
		w.Header().Set("Accept-Patch", ContentTypeTrickleICE)
		http.Error(w, "a PATCH must be "+ContentTypeTrickleICE, http.StatusUnsupportedMediaType)
		return
	}
	body, status, err := readBody(w, r, MaxSDPSize)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	frag := parseSDPFrag(string(body))
	if frag.ufrag != "" && frag.ufrag != iceUfrag(s.ep.RemoteDescription()) {
		http.Error(w, "ICE restart is not supported", http.StatusUnprocessableEntity)
		return
	}
	for _, c := range frag.candidates {
		if err := s.ep.AddIceCandidate(c); err != nil {
			status := http.StatusInternalServerError
			switch {
			case errors.Is(err, ErrInvalidCandidate):
				status = http.StatusBadRequest
			case errors.Is(err, element.ErrClosed):
				status = http.StatusNotFound
			}
			http.Error(w, err.Error(), status)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// sdpFrag is what a trickle-ice-sdpfrag body (RFC 8840, section 4.4)
// carries: the ICE username fragment, and the candidates as the JSON
// AddIceCandidate takes, an empty one for a=end-of-candidates.
type sdpFrag struct {
	ufrag      string
	candidates []string
}

func parseSDPFrag(body string) sdpFrag {
	var f sdpFrag
	mid, mline := "", -1
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "m="):
			mline++
			mid = ""
		case strings.HasPrefix(line, "a=mid:"):
			mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			f.ufrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "a=candidate:"):
			c := struct {
				Candidate     string  `json:"candidate"`
				SDPMid        *string `json:"sdpMid,omitempty"`
				SDPMLineIndex *int    `json:"sdpMLineIndex,omitempty"`
			}{Candidate: strings.TrimPrefix(line, "a=")}
			if mid != "" {
				c.SDPMid = &mid
			} else {
				idx := max(mline, 0)
				c.SDPMLineIndex = &idx
			}
			js, _ := json.Marshal(c) // strings and ints: cannot fail
			f.candidates = append(f.candidates, string(js))
		case line == "a=end-of-candidates":
			f.candidates = append(f.candidates, "")
		}
	}
	return f
}

// iceUfrag returns the first ICE username fragment of an SDP.
func iceUfrag(sdp string) string {
	for _, line := range strings.Split(sdp, "\n") {
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "a=ice-ufrag:"); ok {
			return u
		}
	}
	return ""
}

// newSessionID returns 16 random hex digits.
func newSessionID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("endpoint: session ID: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Endpoint returns the endpoint of the session id (the last segment of its
// Location), or nil.
func (h *HTTPHandler) Endpoint(id string) *WebRTC {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.sessions[id]; s != nil {
		return s.ep
	}
	return nil
}

// Sessions returns the number of sessions open.
func (h *HTTPHandler) Sessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

// Close ends every session (calling the host's leave for each and closing
// its endpoint) and waits for the handler's goroutines; later POSTs are
// answered 503. It is idempotent.
func (h *HTTPHandler) Close() error {
	h.mu.Lock()
	h.closed = true
	ss := make([]*session, 0, len(h.sessions))
	for _, s := range h.sessions {
		ss = append(ss, s)
	}
	h.mu.Unlock()
	for _, s := range ss {
		h.end(s)
	}
	h.wg.Wait()
	return nil
}
