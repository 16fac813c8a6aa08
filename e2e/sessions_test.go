package e2e

import (
	"testing"
	"time"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/devstack"
)

// TestLocalStepsShareOneLogin: a migration's local copy passes, one after
// the other, log in to each server once; the pair closes before a lease
// goes back and after its idle time; an activity (run on any worker)
// keeps nothing.
func TestLocalStepsShareOneLogin(t *testing.T) {
	st, acts, env := devActivities(t, 40)
	owner := "alice@example.com"
	pf := preflightOf(t, env, acts, owner, "default-test-workflow-id")
	if _, err := env.ExecuteActivity(acts.AssignSlot, activities.AssignInput{Address: owner, To: devstack.EmailProService, WorkflowID: "default-test-workflow-id", MinQuota: pf.QuotaNeeded}); err != nil {
		t.Fatal(err)
	}
	in := activities.CopyInput{Address: owner, From: pf.SourceService, To: devstack.EmailProService, Pairs: 1}
	pass := func(local bool, in activities.CopyInput) activities.CopySummary {
		t.Helper()
		run := env.ExecuteActivity
		if local {
			run = env.ExecuteLocalActivity
		}
		v, err := run(acts.CopyMailbox, in)
		return resultOf[activities.CopySummary](t, v, err)
	}
	openOn := func(s *devstack.IMAPServer) int64 { o, _ := s.Connections(); return o }
	settled := func(what string, s *devstack.IMAPServer, want int64) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); openOn(s) != want && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		if got := openOn(s); got != want {
			t.Fatalf("%s: %d connections open, want %d", what, got, want)
		}
	}
	src, dst := st.Source, st.EmailPro
	first := pass(true, in)
	if first.Copied != pf.Messages || pf.Messages == 0 {
		t.Fatalf("copied %d of %d", first.Copied, pf.Messages)
	}
	// Kept open for the next step (a close would show by now).
	time.Sleep(100 * time.Millisecond)
	if openOn(src) != 1 || openOn(dst) != 1 {
		t.Fatalf("after a local copy: %d source and %d destination connections open, want the pair kept", openOn(src), openOn(dst))
	}
	s0, d0 := src.Accepted(), dst.Accepted()
	in.Delta, in.Checkpoints = true, first.Checkpoints
	pass(true, in)
	in.Replay = true
	pass(true, in)
	if src.Accepted() != s0 || dst.Accepted() != d0 {
		t.Fatalf("two more local passes opened %d source and %d destination connections, want none", src.Accepted()-s0, dst.Accepted()-d0)
	}
	// The lease goes back: the pair closes first.
	if _, err := env.ExecuteLocalActivity(acts.ReleaseLeases, []activities.LeaseRelease{}); err != nil {
		t.Fatal(err)
	}
	settled("after the release", src, 0)
	settled("after the release", dst, 0)

	// An activity keeps nothing open.
	in.Replay = false
	pass(false, in)
	settled("after an activity", src, 0)
	settled("after an activity", dst, 0)

	// A pair left alone closes after its idle time.
	acts.Sessions.Idle = 100 * time.Millisecond
	pass(true, in)
	settled("after the idle time", src, 0)
	settled("after the idle time", dst, 0)
}
