package workflows

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/mailshift/mailshift/activities"
)

// Every pass that touches a server holds a lease on it, asked for in
// order (source, then destination) and given back after; the budget's
// grant is what lets the pass run.
func TestCopiesHoldLeases(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var asked, released []string
	most := map[string]int{} // the most connections asked of each budget
	h.env.OnActivity(a.ServerBudgets, mock.Anything, mock.Anything).Return(&activities.BudgetsResult{SourceService: "mxplan-1",
		SourceBudget: 4, DestBudget: 6, Connections: 2, DestConnections: 4}, nil)
	h.env.OnActivity(a.RequestLease, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LeaseInput) error {
		mu.Lock()
		asked = append(asked, in.WorkflowID)
		most[in.WorkflowID] = max(most[in.WorkflowID], in.Request.Connections)
		mu.Unlock()
		// The budget grants a little later.
		h.env.RegisterDelayedCallback(func() {
			h.env.SignalWorkflow(SignalGranted, LeaseGrant{Lease: in.Request.Lease, Service: in.WorkflowID[len(budgetIDPrefix):]})
		}, time.Second)
		return nil
	})
	h.env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalRelease, mock.Anything).Return(func(_, id, _, _ string, arg interface{}) error {
		mu.Lock()
		released = append(released, id)
		mu.Unlock()
		return nil
	})
	h.defaults()
	r := h.run(Input{AutoConfirm: true})
	if r.Outcome != StageDone {
		t.Fatalf("outcome %s", r.Outcome)
	}
	// preflight: source; copy, final delta, delta-sync, verify's sync and
	// verify: source and destination each; finish: destination.
	if len(asked) != 12 || asked[0] != "budget:mxplan-1" || asked[1] != "budget:mxplan-1" || asked[2] != "budget:emailpro-1" || asked[len(asked)-1] != "budget:emailpro-1" {
		t.Fatalf("leases asked = %v", asked)
	}
	// A copy pass asks the destination for its pipelined APPEND sessions
	// too: 2 workers, 2 sessions each.
	if most["budget:mxplan-1"] != 2 || most["budget:emailpro-1"] != 4 {
		t.Fatalf("most connections asked: %v, want 2 of the source and 4 of the destination", most)
	}
	if len(released) != len(asked) {
		t.Fatalf("released %d leases of %d asked: %v", len(released), len(asked), released)
	}
}
