// Command player is Kurento's player tutorial: a file, an HTTP(S) URL or an
// rtsp:// camera given on the command line plays in a web page, read by a
// Player and sent over WebRTC.
//
//	browser: index.html               this server: one pipeline
//	                                  +-------------------------------------------------+
//	           FILE, URL, rtsp:// --> | endpoint.Player         endpoint.WebRTC         |
//	                                  | "player-<id>"           "play-<id>"             |
//	<video> <====== POST /play ====== |   video --[pay]-->      video_sink_0            |
//	  (recvonly)    (WHEP: 201 answer |   audio --[pay]-->      audio_sink_0            |
//	                and Location)     +-------------------------------------------------+
//
// One player per POST /play: each viewer sees the input from its start;
// DELETE of the Location, or the browser going away, removes both.
//
// The Player sends the input's encoded samples, undecoded; the pipeline
// inserts the RTP payloaders between them and the endpoint's sink pads,
// and a transcoder only where the browser took none of the input's codecs.
// The player starts when the connection is up, so that the input's first
// keyframe reaches the browser.
//
// What plays: video in VP8, VP9, H.264 or AV1 and audio in Opus, G.711 or
// G.722, in any container FFmpeg 5.1 reads, sent as it is when the browser
// takes the codec. Two limits of today's medley and browsers:
//
//   - AAC audio, the usual audio of an MP4 file, does not play: medley has
//     no AAC converters (no RTP payloader, no decoder in the chain), so the
//     audio link fails (an Error on the bus) and the video plays alone.
//     Re-encode the audio first: ffmpeg -i in.mp4 -c:v copy -c:a libopus out.mp4.
//   - H.264 with B-frames (libx264's default for the main and high
//     profiles) reaches the browser, but Chromium's WebRTC receiver does not
//     reorder frames and decodes few of them. -codecs video/VP8,audio/opus
//     makes the endpoint negotiate VP8 only, so that the pipeline decodes
//     the H.264 and encodes VP8 (its TranscodingStateChanged says so);
//     or re-encode the file with -bf 0.
//
// The endpoint negotiates H.264 by the browser's profile-level-id (the
// samples carry none), so a high profile stream goes out under the
// constrained baseline parameters the browser offered first; Chromium
// decodes it all the same.
//
// Signalling is the loopback example's, WHEP's: POST the complete offer
// (application/sdp, or JSON {"type":"offer","sdp":"..."}), get the complete
// answer with 201 Created and a Location that DELETE ends.
//
//	go run ./examples/player movie.webm               # then open http://127.0.0.1:8080/
//	go run ./examples/player -loop https://host/x.mp4 # start again at the end
//	go run ./examples/player rtsp://camera.local/stream
//	go run ./examples/player -codecs video/VP8,audio/opus movie.mp4  # transcode to VP8
//	go run ./examples/player -ice-loopback movie.webm # loopback candidates only (tests)
//
// The player has no -dir: it plays the one input its command line names.
// An rtsp:// input is read over TCP (rtsp_transport=tcp) with a short
// probe, as a live source wants. The page is embedded in the binary and
// works offline.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/medley-go/medley/element"
	"github.com/medley-go/medley/endpoint"
	"github.com/medley-go/medley/examples/internal/demo"
	"github.com/medley-go/medley/pipeline"
)

//go:embed index.html
var indexHTML []byte

// options are the program's settings, from its flags and argument.
type options struct {
	// Addr is the HTTP server's address; port 0 picks a free one.
	Addr string
	// ICELoopback limits ICE to loopback candidates (endpoint.WithICELoopback).
	ICELoopback bool
	// Input is what plays: a file, a URL FFmpeg reads, an rtsp:// address.
	Input string
	// Loop starts the input again when it ends (endpoint.WithLoop).
	Loop bool
	// Codecs, when set, are the only codecs the endpoint negotiates
	// (endpoint.WithCodecs): an input in another codec is transcoded.
	Codecs []string
}

func defaultOptions() options { return options{Addr: demo.DefaultAddr} }

func main() {
	o := defaultOptions()
	demo.ServeFlags(&o.Addr, &o.ICELoopback)
	flag.BoolVar(&o.Loop, "loop", false, "play the input again from its start when it ends (files and URLs that can seek)")
	flag.Func("codecs", "negotiate only these `codecs`, comma-separated MIME types (video/VP8,audio/opus): the pipeline transcodes an input in others", func(v string) error {
		o.Codecs = strings.Split(v, ",")
		return nil
	})
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] FILE|URL|rtsp://...\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	o.Input = flag.Arg(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Stdout, o, func(url string) {
		fmt.Printf("player: open %s in a browser to play %s (Ctrl-C stops)\n", url, o.Input)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "player:", err)
		os.Exit(1)
	}
}

// run serves the page and the signalling on o.Addr until ctx ends, then
// closes every session and the pipeline. It prints the bus to w, and calls
// ready with the page's URL once it listens.
func run(ctx context.Context, w io.Writer, o options, ready func(url string)) error {
	if o.Input == "" {
		return errors.New("nothing to play: give a file, URL or rtsp:// address")
	}
	var plOpts []endpoint.PlayerOption
	if o.Loop {
		plOpts = append(plOpts, endpoint.WithLoop())
	}
	if strings.HasPrefix(strings.ToLower(o.Input), "rtsp://") {
		plOpts = append(plOpts,
			endpoint.WithInputOptions(map[string]string{"rtsp_transport": "tcp"}),
			endpoint.WithProbe(256<<10, 500*time.Millisecond))
	}
	if !strings.Contains(o.Input, "://") { // a file: say now if it is missing
		if _, err := os.Stat(o.Input); err != nil {
			return err
		}
	}

	p, err := pipeline.New(pipeline.WithName("player"))
	if err != nil {
		return err
	}
	var starts sync.Map // endpoint name -> func(): players waiting for their endpoint to connect
	wait := demo.Watch(p, w, func(m element.Message) {
		if c, ok := m.(*endpoint.ConnectionStateChanged); ok && c.State == webrtc.PeerConnectionStateConnected {
			if start, ok := starts.LoadAndDelete(c.Element); ok {
				start.(func())()
			}
		}
	})
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
	if len(o.Codecs) > 0 {
		epOpts = append(epOpts, endpoint.WithCodecs(o.Codecs...))
	}
	// Each POST makes a sending endpoint and a player, which starts when
	// the endpoint connects.
	signalling, err := endpoint.NewWHEPHandler(func(ep *endpoint.WebRTC) (func(), error) {
		pl, err := endpoint.NewPlayer("player-"+strings.TrimPrefix(ep.Name(), "play-"), o.Input, plOpts...)
		if err != nil {
			return nil, err
		}
		b := demo.NewPlayback(p, ep, pl)
		starts.Store(ep.Name(), b.Start)
		leave := func() {
			starts.Delete(ep.Name())
			b.Leave()
		}
		return leave, p.Add(ep)
	}, endpoint.WithEndpointOptions(epOpts...), endpoint.WithEndpointNames("play"))
	if err != nil {
		return err
	}
	defer signalling.Close() // before the pipeline closes: deferred later, runs first

	mux := http.NewServeMux()
	mux.Handle("GET /{$}", demo.Page(indexHTML))
	mux.Handle("/play", signalling)
	mux.Handle("/play/", signalling)
	return demo.Serve(ctx, o.Addr, mux, ready)
}
