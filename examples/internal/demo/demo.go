// Package demo holds what medley's web examples share and a reader need not
// study: serving the embedded page and the signalling on an address until a
// context ends, and printing the pipeline's bus one line per message.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/pipeline"
)

// Page serves an embedded HTML page, never cached, so that a rebuilt
// program's page is the one a browser shows.
func Page(html []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(html)
	}
}

// Serve serves h on addr until ctx ends, then shuts the server down
// (waiting up to 5 s for requests in flight). It calls ready with the
// server's URL ("http://127.0.0.1:8080/") once it listens: with port 0,
// the URL names the port chosen.
func Serve(ctx context.Context, addr string, h http.Handler, ready func(url string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// Connections that have sent no request yet (a browser opens some
	// ahead of need) are closed at shutdown: http.Server.Shutdown would
	// wait up to 5 s for each, as it cannot tell them from slow clients.
	var mu sync.Mutex
	fresh := map[net.Conn]bool{}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(c net.Conn, s http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			if s == http.StateNew {
				fresh[c] = true
			} else {
				delete(fresh, c)
			}
		}}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if ready != nil {
		ready("http://" + ln.Addr().String() + "/")
	}

	select {
	case <-ctx.Done():
	case err = <-served:
		return fmt.Errorf("serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mu.Lock()
	for c := range fresh {
		_ = c.Close()
	}
	mu.Unlock()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// Watch prints p's bus to w, a line per message worth one (Describe), and
// hands every message to on (when not nil) first, on the same goroutine:
// on must return quickly. It subscribes now, so that it sees what p posts
// from here on, and reads until p closes; wait returns once it has read the
// last message.
func Watch(p *pipeline.Pipeline, w io.Writer, on func(element.Message)) (wait func()) {
	sub := p.Subscribe(1024)
	out := &syncWriter{w: w}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range sub.Messages(context.Background()) { // ends when the pipeline closes
			if on != nil {
				on(m)
			}
			if s := Describe(m); s != "" {
				out.printf("%s  %s\n", m.Origin().Time.Format("15:04:05.000"), s)
			}
		}
	}()
	return func() { <-done }
}

// Describe renders the bus messages worth a line, "" for the others (ICE
// candidates, which come by the dozen).
func Describe(m element.Message) string {
	switch m := m.(type) {
	case *endpoint.ConnectionStateChanged:
		return fmt.Sprintf("%-24s %s %s", "ConnectionStateChanged", m.Element, m.State)
	case *endpoint.NewCandidatePairSelected:
		return fmt.Sprintf("%-24s %s local %q remote %q", "NewCandidatePairSelected", m.Element, m.Local, m.Remote)
	case *endpoint.Recording:
		return fmt.Sprintf("%-24s %s %s (%s) at %v", "Recording", m.Element, m.Path, m.Tracks, m.Position)
	case *endpoint.Paused:
		return fmt.Sprintf("%-24s %s %s at %v", "Paused", m.Element, m.Path, m.Position)
	case *endpoint.Stopped:
		s := fmt.Sprintf("%-24s %s %s: %s, %v, %d bytes", "Stopped", m.Element, m.Path, m.Reason, m.Duration, m.Size)
		if m.Err != nil {
			s += fmt.Sprintf(": %v", m.Err)
		}
		return s
	case *element.ElementConnected:
		return fmt.Sprintf("%-24s %s -> %s (%s)", "ElementConnected", m.Source, m.Sink, m.Kind)
	case *element.MediaFlowInStateChanged:
		return fmt.Sprintf("%-24s %s %s %s", "MediaFlowInStateChanged", m.Pad, m.Kind, m.State)
	case *element.MediaFlowOutStateChanged:
		return fmt.Sprintf("%-24s %s %s %s", "MediaFlowOutStateChanged", m.Pad, m.Kind, m.State)
	case *element.TranscodingStateChanged:
		return fmt.Sprintf("%-24s %s -> %s %s %v", "TranscodingStateChanged", m.Source, m.Sink, m.State, m.Chain)
	case *element.EndOfStream:
		return fmt.Sprintf("%-24s %s", "EndOfStream", m.Pad)
	case *element.Warning:
		return fmt.Sprintf("%-24s %s %s", "Warning", m.Element, m.Text)
	case *element.Error:
		return fmt.Sprintf("%-24s %s %s: %v", "Error", m.Element, m.Pad, m.Err)
	}
	return ""
}

// syncWriter serialises the writes of several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}
