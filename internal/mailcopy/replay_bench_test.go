package mailcopy_test

import (
	"context"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/mailgen"
	"github.com/mailshift/mailshift/internal/testenv"
)

// BenchmarkFinalDelta measures what the replay adds to a final delta on
// the lab's Dovecot pair (CONDSTORE: flags read with CHANGEDSINCE), for a
// copied mailbox of 3,000 messages in 10 folders:
//
//   - delta: the copy pass alone, nothing new (the final delta before the
//     replay existed);
//   - replay+delta, no changes: the same with the replay first;
//   - replay+delta, changes: 100 flag changes on the source before each
//     iteration (set, then cleared on the next), replayed.
//
// Compare the ns/op of one run: the ratio is the replay's share of the
// owner's lockout.
func BenchmarkFinalDelta(b *testing.B) {
	const user = "bench@example.com"
	src, dst := dovecotPair(b, user)
	if _, _, err := testenv.Seed(src, user, pw, mailgen.Spec{Seed: 5, Messages: 3000, MeanSize: 4 << 10, NoIDPercent: 3, DupPercent: 2}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	first, err := mailcopy.Copy(ctx, ep(src, user), ep(dst, user), mailcopy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cps := first.Checkpoints
	b.Run("delta", func(b *testing.B) {
		for b.Loop() {
			r, err := mailcopy.Copy(ctx, ep(src, user), ep(dst, user), mailcopy.Options{Checkpoints: cps})
			if err != nil || r.Copied != 0 {
				b.Fatalf("delta: %v, copied %v", err, r)
			}
		}
	})
	replayDelta := func(b *testing.B, want int) {
		rr, err := mailcopy.Replay(ctx, ep(src, user), ep(dst, user), mailcopy.Options{Checkpoints: cps})
		if err != nil || rr.Total() != want {
			b.Fatalf("replay: %v, %+v, want %d changes", err, rr, want)
		}
		r, err := mailcopy.Copy(ctx, ep(src, user), ep(dst, user), mailcopy.Options{Checkpoints: rr.Checkpoints})
		if err != nil || r.Copied != 0 {
			b.Fatalf("delta: %v, copied %v", err, r)
		}
		cps = r.Checkpoints
	}
	b.Run("replay+delta/no-changes", func(b *testing.B) {
		for b.Loop() {
			replayDelta(b, 0)
		}
	})
	b.Run("replay+delta/100-flags", func(b *testing.B) {
		o := owner(b, src, user)
		op := imap.StoreFlagsAdd
		for b.Loop() {
			b.StopTimer()
			if _, err := o.Select("INBOX", nil).Wait(); err != nil {
				b.Fatal(err)
			}
			if err := o.Store(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 100}}, &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{"$Bench"}}, nil).Close(); err != nil {
				b.Fatal(err)
			}
			if op == imap.StoreFlagsAdd {
				op = imap.StoreFlagsDel
			} else {
				op = imap.StoreFlagsAdd
			}
			b.StartTimer()
			replayDelta(b, 100)
		}
	})
}
