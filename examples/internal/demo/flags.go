package demo

import "flag"

// DefaultAddr is where a web example serves its page and signalling unless
// -addr says otherwise.
const DefaultAddr = "127.0.0.1:8080"

// ServeFlags defines, on the program's flag set, the two flags every web
// example has: -addr (into addr, DefaultAddr by default) and -ice-loopback
// (into iceLoopback: endpoint.WithICELoopback, what tests and browsers on
// one machine need).
func ServeFlags(addr *string, iceLoopback *bool) {
	flag.StringVar(addr, "addr", DefaultAddr, "HTTP `address` to serve the page and the signalling on")
	flag.BoolVar(iceLoopback, "ice-loopback", false, "gather and accept only loopback ICE candidates (no STUN, no mDNS): for tests and browsers started with --allow-loopback-in-peer-connection")
}
