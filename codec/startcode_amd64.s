//go:build !purego

#include "textflag.h"

// func startCodeAVX2(b []byte) (i int, found bool)
//
// For each block of 64 positions the loop ORs the block with itself
// shifted by one byte, merges the two 32-byte halves with a byte-wise
// minimum and tests one mask: a zero byte is a pair of zero bytes, which
// coded slices hardly ever hold. Only then does it test the whole start
// code, b[i] | b[i+1] | (b[i+2] ^ 1) == 0, so that runs of 00 00 03
// (emulation prevention, cabac_zero_words) stay on the fast path.
TEXT ·startCodeAVX2(SB), NOSPLIT, $0-33
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	XORQ AX, AX
	// A block at AX reads up to AX+65: loop while AX < len-65.
	SUBQ $65, CX
	JLE  none
	VPXOR        Y7, Y7, Y7
	MOVQ         $0x0101010101010101, DX
	MOVQ         DX, X6
	VPBROADCASTQ X6, Y6

loop:
	VMOVDQU   (SI)(AX*1), Y0
	VPOR      1(SI)(AX*1), Y0, Y0
	VMOVDQU   32(SI)(AX*1), Y1
	VPOR      33(SI)(AX*1), Y1, Y1
	VPMINUB   Y1, Y0, Y2
	VPCMPEQB  Y7, Y2, Y2
	VPMOVMSKB Y2, DX
	TESTL     DX, DX
	JNZ       pair

next:
	ADDQ $64, AX
	CMPQ AX, CX
	JLT  loop

none:
	VZEROUPPER
	MOVQ AX, i+24(FP)
	MOVB $0, found+32(FP)
	RET

pair:
	// Two zero bytes in a row: is the byte after them a one?
	VPXOR     2(SI)(AX*1), Y6, Y2
	VPOR      Y2, Y0, Y0
	VPXOR     34(SI)(AX*1), Y6, Y3
	VPOR      Y3, Y1, Y1
	VPCMPEQB  Y7, Y0, Y0
	VPMOVMSKB Y0, DX
	VPCMPEQB  Y7, Y1, Y1
	VPMOVMSKB Y1, BX
	SHLQ      $32, BX
	ORQ       BX, DX
	JEQ       next
	BSFQ      DX, DX
	ADDQ      DX, AX
	VZEROUPPER
	MOVQ AX, i+24(FP)
	MOVB $1, found+32(FP)
	RET
