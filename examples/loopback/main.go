// Command loopback is medley's hello world, as Kurento's is: a web page
// sends the camera and microphone of the browser to this server, whose
// pipeline sends them straight back; the page shows the local preview and
// what came back side by side.
//
//	browser: index.html                          this server: one pipeline
//	                                            +-------------------------------------+
//	camera, microphone                          | endpoint.WebRTC "loopback-<id>"     |
//	  |   +-------------------+   SRTP          |                                     |
//	  +-->| RTCPeerConnection |================>| video_0 (src) ---> video_sink_0     |
//	  |   |                   |                 | audio_0 (src) ---> audio_sink_0     |
//	  |   |                   |<================|          (the same endpoint's sinks)|
//	  |   +-------------------+   SRTP          +-------------------------------------+
//	  v             |                             one endpoint per POST /loopback,
//	local <video>   +--> remote <video>           removed on DELETE or when the
//	                                              browser goes away
//
// Signalling is one HTTP request, as WHIP's: the page gathers all its ICE
// candidates, POSTs its offer (application/sdp) to /loopback and gets the
// complete answer back with 201 Created and a Location naming the session,
// which a DELETE ends. A JSON body {"type":"offer","sdp":"..."} is
// answered in JSON ({"type":"answer","sdp":"..."}), so any WebRTC client
// can drive it. See endpoint.HTTPHandler.
//
//	go run ./examples/loopback                 # then open http://127.0.0.1:8080/
//	go run ./examples/loopback -ice-loopback   # loopback candidates only (tests)
//
// Without -ice-loopback the server offers its host candidates on every
// interface and resolves the browser's mDNS (.local) candidates: what a
// browser on the same machine, or on the LAN, needs. -ice-loopback keeps
// the media on 127.0.0.1 (no STUN, no mDNS): a browser then needs
// --allow-loopback-in-peer-connection, as the test's headless Chromium has.
// The page is embedded in the binary and works offline.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
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
}

func defaultOptions() options { return options{Addr: "127.0.0.1:8080"} }

func main() {
	o := defaultOptions()
	flag.StringVar(&o.Addr, "addr", o.Addr, "HTTP `address` to serve the page and the signalling on")
	flag.BoolVar(&o.ICELoopback, "ice-loopback", false, "gather and accept only loopback ICE candidates (no STUN, no mDNS): for tests and browsers started with --allow-loopback-in-peer-connection")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Stdout, o, func(url string) {
		fmt.Printf("loopback: open %s in a browser (Ctrl-C stops)\n", url)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "loopback:", err)
		os.Exit(1)
	}
}

// run serves the page and the signalling on o.Addr until ctx ends, then
// closes every session and the pipeline. It prints the bus to w, and calls
// ready with the page's URL once it listens.
func run(ctx context.Context, w io.Writer, o options, ready func(url string)) error {
	out := &syncWriter{w: w}
	p, err := pipeline.New(pipeline.WithName("loopback"))
	if err != nil {
		return err
	}
	bus := p.Subscribe(1024)
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for m := range bus.Messages(context.Background()) { // ends when the pipeline closes
			if s := describe(m); s != "" {
				out.printf("%s  %s\n", m.Origin().Time.Format("15:04:05.000"), s)
			}
		}
	}()
	defer func() {
		_ = p.Close()
		<-printed
	}()
	if err := p.Start(ctx); err != nil {
		return err
	}

	var epOpts []endpoint.Option
	if o.ICELoopback {
		epOpts = append(epOpts, endpoint.WithICELoopback())
	}
	// Each POST makes an endpoint; join puts it in the pipeline with its
	// src pads connected to its own sink pads, before it takes the offer.
	signalling, err := endpoint.NewHTTPHandler(func(ep *endpoint.WebRTC) (func(), error) {
		if err := p.Add(ep); err != nil {
			return nil, err
		}
		if err := p.Connect(ep, ep, element.KindAll); err != nil {
			_ = p.Remove(ep)
			return nil, err
		}
		return func() { _ = p.Remove(ep) }, nil
	}, endpoint.WithEndpointOptions(epOpts...), endpoint.WithEndpointNames("loopback"))
	if err != nil {
		return err
	}
	defer signalling.Close() // before the pipeline closes: deferred later, runs first

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(indexHTML)
	})
	mux.Handle("/loopback", signalling)
	mux.Handle("/loopback/", signalling)

	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
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
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// describe renders the bus messages worth a line, "" for the others (ICE
// candidates, which come by the dozen).
func describe(m element.Message) string {
	switch m := m.(type) {
	case *endpoint.ConnectionStateChanged:
		return fmt.Sprintf("%-24s %s %s", "ConnectionStateChanged", m.Element, m.State)
	case *endpoint.NewCandidatePairSelected:
		return fmt.Sprintf("%-24s %s local %q remote %q", "NewCandidatePairSelected", m.Element, m.Local, m.Remote)
	case *element.ElementConnected:
		return fmt.Sprintf("%-24s %s -> %s (%s)", "ElementConnected", m.Source, m.Sink, m.Kind)
	case *element.MediaFlowInStateChanged:
		return fmt.Sprintf("%-24s %s %s %s", "MediaFlowInStateChanged", m.Pad, m.Kind, m.State)
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
