package e2e

import (
	"context"
	"testing"

	"github.com/mailshift/mailshift/internal/corpus"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// TestVerifyHalvesOnTheCorpus: on the adversarial corpus between two lab
// Dovecots (the destination refusing, altering and taking what it takes),
// a verify in halves with the copy's hashes reaches the one-call verify's
// verdict on every message, reading from the source only what the copy
// did not hash.
func TestVerifyHalvesOnTheCorpus(t *testing.T) {
	ctx := context.Background()
	l := startRealWorldLab(t, 1<<20)
	n := layCorpus(t, l, corpus.Spec{Seed: 21, Big: 300})
	src, dst := l.aliceEndpoints()

	dg := mailcopy.NewDigests(0)
	res, err := mailcopy.Copy(ctx, src, dst, mailcopy.Options{Locale: "fr", Digests: dg})
	if err != nil {
		t.Fatalf("Copy() = %v\n%s", err, l.dst.Log())
	}
	opts := mailcopy.Options{Locale: "fr", Checkpoints: res.Checkpoints, Reported: res.Items()}
	whole, err := mailcopy.Verify(ctx, src, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Digests = dg
	snap, err := mailcopy.VerifySource(ctx, src, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	halves, err := mailcopy.VerifyAgainst(ctx, dst, snap)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("corpus %d messages: copied %d (hashed %d); verify read %d source messages, %d of them by their bytes; exact %d, altered %d, preserved %d, not copied %d",
		n, res.Copied, dg.Len(), snap.Messages, snap.Hashed, halves.Exact, halves.Altered, halves.Preserved, halves.NotCopied)
	type verdict struct{ checked, exact, altered, preserved, empty, notCopied, missing, duplicates, excluded int }
	of := func(v *mailcopy.VerifyResult) verdict {
		return verdict{v.Checked, v.Exact, v.Altered, v.Preserved, v.Empty, v.NotCopied, v.Missing, v.Duplicates, v.Excluded}
	}
	if of(whole) != of(halves) {
		t.Fatalf("verify in halves %+v, one-call verify %+v", of(halves), of(whole))
	}
	if a, b := alteredOf(whole), alteredOf(halves); a != b {
		t.Fatalf("altered: halves %s, one-call %s", b, a)
	}
	if !halves.OK() || halves.Checked != snap.Messages {
		t.Fatalf("verify in halves: %+v (read %d)", of(halves), snap.Messages)
	}
	// Every message the copy hashed is spared a second read from the
	// source; the ones it did not (a NUL byte read twice, refused,
	// preserved) are read.
	if snap.Hashed > snap.Messages-dg.Len() || dg.Len() < res.Copied/2 {
		t.Fatalf("verify read %d of %d source messages by their bytes, the copy hashed %d of its %d", snap.Hashed, snap.Messages, dg.Len(), res.Copied)
	}
}
