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
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// a is used only to name activity methods; the worker registers a real one.
var a *activities.Activities

// deltaEvery is how many DNS checks pass between two delta-syncs during the
// propagation wait.
const deltaEvery = 3

// MigrateAccount moves one account from its MX Plan service to a
// destination service, stage by stage, waiting for an operator whenever a
// stage fails for good.
func MigrateAccount(ctx workflow.Context, in Input) (*Result, error) {
	m := &migration{in: in}
	if err := m.setup(ctx); err != nil {
		return nil, err
	}
	return m.run(ctx)
}

type migration struct {
	in  Input
	set settings
	st  State
	log log.Logger
	wid string

	// Operator requests, set by update handlers and consumed by run.
	confirmed bool
	cancelled bool
	action    string // retry, rollback or skip-dns while needs-attention
	rollback  bool   // rollback asked while a stage runs
	skipDNS   bool

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
		m.st = *m.in.Resume
		m.in.Resume = nil
		m.confirmed = m.st.ConfirmedBy != ""
	} else {
		now := workflow.Now(ctx)
		m.st = State{Started: now, Updated: now, Checkpts: nil}
	}
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

// run is the business script: each stage in order; a stage that fails for
// good parks the migration in needs-attention until an operator acts.
func (m *migration) run(ctx workflow.Context) (*Result, error) {
	for m.st.Next < len(Stages) {
		stage := Stages[m.st.Next]
		if m.skip(stage) {
			m.st.Next++
			continue
		}
		m.enter(ctx, stage)
		err := m.exec(ctx, stage)
		if m.rollback && stageIndex(stage) < stageIndex(StageSwitchRouting) && !errors.Is(err, errCancelledByOperator) {
			return m.doRollback(ctx)
		}
		switch {
		case err == nil:
			m.st.Next++
		case errors.Is(err, errCancelledByOperator):
			return m.finish(ctx, StageCancelled)
		default:
			next, err := m.needsAttention(ctx, stage, err)
			if err != nil {
				return nil, err
			}
			switch next {
			case UpdateRollback:
				return m.doRollback(ctx)
			case UpdateCancel:
				return m.finish(ctx, StageCancelled)
			case UpdateSkipDNS:
				m.st.DNSPend = true
				m.st.Next++
			}
		}
		if m.st.Next < len(Stages) && workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return nil, m.continueAsNew(ctx)
		}
	}
	return m.finish(ctx, StageDone)
}

// skip reports stages that have nothing to do for this migration.
func (m *migration) skip(s Stage) bool {
	switch s {
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
	now := workflow.Now(ctx)
	m.st.Updated = now
	m.observe(ctx, s, now)
	m.st.History = append(m.st.History, StageEvent{Stage: s, At: now})
	if err := workflow.UpsertTypedSearchAttributes(ctx, SAStage.ValueSet(string(s))); err != nil {
		m.log.Warn("upsert stage", "error", err)
	}
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

func (m *migration) exec(ctx workflow.Context, s Stage) error {
	switch s {
	case StagePreflight:
		return m.preflight(ctx)
	case StageWaitingForSlot:
		return m.waitForSlot(ctx)
	case StageAwaitConfirm:
		return m.awaitConfirm(ctx)
	case StageLockSource:
		return m.cancellable(ctx, func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(short(ctx), a.LockSource, activities.LockInput{Address: m.in.Address, WorkflowID: m.wid}).Get(ctx, nil)
		})
	case StageAssignSlot:
		return m.cancellable(ctx, func(ctx workflow.Context) error {
			for {
				var sl activities.SlotResult
				err := workflow.ExecuteActivity(short(ctx), a.AssignSlot, activities.AssignInput{Address: m.in.Address, To: m.in.To,
					WorkflowID: m.wid, MinQuota: m.st.Preflight.QuotaNeeded}).Get(ctx, &sl)
				var ae *temporal.ApplicationError
				if errors.As(err, &ae) && ae.Type() == activities.ErrTypeNoSlot {
					// Another migration took the last slot since preflight:
					// wait for one like before, then claim again.
					m.st.Preflight.FreeSlots = 0
					if err := m.waitForSlot(ctx); err != nil {
						return err
					}
					m.enter(ctx, StageAssignSlot)
					continue
				}
				if err == nil {
					m.st.Slot = &sl
				}
				return err
			}
		})
	case StageCopy:
		return m.cancellable(ctx, func(ctx workflow.Context) error { return m.copy(ctx, false) })
	case StageSwitchRouting:
		var rr activities.RouteResult
		return workflow.ExecuteActivity(short(ctx), a.SwitchRouting, activities.RouteInput{Address: m.in.Address, To: m.in.To, WorkflowID: m.wid}).Get(ctx, &rr)
	case StageDeltaSync:
		return m.copy(ctx, true)
	case StageDNS:
		return m.waitDNS(ctx)
	case StageVerify:
		if err := m.copy(ctx, true); err != nil {
			return err
		}
		var v activities.VerifySummary
		if err := workflow.ExecuteActivity(long(ctx), a.Verify, m.copyInput(true)).Get(ctx, &v); err != nil {
			return err
		}
		m.st.Verify = &v
		m.st.Skips = append(m.st.Skips, v.OverLimit...)
		return nil
	case StageDone:
		var fr activities.FinishResult
		pending := ""
		if m.st.DNSPend && m.st.DNS != nil {
			pending = m.st.DNS.Summary()
		}
		err := workflow.ExecuteActivity(short(ctx), a.Finish, activities.FinishInput{Address: m.in.Address, To: m.in.To, WorkflowID: m.wid,
			Notice: !m.in.NoNotice, Locale: m.st.Preflight.Locale, DNSPending: pending}).Get(ctx, &fr)
		if err == nil {
			m.st.Notice = &fr
		}
		return err
	}
	return fmt.Errorf("unknown stage %q", s)
}

// cancellable runs f under a context that a rollback request cancels.
func (m *migration) cancellable(ctx workflow.Context, f func(workflow.Context) error) error {
	cctx, cancel := workflow.WithCancel(ctx)
	m.cancelStage = cancel
	defer func() { m.cancelStage = nil }()
	return f(cctx)
}

func (m *migration) preflight(ctx workflow.Context) error {
	var pf activities.PreflightResult
	err := workflow.ExecuteActivity(long(ctx), a.Preflight, activities.PreflightInput{Address: m.in.Address, To: m.in.To, WorkflowID: m.wid}).Get(ctx, &pf)
	if err != nil {
		return err
	}
	m.st.Preflight = &pf
	return nil
}

func (m *migration) waitForSlot(ctx workflow.Context) error {
	for m.st.Preflight.FreeSlots == 0 {
		m.enter(ctx, StageWaitingForSlot)
		ok, err := workflow.AwaitWithTimeout(ctx, m.set.slotRecheck, func() bool { return m.cancelled || m.rollback })
		if err != nil {
			return err
		}
		if ok {
			return errCancelledByOperator
		}
		var n int
		if err := workflow.ExecuteActivity(short(ctx), a.FreeSlots, activities.SlotQuery{Service: m.in.To, MinQuota: m.st.Preflight.QuotaNeeded}).Get(ctx, &n); err != nil {
			return err
		}
		m.st.Preflight.FreeSlots = n
		if n == 0 && workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return m.continueAsNew(ctx)
		}
	}
	return nil
}

func (m *migration) awaitConfirm(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return m.confirmed || m.cancelled || m.rollback }); err != nil {
		return err
	}
	if !m.confirmed {
		return errCancelledByOperator
	}
	return nil
}

func (m *migration) copyInput(delta bool) activities.CopyInput {
	return activities.CopyInput{Address: m.in.Address, From: m.st.Preflight.SourceService, To: m.in.To,
		Checkpoints: m.st.Checkpts, IncludeFolders: m.in.IncludeFolders, ExcludeFolders: m.in.ExcludeFolders, Delta: delta}
}

// copy runs a full copy or a delta pass and records its checkpoints, so the
// next pass starts where this one ended.
func (m *migration) copy(ctx workflow.Context, delta bool) error {
	var sum activities.CopySummary
	if err := workflow.ExecuteActivity(long(ctx), a.CopyMailbox, m.copyInput(delta)).Get(ctx, &sum); err != nil {
		return err
	}
	m.st.Checkpts = sum.Checkpoints
	m.st.Updated = workflow.Now(ctx)
	m.st.Skips = appendSkips(m.st.Skips, sum.Skips)
	if delta {
		m.st.Deltas++
		m.st.DeltaMsgs += sum.Copied
		if m.st.Copy != nil {
			m.st.Copy.SkipCount += sum.SkipCount
		}
		return nil
	}
	m.st.Copy = &sum
	return nil
}

// appendSkips keeps the list of skipped messages bounded in history; the
// count stays exact in the copy summaries.
func appendSkips(have, more []mailcopy.Skip) []mailcopy.Skip {
	for _, s := range more {
		if len(have) >= 200 {
			break
		}
		have = append(have, s)
	}
	return have
}

// waitDNS polls the domain's authoritative servers with backoff until every
// record is seen everywhere twice in a row, running a delta-sync every few
// checks. Past the deadline the migration goes on with dnsPending: the move
// itself is complete, only the domain's DNS lags.
func (m *migration) waitDNS(ctx workflow.Context) error {
	if m.st.DNSSince.IsZero() {
		m.st.DNSSince = workflow.Now(ctx)
		m.st.DNSWait = m.set.dnsInterval
		m.st.DNSStreak = 0
	}
	deadline := m.st.DNSSince.Add(m.set.dnsDeadline)
	for {
		if m.skipDNS {
			m.st.DNSPend = m.st.DNSStreak < 2
			return nil
		}
		var d activities.DNSInput = activities.DNSInput{Address: m.in.Address, To: m.in.To}
		var diag = m.st.DNS
		if err := workflow.ExecuteActivity(short(ctx), a.CheckDNS, d).Get(ctx, &diag); err != nil {
			return err
		}
		m.st.DNS = diag
		m.st.DNSChecks++
		m.st.Updated = workflow.Now(ctx)
		if diag != nil && diag.OK {
			m.st.DNSStreak++
		} else {
			m.st.DNSStreak = 0
		}
		if m.st.DNSStreak >= 2 {
			m.st.DNSPend = false
			return nil
		}
		if m.st.DNSChecks%deltaEvery == 0 {
			// Mail can still reach the old platform through stale caches.
			if err := m.copy(ctx, true); err != nil {
				m.log.Warn("delta-sync during DNS wait failed; the next one retries", "error", err)
			}
		}
		now := workflow.Now(ctx)
		if !now.Before(deadline) {
			m.st.DNSPend = true
			m.log.Warn("DNS not propagated by the deadline; finishing with dnsPending", "diagnostic", diag.Summary())
			return nil
		}
		wait := m.st.DNSWait
		if m.st.DNSStreak == 1 {
			// Confirm a first success soon rather than after a long backoff.
			wait = m.set.dnsInterval
		}
		if rest := deadline.Sub(now); wait > rest {
			wait = rest
		}
		if _, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return m.skipDNS }); err != nil {
			return err
		}
		m.st.DNSWait = min(m.st.DNSWait*2, m.set.dnsMax)
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return m.continueAsNew(ctx)
		}
	}
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
	m.log.Error("stage failed; waiting for an operator", "stage", failed, "error", m.st.LastError, "type", m.st.ErrorType)
	m.enter(ctx, StageNeedsAttention)
	m.action = ""
	if err := workflow.Await(ctx, func() bool { return m.action != "" || m.cancelled }); err != nil {
		return "", err
	}
	act := m.action
	if m.cancelled {
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

func (m *migration) doRollback(ctx workflow.Context) (*Result, error) {
	// A fresh context: the stage's may have been cancelled.
	rctx, _ := workflow.NewDisconnectedContext(ctx)
	err := workflow.ExecuteActivity(long(rctx), a.Rollback, activities.RollbackInput{Address: m.in.Address, To: m.in.To, WorkflowID: m.wid}).Get(rctx, nil)
	if err != nil {
		// Rollback itself failed: park again so it can be retried.
		m.rollback = false
		act, werr := m.needsAttention(ctx, StageRolledBack, err)
		if werr != nil {
			return nil, werr
		}
		if act == UpdateRollback || act == UpdateRetry {
			return m.doRollback(ctx)
		}
		return m.finish(ctx, StageCancelled)
	}
	return m.finish(ctx, StageRolledBack)
}

func (m *migration) finish(ctx workflow.Context, outcome Stage) (*Result, error) {
	m.enter(ctx, outcome)
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	r := &Result{Address: m.in.Address, To: m.in.To, Plan: m.in.Plan, Outcome: outcome, ConfirmedBy: m.st.ConfirmedBy,
		DeltaCopied: m.st.DeltaMsgs, Skipped: m.st.Skips, DNSPending: m.st.DNSPend, DNS: m.st.DNS,
		Stages: m.st.History, Actions: m.st.Actions, Started: m.st.Started, Finished: workflow.Now(ctx)}
	if m.st.Copy != nil {
		r.Folders = len(m.st.Copy.Folders)
		r.Copied = m.st.Copy.Copied
		r.Present = m.st.Copy.Present
		r.Bytes = m.st.Copy.Bytes
	}
	if m.st.Verify != nil {
		r.Verified = m.st.Verify.Checked
	}
	return r, nil
}

// short is for quick, idempotent directory and DNS calls. They heartbeat
// while they run, so a worker that dies under one is noticed within 10 s
// (not at the minute's end) and another takes the step over.
func short(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2,
			MaximumInterval: time.Minute, MaximumAttempts: 6},
	})
}

// long is for measure, copy, verify and rollback: they heartbeat at least
// every 10 s, so a dead worker is noticed within 30 s, and copies resume
// from their last checkpoint.
func long(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 12 * time.Hour,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: 5 * time.Minute, MaximumAttempts: 8},
	})
}
