package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/corpus"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// TestNULBytesOfHugeMessagesArrive copies, between the two lab Dovecots
// (both announce BINARY), a 20 MB message holding NUL bytes, a small one
// holding some and a plain one: the NUL bytes arrive as NUL bytes (read
// from the destination's Maildir files, not through the engine), verify
// finds every message exact, a rerun copies nothing, and the copy does
// not hold the huge message in memory (its NUL repair streams it from
// BINARY[] into a literal8 APPEND; it was capped at 16 MB and left 0x80).
func TestNULBytesOfHugeMessagesArrive(t *testing.T) {
	const huge = 20 << 20
	l := startRealWorldLab(t, 0)
	var big bytes.Buffer
	big.WriteString("From: a@example.org\r\nTo: alice@example.com\r\nSubject: NUL bytes, 20 MB\r\nMessage-ID: <nul-huge@x.test>\r\nContent-Type: text/plain\r\n\r\n")
	wantNULs := 0
	for big.Len() < huge {
		fmt.Fprintf(&big, "record %d:\x00\x00 end of record\r\n", big.Len())
		wantNULs += 2
	}
	small := []byte("From: b@example.org\r\nSubject: one NUL\r\nMessage-ID: <nul-small@x.test>\r\n\r\nbefore\x00after\r\n")
	wantNULs++
	date := time.Date(2020, 2, 2, 2, 2, 2, 0, time.UTC)
	msgs := []corpus.Message{
		{Body: []byte("From: c@example.org\r\nSubject: plain\r\nMessage-ID: <plain@x.test>\r\n\r\nplain\r\n"), Date: date, Flags: "S"},
		{Body: big.Bytes(), Date: date.Add(time.Hour), Flags: "S"},
		{Body: small, Date: date.Add(2 * time.Hour)},
	}
	root := filepath.Join(l.src.Dir, "mail", "example.com", "alice")
	if err := corpus.WriteFolder(root, "INBOX", msgs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(l.src.Dir, "mail"), filepath.Join(l.src.Dir, "mail", "example.com")} {
		_ = os.Chown(p, 65534, 65534)
	}
	src := mailcopy.Endpoint{Addr: l.src.Addr, Security: mailcopy.SecurityPlain, User: "alice@example.com", MasterUser: "mailshift", Password: masterPW}
	dst := mailcopy.Endpoint{Addr: l.dst.Addr, Security: mailcopy.SecurityPlain, User: "alice@example.com", MasterUser: "mailshift", Password: masterPW}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := mailcopy.Copy(t.Context(), src, dst, mailcopy.Options{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("Copy(): %v\n%s", err, l.dst.Log())
	}
	if res.Copied != len(msgs) || len(res.Items()) != 0 {
		t.Fatalf("Copy() copied %d (want %d), items %v", res.Copied, len(msgs), res.Items())
	}
	// Everything the copy allocated, all its buffers together: far less
	// than the huge message, which streams.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc >= huge/2 {
		t.Errorf("the copy allocated %d MB for a %d MB message: it holds the message", alloc>>20, huge>>20)
	}

	// The destination's own files: the NUL bytes, and no 0x80 byte left.
	gotNULs, got80, files := 0, 0, 0
	dstRoot := filepath.Join(l.dst.Dir, "mail", "example.com", "alice")
	for _, sub := range []string{"cur", "new"} {
		ents, _ := os.ReadDir(filepath.Join(dstRoot, sub))
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dstRoot, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files++
			gotNULs += bytes.Count(b, []byte{0})
			got80 += bytes.Count(b, []byte{0x80})
		}
	}
	if files != len(msgs) || gotNULs != wantNULs || got80 != 0 {
		t.Fatalf("destination INBOX: %d message files, %d NUL bytes, %d 0x80 bytes; want %d, %d, 0", files, gotNULs, got80, len(msgs), wantNULs)
	}

	for run := 1; run <= 2; run++ {
		v, err := mailcopy.Verify(t.Context(), src, dst, mailcopy.Options{Checkpoints: res.Checkpoints})
		if err != nil {
			t.Fatal(err)
		}
		if !v.OK() || v.Exact != len(msgs) || v.Altered != 0 || v.Missing != 0 {
			t.Fatalf("verify %d: exact %d, altered %d, missing %d, duplicated %d; want all %d exact", run, v.Exact, v.Altered, v.Missing, v.Duplicates, len(msgs))
		}
		if run == 2 {
			break
		}
		// A rerun without checkpoints matches by content: nothing copied again.
		again, err := mailcopy.Copy(t.Context(), src, dst, mailcopy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if again.Copied != 0 || again.Present != len(msgs) || len(again.Items()) != 0 {
			t.Fatalf("rerun: copied %d, present %d, items %v; want 0, %d, none", again.Copied, again.Present, again.Items(), len(msgs))
		}
		res = again
	}
	src1, dst1 := inventoryOf(t, l.src.Addr), inventoryOf(t, l.dst.Addr)
	for k, n := range src1 {
		if dst1[k] != n {
			t.Errorf("message %s: %d on the source, %d on the destination", k, n, dst1[k])
		}
	}
	t.Logf("20 MB message with %d NUL bytes: copied, NULs intact on the destination's disk, verify exact, rerun copied 0; copy allocated %d MB", wantNULs, (after.TotalAlloc-before.TotalAlloc)>>20)
}
