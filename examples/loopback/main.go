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
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

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
}

func defaultOptions() options { return options{Addr: demo.DefaultAddr} }

func main() {
	o := defaultOptions()
	demo.ServeFlags(&o.Addr, &o.ICELoopback)
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
	p, err := pipeline.New(pipeline.WithName("loopback"))
	if err != nil {
		return err
	}
	wait := demo.Watch(p, w, nil)
	defer func() {
		_ = p.Close()
		wait()
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
	mux.Handle("GET /{$}", demo.Page(indexHTML))
	mux.Handle("/loopback", signalling)
	mux.Handle("/loopback/", signalling)
	return demo.Serve(ctx, o.Addr, mux, ready)
}
