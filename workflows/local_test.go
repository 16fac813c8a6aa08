package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/mailshift/mailshift/activities"
)

// stepsSeen records how each mail step ran: as a local activity (by its
// input's type) or as an activity (by its name).
type stepsSeen struct {
	mu     sync.Mutex
	local  map[string]int
	remote map[string]int
}

func watchSteps(h *harness) *stepsSeen {
	s := &stepsSeen{local: map[string]int{}, remote: map[string]int{}}
	h.env.SetOnLocalActivityStartedListener(func(_ *activity.Info, _ context.Context, args []any) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, arg := range args {
			switch in := arg.(type) {
			case activities.PreflightInput:
				s.local["Preflight"]++
			case activities.VerifyDestinationInput:
				s.local["VerifyDestination"]++
			case activities.CopyInput:
				if in.Sync {
					s.local["Verify"]++
				} else {
					s.local["CopyMailbox"]++
				}
			}
		}
	})
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.remote[info.ActivityType.Name]++
	})
	return s
}

// A small mailbox's preflight, copy passes and verify run as local
// activities: none of them is an activity.
func TestSmallMailboxStepsRunLocally(t *testing.T) {
	h := newHarness(t)
	seen := watchSteps(h)
	h.defaults()
	if r := h.run(Input{AutoConfirm: true}); r.Outcome != StageDone {
		t.Fatalf("Outcome = %s", r.Outcome)
	}
	// Copy, final delta, delta-sync; verify with its own last delta (the
	// source's half), then the destination's half.
	if seen.local["Preflight"] != 1 || seen.local["CopyMailbox"] != 3 || seen.local["Verify"] != 1 || seen.local["VerifyDestination"] != 1 {
		t.Fatalf("local steps = %v, want Preflight 1, CopyMailbox 3, Verify 1, VerifyDestination 1", seen.local)
	}
	for _, name := range []string{"Preflight", "CopyMailbox", "Verify", "VerifySource", "VerifyDestination"} {
		if seen.remote[name] != 0 {
			t.Fatalf("%s ran as an activity %d times (activities %v)", name, seen.remote[name], seen.remote)
		}
	}
}

// A large mailbox copies and verifies through activities, which heartbeat
// and resume from checkpoints; only its preflight (size unknown) runs
// locally first.
func TestLargeMailboxStepsRunAsActivities(t *testing.T) {
	h := newHarness(t)
	seen := watchSteps(h)
	h.env.OnActivity(a.Preflight, mock.Anything, mock.Anything).Return(&activities.PreflightResult{SourceService: "mxplan-1",
		DestKind: "emailpro", Folders: 3, Messages: localMaxMessages + 1, Bytes: 1 << 20, QuotaNeeded: 1 << 20, FreeSlots: 1, Locale: "en"}, nil)
	h.defaults()
	if r := h.run(Input{AutoConfirm: true}); r.Outcome != StageDone {
		t.Fatalf("Outcome = %s", r.Outcome)
	}
	if seen.local["Preflight"] != 1 || seen.local["CopyMailbox"] != 0 || seen.local["Verify"] != 0 {
		t.Fatalf("local steps = %v, want only Preflight", seen.local)
	}
	if seen.remote["CopyMailbox"] != 3 || seen.remote["Verify"] != 1 {
		t.Fatalf("activities = %v, want CopyMailbox 3, Verify 1", seen.remote)
	}
}

// A local attempt that fails in a way a retry could fix runs again as an
// activity at once; the migration does not park.
func TestLocalStepFallsBackToActivity(t *testing.T) {
	h := newHarness(t)
	seen := watchSteps(h)
	h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(nil, errors.New("source: connection reset by peer")).Once()
	h.defaults()
	r := h.run(Input{AutoConfirm: true})
	if r.Outcome != StageDone {
		t.Fatalf("Outcome = %s", r.Outcome)
	}
	if seen.remote["CopyMailbox"] != 1 {
		t.Fatalf("activities = %v, want the failed local pass run once as an activity", seen.remote)
	}
	if seen.local["CopyMailbox"] != 3 {
		t.Fatalf("local steps = %v, want 3 local copy passes (one failed)", seen.local)
	}
}
