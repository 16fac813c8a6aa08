package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
)

// MeasureWorkflowName is the workflow a dry run starts to measure the
// mailboxes of a plan's rows: the worker holds the servers' credentials,
// the starter never does.
const MeasureWorkflowName = "MeasureMailboxes"

// MaxMeasureRows bounds one MeasureMailboxes run (its input and result
// stay small in history); a starter measures a longer plan in several.
const MaxMeasureRows = 200

// measureAtOnce is how many accounts a run measures at a time: each
// holds one read-only connection to its source server.
const measureAtOnce = 4

// MeasureInput lists the accounts to measure.
type MeasureInput struct {
	Rows []activities.MeasureInput `json:"rows"`
}

// MeasureResult answers MeasureInput, row for row.
type MeasureResult struct {
	Rows []activities.MeasureResult `json:"rows"`
}

// MeasureMailboxes measures, read-only, the source mailbox of each row
// (sizes only, never content) for a dry run. An account that cannot be
// measured is a row with an error; the run itself fails only on a bad
// input.
func MeasureMailboxes(ctx workflow.Context, in MeasureInput) (*MeasureResult, error) {
	if len(in.Rows) > MaxMeasureRows {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%d rows; at most %d per run", len(in.Rows), MaxMeasureRows), "BadInput", nil)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             "dry run: measure the mailbox",
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 3},
	})
	out := &MeasureResult{Rows: make([]activities.MeasureResult, len(in.Rows))}
	for start := 0; start < len(in.Rows); start += measureAtOnce {
		end := min(start+measureAtOnce, len(in.Rows))
		futures := make([]workflow.Future, 0, end-start)
		for _, r := range in.Rows[start:end] {
			futures = append(futures, workflow.ExecuteActivity(ctx, a.MeasureMailbox, r))
		}
		for i, f := range futures {
			row := &out.Rows[start+i]
			if err := f.Get(ctx, row); err != nil {
				*row = activities.MeasureResult{Address: in.Rows[start+i].Address, Error: err.Error()}
			}
		}
	}
	return out, nil
}
