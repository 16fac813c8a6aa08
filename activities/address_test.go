package activities

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
)

// An address outside the policy never reaches the directory, the mail
// servers or DNS: each activity refuses it for good (a nil directory would
// panic if it were reached).
func TestActivitiesRefuseBadAddresses(t *testing.T) {
	a := &Activities{}
	ctx := context.Background()
	for _, addr := range []string{"ali\r\nce@example.com", "alice*admin@example.com", "jörg@example.com", "Alice@Example.com", ""} {
		errs := map[string]error{}
		_, errs["Preflight"] = a.Preflight(ctx, PreflightInput{Address: addr, To: "emailpro-1", WorkflowID: "migrate:x"})
		errs["LockSource"] = a.LockSource(ctx, LockInput{Address: addr, WorkflowID: "migrate:x"})
		_, errs["AssignSlot"] = a.AssignSlot(ctx, AssignInput{Address: addr, To: "emailpro-1", WorkflowID: "migrate:x"})
		errs["Rollback"] = a.Rollback(ctx, RollbackInput{Address: addr, To: "emailpro-1", WorkflowID: "migrate:x"})
		_, errs["Finish"] = a.Finish(ctx, FinishInput{Address: addr, To: "emailpro-1", WorkflowID: "migrate:x"})
		for name, err := range errs {
			var ae *temporal.ApplicationError
			if !errors.As(err, &ae) || ae.Type() != ErrTypeBadInput || !ae.NonRetryable() || !strings.Contains(ae.Error(), "address") {
				t.Errorf("%s(%q) = %v, want a permanent BadInput naming the address", name, addr, err)
			}
		}
	}
}
