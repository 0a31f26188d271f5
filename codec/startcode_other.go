//go:build !amd64 || purego

package codec

// useSIMD is false: there is no assembly version here.
var useSIMD = false

// startCodeSIMD looks for start codes with SIMD where there is an
// assembly version; here it checks nothing, and indexStartCodeBytes does
// all the work.
func startCodeSIMD([]byte) (int, bool) { return 0, false }
