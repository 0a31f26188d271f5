package endpoint

import (
	"fmt"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/medley-go/medley/codec"
	"github.com/medley-go/medley/element"
)

// videoFeedback is the RTCP feedback every video codec negotiates beside
// what the interceptors register (NACK and PLI: webrtc.ConfigureNack;
// transport-cc: webrtc.ConfigureTWCCSender): REMB, and FIR for keyframes
// (RFC 5104, section 4.3.1).
var videoFeedback = []webrtc.RTCPFeedback{
	{Type: webrtc.TypeRTCPFBGoogREMB},
	{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
}

// newAPI builds the pion API of one endpoint: its media engine with the
// configured codecs, its interceptors and its setting engine. onBWE receives
// the bandwidth estimator of the peer connection the API makes (one per
// endpoint), and onTarget each new estimate.
func newAPI(cfg *config, onBWE func(*bwe), onTarget func(bps int)) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m, cfg.codecs); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	// Order matters: the interceptor added first sits closest to the
	// network on the send path. The bandwidth estimator numbers the
	// packets with the transport-cc header extension (which the TWCC
	// feedback step registers, for the peer's packets too); the NACK
	// responder, outside it, resends through it so that retransmissions
	// get fresh numbers. Without the estimator nothing numbers the packets
	// and the peer sends no feedback.
	if cfg.bwe {
		ir.Add(&bweFactory{min: cfg.minBitrate, initial: cfg.initialBitrate, max: cfg.maxBitrate, onTarget: onTarget, onNew: onBWE})
	}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"NACK", func() error { return webrtc.ConfigureNack(m, ir) }},
		{"RTCP reports", func() error { return webrtc.ConfigureRTCPReports(ir) }},
		{"stats", func() error { return webrtc.ConfigureStatsInterceptor(ir) }},
		{"TWCC feedback", func() error { return webrtc.ConfigureTWCCSender(m, ir) }},
		// mid and rid header extensions: how a simulcast sender names its
		// layers.
		{"simulcast extensions", func() error { return webrtc.ConfigureSimulcastExtensionHeaders(m) }},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return nil, fmt.Errorf("endpoint: %s: %w", s.name, err)
		}
	}
	se, err := newSettingEngine(cfg)
	if err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// newProbeAPI builds an API with the endpoint's codecs and ICE settings
// but neither interceptors nor shared sockets, for the probe connections
// that try a remote offer before the endpoint's own connection takes it.
func newProbeAPI(cfg *config) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m, cfg.codecs); err != nil {
		return nil, err
	}
	pcfg := *cfg
	pcfg.udpMux, pcfg.tcpMux = nil, nil
	se, err := newSettingEngine(&pcfg)
	if err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)), nil
}

// registerCodecs registers each codec with every fmtp variant medley
// offers, in preference order, each under its own payload type: the
// codec's customary one for the first variant, free dynamic ones after.
func registerCodecs(m *webrtc.MediaEngine, codecs []codec.Codec) error {
	used := make(map[uint8]bool)
	for _, cd := range codecs {
		used[cd.PayloadType] = true
	}
	next := uint8(96)
	free := func() (uint8, error) {
		for ; next <= 127; next++ {
			if !used[next] {
				used[next] = true
				return next, nil
			}
		}
		return 0, fmt.Errorf("endpoint: more codec variants than dynamic payload types")
	}
	for _, cd := range codecs {
		variants := cd.FmtpVariants
		if len(variants) == 0 {
			variants = []string{cd.Fmtp}
		}
		for i, fmtp := range variants {
			pt := cd.PayloadType
			if i > 0 {
				var err error
				if pt, err = free(); err != nil {
					return err
				}
			}
			p := webrtc.RTPCodecParameters{
				RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: cd.MIME, ClockRate: cd.ClockRate, SDPFmtpLine: fmtp},
				PayloadType:        webrtc.PayloadType(pt),
			}
			typ := webrtc.RTPCodecTypeAudio
			if cd.Kind == element.KindVideo {
				typ = webrtc.RTPCodecTypeVideo
				p.RTCPFeedback = append([]webrtc.RTCPFeedback(nil), videoFeedback...)
			} else if cd.Channels > 1 {
				// SDP names the channel count only above one (RFC 4566,
				// section 6: rtpmap).
				p.Channels = cd.Channels
			}
			if err := m.RegisterCodec(p, typ); err != nil {
				return fmt.Errorf("endpoint: register %s: %w", cd.MIME, err)
			}
		}
	}
	return nil
}

func newSettingEngine(cfg *config) (webrtc.SettingEngine, error) {
	var se webrtc.SettingEngine
	if cfg.portMin != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.portMin, cfg.portMax); err != nil {
			return se, fmt.Errorf("endpoint: port range: %w", err)
		}
	}
	if cfg.udpMux != nil {
		se.SetICEUDPMux(cfg.udpMux)
	}
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.tcpMux != nil {
		se.SetICETCPMux(cfg.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	if cfg.loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(isLoopback)
		se.SetRemoteIPFilter(isLoopback)
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	if t := cfg.iceTimeouts; t != nil {
		se.SetICETimeouts(t[0], t[1], t[2])
	}
	return se, nil
}
