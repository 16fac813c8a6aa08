package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/internal/plan"
	"github.com/mailshift/mailshift/workflows"
)

// StartArgs start one migration.
type StartArgs struct {
	Address, To, Plan        string
	AutoConfirm              bool
	DNSInterval, DNSDeadline string
	SlotRecheck              string
}

// Start starts one migration, or reports the one already running.
func (e *Env) Start(ctx context.Context, a StartArgs) error {
	in := workflows.Input{Address: strings.ToLower(strings.TrimSpace(a.Address)), To: a.To, Plan: a.Plan, AutoConfirm: a.AutoConfirm,
		DNSInterval: a.DNSInterval, DNSDeadline: a.DNSDeadline, SlotRecheck: a.SlotRecheck}
	if err := workflows.ValidateInput(in); err != nil {
		return err
	}
	dir, err := e.directory(ctx)
	if err != nil {
		return err
	}
	if dir != nil {
		if _, probs, err := plan.Check(ctx, dir, []plan.Row{{Line: 1, Input: in}}); err != nil {
			return err
		} else if len(probs) > 0 {
			return fmt.Errorf("%s: %s", in.Address, probs[0].Reason)
		}
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	started, runID, err := StartOne(ctx, c, in)
	if err != nil {
		return err
	}
	if started {
		fmt.Fprintf(e.Out, "started %s (run %s)\n", workflows.WorkflowID(in.Address), runID)
	} else {
		fmt.Fprintf(e.Out, "already running: %s (run %s); nothing started\n", workflows.WorkflowID(in.Address), runID)
	}
	return nil
}

// StartOne starts the migration of in.Address unless one is running (or
// finished successfully): a starter that runs twice starts nothing twice.
func StartOne(ctx context.Context, c client.Client, in workflows.Input) (started bool, runID string, err error) {
	id := workflows.WorkflowID(in.Address)
	before := ""
	if d, err := c.DescribeWorkflowExecution(ctx, id, ""); err == nil {
		before = d.WorkflowExecutionInfo.Execution.RunId
		if d.WorkflowExecutionInfo.Status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			return false, before, nil
		}
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SAPlan.ValueSet(in.Plan),
			workflows.SADomain.ValueSet(workflows.DomainOf(in.Address)),
			workflows.SAStage.ValueSet(string(workflows.StagePreflight))),
	}, workflows.WorkflowName, in)
	if err != nil {
		var already *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &already) {
			return false, already.RunId, nil
		}
		return false, "", fmt.Errorf("start %s: %w", id, err)
	}
	return run.GetRunID() != before, run.GetRunID(), nil
}
