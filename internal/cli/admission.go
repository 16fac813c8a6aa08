package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/internal/limits"
	"github.com/mailshift/mailshift/workflows"
)

// Pause stops (resume: restarts) the admission of plan's accounts to the
// copy. The pause lives in every server's budget workflow, which holds
// the queues: each keeps the plan's queued requests in place without
// granting them (they hold no connection) and lets other plans' requests
// pass; passes already running finish; accounts whose source is locked
// go on (their owners wait). The budgets are the running ones and, when
// the directory is known, one per IMAP service (started if needed, so an
// account of the plan that asks later waits too); a budget keeps running
// while a plan is paused, across worker crashes and continue-as-new.
func (e *Env) Pause(ctx context.Context, plan string, resume bool) error {
	if err := limits.CheckPlanID(plan); err != nil {
		return fmt.Errorf("--plan: %w", err)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	services, err := e.budgetServices(ctx, c)
	if err != nil {
		return err
	}
	if len(services) == 0 {
		return errors.New("no server budget is running and no directory is configured (--directory or --dev-dir) to name the services: nothing to pause")
	}
	signal, verb := workflows.SignalPause, "paused"
	if resume {
		signal, verb = workflows.SignalResume, "resumed"
	}
	var failed []string
	for _, svc := range services {
		id := workflows.BudgetWorkflowID(svc)
		_, err := c.SignalWithStartWorkflow(ctx, id, signal, workflows.PlanAdmission{Plan: plan},
			client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING},
			workflows.BudgetWorkflowName, workflows.BudgetState{Service: svc})
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", svc, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("plan %s %s on %d of %d servers; not on: %s (run the command again)", plan, verb, len(services)-len(failed), len(services), strings.Join(failed, "; "))
	}
	if resume {
		fmt.Fprintf(e.Out, "plan %s resumed: its queued accounts are admitted to the copy again, in queue order (%s)\n", plan, strings.Join(services, ", "))
	} else {
		fmt.Fprintf(e.Out, "plan %s paused: no account of it is admitted to the copy (%s); running passes finish, locked accounts go on; starter resume --plan %s\n",
			plan, strings.Join(services, ", "), plan)
	}
	return nil
}

// budgetServices are the services of the running budget workflows and,
// with a directory, every IMAP service.
func (e *Env) budgetServices(ctx context.Context, c client.Client) ([]string, error) {
	var out []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{NextPageToken: token, PageSize: 1000,
			Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.BudgetWorkflowName)})
		if err != nil {
			return nil, fmt.Errorf("list the server budgets: %w", err)
		}
		for _, ex := range resp.Executions {
			if svc, ok := strings.CutPrefix(ex.Execution.WorkflowId, workflows.BudgetWorkflowID("")); ok && svc != "" {
				out = append(out, svc)
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	dir, err := e.directory(ctx)
	if err != nil {
		return nil, err
	}
	if dir != nil {
		svcs, err := dir.Services(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range svcs {
			out = append(out, s.ID)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Budgets reads the state of every running server budget, by service.
func (e *Env) Budgets(ctx context.Context) (map[string]workflows.BudgetState, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	out := map[string]workflows.BudgetState{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{NextPageToken: token, PageSize: 1000,
			Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.BudgetWorkflowName)})
		if err != nil {
			return nil, fmt.Errorf("list the server budgets: %w", err)
		}
		for _, ex := range resp.Executions {
			v, err := c.QueryWorkflow(ctx, ex.Execution.WorkflowId, "", workflows.QueryBudget)
			if err != nil {
				continue // closed meanwhile
			}
			var st workflows.BudgetState
			if v.Get(&st) == nil {
				out[st.Service] = st
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	return out, nil
}

// printBudgets writes one line per running server budget: its share of
// the configured connections (smaller for a while after the server said
// it was overloaded), the connections in use, the queue, and whether
// plan (when given) is paused there. Nothing when no budget runs.
func (e *Env) printBudgets(ctx context.Context, plan string) {
	budgets, err := e.Budgets(ctx)
	if err != nil {
		fmt.Fprintf(e.Out, "server budgets: cannot read them: %v\n", err)
		return
	}
	paused := false
	for _, svc := range sortedKeys(budgets) {
		b := budgets[svc]
		used := 0
		for _, l := range b.Held {
			used += l.Connections
		}
		line := fmt.Sprintf("budget %s: share %d of %d connections, %d in use, %s queued", svc, int(b.Share), b.Limit, used, count(len(b.Queue), "request"))
		if int(b.Share) < b.Limit {
			line += fmt.Sprintf(" (shrunk: the server said it was overloaded %s; grows back one a minute)", count(b.Overloads, "time"))
		}
		if len(b.Paused) > 0 {
			line += "; paused plans: " + strings.Join(b.Paused, ", ")
		}
		paused = paused || b.IsPaused(plan)
		fmt.Fprintln(e.Out, line)
	}
	if paused {
		fmt.Fprintf(e.Out, "plan %s is paused: none of its accounts is admitted to the copy (starter resume --plan %s)\n", plan, plan)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
