package mailcopy

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// normalizeRef is the normal form byte by byte: CRLF, bare CR and bare LF
// become LF, NUL becomes 0x80.
func normalizeRef(b []byte) []byte {
	var out []byte
	lastCR := false
	for _, c := range b {
		switch {
		case c == '\n' && lastCR:
			lastCR = false
			continue
		case c == '\r':
			lastCR = true
			out = append(out, '\n')
			continue
		case c == 0:
			c = 0x80
		}
		lastCR = false
		out = append(out, c)
	}
	return out
}

// TestNormWriterMatchesByteByByte: whatever the bytes and however they are
// cut into writes (a CR at the end of one and its LF at the start of the
// next), the run-at-a-time writer hashes the byte-by-byte normal form.
func TestNormWriterMatchesByteByByte(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	alphabet := []byte("ab\r\n\x00\x80 ")
	for i := range 2000 {
		b := make([]byte, r.IntN(300))
		for j := range b {
			b[j] = alphabet[r.IntN(len(alphabet))]
		}
		w := &normWriter{h: sha256.New()}
		for rest := b; len(rest) > 0; {
			k := 1 + r.IntN(len(rest))
			if _, err := w.Write(rest[:k]); err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
		}
		want := sha256.Sum256(normalizeRef(b))
		if got := w.h.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Fatalf("case %d %q: hash differs from the byte-by-byte normal form %q", i, b, normalizeRef(b))
		}
	}
}

func BenchmarkNormWriter(b *testing.B) {
	msg := bytes.Repeat([]byte("A line of an ordinary message, about seventy bytes long, CRLF ends it\r\n"), 400)
	w := &normWriter{h: sha256.New()}
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		_, _ = w.Write(msg)
	}
}
