// Package browsertest is the headless-Chromium harness that the tests of
// the web examples and of the WebRTC endpoint share: it runs a server on a
// free port of 127.0.0.1, starts Debian's Chromium with a fake camera and
// microphone, reads what a page decoded from getStats, and drives JSON
// signalling from a pion peer kept on loopback.
package browsertest
