package mailcopy_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/mailgen"
)

// TestVerifyFromTheCopysHashes: a verify with the copy's hashes reads no
// copied message from the source again, and still finds a message the
// destination lost and a source message the copy never saw.
func TestVerifyFromTheCopysHashes(t *testing.T) {
	src, dst := startMem(t, "a@x.test"), startMem(t, "a@x.test")
	n := src.seed(t, mailgen.Spec{Seed: 11, Messages: 60})
	ctx := context.Background()
	s, d := ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test")
	dg := mailcopy.NewDigests(0)
	res, err := mailcopy.Copy(ctx, s, d, mailcopy.Options{Digests: dg})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != n || dg.Len() != n {
		t.Fatalf("Copy() copied %d, hashed %d; want %d each", res.Copied, dg.Len(), n)
	}
	opts := mailcopy.Options{Digests: dg, Checkpoints: res.Checkpoints}
	snap, err := mailcopy.VerifySource(ctx, s, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Messages != n || snap.Hashed != 0 {
		t.Fatalf("VerifySource() read %d messages and hashed %d from the source; want %d and 0", snap.Messages, snap.Hashed, n)
	}
	v, err := mailcopy.VerifyAgainst(ctx, d, snap)
	if err != nil || !v.OK() || v.Checked != n || v.Exact != n {
		t.Fatalf("VerifyAgainst() = %+v, %v; want %d exact", v, err, n)
	}

	// A message that reached the source after the copy: read from the
	// source, and missing on the destination.
	late := []byte("Message-ID: <late@x.test>\r\nSubject: late\r\n\r\narrived after the copy\r\n")
	if _, err := src.user.Append("INBOX", bytes.NewReader(late), &imap.AppendOptions{Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// And a copied message the destination lost.
	expungeFirst(t, dst.addr)
	if snap, err = mailcopy.VerifySource(ctx, s, d, opts); err != nil {
		t.Fatal(err)
	}
	if snap.Messages != n+1 || snap.Hashed != 1 {
		t.Fatalf("VerifySource() read %d messages and hashed %d; want %d and 1 (the late one)", snap.Messages, snap.Hashed, n+1)
	}
	if v, err = mailcopy.VerifyAgainst(ctx, d, snap); err != nil {
		t.Fatal(err)
	}
	if v.OK() || v.Missing != 2 || v.Exact != n-1 {
		t.Fatalf("VerifyAgainst() = missing %d, exact %d (%s); want 2 missing, %d exact", v.Missing, v.Exact, v.MissingSummary(), n-1)
	}
	// The one-call verify, without hashes, agrees.
	full, err := mailcopy.Verify(ctx, s, d, mailcopy.Options{Checkpoints: res.Checkpoints})
	if err != nil || full.Missing != v.Missing || full.Exact != v.Exact || full.Checked != v.Checked {
		t.Fatalf("Verify() = %+v, %v; VerifyAgainst() said %+v", full, err, v)
	}
}
