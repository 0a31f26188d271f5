//go:build !purego

package codec

import "golang.org/x/sys/cpu"

// useSIMD selects startCodeAVX2; a variable so that the tests can try the
// portable path too.
var useSIMD = cpu.X86.HasAVX2

// startCodeAVX2 looks for a start code, 64 positions at a time while a
// whole block and the two bytes after it fit in b. It returns the index of
// the first and true, or the number of positions it checked (a multiple of
// 64, none of them a start code) and false.
//
//go:noescape
func startCodeAVX2(b []byte) (i int, found bool)

// startCodeSIMD is startCodeAVX2 where the CPU has AVX2, else it checks
// nothing.
func startCodeSIMD(b []byte) (int, bool) {
	if useSIMD {
		return startCodeAVX2(b)
	}
	return 0, false
}
