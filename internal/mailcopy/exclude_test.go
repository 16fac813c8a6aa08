package mailcopy_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/mailgen"
)

const marker = "<advance.migrate.a.at.x.test@mailshift.invalid>"

var notice = []byte("From: postmaster@x.test\r\nTo: a@x.test\r\nSubject: moving\r\nMessage-ID: " + marker + "\r\n\r\nYour mailbox moves tonight.\r\n")

// A message mailshift appends to the source for the owner is found again
// by its marker (one copy however often it is appended), and no copy pass
// or verify takes it to the destination: by its UID, and by its marker when
// the copy rescans a folder.
func TestExcludedMessageStaysOnTheSource(t *testing.T) {
	ctx := context.Background()
	src, dst := startMem(t, "a@x.test"), startMem(t, "a@x.test")
	n := src.seed(t, mailgen.Spec{Seed: 3, Messages: 40})
	s, d := ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test")
	res, err := mailcopy.Copy(ctx, s, d, mailcopy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := mailcopy.AppendMarked(ctx, s, "INBOX", marker, notice)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := mailcopy.AppendMarked(ctx, s, "INBOX", marker, notice)
	if err != nil {
		t.Fatal(err)
	}
	if !p1.Added || p2.Added || p1.UID == 0 || p1.UID != p2.UID || p1.UIDValidity != p2.UIDValidity {
		t.Fatalf("AppendMarked() twice = %+v, %+v; want one message, found again the second time", p1, p2)
	}
	if got := read(t, src.addr, "a@x.test").Count(); got != n+1 {
		t.Fatalf("source holds %d messages, want %d (the notice once)", got, n+1)
	}
	ex := []mailcopy.Exclude{{Folder: "INBOX", UIDValidity: p1.UIDValidity, UID: p1.UID, MessageID: marker}}
	// One new message arrives after the notice.
	if _, err := src.user.Append("INBOX", bytes.NewReader([]byte("Subject: later\r\nMessage-ID: <later@x.test>\r\n\r\nhi\r\n")), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	delta, err := mailcopy.Copy(ctx, s, d, mailcopy.Options{Checkpoints: res.Checkpoints, Exclude: ex})
	if err != nil {
		t.Fatal(err)
	}
	if delta.Copied != 1 {
		t.Fatalf("delta copied %d, want 1 (the new message, not the notice)", delta.Copied)
	}
	// A rescan (no checkpoints, a destination holding mail) reads headers:
	// the marker alone keeps the notice out.
	again, err := mailcopy.Copy(ctx, s, d, mailcopy.Options{Exclude: []mailcopy.Exclude{{Folder: "INBOX", MessageID: marker}}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Copied != 0 || again.Present != n+1 {
		t.Fatalf("rescan copied %d, present %d; want 0, %d", again.Copied, again.Present, n+1)
	}
	if got := read(t, dst.addr, "a@x.test").Count(); got != n+1 {
		t.Fatalf("destination holds %d messages, want %d (no notice)", got, n+1)
	}
	v, err := mailcopy.Verify(ctx, s, d, mailcopy.Options{Checkpoints: delta.Checkpoints, Exclude: ex})
	if err != nil || !v.OK() || v.Checked != n+1 || v.Excluded != 1 {
		t.Fatalf("Verify() = %+v, %v; want OK over %d messages, 1 excluded", v, err, n+1)
	}
	// Without the exclusion verify would miss it: the test can fail.
	v, err = mailcopy.Verify(ctx, s, d, mailcopy.Options{Checkpoints: delta.Checkpoints})
	if err != nil || v.Missing != 1 {
		t.Fatalf("Verify() without the exclusion = missing %d, %v; want 1", v.Missing, err)
	}
}
