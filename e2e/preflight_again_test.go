package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/app"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/workflows"
)

// devActivities starts the dev platform with one account of messages
// messages and an activity test environment on its activities.
func devActivities(t *testing.T, messages int) (*devstack.Stack, *activities.Activities, *testsuite.TestActivityEnvironment) {
	t.Helper()
	st, acts, err := app.StartDev(context.Background(), filepath.Join(t.TempDir(), "directory.db"), 1, messages, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	return st, acts, env
}

// preflightOf runs the preflight of owner's move to Email Pro for the
// migration wid.
func preflightOf(t *testing.T, env *testsuite.TestActivityEnvironment, acts *activities.Activities, owner, wid string) activities.PreflightResult {
	t.Helper()
	v, err := env.ExecuteActivity(acts.Preflight, activities.PreflightInput{Address: owner, To: devstack.EmailProService, WorkflowID: wid})
	return resultOf[activities.PreflightResult](t, v, err)
}

// resultOf is an activity's answer in a test environment, decoded; an
// error fails the test.
func resultOf[T any](t *testing.T, v converter.EncodedValue, err error) (out T) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPreflightAgainAfterAssignSlot: a workflow task lost with its worker
// runs its local activities again, so a migration's preflight can run
// after its own assign-slot. It still finds a slot (the one it claimed),
// even when that was the last free one; another migration finds none.
func TestPreflightAgainAfterAssignSlot(t *testing.T) {
	ctx := context.Background()
	st, acts, env := devActivities(t, 5)
	free, err := st.Dir.FreeSlots(ctx, devstack.EmailProService, 0)
	if err != nil || len(free) == 0 {
		t.Fatalf("free slots %v, %v", free, err)
	}
	for i := range len(free) - 1 {
		if _, err := st.Dir.ClaimSlot(ctx, devstack.EmailProService, fmt.Sprintf("other%d@example.com", i), fmt.Sprintf("migrate:other%d@example.com", i), 0); err != nil {
			t.Fatal(err)
		}
	}
	owner := "alice@example.com"
	preflight := func(wid string) activities.PreflightResult {
		t.Helper()
		return preflightOf(t, env, acts, owner, wid)
	}
	wid := workflows.WorkflowID(owner)
	pf := preflight(wid)
	if pf.FreeSlots != 1 {
		t.Fatalf("first preflight: %d free slots, want 1", pf.FreeSlots)
	}
	if _, err := env.ExecuteActivity(acts.AssignSlot, activities.AssignInput{Address: owner, To: devstack.EmailProService, WorkflowID: wid, MinQuota: pf.QuotaNeeded}); err != nil {
		t.Fatal(err)
	}
	if again := preflight(wid); again.FreeSlots != 1 {
		t.Fatalf("preflight after its own assign-slot: %d free slots, want 1 (its own)", again.FreeSlots)
	}
	if other := preflight("migrate:someone-else"); other.FreeSlots != 0 {
		t.Fatalf("another migration's preflight: %d free slots, want 0", other.FreeSlots)
	}
}
