package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/app"
	"github.com/mailshift/mailshift/internal/notify"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

var acts *activities.Activities

// planAccount stands in for an account's migration as the plan watcher
// sees one: it sets the plan and stage search attributes as MigrateAccount
// does, reports to the watcher through the real activity when it parks or
// closes, and moves on to the stage a "go" signal names.
func planAccount(ctx workflow.Context, plan, stage string) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	report := func(stage string) error {
		if err := workflow.UpsertTypedSearchAttributes(ctx, workflows.SAPlan.ValueSet(plan), workflows.SAStage.ValueSet(stage)); err != nil {
			return err
		}
		if stage == "copy" {
			return nil
		}
		return workflow.ExecuteActivity(ctx, acts.ReportToPlan, activities.PlanReportInput{WorkflowID: workflows.PlanWatchID(plan),
			Workflow: workflows.PlanWatchName, Signal: workflows.SignalPlanReport,
			Report: activities.PlanReport{Plan: plan, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Stage: stage}}).Get(ctx, nil)
	}
	if err := report(stage); err != nil {
		return err
	}
	if stage != "copy" && stage != string(workflows.StageNeedsAttention) {
		return nil
	}
	var next string
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, &next)
	return report(next)
}

// TestPlanFinishedOnce: on a real Temporal server, a plan's watcher sends
// plan-finished once no account is moving — not while one still copies,
// once when the last two close together — and again, with new counts,
// when a parked account is later closed.
func TestPlanFinishedOnce(t *testing.T) {
	ctx := context.Background()
	_, c := testenv.StartTemporal(t, "")
	hook := startHook(t, "s3cret")
	a := &activities.Activities{Notify: &notify.Notifier{Channels: []notify.Channel{&notify.Webhook{URL: hook.url, Secret: []byte("s3cret")}}}}
	w := app.NewWorker(c, workflows.TaskQueue, a, worker.Options{})
	w.RegisterWorkflowWithOptions(planAccount, workflow.RegisterOptions{Name: "PlanAccount"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	const plan = "wave-7"
	start := func(addr, stage string) {
		if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(addr), TaskQueue: workflows.TaskQueue,
			TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SAPlan.ValueSet(plan))}, "PlanAccount", plan, stage); err != nil {
			t.Fatal(err)
		}
	}
	finished := func() []hookEvent {
		var out []hookEvent
		hook.mu.Lock()
		defer hook.mu.Unlock()
		for _, e := range hook.events {
			if e.Kind == notify.KindPlanFinished {
				out = append(out, e)
			}
		}
		return out
	}
	start("a1@example.com", "copy")
	start("a2@example.com", "copy")
	start("a3@example.com", string(workflows.StageNeedsAttention))
	start("a4@example.com", string(workflows.StageDone))
	// The watcher counts after a.4's and a3's reports: two accounts still
	// copy, so nothing is announced.
	waitFor(t, "the watcher's first count", func() bool { return counted(ctx, c, workflows.PlanWatchID(plan)) >= 1 })
	if f := finished(); len(f) != 0 {
		t.Fatalf("plan-finished sent while two accounts still copy: %+v", f)
	}
	// The last two close together.
	var wg sync.WaitGroup
	for _, addr := range []string{"a1@example.com", "a2@example.com"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.SignalWorkflow(ctx, workflows.WorkflowID(addr), "", "go", string(workflows.StageDone)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	waitFor(t, "plan-finished", func() bool { return len(finished()) > 0 })
	time.Sleep(5 * time.Second) // a second announcement would come within the watcher's quiet time and a count
	f := finished()
	if len(f) != 1 {
		t.Fatalf("plan-finished sent %d times, want once: %+v", len(f), f)
	}
	want := map[string]int{"done": 3, "cancelled": 0, "rolled-back": 0, "needs-attention": 1}
	for k, v := range want {
		if f[0].Counts[k] != v {
			t.Fatalf("counts = %v, want %v", f[0].Counts, want)
		}
	}
	if f[0].Plan != plan || !f[0].signed {
		t.Fatalf("event = %+v, want plan %s, signed", f[0], plan)
	}
	// An operator cancels the parked account: new counts, one more event.
	if err := c.SignalWorkflow(ctx, workflows.WorkflowID("a3@example.com"), "", "go", string(workflows.StageCancelled)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second plan-finished", func() bool { return len(finished()) == 2 })
	if g := finished()[1]; g.Counts["cancelled"] != 1 || g.Counts["needs-attention"] != 0 || g.Counts["done"] != 3 {
		t.Fatalf("second announcement counts = %v", g.Counts)
	}
	t.Logf("announcements: %v then %v", f[0].Counts, finished()[1].Counts)
}

// counted is how many counts the plan watcher has completed.
func counted(ctx context.Context, c client.Client, id string) int {
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := map[int64]string{}
	n := 0
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return n
		}
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[e.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := e.GetActivityTaskCompletedEventAttributes(); a != nil && scheduled[a.GetScheduledEventId()] == "PlanStatusOf" {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
