package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/internal/limits"
	"github.com/mailshift/mailshift/workflows"
)

// Act sends an operator update to each migration and prints its answer.
// The operator's name and reason are bounded here (package limits), before
// anything is sent; the workflow refuses them too.
func (e *Env) Act(ctx context.Context, action, planID string, addrs []string, by, reason string) error {
	return e.ActWith(ctx, action, planID, addrs, workflows.ActionInput{By: by, Reason: reason})
}

// ActWith is Act with the whole update input (set-window's window).
// Each migration's line is the workflow's own answer: what it did, or why
// it refused.
func (e *Env) ActWith(ctx context.Context, action, planID string, addrs []string, in workflows.ActionInput) error {
	if err := checkPlanFlag(planID); err != nil {
		return err
	}
	if err := limits.Text("--by", in.By, limits.Operator); err != nil {
		return err
	}
	if err := limits.Text("--reason", in.Reason, limits.Reason); err != nil {
		return err
	}
	if action == workflows.UpdateSetWindow {
		if _, err := workflows.ParseWindow(in.Window); err != nil {
			return fmt.Errorf("--window: %w", err)
		}
	} else if in.Window != "" {
		return fmt.Errorf("--window belongs to %s only", workflows.UpdateSetWindow)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	ids := map[string]bool{}
	if planID != "" {
		lines, err := e.collect(ctx, planID, nil)
		if err != nil {
			return err
		}
		for _, l := range lines {
			if !l.terminal() {
				ids[workflows.WorkflowID(l.Address)] = true
			}
		}
	}
	for _, a := range addrs {
		ids[workflows.WorkflowID(a)] = true
	}
	var keys []string
	for k := range ids {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return fmt.Errorf("%s: plan %q has no running migration", action, planID)
	}
	refused := 0
	for _, id := range keys {
		res, err := Update(ctx, c, id, action, in)
		addr, _ := workflows.AddressOf(id)
		if err != nil {
			refused++
			fmt.Fprintf(e.Out, "%s: %s refused: %s\n", addr, action, refusal(rootMessage(err)))
			continue
		}
		fmt.Fprintf(e.Out, "%s: %s\n", addr, res.Accepted)
	}
	if refused > 0 {
		return fmt.Errorf("%s refused for %d of %s", action, refused, count(len(keys), "migration"))
	}
	return nil
}

// Update sends one operator update and waits for its answer.
func Update(ctx context.Context, c client.Client, workflowID, action string, in workflows.ActionInput) (*workflows.ActionResult, error) {
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflowID, UpdateName: action,
		Args: []interface{}{in}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("no running migration %s", workflowID)
		}
		return nil, err
	}
	var r workflows.ActionResult
	if err := h.Get(ctx, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
