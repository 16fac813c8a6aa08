package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/notify"
)

// cutoverFixedSeconds is what a cutover costs besides the final delta:
// the lock, the switch and the aliases are one activity each (about
// 0.1 s on a local server, FACTS.md), the final delta's logins and folder
// scans a few seconds on a loaded one.
const cutoverFixedSeconds = 10

// expectedLockout is how long the owner will wait: the last copy pass
// (what the final delta will look like: the passes stop once little is
// left) plus the cutover's fixed costs.
func (m *migration) expectedLockout() float64 {
	return m.st.PassSeconds + cutoverFixedSeconds
}

// advanceNotice tells the owner, once per migration, in the source INBOX,
// when the mailbox moves (ws: the window's next opening, or now), for how
// long it will be unreachable, and the new settings. Where the notice
// went is recorded, so every later copy pass and verify leave it on the
// source; a retry or a continued run finds it recorded (and the activity
// finds it on the server by its marker).
func (m *migration) advanceNotice(ctx workflow.Context, ws windowState) error {
	if m.st.Notify == 0 || m.st.Advance != nil || m.in.NoNotice || m.st.Preflight == nil {
		return nil
	}
	now := workflow.Now(ctx)
	in := activities.AdvanceInput{Address: m.in.Address, From: m.st.Preflight.SourceService, To: m.in.To, WorkflowID: m.wid,
		Locale: m.st.Preflight.Locale, Opens: ws.Opens, LockoutSeconds: m.expectedLockout()}
	if ws.Open || in.Opens.Before(now) {
		in.Opens = now
	}
	if w := m.set.window; m.st.Window != "" {
		// The window in force may have been moved by set-window.
		if pw, err := ParseWindow(m.st.Window); err == nil && pw != nil {
			w = pw
		}
		if w != nil {
			in.Zone = w.Zone
			in.Closes = ws.Closes
		}
	}
	var res activities.AdvanceResult
	if err := m.call(ctx, "the owner's advance notice in the source INBOX", a.AdvanceNotice, in).Get(ctx, &res); err != nil {
		return err
	}
	m.st.Advance = &res
	return nil
}

// exclude is what the copy leaves on the source: the advance notice.
func (m *migration) exclude() []mailcopy.Exclude {
	if m.st.Advance == nil {
		return nil
	}
	p := m.st.Advance.Placed
	return []mailcopy.Exclude{{Folder: p.Folder, UIDValidity: p.UIDValidity, UID: p.UID, MessageID: m.st.Advance.Marker}}
}

// notify sends an operator notification through an activity. A failed
// notification is logged, never a reason to stop or park a migration.
func (m *migration) notify(ctx workflow.Context, e notify.Event) {
	nctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             "notify operators: " + e.Kind,
		StartToCloseTimeout: 2 * time.Minute,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: time.Minute, MaximumAttempts: 5},
	})
	if err := workflow.ExecuteActivity(nctx, a.NotifyOperator, e).Get(ctx, nil); err != nil {
		m.log.Warn("operator notification failed", "event", e.ID, "error", err)
	}
}

// notifyAttention tells operators that the migration parked; the event ID
// counts the parkings, so each is one event, sent once.
func (m *migration) notifyAttention(ctx workflow.Context, failed Stage) {
	if m.st.Notify == 0 {
		return
	}
	kind := notify.KindNeedsAttention
	if m.st.ErrorType == ErrTypeSkippedOverLimit {
		kind = notify.KindSkippedOverLimit
	}
	e := notify.Event{ID: fmt.Sprintf("%s/needs-attention/%d", m.wid, m.st.Attempts), Kind: kind, Account: m.in.Address, Plan: m.in.Plan,
		Stage: string(failed), ErrorType: m.st.ErrorType, Error: m.st.LastError, At: workflow.Now(ctx),
		Summary: "retry, rollback or cancel it (starter retry / rollback / cancel)"}
	if kind == notify.KindSkippedOverLimit {
		e.Summary = "approve-skipped to go on without them, or fix the cause and retry"
	}
	e.Counts = map[string]int{"skipped": m.skippedTotal(), "attempts": m.st.Attempts}
	if m.st.Copy != nil {
		e.Counts["copied"] = m.st.Copy.Copied + m.st.DeltaMsgs
	}
	m.notify(ctx, e)
	m.reportToPlan(ctx, StageNeedsAttention)
}

// notifyPlan tells the plan's watcher that this account closed.
func (m *migration) notifyPlan(ctx workflow.Context, outcome Stage) {
	if m.st.Notify == 0 {
		return
	}
	m.reportToPlan(ctx, outcome)
}

func (m *migration) reportToPlan(ctx workflow.Context, stage Stage) {
	if m.in.Plan == "" {
		return
	}
	in := activities.PlanReportInput{WorkflowID: PlanWatchID(m.in.Plan), Workflow: PlanWatchName, Signal: SignalPlanReport,
		Report: activities.PlanReport{Plan: m.in.Plan, WorkflowID: m.wid, Stage: string(stage)}}
	if err := m.call(ctx, "report "+string(stage)+" to plan "+m.in.Plan, a.ReportToPlan, in).Get(ctx, nil); err != nil {
		m.log.Warn("report to the plan's watcher failed", "plan", m.in.Plan, "error", err)
	}
}
