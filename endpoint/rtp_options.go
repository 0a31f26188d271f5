package endpoint

import (
	"fmt"
	"time"
)

// RTPOption configures an RTP endpoint (NewRTP).
type RTPOption func(*rtpConfig) error

type rtpConfig struct {
	bind         string
	mux          bool
	sdes         bool
	rtcpInterval time.Duration
}

// WithRTPBindAddress sets the IP address the endpoint's sockets bind to and
// its SDP announces (default 127.0.0.1).
func WithRTPBindAddress(ip string) RTPOption {
	return func(c *rtpConfig) error { c.bind = ip; return nil }
}

// WithRTCPMux makes the endpoint multiplex RTCP on the RTP port and offer
// a=rtcp-mux, instead of RTCP on the RTP port + 1.
func WithRTCPMux() RTPOption {
	return func(c *rtpConfig) error { c.mux = true; return nil }
}

// WithSDES makes the endpoint offer RTP/SAVP with an SDES crypto line
// (RFC 4568, AES_CM_128_HMAC_SHA1_80): what it sends and receives is
// SRTP. An offer of RTP/SAVP is answered with SRTP whether or not the
// endpoint has this option.
func WithSDES() RTPOption {
	return func(c *rtpConfig) error { c.sdes = true; return nil }
}

// WithRTCPInterval sets the mean time between two RTCP reports (SR or RR)
// of a section, default one second; each interval is drawn at random from
// half to one and a half times it (RFC 3550, section 6.3.1).
func WithRTCPInterval(d time.Duration) RTPOption {
	return func(c *rtpConfig) error {
		if d <= 0 {
			return fmt.Errorf("endpoint: WithRTCPInterval(%v): must be positive", d)
		}
		c.rtcpInterval = d
		return nil
	}
}
