package endpoint

import (
	"fmt"
	"sync/atomic"

	"github.com/pion/webrtc/v4"

	"github.com/medley-go/medley/element"
)

// TextMessage marks a data buffer as a text message: a data channel
// message the peer sent as a string arrives in a buffer whose Frame is
// TextMessage{}, and a buffer reaching a data sink pad with that Frame is
// sent as a string; any other is binary.
type TextMessage struct{}

// dataCaps are the caps of the data pads.
var dataCaps = element.Caps{Kind: element.KindData, Format: element.FormatMessage}

// dataBufferSize is the payload capacity of a pooled data buffer; longer
// messages grow it.
const dataBufferSize = 2048

// dataLink carries one data channel: the messages the peer sends out of a
// src pad, the messages reaching a sink pad to the peer.
type dataLink struct {
	ep        *WebRTC
	label     string
	src, sink *element.Pad
	ch        atomic.Pointer[webrtc.DataChannel]
	pool      *element.BufferPool
	drops     atomic.Uint64
}

func newDataLink(e *WebRTC, i int, label string) *dataLink {
	d := &dataLink{ep: e, label: label, pool: element.NewBufferPool(dataBufferSize)}
	d.src = element.NewSrcPad(fmt.Sprintf("data_%d", i), element.CapsList{dataCaps})
	opts := []element.PadOption{}
	if e.cfg.queueSize > 0 {
		opts = append(opts, element.WithQueue(e.cfg.queueSize, element.Live))
	}
	d.sink = element.NewSinkPad(fmt.Sprintf("data_sink_%d", i), element.CapsList{dataCaps}, d.chain, opts...)
	return d
}

// open creates the endpoint's channel before it makes an offer, unless one
// is bound already.
func (d *dataLink) open() error {
	if d.ch.Load() != nil {
		return nil
	}
	label := d.label
	if label == "" {
		label = d.src.Name()
	}
	dc, err := d.ep.pc.CreateDataChannel(label, nil)
	if err != nil {
		return fmt.Errorf("data channel %q: %w", label, err)
	}
	d.bind(dc)
	return nil
}

// bind attaches dc to the link if it has none and the label fits.
func (d *dataLink) bind(dc *webrtc.DataChannel) bool {
	if d.label != "" && dc.Label() != d.label {
		return false
	}
	if !d.ch.CompareAndSwap(nil, dc) {
		return false
	}
	// pion calls OnMessage on the channel's reading goroutine, one message
	// at a time: the src pad's only pusher.
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		b := d.pool.Get()
		b.Data = append(b.Data, m.Data...)
		if m.IsString {
			b.Frame = TextMessage{}
		}
		d.src.Push(b)
		b.Unref()
	})
	return true
}

func (e *WebRTC) onDataChannel(dc *webrtc.DataChannel) {
	for _, d := range e.data {
		if d.bind(dc) {
			return
		}
	}
}

// chain sends one message to the peer; with no open channel it is dropped
// and counted.
func (d *dataLink) chain(b *element.Buffer) error {
	dc := d.ch.Load()
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		d.drops.Add(1)
		return nil
	}
	var err error
	if _, text := b.Frame.(TextMessage); text {
		err = dc.SendText(string(b.Data))
	} else {
		err = dc.Send(b.Data)
	}
	if err != nil {
		d.drops.Add(1)
		if dc.ReadyState() == webrtc.DataChannelStateOpen {
			return fmt.Errorf("endpoint: data channel %q: %w", dc.Label(), err)
		}
	}
	return nil
}
