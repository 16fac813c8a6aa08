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

	"github.com/mailshift/mailshift/internal/address"
	"github.com/mailshift/mailshift/internal/limits"
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

// Start starts one migration, or reports the one already running. It
// refuses an account whose migration ended done.
func (e *Env) Start(ctx context.Context, a StartArgs) error {
	addr, err := address.Normalize(a.Address)
	if err != nil {
		return err
	}
	if a.Plan != "" {
		if err := limits.CheckPlanID(a.Plan); err != nil {
			return fmt.Errorf("--plan: %w", err)
		}
	}
	in := workflows.Input{Address: addr, To: a.To, Plan: a.Plan, AutoConfirm: a.AutoConfirm,
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
	r, err := StartMigration(ctx, c, in)
	if err != nil {
		return err
	}
	id := workflows.WorkflowID(in.Address)
	switch {
	case r.Started && r.Previous != "":
		fmt.Fprintf(e.Out, "started %s (run %s); the previous run ended %s\n", id, r.RunID, r.Previous)
	case r.Started:
		fmt.Fprintf(e.Out, "started %s (run %s)\n", id, r.RunID)
	case r.Done != nil:
		return fmt.Errorf("%s is already migrated: run %s ended done%s; nothing started", id, r.RunID, underPlan(r.Done.Plan))
	default:
		fmt.Fprintf(e.Out, "already running: %s (run %s); nothing started\n", id, r.RunID)
	}
	return nil
}

// underPlan names the plan a migration ran under, for a sentence.
func underPlan(p string) string {
	if p == "" {
		return " (without a plan)"
	}
	return " under plan " + p
}

// StartResult is what StartMigration did.
type StartResult struct {
	// Started is true when this call started a new run.
	Started bool
	// RunID is the run started, or the one running, or the one done.
	RunID string
	// Previous is how the run before a new one ended ("cancelled",
	// "rolled-back", or its closed status), empty when there was none.
	Previous string
	// Done is the result of a migration that ended done: nothing is
	// started again for it.
	Done *workflows.Result
}

// StartMigration starts the migration of in.Address (workflow ID
// migrate:<address>) unless one is running or one ended done. A starter
// that runs twice starts nothing twice (conflict policy UseExisting); a
// migration whose latest run ended cancelled or rolled back, or closed
// failed, terminated, cancelled or timed out, is started again: the
// runbook's "cancel, then start again with the right service". The ID
// reuse policy allows that only after the latest run's outcome has been
// read here. (Two starters racing over a closed run both report starting
// the one new run; the server starts one.)
func StartMigration(ctx context.Context, c client.Client, in workflows.Input) (StartResult, error) {
	addr, err := address.Normalize(in.Address)
	if err != nil {
		return StartResult{}, err
	}
	in.Address = addr
	if err := workflows.ValidateInput(in); err != nil {
		return StartResult{}, err
	}
	id := workflows.WorkflowID(in.Address)
	var res StartResult
	before := ""
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
	case err != nil:
		return res, fmt.Errorf("look up %s: %w", id, err)
	default:
		info := d.WorkflowExecutionInfo
		before = info.Execution.RunId
		switch info.Status {
		case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			return StartResult{RunID: before}, nil
		case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			var r workflows.Result
			if err := c.GetWorkflow(ctx, id, before).Get(ctx, &r); err != nil {
				return res, fmt.Errorf("read how %s (run %s) ended: %w", id, before, err)
			}
			switch r.Outcome {
			case workflows.StageDone:
				return StartResult{RunID: before, Done: &r}, nil
			case workflows.StageCancelled, workflows.StageRolledBack:
				res.Previous = string(r.Outcome)
			default:
				return res, fmt.Errorf("%s (run %s) completed with outcome %q; nothing started", id, before, r.Outcome)
			}
		default:
			res.Previous = closedStatus(info.Status)
		}
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:            staticSummary(in),
		StaticDetails:            staticDetails(in),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SAPlan.ValueSet(in.Plan),
			workflows.SADomain.ValueSet(workflows.DomainOf(in.Address)),
			workflows.SAStage.ValueSet(string(workflows.StagePreflight))),
	}, workflows.WorkflowName, in)
	if err != nil {
		var already *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &already) {
			return StartResult{RunID: already.RunId}, nil
		}
		return res, fmt.Errorf("start %s: %w", id, err)
	}
	res.RunID = run.GetRunID()
	res.Started = res.RunID != before
	if !res.Started {
		res.Previous = ""
	}
	return res, nil
}

// StartOne is StartMigration for callers that need only whether it
// started and which run it names.
func StartOne(ctx context.Context, c client.Client, in workflows.Input) (started bool, runID string, err error) {
	r, err := StartMigration(ctx, c, in)
	return r.Started, r.RunID, err
}

// closedStatus is a closed workflow status in lower case ("terminated").
func closedStatus(s enumspb.WorkflowExecutionStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "WORKFLOW_EXECUTION_STATUS_"))
}
