package element

import (
	"strconv"
	"time"
)

// Event is a control message that travels on a link beside the buffers.
// Downstream events (CapsEvent, EOSEvent, DiscontEvent, SenderClockEvent)
// go from a src pad to its sinks, in order with the buffers; upstream events
// (KeyframeRequest, BitrateHint, ReconfigureEvent) go from a sink pad to the
// src pad feeding it, and are aggregated there (see Pad.SendUpstream).
//
// Elements may define events of their own: any type with an EventName
// method is an Event, and travels downstream when pushed with
// Pad.PushEvent and upstream when sent with Pad.SendUpstream.
type Event interface {
	EventName() string
}

// CapsEvent tells a sink pad the caps of the buffers that follow. A sink
// pad's event handler receives it before the first buffer and again each time
// the caps change; it is never lost, even for a sink linked late.
type CapsEvent struct{ Caps Caps }

// EOSEvent says the src pad will push no more buffers.
type EOSEvent struct{}

// DiscontEvent says buffers were lost before the next one (for example when
// a full queue dropped some).
type DiscontEvent struct{ Dropped int }

// SenderClockEvent says that the buffer of this stream with PTS PTS was
// captured at NTP on the sender's wall clock: what an RTCP sender report
// (RFC 3550, section 6.4.1) tells of the RTP timestamps of a stream, put
// in the stream's PTS. The streams of one sender share that clock (its
// audio and video, under one RTCP CNAME), so a sink that takes several of
// them (a recorder, a mixer) lines them up by it: samples captured at the
// same NTP time are played at the same time, however late each stream's
// first packet arrived (lip sync).
//
// A source that receives RTP pushes one after each sender report, once
// its stream has started, in order with the buffers. It is not sticky: a
// sink linked later gets the next one. An element that keeps the PTS of
// what it passes on (a depayloader, decoder, encoder, resampler, scaler,
// payloader) forwards it as it is; one that changes the PTS translates PTS
// the same way, or drops the event.
type SenderClockEvent struct {
	PTS time.Duration
	NTP time.Time
}

// KeyframeRequest asks the source to send a keyframe soon (RTCP PLI/FIR in
// WebRTC's words). Requests from many sinks are merged at the src pad into
// one per interval (see Pad.SetKeyframeInterval).
type KeyframeRequest struct{}

// BitrateHint tells the source the most a downstream path can take, in bits
// per second. A src pad with several sinks passes the minimum of their hints
// each time it changes; 0 means no sink limits it any more.
type BitrateHint struct{ BitsPerSecond int64 }

// ReconfigureEvent asks the source to renegotiate its caps.
type ReconfigureEvent struct{}

// EventName implements Event.
func (CapsEvent) EventName() string { return "caps" }

// EventName implements Event.
func (EOSEvent) EventName() string { return "eos" }

// EventName implements Event.
func (DiscontEvent) EventName() string { return "discont" }

// EventName implements Event.
func (SenderClockEvent) EventName() string { return "sender-clock" }

// EventName implements Event.
func (KeyframeRequest) EventName() string { return "keyframe-request" }

// EventName implements Event.
func (BitrateHint) EventName() string { return "bitrate-hint" }

// EventName implements Event.
func (ReconfigureEvent) EventName() string { return "reconfigure" }

func (e CapsEvent) String() string    { return "caps " + e.Caps.String() }
func (e DiscontEvent) String() string { return "discont dropped=" + strconv.Itoa(e.Dropped) }
func (e BitrateHint) String() string {
	return "bitrate-hint " + strconv.FormatInt(e.BitsPerSecond, 10) + "bps"
}

func (e SenderClockEvent) String() string {
	return "sender-clock pts=" + e.PTS.String() + " ntp=" + e.NTP.UTC().Format("2006-01-02T15:04:05.000000000Z")
}
