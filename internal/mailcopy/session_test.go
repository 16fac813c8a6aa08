package mailcopy_test

import (
	"context"
	"testing"

	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/mailgen"
)

// TestSessionLogsInOncePerServer: a replay, a delta and a verify that
// share a Session log in once on each server (counted at the servers), and
// do what they do without one.
func TestSessionLogsInOncePerServer(t *testing.T) {
	ctx := context.Background()
	src, dst, sess, res := copyInSession(t)
	n := res.Copied
	from, to := ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test")
	rep, err := mailcopy.Replay(ctx, from, to, mailcopy.Options{Session: sess, Checkpoints: res.Checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	src.seed(t, mailgen.Spec{Seed: 77, Messages: 5})
	delta, err := mailcopy.Copy(ctx, from, to, mailcopy.Options{Session: sess, Checkpoints: rep.Checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	if delta.Copied != 5 {
		t.Fatalf("delta copied %d, want the 5 that arrived", delta.Copied)
	}
	v, err := mailcopy.Verify(ctx, from, to, mailcopy.Options{Session: sess, Checkpoints: delta.Checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK() || v.Checked != n+5 {
		t.Fatalf("verify: ok %v, checked %d of %d: %s", v.OK(), v.Checked, n+5, v.MissingSummary())
	}
	if s, d := src.accepted.Load(), dst.accepted.Load(); s != 1 || d != 1 {
		t.Fatalf("servers accepted %d (source) and %d (destination) connections, want one each", s, d)
	}
	assertSame(t, read(t, src.addr, "a@x.test"), read(t, dst.addr, "a@x.test"))
}

// TestSessionDialsAgainAfterAFailure: a call that fails closes the
// session's pair, and the next call logs in again rather than reuse a
// connection in an unknown state.
func TestSessionDialsAgainAfterAFailure(t *testing.T) {
	ctx := context.Background()
	src, dst, sess, res := copyInSession(t)
	from, to := ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test")
	if _, err := mailcopy.Verify(ctx, from, to, mailcopy.Options{Session: sess, Checkpoints: res.Checkpoints,
		Folders: mailcopy.MapOptions{Include: []string{"["}}}); err == nil {
		t.Fatal("Verify() with a malformed folder pattern succeeded")
	}
	if _, err := mailcopy.Copy(ctx, from, to, mailcopy.Options{Session: sess, Checkpoints: res.Checkpoints}); err != nil {
		t.Fatal(err)
	}
	if s, d := src.accepted.Load(), dst.accepted.Load(); s != 2 || d != 2 {
		t.Fatalf("servers accepted %d (source) and %d (destination) connections, want two each (one more after the failure)", s, d)
	}
}

// copyInSession copies a seeded mailbox between two counting servers in a
// Session, which the test closes at its end.
func copyInSession(t *testing.T) (src, dst *countingServer, sess *mailcopy.Session, res *mailcopy.Result) {
	t.Helper()
	src, dst = startCounting(t, "a@x.test"), startCounting(t, "a@x.test")
	n := src.seed(t, spec)
	sess = &mailcopy.Session{}
	t.Cleanup(sess.Close)
	res, err := mailcopy.Copy(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{Session: sess})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != n {
		t.Fatalf("Copy() copied %d, want %d", res.Copied, n)
	}
	return src, dst, sess, res
}
