package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/dnscheck"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

const addr = "alice@example.com"

type harness struct {
	t      *testing.T
	env    *testsuite.TestWorkflowEnvironment
	mu     sync.Mutex
	stages []string
	start  time.Time
	raws   int
}

func newHarness(t *testing.T) *harness {
	var s testsuite.WorkflowTestSuite
	h := &harness{t: t, env: s.NewTestWorkflowEnvironment()}
	h.env.RegisterWorkflowWithOptions(MigrateAccount, workflow.RegisterOptions{Name: WorkflowName})
	h.env.RegisterActivity(&activities.Activities{})
	h.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: WorkflowID(addr)})
	h.start = h.env.Now()
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		if v, ok := sa.GetKeyword(SAStage); ok {
			h.mu.Lock()
			h.stages = append(h.stages, v)
			h.mu.Unlock()
		}
	}).Return(nil)
	return h
}

func okDiag() *dnscheck.Diagnostic {
	return &dnscheck.Diagnostic{Domain: "example.com.", OK: true, Records: []dnscheck.RecordCheck{{OK: true}}}
}

func badDiag() *dnscheck.Diagnostic {
	return &dnscheck.Diagnostic{Domain: "example.com.", OK: false, Records: []dnscheck.RecordCheck{{OK: false, Fix: "example.com. 3600 IN MX 10 mx1.pro.test."}}}
}

// defaults mocks every activity as succeeding; tests register their own
// expectations first (testify uses the first that matches).
func (h *harness) defaults() {
	env := h.env
	env.OnActivity(a.Preflight, mock.Anything, mock.Anything).Return(&activities.PreflightResult{SourceService: "mxplan-1",
		DestKind: "emailpro", Folders: 3, Messages: 10, Bytes: 1000, QuotaNeeded: 1000, FreeSlots: 1, Locale: "en"}, nil).Maybe()
	env.OnActivity(a.FreeSlots, mock.Anything, mock.Anything).Return(1, nil).Maybe()
	env.OnActivity(a.CheckFilters, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(a.CopyFilters, mock.Anything, mock.Anything).Return(&activities.FiltersResult{NotCarried: "no ManageSieve"}, nil).Maybe()
	env.OnActivity(a.MoveAliases, mock.Anything, mock.Anything).Return(&activities.AliasesResult{}, nil).Maybe()
	env.OnActivity(a.ServerBudgets, mock.Anything, mock.Anything).Return(&activities.BudgetsResult{SourceService: "mxplan-1", Connections: 2}, nil).Maybe()
	env.OnActivity(a.LockSource, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(a.AssignSlot, mock.Anything, mock.Anything).Return(&activities.SlotResult{SlotID: 7}, nil).Maybe()
	env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.CopySummary, error) {
		if in.Delta {
			return &activities.CopySummary{Copied: 1, Checkpoints: in.Checkpoints}, nil
		}
		return &activities.CopySummary{Copied: 10, Bytes: 1000, Folders: []activities.FolderSummary{{Source: "INBOX"}, {Source: "Sent"}, {Source: "Trash"}}}, nil
	}).Maybe()
	env.OnActivity(a.SwitchRouting, mock.Anything, mock.Anything).Return(&activities.RouteResult{ManagedZone: true, DNSChanged: true}, nil).Maybe()
	env.OnActivity(a.CheckDNS, mock.Anything, mock.Anything).Return(okDiag(), nil).Maybe()
	env.OnActivity(a.Verify, mock.Anything, mock.Anything).Return(&activities.VerifySummary{Checked: 13}, nil).Maybe()
	env.OnActivity(a.VerifySource, mock.Anything, mock.Anything).Return(&activities.VerifySourceSummary{Snapshot: "reading", Messages: 13}, nil).Maybe()
	env.OnActivity(a.VerifyDestination, mock.Anything, mock.Anything).Return(&activities.VerifySummary{Checked: 13}, nil).Maybe()
	env.OnActivity(a.Finish, mock.Anything, mock.Anything).Return(&activities.FinishResult{NoticeAppended: true}, nil).Maybe()
	env.OnActivity(a.Rollback, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(a.AdvanceNotice, mock.Anything, mock.Anything).Return(&activities.AdvanceResult{Marker: "<advance@mailshift.invalid>",
		Placed: mailcopy.Placed{Folder: "INBOX", UIDValidity: 1, UID: 11, Added: true}}, nil).Maybe()
	env.OnActivity(a.NotifyOperator, mock.Anything, mock.Anything).Return(&activities.NotifyResult{}, nil).Maybe()
	env.OnActivity(a.ReportToPlan, mock.Anything, mock.Anything).Return(nil).Maybe()
}

func (h *harness) run(in Input) *Result {
	h.t.Helper()
	if in.Address == "" {
		in.Address = addr
	}
	if in.To == "" {
		in.To = "emailpro-1"
	}
	h.env.ExecuteWorkflow(WorkflowName, in)
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatalf("workflow did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("workflow error: %v", err)
	}
	var r Result
	if err := h.env.GetWorkflowResult(&r); err != nil {
		h.t.Fatalf("result: %v", err)
	}
	return &r
}

func (h *harness) progress() Progress {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(QueryProgress)
	if err != nil {
		h.t.Fatalf("query progress: %v", err)
	}
	var p Progress
	if err := v.Get(&p); err != nil {
		h.t.Fatalf("decode progress: %v", err)
	}
	return p
}

// answer is an update's outcome; the test environment delivers it after the
// workflow has handled the update, so read it once the workflow ran.
type answer struct {
	msg string
	err error
}

// update sends an operator update; the answer is filled in later.
func (h *harness) update(name string, by string) *answer {
	ans := &answer{}
	h.env.UpdateWorkflow(name, name+"-"+h.env.Now().String(), &testsuite.TestUpdateCallback{
		OnAccept: func() {},
		OnReject: func(err error) { ans.err = err },
		OnComplete: func(v interface{}, err error) {
			if r, ok := v.(ActionResult); ok {
				ans.msg = r.Accepted
			}
			if err != nil {
				ans.err = err
			}
		},
	}, ActionInput{By: by})
	return ans
}

func permanentErr(typ, msg string) error {
	return temporal.NewApplicationErrorWithOptions(msg, typ, temporal.ApplicationErrorOptions{NonRetryable: true})
}

func TestHappyPathAutoConfirm(t *testing.T) {
	h := newHarness(t)
	h.defaults()
	r := h.run(Input{AutoConfirm: true, Plan: "wave-1"})
	if r.Outcome != StageDone {
		t.Fatalf("Outcome = %q, want done", r.Outcome)
	}
	if r.Copied != 10 || r.Folders != 3 || r.Verified != 13 || r.DNSPending {
		t.Fatalf("result = %+v, want 10 copied in 3 folders, 13 verified, DNS not pending", r)
	}
	if r.ConfirmedBy != "auto-confirm (plan wave-1)" {
		t.Fatalf("ConfirmedBy = %q", r.ConfirmedBy)
	}
	want := []string{"preflight", "assign-slot", "copy", "lock-source", "final-delta", "switch-routing", "delta-sync", "dns-propagation", "verify", "done"}
	if got := strings.Join(h.stages, ","); got != strings.Join(want, ",") {
		t.Fatalf("stages upserted = %s, want %s", got, strings.Join(want, ","))
	}
}

func TestConfirmGate(t *testing.T) {
	h := newHarness(t)
	var lockedAt time.Time
	h.env.OnActivity(a.LockSource, mock.Anything, mock.Anything).Run(func(mock.Arguments) { lockedAt = h.env.Now() }).Return(nil)
	h.defaults()
	var early, wrong, confirm *answer
	h.env.RegisterDelayedCallback(func() {
		p := h.progress()
		if p.Stage != StageAwaitConfirm || p.MessagesTotal != 10 || p.BytesTotal != 1000 || p.FoldersTotal != 3 {
			t.Errorf("progress at 1h = %+v, want awaiting-confirmation with 3 folders, 10 messages, 1000 bytes", p)
		}
		early = h.update(UpdateRetry, "ops")
		wrong = h.update(UpdateSkipDNS, "ops")
	}, time.Hour)
	h.env.RegisterDelayedCallback(func() { confirm = h.update(UpdateConfirm, "ops@example.net") }, 2*time.Hour)
	r := h.run(Input{})
	if early.err == nil || !strings.Contains(early.err.Error(), "only possible when the migration needs attention") {
		t.Fatalf("retry while awaiting confirmation: err = %v, want a refusal naming the reason", early.err)
	}
	if wrong.err == nil {
		t.Fatalf("skip-dns while awaiting confirmation was accepted")
	}
	if !strings.Contains(confirm.msg, "confirmed by ops@example.net") {
		t.Fatalf("confirm answer = %q (%v)", confirm.msg, confirm.err)
	}
	if r.Outcome != StageDone || r.ConfirmedBy != "ops@example.net" {
		t.Fatalf("result = %s by %q, want done by ops@example.net", r.Outcome, r.ConfirmedBy)
	}
	if lockedAt.Sub(h.start) < 2*time.Hour {
		t.Fatalf("source locked %v after start, before the confirmation at 2h", lockedAt.Sub(h.start))
	}
}

func TestCancelBeforeConfirmChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.defaults()
	var cancel *answer
	h.env.RegisterDelayedCallback(func() {
		cancel = h.update(UpdateCancel, "ops")
	}, time.Minute)
	r := h.run(Input{})
	if cancel.err != nil {
		t.Fatalf("cancel refused: %v", cancel.err)
	}
	if r.Outcome != StageCancelled {
		t.Fatalf("Outcome = %q, want cancelled", r.Outcome)
	}
	for _, name := range []string{"LockSource", "AssignSlot", "CopyMailbox", "SwitchRouting", "Rollback"} {
		h.env.AssertActivityNotCalled(t, name, mock.Anything, mock.Anything)
	}
}

func TestFailureNeedsAttentionThenRetry(t *testing.T) {
	cases := []struct {
		name  string
		stage Stage
		setup func(env *testsuite.TestWorkflowEnvironment, err error)
		err   error
		typ   string
	}{
		{"redirection at preflight", StagePreflight, func(env *testsuite.TestWorkflowEnvironment, err error) {
			env.OnActivity(a.Preflight, mock.Anything, mock.Anything).Return(nil, err).Once()
		}, permanentErr(activities.ErrTypeRedirection, `account has redirect to bob@elsewhere.test`), activities.ErrTypeRedirection},
		{"lock conflict", StageLockSource, func(env *testsuite.TestWorkflowEnvironment, err error) {
			env.OnActivity(a.LockSource, mock.Anything, mock.Anything).Return(err).Once()
		}, permanentErr(activities.ErrTypeLockConflict, "held by migrate:x"), activities.ErrTypeLockConflict},
		{"bad credentials in copy", StageCopy, func(env *testsuite.TestWorkflowEnvironment, err error) {
			env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(nil, err).Once()
		}, permanentErr(activities.ErrTypeAuth, "log in: AUTHENTICATIONFAILED"), activities.ErrTypeAuth},
		{"copy retries exhausted", StageCopy, func(env *testsuite.TestWorkflowEnvironment, err error) {
			// The local attempt (a small mailbox), then the activity's 8.
			env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(nil, err).Times(9)
		}, errors.New("connection reset by peer"), ""},
		{"DNS update refused", StageSwitchRouting, func(env *testsuite.TestWorkflowEnvironment, err error) {
			env.OnActivity(a.SwitchRouting, mock.Anything, mock.Anything).Return(nil, err).Once()
		}, permanentErr(activities.ErrTypeDNSRefused, "update refused: BADSIG"), activities.ErrTypeDNSRefused},
		{"verification mismatch", StageVerify, func(env *testsuite.TestWorkflowEnvironment, err error) {
			env.OnActivity(a.VerifyDestination, mock.Anything, mock.Anything).Return(nil, err).Once()
		}, permanentErr(activities.ErrTypeVerify, "1 of 13 messages missing"), activities.ErrTypeVerify},
		{"finish quota", StageDone, func(env *testsuite.TestWorkflowEnvironment, err error) {
			env.OnActivity(a.Finish, mock.Anything, mock.Anything).Return(nil, err).Once()
		}, permanentErr(activities.ErrTypeQuota, "OVERQUOTA"), activities.ErrTypeQuota},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h.env, tc.err)
			h.defaults()
			var seen Progress
			var retried *answer
			h.env.RegisterDelayedCallback(func() {
				seen = h.progress()
				retried = h.update(UpdateRetry, "oncall")
			}, 3*time.Hour)
			r := h.run(Input{AutoConfirm: true})
			if seen.Stage != StageNeedsAttention || seen.FailedStage != tc.stage || seen.ErrorType != tc.typ {
				t.Fatalf("progress before retry = stage %q failed %q type %q, want needs-attention at %q type %q", seen.Stage, seen.FailedStage, seen.ErrorType, tc.stage, tc.typ)
			}
			if !strings.Contains(tc.err.Error(), seen.LastError) || seen.LastError == "" {
				t.Fatalf("LastError = %q, want the activity's message %q", seen.LastError, tc.err)
			}
			if !strings.Contains(strings.Join(seen.NextActions, ","), UpdateRetry) {
				t.Fatalf("NextActions = %v, want retry offered", seen.NextActions)
			}
			if !strings.Contains(retried.msg, "retrying stage "+string(tc.stage)) {
				t.Fatalf("retry answer = %q (%v)", retried.msg, retried.err)
			}
			if r.Outcome != StageDone {
				t.Fatalf("Outcome after retry = %q, want done", r.Outcome)
			}
			// The retried stage is entered again right after the operator's
			// retry (stage history, search attribute, stage metrics).
			again := false
			for i, e := range r.Stages {
				if e.Stage == "operator:"+UpdateRetry {
					again = i+1 < len(r.Stages) && r.Stages[i+1].Stage == tc.stage
				}
			}
			if !again {
				t.Fatalf("stages after retry = %v, want %s entered again after operator:retry", r.Stages, tc.stage)
			}
			// The retried stage succeeded: its error is cleared, the
			// failure kept in the attempts history.
			after := h.progress()
			if after.LastError != "" || after.ErrorType != "" || len(after.Failures) != 1 || after.Failures[0].Stage != tc.stage {
				t.Fatalf("progress after a successful retry: lastError %q type %q failures %+v; want cleared, one failure at %s", after.LastError, after.ErrorType, after.Failures, tc.stage)
			}
		})
	}
}

func TestRollbackBeforeSwitch(t *testing.T) {
	h := newHarness(t)
	h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(nil, permanentErr(activities.ErrTypeQuota, "OVERQUOTA")).Once()
	var rb activities.RollbackInput
	h.env.OnActivity(a.Rollback, mock.Anything, mock.Anything).Run(func(args mock.Arguments) { rb = args.Get(1).(activities.RollbackInput) }).Return(nil).Once()
	h.defaults()
	var rollback *answer
	h.env.RegisterDelayedCallback(func() { rollback = h.update(UpdateRollback, "oncall") }, time.Hour)
	r := h.run(Input{AutoConfirm: true})
	if rollback.err != nil {
		t.Fatalf("rollback refused: %v", rollback.err)
	}
	if r.Outcome != StageRolledBack {
		t.Fatalf("Outcome = %q, want rolled-back", r.Outcome)
	}
	if rb.Address != addr || rb.WorkflowID != WorkflowID(addr) || rb.To != "emailpro-1" {
		t.Fatalf("Rollback input = %+v", rb)
	}
	h.env.AssertActivityNotCalled(t, "SwitchRouting", mock.Anything, mock.Anything)
}

func TestRollbackAfterSwitchRefused(t *testing.T) {
	h := newHarness(t)
	h.env.OnActivity(a.VerifyDestination, mock.Anything, mock.Anything).Return(nil, permanentErr(activities.ErrTypeVerify, "2 missing")).Once()
	h.defaults()
	var refused, retry *answer
	h.env.RegisterDelayedCallback(func() {
		refused = h.update(UpdateRollback, "oncall")
		retry = h.update(UpdateRetry, "oncall")
	}, time.Hour)
	r := h.run(Input{AutoConfirm: true})
	if refused.err == nil || !strings.Contains(refused.err.Error(), "no longer possible") {
		t.Fatalf("rollback after the switch: err = %v, want refusal saying it is no longer possible", refused.err)
	}
	if retry.err != nil {
		t.Fatalf("retry refused: %v", retry.err)
	}
	if r.Outcome != StageDone {
		t.Fatalf("Outcome = %q, want done", r.Outcome)
	}
	h.env.AssertActivityNotCalled(t, "Rollback", mock.Anything, mock.Anything)
}

func TestWaitingForSlotThenProceeds(t *testing.T) {
	h := newHarness(t)
	h.env.OnActivity(a.Preflight, mock.Anything, mock.Anything).Return(&activities.PreflightResult{SourceService: "mxplan-1", Messages: 1, FreeSlots: 0}, nil).Once()
	checks := 0
	h.env.OnActivity(a.FreeSlots, mock.Anything, mock.Anything).Return(func(context.Context, activities.SlotQuery) (int, error) {
		checks++
		if h.env.Now().Sub(h.start) < 20*time.Minute {
			return 0, nil
		}
		return 1, nil // an operator added a slot
	})
	h.defaults()
	var mid Progress
	h.env.RegisterDelayedCallback(func() { mid = h.progress() }, 7*time.Minute)
	r := h.run(Input{AutoConfirm: true})
	if mid.Stage != StageWaitingForSlot {
		t.Fatalf("stage at 7m = %q, want waiting-for-slot", mid.Stage)
	}
	if r.Outcome != StageDone || checks < 4 {
		t.Fatalf("Outcome = %q after %d slot checks, want done after >= 4", r.Outcome, checks)
	}
}

func TestDNSNeverPropagates(t *testing.T) {
	h := newHarness(t)
	h.env.OnActivity(a.CheckDNS, mock.Anything, mock.Anything).Return(badDiag(), nil)
	deltas := 0
	h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.CopySummary, error) {
		if in.Delta {
			deltas++
		}
		return &activities.CopySummary{Copied: 1}, nil
	})
	h.defaults()
	r := h.run(Input{AutoConfirm: true})
	if r.Outcome != StageDone || !r.DNSPending || r.DNS == nil || r.DNS.OK {
		t.Fatalf("result = %s pending=%v dns=%+v, want done with dnsPending and the diagnostic", r.Outcome, r.DNSPending, r.DNS)
	}
	if el := h.env.Now().Sub(h.start); el < 24*time.Hour || el > 25*time.Hour {
		t.Fatalf("finished %v after start, want just past the 24 h deadline", el)
	}
	// delta-sync stage + verify's final delta + one every 3 checks.
	if deltas < 10 {
		t.Fatalf("%d delta-syncs in 24 h of DNS wait, want them to run periodically", deltas)
	}
}

func TestDNSPropagatesAtHour5(t *testing.T) {
	h := newHarness(t)
	var switched time.Time
	h.env.OnActivity(a.SwitchRouting, mock.Anything, mock.Anything).Run(func(mock.Arguments) { switched = h.env.Now() }).Return(&activities.RouteResult{}, nil)
	checks := 0
	h.env.OnActivity(a.CheckDNS, mock.Anything, mock.Anything).Return(func(context.Context, activities.DNSInput) (*dnscheck.Diagnostic, error) {
		checks++
		if h.env.Now().Sub(switched) < 5*time.Hour {
			return badDiag(), nil
		}
		return okDiag(), nil
	})
	h.defaults()
	r := h.run(Input{AutoConfirm: true})
	el := h.env.Now().Sub(switched)
	if r.Outcome != StageDone || r.DNSPending {
		t.Fatalf("result = %s pending=%v, want done, propagated", r.Outcome, r.DNSPending)
	}
	if el < 5*time.Hour || el > 5*time.Hour+20*time.Minute {
		t.Fatalf("done %v after the switch, want soon after hour 5 (backoff caps at 15 min)", el)
	}
	// 1,2,4,8,15,15,... minutes: about 25 checks in 5 hours, not 300.
	if checks > 40 {
		t.Fatalf("%d DNS checks in 5 hours: backoff not applied", checks)
	}
}

func TestSkipDNSDuringWait(t *testing.T) {
	h := newHarness(t)
	h.env.OnActivity(a.CheckDNS, mock.Anything, mock.Anything).Return(badDiag(), nil)
	h.defaults()
	var skip *answer
	h.env.RegisterDelayedCallback(func() { skip = h.update(UpdateSkipDNS, "oncall") }, 2*time.Hour)
	r := h.run(Input{AutoConfirm: true})
	if skip.err != nil {
		t.Fatalf("skip-dns refused: %v", skip.err)
	}
	if r.Outcome != StageDone || !r.DNSPending {
		t.Fatalf("result = %s pending=%v, want done with dnsPending", r.Outcome, r.DNSPending)
	}
	if el := h.env.Now().Sub(h.start); el > 3*time.Hour {
		t.Fatalf("finished %v after start; skip-dns should end the wait at once", el)
	}
}

func TestInvalidInput(t *testing.T) {
	cases := []struct {
		in   Input
		want string
	}{
		{Input{Address: "not-an-address", To: "emailpro-1"}, "has no @"},
		{Input{Address: "Alice <alice@example.com>", To: "emailpro-1"}, "not allowed"},
		{Input{Address: "ali\r\nce@example.com", To: "emailpro-1"}, "control character"},
		{Input{Address: "jörg@example.com", To: "emailpro-1"}, "non-ASCII"},
		{Input{Address: "alice*admin@example.com", To: "emailpro-1"}, `"*"`},
		{Input{Address: "alice@example.com"}, `"to"`},
		{Input{Address: "alice@example.com", To: "x", DNSDeadline: "soon"}, `"dnsDeadline"`},
		{Input{Address: "alice@example.com", To: "x", ExcludeFolders: []string{"[a"}}, "folder pattern"},
	}
	for _, tc := range cases {
		err := ValidateInput(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("ValidateInput(%+v) = %v, want an error mentioning %s", tc.in, err, tc.want)
		}
	}
	h := newHarness(t)
	h.defaults()
	h.env.ExecuteWorkflow(WorkflowName, Input{Address: "nope", To: "emailpro-1"})
	err := h.env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "has no @") {
		t.Fatalf("workflow with a bad address: err = %v", err)
	}
	h.env.AssertActivityNotCalled(t, "Preflight", mock.Anything, mock.Anything)
}

func TestWrongWorkflowIDRefused(t *testing.T) {
	h := newHarness(t)
	h.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "some-id"})
	h.defaults()
	h.env.ExecuteWorkflow(WorkflowName, Input{Address: addr, To: "emailpro-1"})
	if err := h.env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), WorkflowID(addr)) {
		t.Fatalf("err = %v, want it to name the right workflow ID", err)
	}
}

func TestContinueAsNewCarriesState(t *testing.T) {
	h := newHarness(t)
	h.defaults()
	h.env.SetContinueAsNewSuggested(true)
	h.env.ExecuteWorkflow(WorkflowName, Input{Address: addr, To: "emailpro-1", AutoConfirm: true})
	var can *workflow.ContinueAsNewError
	if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("err = %v, want continue-as-new when the SDK suggests it", err)
	}
	var next Input
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.Resume == nil || next.Resume.Next == 0 || next.Resume.Preflight == nil {
		t.Fatalf("continued input = %+v, want the state after preflight", next.Resume)
	}

	// The continued run picks up where the first stopped.
	h2 := newHarness(t)
	h2.defaults()
	h2.env.SetContinuedExecutionRunID("first-run")
	r := h2.run(next)
	if r.Outcome != StageDone {
		t.Fatalf("continued run outcome = %q", r.Outcome)
	}
	h2.env.AssertActivityNotCalled(t, "Preflight", mock.Anything, mock.Anything)
}
