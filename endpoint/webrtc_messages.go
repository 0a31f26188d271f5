package endpoint

import (
	"github.com/pion/webrtc/v4"

	"github.com/medley-go/medley/element"
)

// The bus messages of a WebRTC endpoint, named as Kurento names its events.
// Element is the endpoint's name. They are posted only while the endpoint
// is in a pipeline, but for IceCandidateFound and IceGatheringDone: those
// found before are kept and posted when the endpoint starts running.

// ConnectionStateChanged reports a change of the peer connection's state
// (new, connecting, connected, disconnected, failed, closed): ICE and DTLS
// together, as the W3C RTCPeerConnectionState.
type ConnectionStateChanged struct {
	element.MessageHeader
	State webrtc.PeerConnectionState
}

// IceCandidateFound carries a local ICE candidate for the host to send to
// the peer (trickle ICE). Candidate marshals to the JSON a browser's
// addIceCandidate takes.
type IceCandidateFound struct {
	element.MessageHeader
	Candidate webrtc.ICECandidateInit
}

// IceGatheringDone says the endpoint has gathered all its candidates: the
// local description is complete now.
type IceGatheringDone struct {
	element.MessageHeader
}

// IceComponentStateChanged reports a change of the ICE connection state
// (checking, connected, completed, disconnected, failed, closed).
type IceComponentStateChanged struct {
	element.MessageHeader
	State webrtc.ICEConnectionState
}

// NewCandidatePairSelected reports the pair of candidates ICE selected to
// carry the media, as candidate lines.
type NewCandidatePairSelected struct {
	element.MessageHeader
	Local, Remote string
}

// PadAdded reports a src pad the endpoint added while running, for a
// track it had not declared (a second video track, a simulcast layer).
// Connect it with pipeline.ConnectPads.
type PadAdded struct {
	element.MessageHeader
	Pad  string // "element.pad"
	Kind element.Kind
}
