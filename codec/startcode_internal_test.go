package codec

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// startCodeInputs are byte strings of every length up to 300: mostly
// other bytes with some zeros and ones, runs of zeros and start codes, and
// emulation prevention's 00 00 03 over and over.
func startCodeInputs() [][]byte {
	r := rand.New(rand.NewPCG(7, 7))
	var out [][]byte
	for n := range 300 {
		for range 20 {
			b := make([]byte, n)
			for i := range b {
				switch v := r.IntN(100); {
				case v < 96:
					b[i] = byte(2 + r.IntN(254))
				case v < 98:
					b[i] = 0
				default:
					b[i] = 1
				}
			}
			// Zero runs and start codes at random places.
			for range r.IntN(3) {
				if n > 0 {
					i := r.IntN(n)
					copy(b[i:], [][]byte{{0, 0}, {0, 0, 1}, {0, 0, 0, 1}, {0, 0, 0, 0, 0}, {0, 0, 3}}[r.IntN(5)])
				}
			}
			out = append(out, b)
		}
		// Padding (00 00 03 over and over) with a start code, or none,
		// somewhere: pairs of zeros in every block.
		pad := bytes.Repeat([]byte{0, 0, 3}, n/3+1)[:n]
		out = append(out, pad)
		if n >= 3 {
			b := bytes.Clone(pad)
			b[r.IntN(n-2)+2] = 1
			out = append(out, b)
		}
	}
	return out
}

func TestIndexStartCodePaths(t *testing.T) {
	inputs := startCodeInputs()
	check := func(t *testing.T) {
		for _, b := range inputs {
			want := bytes.Index(b, annexBStartCode)
			if got := indexStartCode(b); got != want {
				t.Fatalf("indexStartCode(%x) = %d, want %d", b, got, want)
			}
			if got := indexStartCodeBytes(b); got != want {
				t.Fatalf("indexStartCodeBytes(%x) = %d, want %d", b, got, want)
			}
		}
	}
	t.Run("default", check)
	t.Run("portable", func(t *testing.T) {
		old := useSIMD
		useSIMD = false
		defer func() { useSIMD = old }()
		check(t)
	})
}

func FuzzIndexStartCode(f *testing.F) {
	f.Add([]byte{0, 0, 1})
	f.Add(bytes.Repeat([]byte{0}, 130))
	f.Add(append(bytes.Repeat([]byte{7}, 100), 0, 0, 0, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		want := bytes.Index(b, annexBStartCode)
		if got := indexStartCode(b); got != want {
			t.Fatalf("indexStartCode(%x) = %d, want %d", b, got, want)
		}
	})
}

// BenchmarkIndexStartCode scans 64 kB without a start code, with SIMD
// where there is an assembly version and without: random bytes, as
// emulation prevention leaves a coded slice, and 00 00 03 over and over,
// as cabac_zero_words pad one.
func BenchmarkIndexStartCode(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(r.Uint32())
		if i >= 2 && random[i-2] == 0 && random[i-1] == 0 && random[i] <= 3 {
			random[i] = 3
		}
	}
	padding := bytes.Repeat([]byte{0, 0, 3}, len(random)/3)
	for _, data := range []struct {
		name string
		b    []byte
	}{{"random", random}, {"000003", padding}} {
		for _, simd := range []bool{true, false} {
			name := data.name + "/portable"
			if simd {
				name = data.name + "/simd"
			}
			b.Run(name, func(b *testing.B) {
				if simd && !useSIMD {
					b.Skip("no SIMD version on this CPU")
				}
				old := useSIMD
				useSIMD = simd
				defer func() { useSIMD = old }()
				b.SetBytes(int64(len(data.b)))
				for b.Loop() {
					if indexStartCode(data.b) >= 0 {
						b.Fatal("start code in the data")
					}
				}
			})
		}
	}
}
