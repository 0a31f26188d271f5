// Command recorder is Kurento's recorder tutorial: a web page sends the
// camera and microphone of the browser to this server, which records them
// to a file (WebM, Matroska, MP4 or fragmented MP4, audio and video or one
// of them); the page lists the recordings and plays one back, read from
// the file by a Player and sent to the page over WebRTC.
//
//	browser: index.html                              this server: one pipeline
//	                                                 +------------------------------------------------+
//	camera, mic ==== POST /record?profile=webm ====> | endpoint.WebRTC         endpoint.Recorder      |
//	  (sendonly)     (WHIP: 201 answer, Location)    | "record-<id>"           "rec-<id>"             |
//	                                                 |   video_0 --[depay]-->  video --+              |
//	                 DELETE /record/<id>: stop,      |   audio_0 --[depay]-->  audio --+-----> file   |
//	                 the file is complete            |                                           |    |
//	                                                 |                                           |    |
//	                 GET /recordings: the files      | endpoint.WebRTC         endpoint.Player   |    |
//	                                                 | "play-<id>"             "player-<id>"     |    |
//	<video> <======= POST /recordings/{name}/play == |   video_sink_0 <--[pay]--  video <--+-----+    |
//	  (recvonly)     (WHEP: 201 answer, Location)    |   audio_sink_0 <--[pay]--  audio <--+          |
//	                                                 +------------------------------------------------+
//
// One recorder per POST /record: a WHIP-style session whose endpoint only
// receives, connected to a Recorder writing <time>-<id>-<profile>.<ext>
// under -dir. The pipeline inserts the depayloaders between the endpoint's
// RTP and the recorder's samples, and the endpoint negotiates only codecs
// the container takes (VP8, VP9, AV1 and Opus for WebM; H.264 and Opus for
// MP4), so nothing is transcoded. DELETE on the Location the answer gave,
// or the browser going away, stops the recorder: the file is complete when
// the DELETE returns.
//
// One player per POST /recordings/{name}/play: a WHEP-style session whose
// endpoint only sends, fed by a Player of the file. The pipeline inserts
// the payloaders between the player's samples and the endpoint's RTP (and
// a transcoder if the browser took none of the file's codecs). The player
// starts when the connection is up, so that the file's first keyframe
// reaches the browser: a browser records few keyframes (one, at the start,
// asked for by the recorder), and the Player does not make new ones when
// the browser asks.
//
// Signalling is the loopback example's, WHIP's and WHEP's: POST the
// complete offer (application/sdp, or JSON {"type":"offer","sdp":"..."}),
// get the complete answer with 201 Created and a Location that DELETE ends.
//
//	go run ./examples/recorder                  # then open http://127.0.0.1:8080/
//	go run ./examples/recorder -dir /tmp/rec    # where the files go (default ./recordings)
//	go run ./examples/recorder -ice-loopback    # loopback candidates only (tests)
//
// Profiles: webm, mkv, mp4, fmp4, each also -audio-only and -video-only
// (webm-audio-only, mp4-video-only, ...); see endpoint.ParseMediaProfile.
// The page is embedded in the binary and works offline.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/examples/internal/demo"
	"github.com/medley-go/medley/pipeline"
)

//go:embed index.html
var indexHTML []byte

// options are the program's settings, from its flags.
type options struct {
	// Addr is the HTTP server's address; port 0 picks a free one.
	Addr string
	// ICELoopback limits ICE to loopback candidates (endpoint.WithICELoopback).
	ICELoopback bool
	// Dir is where the recordings go, and the only place they are played
	// from (endpoint.WithBaseDir).
	Dir string
}

func defaultOptions() options { return options{Addr: demo.DefaultAddr, Dir: "recordings"} }

func main() {
	o := defaultOptions()
	demo.ServeFlags(&o.Addr, &o.ICELoopback)
	flag.StringVar(&o.Dir, "dir", o.Dir, "`directory` the recordings are written to and played from (created if missing)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Stdout, o, func(url string) {
		fmt.Printf("recorder: open %s in a browser; recordings go to %s (Ctrl-C stops)\n", url, o.Dir)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "recorder:", err)
		os.Exit(1)
	}
}

// profiles are the media profiles a client may ask for.
var profiles = []endpoint.MediaProfile{
	endpoint.ProfileWebM, endpoint.ProfileWebMAudioOnly, endpoint.ProfileWebMVideoOnly,
	endpoint.ProfileMKV, endpoint.ProfileMKVAudioOnly, endpoint.ProfileMKVVideoOnly,
	endpoint.ProfileMP4, endpoint.ProfileMP4AudioOnly, endpoint.ProfileMP4VideoOnly,
	endpoint.ProfileFragmentedMP4, endpoint.ProfileFragmentedMP4AudioOnly, endpoint.ProfileFragmentedMP4VideoOnly,
}

// run serves the page, the signalling and the recordings on o.Addr until
// ctx ends, then stops every recording and player and closes the pipeline.
// It prints the bus to w, and calls ready with the page's URL once it
// listens.
func run(ctx context.Context, w io.Writer, o options, ready func(url string)) error {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("recordings directory: %w", err)
	}
	p, err := pipeline.New(pipeline.WithName("recorder"))
	if err != nil {
		return err
	}
	s := &server{
		p:          p,
		dir:        dir,
		record:     map[endpoint.MediaProfile]*endpoint.HTTPHandler{},
		play:       map[string]*endpoint.HTTPHandler{},
		recordings: map[string]*recording{},
		starts:     map[string]func(){},
	}
	wait := demo.Watch(p, w, s.onMessage)
	defer func() {
		_ = p.Close()
		wait()
	}()
	if err := p.Start(ctx); err != nil {
		return err
	}
	if o.ICELoopback {
		s.epOpts = append(s.epOpts, endpoint.WithICELoopback())
	}
	defer s.close() // before the pipeline closes: deferred later, runs first
	for _, prof := range profiles {
		h, err := s.recordHandler(prof)
		if err != nil {
			return fmt.Errorf("profile %s: %w", prof, err)
		}
		s.record[prof] = h
	}

	mux := http.NewServeMux()
	mux.Handle("GET /{$}", demo.Page(indexHTML))
	mux.HandleFunc("POST /record", s.startRecording)
	mux.HandleFunc("/record/{id}", s.recordSession)
	mux.HandleFunc("GET /recordings", s.list)
	mux.HandleFunc("GET /recordings/{name}", s.download)
	mux.HandleFunc("POST /recordings/{name}/play", s.startPlaying)
	mux.HandleFunc("/recordings/{name}/play/{id}", s.playSession)
	return demo.Serve(ctx, o.Addr, mux, ready)
}

// server holds the signalling handlers and what is recorded.
//
// endpoint.HTTPHandler hands its JoinFunc the new endpoint but not the
// request, so the choices a request makes (the profile, the recording to
// play) select a handler: one per profile, made up front, and one per
// recording played, made when it is first played. A session's DELETE goes
// to the handler that made it.
type server struct {
	p      *pipeline.Pipeline
	dir    string
	epOpts []endpoint.Option
	record map[endpoint.MediaProfile]*endpoint.HTTPHandler // written before serving, then read-only

	mu         sync.Mutex
	closed     bool
	play       map[string]*endpoint.HTTPHandler // by recording name
	recordings map[string]*recording            // those this process made, by name
	starts     map[string]func()                // players waiting for their endpoint to connect, by endpoint name
}

// recording is an entry of GET /recordings.
type recording struct {
	Name    string `json:"name"`
	Profile string `json:"profile"`
	// Size is the file's length in bytes; Duration the media it holds, in
	// seconds (0 when not known: a file this process did not record).
	Size     int64   `json:"size"`
	Duration float64 `json:"duration"`
	// Recording is true while the file is being written.
	Recording bool `json:"recording"`

	rec *endpoint.Recorder // while recording
}

// onMessage starts a player once its endpoint has connected. It runs on
// the bus's goroutine.
func (s *server) onMessage(m element.Message) {
	c, ok := m.(*endpoint.ConnectionStateChanged)
	if !ok || c.State != webrtc.PeerConnectionStateConnected {
		return
	}
	s.mu.Lock()
	start := s.starts[c.Element]
	delete(s.starts, c.Element)
	s.mu.Unlock()
	if start != nil {
		start()
	}
}

// close ends every session: recordings stop and their files are complete.
func (s *server) close() {
	s.mu.Lock()
	s.closed = true
	handlers := make([]*endpoint.HTTPHandler, 0, len(s.record)+len(s.play))
	for _, h := range s.play {
		handlers = append(handlers, h)
	}
	s.mu.Unlock()
	for _, h := range s.record {
		handlers = append(handlers, h)
	}
	for _, h := range handlers {
		_ = h.Close()
	}
}

// recordHandler returns the signalling of prof's recordings: each POST
// makes an endpoint that receives prof's tracks in the codecs its
// container takes, and a Recorder.
func (s *server) recordHandler(prof endpoint.MediaProfile) (*endpoint.HTTPHandler, error) {
	opts := append([]endpoint.Option(nil), s.epOpts...)
	var mimes []string
	for _, k := range []element.Kind{element.KindVideo, element.KindAudio} {
		if !prof.Tracks.Has(k) {
			continue
		}
		if k == element.KindVideo {
			opts = append(opts, endpoint.WithVideo(endpoint.RecvOnly))
		} else {
			opts = append(opts, endpoint.WithAudio(endpoint.RecvOnly))
		}
		for _, mime := range prof.Container.Codecs(k) {
			if c, ok := codec.Lookup(mime); ok && c.RTP { // AAC, for one, has no RTP
				mimes = append(mimes, mime)
			}
		}
	}
	opts = append(opts, endpoint.WithCodecs(mimes...))
	return endpoint.NewWHIPHandler(func(ep *endpoint.WebRTC) (func(), error) {
		return s.joinRecording(prof, ep)
	}, endpoint.WithEndpointOptions(opts...), endpoint.WithEndpointNames("record"))
}

// joinRecording connects a publishing endpoint to a new Recorder; leave
// stops the recording and takes both out of the pipeline.
func (s *server) joinRecording(prof endpoint.MediaProfile, ep *endpoint.WebRTC) (func(), error) {
	id := strings.TrimPrefix(ep.Name(), "record-")
	name := fmt.Sprintf("%s-%s-%s%s", time.Now().UTC().Format("20060102-150405"), id, prof, extension(prof))
	rec, err := endpoint.NewRecorder("rec-"+id, name, endpoint.WithBaseDir(s.dir), endpoint.WithMediaProfile(prof))
	if err != nil {
		return nil, err
	}
	r := &recording{Name: name, Profile: prof.String(), Recording: true, rec: rec}
	s.mu.Lock()
	s.recordings[name] = r
	s.mu.Unlock()
	leave := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rec.Stop(ctx) // its error is on the bus too, in Stopped
		_ = s.p.Remove(rec)
		_ = s.p.Remove(ep)
		st := rec.Stats()
		s.mu.Lock()
		defer s.mu.Unlock()
		if st.Bytes == 0 { // nothing was recorded: the recorder removed the file
			delete(s.recordings, name)
			return
		}
		r.Recording, r.rec = false, nil
		r.Size, r.Duration = st.Bytes, st.Duration.Seconds()
	}
	if err := s.p.Add(rec); err != nil {
		_ = rec.Close()
		leave()
		return nil, err
	}
	if err := s.p.Add(ep); err != nil {
		return leave, err
	}
	return leave, s.p.Connect(ep, rec, prof.Tracks)
}

// extension is the file name extension of a profile's recordings.
func extension(prof endpoint.MediaProfile) string {
	audioOnly := prof.Tracks == element.KindAudio
	switch prof.Container {
	case endpoint.WebM:
		if audioOnly {
			return ".weba"
		}
		return ".webm"
	case endpoint.MKV:
		if audioOnly {
			return ".mka"
		}
		return ".mkv"
	}
	switch {
	case audioOnly:
		return ".m4a"
	case prof.Tracks == element.KindVideo:
		return ".m4v"
	}
	return ".mp4"
}

// startRecording serves POST /record?profile=NAME (webm by default).
func (s *server) startRecording(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("profile")
	if name == "" {
		name = "webm"
	}
	prof, err := endpoint.ParseMediaProfile(name)
	h := s.record[prof]
	if err != nil || h == nil {
		http.Error(w, fmt.Sprintf("profile %q: not one of webm, mkv, mp4, fmp4, or their -audio-only and -video-only variants", name), http.StatusBadRequest)
		return
	}
	h.ServeHTTP(w, r)
}

// recordSession serves DELETE (and PATCH) of a recording session's
// Location, /record/{id}: whichever profile's handler holds it.
func (s *server) recordSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, h := range s.record {
		if h.Endpoint(id) != nil {
			h.ServeHTTP(w, r)
			return
		}
	}
	http.Error(w, "no such recording session", http.StatusNotFound)
}

// list serves GET /recordings: the recordings in the directory, oldest
// first (their names begin with the time they started).
func (s *server) list(w http.ResponseWriter, _ *http.Request) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	list := []recording{}
	s.mu.Lock()
	for _, e := range entries {
		prof, ok := endpoint.MediaProfileFor(e.Name())
		if !ok || !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		item := recording{Name: e.Name(), Profile: prof.String()}
		if info, err := e.Info(); err == nil {
			item.Size = info.Size()
		}
		if r := s.recordings[e.Name()]; r != nil {
			item = *r
			item.rec = nil
			if r.rec != nil {
				st := r.rec.Stats()
				item.Size, item.Duration = st.Bytes, st.Duration.Seconds()
			}
		}
		list = append(list, item)
	}
	s.mu.Unlock()
	slices.SortFunc(list, func(a, b recording) int { return strings.Compare(a.Name, b.Name) })
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(list)
}

// errNotPlayable and errBusy are why a recording cannot be played.
var (
	errNotPlayable = errors.New("no such recording")
	errBusy        = errors.New("still recording")
)

// playable returns the path of the recording name, which must be a file
// of the directory (no other path) that is not being written.
func (s *server) playable(name string) (string, error) {
	if _, ok := endpoint.MediaProfileFor(name); !ok || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return "", errNotPlayable
	}
	root, err := os.OpenRoot(s.dir) // refuses symbolic links out of the directory
	if err != nil {
		return "", err
	}
	defer root.Close()
	info, err := root.Stat(name)
	if err != nil || !info.Mode().IsRegular() {
		return "", errNotPlayable
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.recordings[name]; r != nil && r.Recording {
		return "", errBusy
	}
	return filepath.Join(s.dir, name), nil
}

func playError(w http.ResponseWriter, name string, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, errNotPlayable):
		status = http.StatusNotFound
	case errors.Is(err, errBusy):
		status = http.StatusConflict
	}
	http.Error(w, fmt.Sprintf("%s: %v", name, err), status)
}

// download serves GET /recordings/{name}: the file itself.
func (s *server) download(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.playable(name); err != nil {
		playError(w, name, err)
		return
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		playError(w, name, err)
		return
	}
	defer root.Close()
	http.ServeFileFS(w, r, root.FS(), name)
}

// startPlaying serves POST /recordings/{name}/play.
func (s *server) startPlaying(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	path, err := s.playable(name)
	if err != nil {
		playError(w, name, err)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	h := s.play[name]
	if h == nil {
		h, err = endpoint.NewWHEPHandler(func(ep *endpoint.WebRTC) (func(), error) {
			return s.joinPlayback(path, ep)
		}, endpoint.WithEndpointOptions(s.epOpts...), endpoint.WithEndpointNames("play"))
		if err != nil {
			s.mu.Unlock()
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.play[name] = h
	}
	s.mu.Unlock()
	h.ServeHTTP(w, r)
}

// playSession serves DELETE (and PATCH) of a playback session's Location,
// /recordings/{name}/play/{id}.
func (s *server) playSession(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.play[r.PathValue("name")]
	s.mu.Unlock()
	if h == nil {
		http.Error(w, "no such playback session", http.StatusNotFound)
		return
	}
	h.ServeHTTP(w, r)
}

// joinPlayback adds a sending endpoint and readies a Player of path for
// it, which starts when the endpoint connects (onMessage); leave takes
// both out of the pipeline.
func (s *server) joinPlayback(path string, ep *endpoint.WebRTC) (func(), error) {
	pl, err := endpoint.NewPlayer("player-"+strings.TrimPrefix(ep.Name(), "play-"), path)
	if err != nil {
		return nil, err
	}
	b := demo.NewPlayback(s.p, ep, pl)
	s.mu.Lock()
	s.starts[ep.Name()] = b.Start
	s.mu.Unlock()
	leave := func() {
		s.mu.Lock()
		delete(s.starts, ep.Name())
		s.mu.Unlock()
		b.Leave()
	}
	return leave, s.p.Add(ep)
}
