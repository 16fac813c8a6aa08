package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
)

// a is used only to name activity methods; the worker registers a real one.
var a *activities.Activities

// MigrateAccount moves one account from its MX Plan service to a
// destination service, stage by stage, waiting for an operator whenever a
// stage fails for good.
func MigrateAccount(ctx workflow.Context, in Input) (*Result, error) {
	m := &migration{in: in}
	if err := m.setup(ctx); err != nil {
		// A refused start closes with a final stage too, so a UI filter on
		// MigrationStage finds it; nothing was touched.
		if uerr := workflow.UpsertTypedSearchAttributes(ctx, SAStage.ValueSet(string(StageRefused))); uerr != nil {
			workflow.GetLogger(ctx).Warn("upsert stage", "error", uerr)
		}
		return nil, err
	}
	return m.run(ctx)
}

type migration struct {
	in     Input
	set    settings
	st     State
	log    log.Logger
	wid    string
	stages []Stage // the order this migration follows (State.Order)

	// lastCopied is what the last copy pass copied.
	lastCopied int
	// windowMoved wakes the wait for the window after set-window.
	windowMoved bool

	// Operator requests, set by update handlers and consumed by run.
	confirmed bool
	cancelled bool
	action    string // retry, rollback or skip-dns while needs-attention
	rollback  bool   // rollback asked while a stage runs
	skipDNS   bool
	recheck   bool // look for a free slot now

	// cancelStage stops the running stage's activity (rollback while
	// locking, assigning or copying).
	cancelStage workflow.CancelFunc
}

const errInvalidInput = "InvalidInput"

func (m *migration) setup(ctx workflow.Context) error {
	m.log = workflow.GetLogger(ctx)
	info := workflow.GetInfo(ctx)
	m.wid = info.WorkflowExecution.ID
	set, err := m.in.validate()
	if err != nil {
		// A bad input is a clear, permanent failure of the start: nothing
		// has been touched yet.
		return temporal.NewNonRetryableApplicationError(err.Error(), errInvalidInput, nil)
	}
	if want := WorkflowID(m.in.Address); m.wid != want {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("input: workflow ID %q does not match the address; start it as %q so that one account has one migration", m.wid, want),
			errInvalidInput, nil)
	}
	m.set = set
	if m.in.Resume != nil {
		// Only a run this workflow continued carries its state: the server
		// sets ContinuedExecutionRunID, a client's start cannot. A hand-typed
		// "resume" would skip stages (switch the routing of an account never
		// locked or copied), so it is refused before anything is touched.
		if info.ContinuedExecutionRunID == "" {
			return temporal.NewNonRetryableApplicationError(
				`input: "resume" is written by the workflow itself when it continues as new; a start cannot carry it (start with "address" and "to" only)`,
				errInvalidInput, nil)
		}
		if err := m.in.Resume.check(); err != nil {
			return temporal.NewNonRetryableApplicationError("continued state: "+err.Error(), errInvalidInput, nil)
		}
		m.st = *m.in.Resume
		m.in.Resume = nil
		m.confirmed = m.st.ConfirmedBy != ""
	} else {
		now := workflow.Now(ctx)
		m.st = State{Started: now, Updated: now, Window: m.in.CutoverWindow}
		m.features(ctx)
	}
	m.stages = stagesOf(m.st.Order)
	m.log = log.With(m.log, "account", m.in.Address, "plan", m.in.Plan)
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		SAPlan.ValueSet(m.in.Plan), SADomain.ValueSet(DomainOf(m.in.Address))); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, m.progress); err != nil {
		return err
	}
	return m.registerUpdates(ctx)
}

// features sets what a new migration does, each behind the version that
// introduced it, kept in State through every continue-as-new. A migration
// started from this version on has them all under one version marker
// ("quick-steps": short calls as local activities, leases kept between
// stages that do not wait): every marker is an event and a search
// attribute update (TemporalChangeVersion) in each migration's history.
// Migrations started before replay the markers they recorded.
//
// Version 2 of "quick-steps" (State.Fused) also runs verify's last delta
// inside verify, on the connections verify reads through, and gives back
// a lease the next stage does not use before it runs (the source's before
// the owner's notice is written).
//
// Version 3 (State.Local) runs the preflight, copy and verify passes of a
// small mailbox as local activities first (stages.go, mailStep).
//
// Version 4 (State.Halves) verifies a small mailbox in two halves, the
// source's lease given back between them (verifyHalves).
func (m *migration) features(ctx workflow.Context) {
	if v := workflow.GetVersion(ctx, "quick-steps", workflow.DefaultVersion, 4); v >= 1 {
		m.st.Order, m.st.Budget, m.st.Carry, m.st.Notify, m.st.Lean, m.st.Quick = orderPreCopy, 1, 1, 1, 1, 1
		if v >= 2 {
			m.st.Fused = 1
		}
		if v >= 3 {
			m.st.Local = 1
		}
		if v >= 4 {
			m.st.Halves = 1
		}
		return
	}
	// Versioned: migrations started before the pre-copy keep the
	// legacy order (lock, then copy) through every continue-as-new.
	if workflow.GetVersion(ctx, "pre-copy", workflow.DefaultVersion, 1) == 1 {
		m.st.Order = orderPreCopy
	}
	// Versioned the same way: copies take leases from the servers'
	// connection budgets.
	if workflow.GetVersion(ctx, "server-budget", workflow.DefaultVersion, 1) == 1 {
		m.st.Budget = 1
	}
	if workflow.GetVersion(ctx, "filters-aliases", workflow.DefaultVersion, 1) == 1 {
		m.st.Carry = 1
	}
	if workflow.GetVersion(ctx, "notify", workflow.DefaultVersion, 1) == 1 {
		m.st.Notify = 1
	}
	// Fewer lease rounds per account: a small first pass ends the
	// pre-copy, verify's last delta shares verify's leases.
	if workflow.GetVersion(ctx, "lean-passes", workflow.DefaultVersion, 1) == 1 {
		m.st.Lean = 1
	}
}

// run is the business script: each stage in order; a stage that fails for
// good parks the migration in needs-attention until an operator acts.
//
// The stages run on a context that a Temporal cancellation (the UI's
// "Request Cancellation") does not cancel: what a cancellation means depends
// on where the migration is. Before the routing switch it is a rollback;
// after it, the forward-only stages finish. Either way the workflow closes
// with a final stage, never half-done.
func (m *migration) run(ctx workflow.Context) (*Result, error) {
	wctx, _ := workflow.NewDisconnectedContext(ctx)
	workflow.Go(wctx, func(gctx workflow.Context) {
		ctx.Done().Receive(gctx, nil)
		m.temporalCancel(gctx)
	})
	for m.st.Next < len(m.stages) {
		stage := m.stages[m.st.Next]
		if m.skip(stage) {
			m.st.Next++
			continue
		}
		m.enter(wctx, stage)
		err := m.exec(wctx, stage)
		if workflow.IsContinueAsNewError(err) {
			return nil, err
		}
		if (m.rollback || m.cancelled) && m.index(stage) < m.index(StageSwitchRouting) {
			// Asked to stop before the point of no return: whatever was done
			// is undone (the source unlocked, the copy cleared, the slot
			// released); a cancel that undid something still ends cancelled.
			outcome := StageRolledBack
			if m.cancelled && !m.rollback {
				outcome = StageCancelled
			}
			if m.touched(stage) {
				return m.doRollback(wctx, outcome)
			}
			if errors.Is(err, errCancelledByOperator) || m.cancelled {
				return m.finish(wctx, StageCancelled)
			}
			return m.doRollback(wctx, StageRolledBack)
		}
		switch {
		case err == nil:
			m.st.Next++
			// A retried stage that succeeds clears the error it parked with;
			// the attempt stays in Failures.
			m.st.LastError, m.st.ErrorType = "", ""
		case errors.Is(err, errCancelledByOperator):
			return m.finish(wctx, StageCancelled)
		default:
			next, err := m.needsAttention(wctx, stage, err)
			if err != nil {
				return nil, err
			}
			switch next {
			case UpdateRollback:
				return m.doRollback(wctx, StageRolledBack)
			case UpdateCancel:
				if m.touched(stage) {
					return m.doRollback(wctx, StageCancelled)
				}
				return m.finish(wctx, StageCancelled)
			case UpdateSkipDNS:
				m.st.DNSPend = true
				m.st.Next++
			case UpdateApproveSkipped:
				m.st.LastError, m.st.ErrorType = "", ""
				m.st.Next++
			}
		}
		if m.st.Next < len(m.stages) && workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return nil, m.continueAsNew(wctx)
		}
	}
	return m.finish(wctx, StageDone)
}

// index is the position of s in this migration's order (-1: not in it).
func (m *migration) index(s Stage) int {
	return indexIn(m.stages, s)
}

// touched reports whether stage (or one before it) changed something that
// a stop must undo: a slot claimed, mail copied, the source locked.
func (m *migration) touched(stage Stage) bool {
	return m.index(stage) >= min(m.index(StageAssignSlot), m.index(StageLockSource))
}

// ActionTemporalCancel is recorded in the operator actions when the
// workflow receives a Temporal cancellation request.
const ActionTemporalCancel = "temporal-cancel"

// temporalCancel turns a Temporal cancellation into the migration's own
// terms: a rollback before the routing switch; after it, a note that the
// forward-only stages go on (the owner's mail already flows to the
// destination, so stopping now would strand it).
func (m *migration) temporalCancel(ctx workflow.Context) {
	if m.terminal() {
		return
	}
	act := OperatorAction{Action: ActionTemporalCancel, By: "Temporal cancellation request", At: workflow.Now(ctx)}
	switch {
	case m.before(StageLockSource):
		act.Reason = "before the source was locked: the migration is cancelled (a copy already made is cleared and its slot released)"
		if m.st.Stage == StageNeedsAttention {
			m.action = UpdateCancel
		} else {
			m.cancelled = true
			if m.cancelStage != nil {
				m.cancelStage()
			}
		}
	case m.before(StageSwitchRouting):
		act.Reason = "before the routing switch: the migration rolls back (source unlocked, slot released)"
		if m.st.Stage == StageNeedsAttention {
			m.action = UpdateRollback
		} else {
			m.rollback = true
			if m.cancelStage != nil {
				m.cancelStage()
			}
		}
	default:
		act.Reason = "after the routing switch (point of no return): the forward-only stages finish; a parked stage still waits for retry or skip-dns"
	}
	m.st.Actions = append(m.st.Actions, act)
	m.log.Warn("Temporal cancellation requested", "stage", m.st.Stage, "meaning", act.Reason)
}

// skip reports stages that have nothing to do for this migration.
func (m *migration) skip(s Stage) bool {
	switch s {
	case StageWaitWindow:
		// No window and no earliest time: cut over right after the copy.
		return m.st.Window == "" && m.set.after.IsZero()
	case StageWaitingForSlot:
		return m.st.Preflight != nil && m.st.Preflight.FreeSlots > 0
	case StageAwaitConfirm:
		if m.in.AutoConfirm && m.st.ConfirmedBy == "" {
			m.st.ConfirmedBy = "auto-confirm"
			if m.in.Plan != "" {
				m.st.ConfirmedBy = "auto-confirm (plan " + m.in.Plan + ")"
			}
			m.confirmed = true
		}
		return m.confirmed
	}
	return false
}

func (m *migration) continueAsNew(ctx workflow.Context) error {
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	in := m.in
	st := m.st
	in.Resume = &st
	m.log.Info("continuing as new", "stage", m.st.Stage)
	return workflow.NewContinueAsNewError(ctx, WorkflowName, in)
}

var errCancelledByOperator = errors.New("cancelled by operator")

func (m *migration) enter(ctx workflow.Context, s Stage) {
	if m.st.Stage == s && !m.st.Reenter {
		return
	}
	m.st.Reenter = false
	m.st.Stage = s
	m.st.WaitingFor, m.st.NextCheck = "", time.Time{}
	now := workflow.Now(ctx)
	m.st.Updated = now
	m.observe(ctx, s, now)
	if !keepsLeases(s) {
		// A stage that waits holds no copy budget.
		m.releaseLeases(ctx, nil)
	}
	m.st.History = append(m.st.History, StageEvent{Stage: s, At: now})
	if err := workflow.UpsertTypedSearchAttributes(ctx, SAStage.ValueSet(string(s))); err != nil {
		m.log.Warn("upsert stage", "error", err)
	}
	deployProbe(ctx, s)
	m.details(ctx)
	m.log.Info("stage", "stage", s)
}

// Metrics the workflow emits through the worker's metrics handler (the
// SDK drops them while replaying, so each is counted once): how long each
// stage took, how migrations end, and which failures park them.
const (
	MetricStageDuration     = "mailshift_stage_duration"
	MetricMigrationDuration = "mailshift_migration_duration"
	MetricFinished          = "mailshift_migrations_finished"
	MetricNeedsAttention    = "mailshift_needs_attention"
)

// observe records the end of the current stage as next begins at now.
func (m *migration) observe(ctx workflow.Context, next Stage, now time.Time) {
	mh := workflow.GetMetricsHandler(ctx)
	for i := len(m.st.History) - 1; i >= 0; i-- {
		if e := m.st.History[i]; !strings.HasPrefix(string(e.Stage), "operator:") {
			mh.WithTags(map[string]string{"stage": string(e.Stage)}).Timer(MetricStageDuration).Record(now.Sub(e.At))
			break
		}
	}
	switch next {
	case StageNeedsAttention:
		mh.WithTags(map[string]string{"stage": string(m.st.FailedStage), "error_type": m.st.ErrorType}).Counter(MetricNeedsAttention).Inc(1)
	case StageDone, StageCancelled, StageRolledBack:
		mh.WithTags(map[string]string{"outcome": string(next)}).Counter(MetricFinished).Inc(1)
		mh.WithTags(map[string]string{"outcome": string(next)}).Timer(MetricMigrationDuration).Record(now.Sub(m.st.Started))
	}
}

// exec runs one stage: a named method each, so run reads as the script.
func (m *migration) exec(ctx workflow.Context, s Stage) error {
	stages := map[Stage]func(workflow.Context) error{
		StageWaitWindow:     m.waitWindow,
		StageFinalDelta:     m.finalDelta,
		StagePreflight:      m.preflight,
		StageWaitingForSlot: m.waitForSlot,
		StageAwaitConfirm:   m.awaitConfirm,
		StageLockSource:     m.lockSource,
		StageAssignSlot:     m.assignSlot,
		StageCopy:           m.copyMailbox,
		StageSwitchRouting:  m.switchRouting,
		StageDeltaSync:      m.deltaSync,
		StageDNS:            m.waitDNS,
		StageVerify:         m.verify,
		StageDone:           m.finishMigration,
	}
	f, ok := stages[s]
	if !ok {
		return fmt.Errorf("unknown stage %q", s)
	}
	return f(ctx)
}

// needsAttention parks the migration until an operator says what to do,
// and returns that action.
func (m *migration) needsAttention(ctx workflow.Context, failed Stage, err error) (string, error) {
	m.st.FailedStage = failed
	m.st.LastError = err.Error()
	m.st.ErrorType = ""
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		m.st.ErrorType = ae.Type()
		m.st.LastError = ae.Message()
	}
	m.st.Attempts++
	m.st.Failures = append(m.st.Failures, Failure{Stage: failed, Error: m.st.LastError, Type: m.st.ErrorType, At: workflow.Now(ctx)})
	if len(m.st.Failures) > maxFailures {
		m.st.Failures = m.st.Failures[len(m.st.Failures)-maxFailures:]
	}
	m.log.Error("stage failed; waiting for an operator", "stage", failed, "error", m.st.LastError, "type", m.st.ErrorType)
	m.enter(ctx, StageNeedsAttention)
	m.action = ""
	m.notifyAttention(ctx, failed)
	if err := workflow.Await(ctx, func() bool { return m.action != "" || m.cancelled || m.rollback }); err != nil {
		return "", err
	}
	act := m.action
	switch {
	case act != "":
	case m.rollback:
		act = UpdateRollback
		m.rollback = false
	case m.cancelled:
		act = UpdateCancel
	}
	m.action = ""
	m.st.Stage = failed
	// A retried stage is entered again: recorded in the stage history, the
	// MigrationStage search attribute leaves needs-attention (so a UI filter
	// on it stops listing a migration that runs again) and the time spent
	// waiting is measured. Versioned: a history written before this change
	// replays without the extra upsert.
	if workflow.GetVersion(ctx, "reenter-retried-stage", workflow.DefaultVersion, 1) == 1 {
		m.st.Reenter = true
	}
	m.st.FailedStage = ""
	m.st.History = append(m.st.History, StageEvent{Stage: Stage("operator:" + act), At: workflow.Now(ctx)})
	return act, nil
}

// doRollback undoes what the migration did before the routing switch and
// ends with outcome (rolled-back, or cancelled for a cancel that had a
// copy to clear).
func (m *migration) doRollback(ctx workflow.Context, outcome Stage) (*Result, error) {
	// A fresh context: the stage's may have been cancelled.
	rctx, _ := workflow.NewDisconnectedContext(ctx)
	conns := 1
	if m.st.Budgets != nil {
		conns = m.st.Budgets.Connections
	}
	err := m.withBudget(rctx, m.destShare(conns), func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(long(ctx, "rollback: unlock the source, release the slot"), a.Rollback, activities.RollbackInput{Address: m.in.Address, To: m.in.To, WorkflowID: m.wid}).Get(ctx, nil)
	})
	if err != nil {
		// Rollback itself failed: park again so it can be retried.
		m.rollback = false
		act, werr := m.needsAttention(ctx, StageRolledBack, err)
		if werr != nil {
			return nil, werr
		}
		if act == UpdateRollback || act == UpdateRetry {
			return m.doRollback(ctx, outcome)
		}
		return m.finish(ctx, StageCancelled)
	}
	return m.finish(ctx, outcome)
}

func (m *migration) finish(ctx workflow.Context, outcome Stage) (*Result, error) {
	m.enter(ctx, outcome)
	m.releaseLeases(ctx, nil)
	m.notifyPlan(ctx, outcome)
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	r := &Result{Address: m.in.Address, To: m.in.To, Plan: m.in.Plan, Outcome: outcome, ConfirmedBy: m.st.ConfirmedBy,
		DeltaCopied: m.st.DeltaMsgs, Skipped: m.st.Skips, DNSPending: m.st.DNSPend, DNS: m.st.DNS,
		Stages: m.st.History, Actions: m.st.Actions, Started: m.st.Started, Finished: workflow.Now(ctx)}
	r.Replayed = m.st.Replayed
	if m.st.Copy != nil {
		r.Folders = len(m.st.Copy.Folders)
		r.Copied = m.st.Copy.Copied
		r.Present = m.st.Copy.Present
		r.Bytes = m.st.Copy.Bytes
	}
	if m.st.Verify != nil {
		r.Verified = m.st.Verify.Checked
	}
	r.LockoutSeconds = m.lockout()
	r.Reported = m.st.Reported
	r.Filters, r.Aliases = m.st.Filters, m.st.Aliases
	r.ByReason = m.byReason()
	r.FolderRows, r.FoldersNotListed = m.st.folderRows()
	return r, nil
}

// short is for quick, idempotent directory and DNS calls. They heartbeat
// while they run, so a worker that dies under one is noticed within 10 s
// (not at the minute's end) and another takes the step over.
// The summary names the stage and what the call does; the Temporal UI shows
// it on the activity, so the history reads as the migration's story.
func short(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy:         shortRetry(),
	})
}

// shortRetry is how short calls, activities or local, are retried.
func shortRetry() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 6}
}

// quick is short for calls made as local activities: inside the workflow
// task, recorded as one marker, no task queue round trip. A worker that
// dies under one loses its workflow task; the next worker runs the call
// again, so these calls are idempotent like every activity here.
func quick(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         shortRetry(),
	})
}

// call runs a short, idempotent directory, routing or budget call: a
// local activity in migrations with State.Quick, an activity in the
// migrations started before.
func (m *migration) call(ctx workflow.Context, summary string, fn any, args ...any) workflow.Future {
	if m.st.Quick == 1 {
		return workflow.ExecuteLocalActivity(quick(ctx, summary), fn, args...)
	}
	return workflow.ExecuteActivity(short(ctx, summary), fn, args...)
}

// long is for measure, copy, verify and rollback: they heartbeat at least
// every 10 s, so a dead worker is noticed within 30 s, and copies resume
// from their last checkpoint.
func long(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: 12 * time.Hour,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: 5 * time.Minute, MaximumAttempts: 8},
	})
}
