package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/mailshift/mailshift/internal/directory"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
)

// Lease is a request for connections from a service's budget (the budget
// workflow's LeaseRequest).
type Lease struct {
	// Holder is the migration's workflow ID; Lease names this request.
	Holder      string `json:"holder"`
	Lease       string `json:"lease"`
	Connections int    `json:"connections"`
	// Limit is the service's budget as configured (the latest wins).
	Limit int `json:"limit"`
	// Plan is the holder's plan; Admission marks a request that admits
	// the account to the copy (preflight, pre-copy passes): while its
	// plan is paused, the budget grants it nothing. Later passes (the
	// final delta while the owner is locked out, verify) are never held.
	Plan      string `json:"plan,omitempty"`
	Admission bool   `json:"admission,omitempty"`
	// Urgent marks a request made while the owner is locked out (the
	// final delta, a rollback that unlocks): the budget queues it ahead
	// of every request that is not, so the lockout does not grow with
	// the plan's queue.
	Urgent bool `json:"urgent,omitempty"`
	// Then is the request this budget hands on to the next one when it
	// grants this one (the destination's, after the source's): the
	// second grant then needs no workflow task of the holder in between.
	// Budgets keep it only while the request waits.
	Then *LeaseInput `json:"then,omitempty"`
}

// LeaseInput delivers a lease request to a service's budget workflow,
// starting it if it is not running.
type LeaseInput struct {
	WorkflowID string
	Workflow   string
	Signal     string
	Request    Lease
}

// RequestLease signals the budget workflow, starting it when needed (a
// workflow cannot signal-with-start; an activity can). Idempotent: the
// budget ignores a lease it already knows.
func (a *Activities) RequestLease(ctx context.Context, in LeaseInput) error {
	if a.Temporal == nil {
		return permanent(ErrTypeConfig, "the worker has no Temporal client for server budgets")
	}
	_, err := a.Temporal.SignalWithStartWorkflow(ctx, in.WorkflowID, in.Signal, in.Request,
		client.StartWorkflowOptions{ID: in.WorkflowID, TaskQueue: a.TaskQueue,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING}, in.Workflow, struct{}{})
	return err
}

// LeaseRelease gives one lease back to a service's budget workflow.
type LeaseRelease struct {
	WorkflowID string `json:"workflowId"`
	Signal     string `json:"signal"`
	Lease      string `json:"lease"`
}

// ReleaseLeases gives leases back, one signal each, all at once (each is
// a round trip to the server; the source's budget need not wait for the
// destination's). A budget that is not running holds nothing to give
// back. Idempotent: the budget ignores a lease it no longer knows.
func (a *Activities) ReleaseLeases(ctx context.Context, in []LeaseRelease) error {
	// The connections a lease covered close before it goes back.
	a.Sessions.close(workflowID(ctx))
	if len(in) == 0 {
		return nil
	}
	if a.Temporal == nil {
		return permanent(ErrTypeConfig, "the worker has no Temporal client for server budgets")
	}
	errs := make([]error, len(in))
	var wg sync.WaitGroup
	for i, r := range in {
		wg.Go(func() {
			err := a.Temporal.SignalWorkflow(ctx, r.WorkflowID, "", r.Signal, r.Lease)
			var nf *serviceerror.NotFound
			if err != nil && !errors.As(err, &nf) {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ClosedWorkflows returns the IDs among ids whose latest run is closed (or
// that do not exist): their leases can be given back.
func (a *Activities) ClosedWorkflows(ctx context.Context, ids []string) ([]string, error) {
	var closed []string
	for _, id := range ids {
		d, err := a.Temporal.DescribeWorkflowExecution(ctx, id, "")
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			closed = append(closed, id)
		case err != nil:
			return nil, err
		case d.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			closed = append(closed, id)
		}
	}
	return closed, nil
}

// budgetOf is the configured connection budget of a service (0: none).
func (a *Activities) budgetOf(service string) int {
	if n, ok := a.Budgets[service]; ok {
		return n
	}
	return a.DefaultBudget
}

func budgetID(service string) string { return fmt.Sprintf("budget:%s", service) }

// BudgetsInput names an account and its destination.
type BudgetsInput struct {
	Address string
	To      string
}

// BudgetsResult is what a migration needs to take leases: the source
// service, each server's budget (0: none) and the connections a copy opens.
type BudgetsResult struct {
	SourceService string `json:"sourceService"`
	SourceBudget  int    `json:"sourceBudget"`
	DestBudget    int    `json:"destBudget"`
	Connections   int    `json:"connections"`
	// DestConnections is what a copy pass opens on the destination: each
	// of its Connections workers holds a session for SELECT and STATUS
	// and, on a server with LITERAL+ (Dovecot), a second, pipelined one
	// for its APPENDs. 0 (a migration that looked its budgets up before
	// this existed): Connections.
	DestConnections int `json:"destConnections,omitempty"`
}

// ServerBudgets looks up, read-only, the budgets of the servers a migration
// uses, so even preflight's one connection waits for a share.
func (a *Activities) ServerBudgets(ctx context.Context, in BudgetsInput) (*BudgetsResult, error) {
	if err := checkAddress(in.Address); err != nil {
		return nil, err
	}
	conns := max(1, a.Connections)
	r := &BudgetsResult{DestBudget: a.budgetOf(in.To), Connections: conns, DestConnections: 2 * conns}
	acct, err := a.Dir.SourceAccount(ctx, in.Address)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return r, nil // preflight reports it, with its words
	case err != nil:
		return nil, err
	}
	r.SourceService, r.SourceBudget = acct.ServiceID, a.budgetOf(acct.ServiceID)
	return r, nil
}
