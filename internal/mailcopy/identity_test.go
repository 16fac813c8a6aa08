package mailcopy_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/mailcopy"
)

// TestImpostorIsNotPresent: a destination message with the same
// Message-ID, date and size but other bytes never makes the source message
// "present": it is copied, verify checks content, and a rerun finds the
// copy by content and duplicates nothing.
func TestImpostorIsNotPresent(t *testing.T) {
	src, dst := startMem(t, "a@x.test"), startMem(t, "a@x.test")
	date := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	real := []byte("Message-ID: <same@x.test>\r\nSubject: real\r\n\r\nthe owner's words\r\n")
	fake := []byte("Message-ID: <same@x.test>\r\nSubject: fake\r\n\r\nsomething else!!!\r\n")
	if len(real) != len(fake) {
		t.Fatalf("test messages differ in size: %d, %d", len(real), len(fake))
	}
	if _, err := src.user.Append("INBOX", bytes.NewReader(real), &imap.AppendOptions{Time: date}); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.user.Append("INBOX", bytes.NewReader(fake), &imap.AppendOptions{Time: date}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for run, want := range []struct{ copied, present int }{{1, 0}, {0, 1}, {0, 1}} {
		res, err := mailcopy.Copy(ctx, ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{})
		if err != nil {
			t.Fatalf("run %d: Copy() = %v", run+1, err)
		}
		if res.Copied != want.copied || res.Present != want.present {
			t.Fatalf("run %d: Copy() copied %d, present %d; want %d, %d", run+1, res.Copied, res.Present, want.copied, want.present)
		}
		v, err := mailcopy.Verify(ctx, ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{})
		if err != nil || !v.OK() || v.Exact != 1 || v.Duplicates != 0 {
			t.Fatalf("run %d: Verify() = %+v, %v; want 1 exact, OK", run+1, v, err)
		}
	}
}

// TestVerifyCatchesImpostor: verify alone, on a destination that holds only
// the impostor, reports the source message missing.
func TestVerifyCatchesImpostor(t *testing.T) {
	src, dst := startMem(t, "a@x.test"), startMem(t, "a@x.test")
	date := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	if _, err := src.user.Append("INBOX", bytes.NewReader([]byte("Message-ID: <same@x.test>\r\n\r\nAAAA\r\n")), &imap.AppendOptions{Time: date}); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.user.Append("INBOX", bytes.NewReader([]byte("Message-ID: <same@x.test>\r\n\r\nBBBB\r\n")), &imap.AppendOptions{Time: date}); err != nil {
		t.Fatal(err)
	}
	v, err := mailcopy.Verify(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v.OK() || v.Missing != 1 {
		t.Fatalf("Verify() = %+v, want 1 missing", v)
	}
}
