// Package elementtest provides elements for testing code built on medley,
// in the manner of net/http/httptest: a synthetic Source that emits RTP
// packets or encoded samples of a given codec at a given rate, with
// keyframes on request, and a collecting Sink that records what it receives
// and the upstream events it sends.
//
// The media is synthetic: payload bytes carry a frame and packet index (see
// Received), not a decodable picture, so tests can check order, loss and
// keyframes exactly. Use package codec's encoders for decodable media.
package elementtest
