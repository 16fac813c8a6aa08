package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/notify"
)

// The plan watcher: one workflow per plan, started by the first account
// that closes or parks, tells operators when the plan has finished.
//
// "Finished" means no account of the plan is moving any more: each is
// closed (done, cancelled, rolled back) or parked in needs-attention.
// Every account reports to the watcher when it parks and when it closes
// (after its MigrationStage says so). Reports are signals to one
// workflow, so they are handled one at a time: two accounts closing
// together are two reports in a row, not two deciders. After a short
// quiet time the watcher counts the plan's accounts through visibility
// (waiting until visibility shows every report it got), and when none is
// moving it sends one plan-finished notification. The counts are the
// idempotent mark: the same counts are never announced twice, so a later
// report that changes nothing sends nothing, while an account an operator
// retried and that closed later announces the new counts.
const (
	PlanWatchName    = "PlanWatch"
	SignalPlanReport = "plan-report"
	planWatchPrefix  = "plan-watch:"
)

// PlanWatchID is the watcher's workflow ID for plan.
func PlanWatchID(plan string) string { return planWatchPrefix + plan }

// planQuiet is how long the watcher waits after a report for more before
// it counts; planIdle how long it stays after its last report.
const (
	planQuiet = 2 * time.Second
	planIdle  = 24 * time.Hour
)

var (
	parkedStages = []string{string(StageNeedsAttention)}
	closedStages = []string{string(StageDone), string(StageCancelled), string(StageRolledBack)}
)

// PlanWatchState is carried across continue-as-new.
type PlanWatchState struct {
	// Announced is the last counts announced ("done=3,cancelled=0,...").
	Announced string `json:"announced,omitempty"`
	Sent      int    `json:"sent,omitempty"`
}

// PlanWatch watches plan; st is empty on a fresh start.
func PlanWatch(ctx workflow.Context, plan string, st *PlanWatchState) error {
	if st == nil {
		st = &PlanWatchState{}
	}
	log := workflow.GetLogger(ctx)
	ch := workflow.GetSignalChannel(ctx, SignalPlanReport)
	for {
		expect := map[string]string{}
		var r activities.PlanReport
		got, _ := ch.ReceiveWithTimeout(ctx, planIdle, &r)
		if !got {
			return nil
		}
		expect[r.WorkflowID] = r.Stage
		// Reports close together are one count.
		for {
			more, _ := ch.ReceiveWithTimeout(ctx, planQuiet, &r)
			if !more {
				break
			}
			expect[r.WorkflowID] = r.Stage
		}
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			Summary:             "count plan " + plan + "'s accounts",
			StartToCloseTimeout: time.Minute,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2,
				MaximumInterval: 30 * time.Second, MaximumAttempts: 10},
		})
		var ps activities.PlanStatus
		if err := workflow.ExecuteActivity(actx, a.PlanStatusOf, activities.PlanStatusInput{Plan: plan, Expect: expect,
			Parked: parkedStages, Closed: closedStages}).Get(ctx, &ps); err != nil {
			log.Warn("counting the plan's accounts failed; the next report counts again", "plan", plan, "error", err)
			continue
		}
		if ps.Moving > 0 {
			continue
		}
		key := countsKey(ps.Counts)
		if key == st.Announced {
			continue
		}
		total := 0
		for _, k := range workflow.DeterministicKeys(ps.Counts) {
			total += ps.Counts[k]
		}
		e := notify.Event{ID: fmt.Sprintf("%s/finished/%s", PlanWatchID(plan), key), Kind: notify.KindPlanFinished, Plan: plan,
			Counts: ps.Counts, At: workflow.Now(ctx),
			Summary: fmt.Sprintf("no account of plan %s is moving any more: %d account(s), %d waiting for an operator", plan, total, ps.Counts[string(StageNeedsAttention)])}
		nctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			Summary:             "notify operators: plan " + plan + " finished",
			StartToCloseTimeout: 2 * time.Minute, HeartbeatTimeout: 30 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5},
		})
		if err := workflow.ExecuteActivity(nctx, a.NotifyOperator, e).Get(ctx, nil); err != nil {
			log.Warn("plan-finished notification failed", "plan", plan, "error", err)
			continue
		}
		st.Announced = key
		st.Sent++
		// Continue as new only with no report waiting: a pending signal
		// would be lost.
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() && ch.Len() == 0 {
			return workflow.NewContinueAsNewError(ctx, PlanWatchName, plan, st)
		}
	}
}

// countsKey writes counts in a fixed order.
func countsKey(c map[string]int) string {
	var parts []string
	for _, k := range workflow.DeterministicKeys(c) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
	}
	return strings.Join(parts, ",")
}
