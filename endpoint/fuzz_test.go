package endpoint_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/medley-go/medley/endpoint"
)

// FuzzProcessOffer feeds random SDP to ProcessOffer: it must answer or
// fail with one of the endpoint's errors, never panic or hang, and the
// endpoint must close cleanly after.
//
//	go test -run '^$' -fuzz FuzzProcessOffer -fuzztime 30s ./endpoint/
func FuzzProcessOffer(f *testing.F) {
	good := offerWith(f, true, vp8, opus)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(offerWith(f, false, h264, pcmu))
	f.Add(offerWith(f, true))
	f.Add(strings.ReplaceAll(good, "\r\n", "\n"))
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, sdp string) {
		ep, err := endpoint.NewWebRTC("fuzz", loopbackOptions(endpoint.WithDataChannel("chat"))...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		answer, err := ep.ProcessOffer(ctx, sdp)
		switch {
		case err == nil:
			if !strings.HasPrefix(answer, "v=0") {
				t.Errorf("answer %q", answer)
			}
		case errors.Is(err, endpoint.ErrInvalidSDP), errors.Is(err, endpoint.ErrNoCommonCodec):
		default:
			t.Errorf("unexpected error kind: %v", err)
		}
		if err := ep.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
}
