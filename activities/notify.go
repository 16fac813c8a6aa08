package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/limits"
	"github.com/mailshift/mailshift/internal/notify"
)

// Notifier sends operator notifications (package notify); the worker
// builds it from its configuration.
type Notifier interface {
	Send(ctx context.Context, e notify.Event, done map[string]bool) ([]string, error)
}

// NotifyResult says on which channels an event went.
type NotifyResult struct {
	Sent []string `json:"sent,omitempty"`
	// Configured is false when the worker has no channel: nothing to send.
	Configured bool `json:"configured"`
}

// NotifyOperator sends an operator notification on every configured
// channel. A retry after a partial failure sends only to the channels
// that failed (the heartbeat remembers the others); receivers can drop a
// repeat by the event's ID.
func (a *Activities) NotifyOperator(ctx context.Context, e notify.Event) (*NotifyResult, error) {
	if a.Notify == nil {
		return &NotifyResult{}, nil
	}
	var done []string
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &done)
	}
	have := map[string]bool{}
	for _, c := range done {
		have[c] = true
	}
	set, stop := keepAlive(ctx)
	defer stop()
	sent, err := a.Notify.Send(ctx, e, have)
	done = append(done, sent...)
	set(done)
	if err != nil {
		if errors.Is(err, notify.ErrRejected) {
			return nil, permanent(ErrTypeConfig, "notification %s: %v", e.ID, err)
		}
		return nil, err
	}
	a.log(ctx).Info("operator notified", zap.String("event", e.Kind), zap.String("id", e.ID), zap.Strings("channels", done))
	return &NotifyResult{Sent: done, Configured: true}, nil
}

// PlanReport tells a plan's watcher that one of its accounts closed or
// parked (the watcher's PlanReport signal).
type PlanReport struct {
	Plan       string `json:"plan"`
	WorkflowID string `json:"workflowId"`
	Stage      string `json:"stage"`
}

// PlanReportInput delivers a report, starting the watcher if needed.
type PlanReportInput struct {
	WorkflowID string
	Workflow   string
	Signal     string
	Report     PlanReport
}

// ReportToPlan signals the plan's watcher, starting it when it is not
// running (a workflow cannot signal-with-start; an activity can).
func (a *Activities) ReportToPlan(ctx context.Context, in PlanReportInput) error {
	if a.Temporal == nil {
		return permanent(ErrTypeConfig, "the worker has no Temporal client for plan notifications")
	}
	if err := limits.CheckPlanID(in.Report.Plan); err != nil {
		return permanent(ErrTypeBadInput, "%v", err)
	}
	_, err := a.Temporal.SignalWithStartWorkflow(ctx, in.WorkflowID, in.Signal, in.Report,
		client.StartWorkflowOptions{ID: in.WorkflowID, TaskQueue: a.TaskQueue,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING}, in.Workflow, in.Report.Plan)
	return err
}

// PlanStatusInput asks where a plan's accounts stand. Expect are the
// stages accounts reported (workflow ID to stage): visibility must show
// them before the counts are trusted.
type PlanStatusInput struct {
	Plan   string
	Expect map[string]string
	// Parked and Closed name the stages that do not move: an account
	// waiting for an operator, and the final outcomes.
	Parked []string
	Closed []string
}

// PlanStatus is where a plan's accounts stand.
type PlanStatus struct {
	// Moving counts the accounts still on their way (neither parked nor
	// closed).
	Moving int `json:"moving"`
	// Counts are accounts by final or parked stage.
	Counts map[string]int `json:"counts"`
}

// ErrVisibilityBehind is retried: visibility has not caught up with what
// an account reported.
var ErrVisibilityBehind = errors.New("visibility has not caught up with the accounts' reports")

// PlanStatusOf counts, through Temporal visibility, the plan's accounts
// still moving and those in each final or parked stage.
func (a *Activities) PlanStatusOf(ctx context.Context, in PlanStatusInput) (*PlanStatus, error) {
	if a.Temporal == nil {
		return nil, permanent(ErrTypeConfig, "the worker has no Temporal client for plan notifications")
	}
	if err := limits.CheckPlanID(in.Plan); err != nil {
		return nil, permanent(ErrTypeBadInput, "%v", err)
	}
	count := func(q string) (int, error) {
		r, err := a.Temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: q})
		if err != nil {
			return 0, fmt.Errorf("count %s: %w", q, err)
		}
		return int(r.GetCount()), nil
	}
	plan := fmt.Sprintf("MigrationPlan = '%s'", in.Plan)
	for id, stage := range in.Expect {
		if strings.ContainsAny(id, "'\\") || strings.ContainsAny(stage, "'\\") {
			return nil, permanent(ErrTypeBadInput, "workflow ID %q or stage %q holds a quote", id, stage)
		}
		n, err := count(fmt.Sprintf("%s AND WorkflowId = '%s' AND MigrationStage = '%s'", plan, id, stage))
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: %s at %s", ErrVisibilityBehind, id, stage)
		}
	}
	still := append(append([]string{}, in.Parked...), in.Closed...)
	quoted := make([]string, len(still))
	for i, s := range still {
		quoted[i] = "'" + s + "'"
	}
	moving, err := count(fmt.Sprintf("%s AND ExecutionStatus = 'Running' AND MigrationStage NOT IN (%s)", plan, strings.Join(quoted, ", ")))
	if err != nil {
		return nil, err
	}
	st := &PlanStatus{Moving: moving, Counts: map[string]int{}}
	for _, s := range in.Parked {
		if st.Counts[s], err = count(fmt.Sprintf("%s AND ExecutionStatus = 'Running' AND MigrationStage = '%s'", plan, s)); err != nil {
			return nil, err
		}
	}
	for _, s := range in.Closed {
		if st.Counts[s], err = count(fmt.Sprintf("%s AND MigrationStage = '%s'", plan, s)); err != nil {
			return nil, err
		}
	}
	return st, nil
}
