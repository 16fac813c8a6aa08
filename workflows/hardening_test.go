package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/dnscheck"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// A start that carries "resume" would skip every stage up to the one it
// names; it is refused before any activity runs, whatever state it forges.
func TestForgedResumeRefused(t *testing.T) {
	for _, resume := range []string{
		`{"next": 6, "stage": "switch-routing"}`,
		`{"next": 10}`,
		`{"next": 99}`,
		`{"next": 6, "preflight": {"sourceService": "mxplan-1", "freeSlots": 1}}`,
	} {
		h := newHarness(t)
		h.defaults()
		raw := `{"address": "alice@example.com", "to": "emailpro-1", "resume": ` + resume + `}`
		var in Input
		if err := json.Unmarshal([]byte(raw), &in); err != nil {
			t.Fatal(err)
		}
		h.env.ExecuteWorkflow(WorkflowName, in)
		err := h.env.GetWorkflowError()
		if err == nil || !strings.Contains(err.Error(), `"resume" is written by the workflow itself`) {
			t.Fatalf("start with resume %s: err = %v, want the start refused", resume, err)
		}
		for _, act := range []string{"Preflight", "LockSource", "SwitchRouting", "Finish"} {
			h.env.AssertActivityNotCalled(t, act, mock.Anything, mock.Anything)
		}
	}
}

// A continued run whose state is impossible is refused, not panicked on.
func TestContinuedStateChecked(t *testing.T) {
	h := newHarness(t)
	h.defaults()
	h.env.SetContinuedExecutionRunID("first-run")
	h.env.ExecuteWorkflow(WorkflowName, Input{Address: addr, To: "emailpro-1", Resume: &State{Next: 6}})
	err := h.env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "no preflight result") {
		t.Fatalf("err = %v, want the continued state refused", err)
	}
}

func TestStrictInputDecoding(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
	}{
		{`{"address": "alice@example.com", "to": "emailpro-1", "auto_confirm": true}`, `unknown field "auto_confirm": did you mean "autoConfirm"?`},
		{`{"address": "alice@example.com", "to": "emailpro-1", "dnsintervall": "1m"}`, `did you mean "dnsInterval"?`},
		{`{"address": "alice@example.com", "to": "emailpro-1", "colour": "red"}`, `unknown field "colour" (known fields: address, autoConfirm,`},
		{`{"address": "alice@example.com", "to": "emailpro-1", "autoConfirm": "yes"}`, `field "autoConfirm": want bool, got a JSON string`},
		{`{"address": "alice@example.com", "to": "emailpro-1", "plan": "wave'x"}`, `"plan": plan ID "wave'x"`},
		{`{"address": "alice@example.com", "to": "emailpro-1", "plan": "` + strings.Repeat("p", 3000) + `"}`, `at most 100`},
		{`{"address": "alice@example.com", "to": "emailpro-1", "slotRecheck": "1ms"}`, `out of range`},
		{`{"address": "alice@example.com", "to": "emailpro-1", "dnsInterval": "1ns"}`, `out of range`},
		{`{"address": "alice@example.com", "to": "emailpro-1", "dnsDeadline": "9000h"}`, `out of range`},
		{`{"address": "alice@example.com", "to": "` + strings.Repeat("s", 65) + `"}`, `at most 64`},
	} {
		var in Input
		if err := json.Unmarshal([]byte(tc.raw), &in); err != nil {
			t.Fatalf("Unmarshal(%.60s) = %v; problems are kept for validate, not returned", tc.raw, err)
		}
		err := ValidateInput(in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidateInput(%.80s) = %v, want %q", tc.raw, err, tc.want)
		}
	}
	// And through the workflow: the start fails at once with those words.
	h := newHarness(t)
	h.defaults()
	h.env.ExecuteWorkflow(WorkflowName, json.RawMessage(`{"address": "alice@example.com", "to": "emailpro-1", "auto_confirm": true}`))
	if err := h.env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), `did you mean "autoConfirm"`) {
		t.Fatalf("workflow err = %v", err)
	}
	h.env.AssertActivityNotCalled(t, "Preflight", mock.Anything, mock.Anything)
	if len(h.stages) != 1 || h.stages[0] != string(StageRefused) {
		t.Fatalf("MigrationStage upserts %v, want the refused start to close with %q", h.stages, StageRefused)
	}
}

// rawUpdate sends an update whose payload is typed JSON, as the UI sends it.
func (h *harness) rawUpdate(name, raw string) *answer {
	ans := &answer{}
	h.raws++
	h.env.UpdateWorkflow(name, fmt.Sprintf("%s-raw-%d", name, h.raws), &testsuite.TestUpdateCallback{
		OnAccept:   func() {},
		OnReject:   func(err error) { ans.err = err },
		OnComplete: func(v interface{}, err error) { ans.err = err },
	}, json.RawMessage(raw))
	return ans
}

func TestStrictUpdatePayloads(t *testing.T) {
	h := newHarness(t)
	h.defaults()
	var answers []*answer
	for _, raw := range []string{
		`{"by": "ana", "reson": "typo"}`,
		`{"by": "` + strings.Repeat("b", 1100*1000) + `"}`,
		`{"by": "ana\nbob"}`,
		`{"by": 7}`,
	} {
		raw := raw
		h.env.RegisterDelayedCallback(func() { answers = append(answers, h.rawUpdate(UpdateConfirm, raw)) }, time.Minute)
	}
	var ok *answer
	h.env.RegisterDelayedCallback(func() { ok = h.update(UpdateConfirm, "ana") }, 2*time.Minute)
	r := h.run(Input{})
	if r.Outcome != StageDone || r.ConfirmedBy != "ana" || ok.err != nil {
		t.Fatalf("outcome %s confirmed by %q (%v), want done confirmed by ana", r.Outcome, r.ConfirmedBy, ok.err)
	}
	wants := []string{`unknown field "reson": did you mean "reason"?`, `"by" is 1100000 bytes long; at most 200`, `"by" contains a control character`, `field "by": want string`}
	if len(answers) != len(wants) {
		t.Fatalf("%d answers", len(answers))
	}
	for i, w := range wants {
		if answers[i].err == nil || !strings.Contains(answers[i].err.Error(), w) {
			t.Errorf("update %d: err = %v, want %q", i, answers[i].err, w)
		}
	}
}

// Continue-as-new suggested while waiting for DNS or for a slot continues
// the workflow; it never parks it in needs-attention.
func TestContinueAsNewInWaits(t *testing.T) {
	t.Run("dns", func(t *testing.T) {
		h := newHarness(t)
		h.env.OnActivity(a.CheckDNS, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.DNSInput) (*dnscheck.Diagnostic, error) {
			h.env.SetContinueAsNewSuggested(true)
			return badDiag(), nil
		})
		h.defaults()
		h.env.ExecuteWorkflow(WorkflowName, Input{Address: addr, To: "emailpro-1", AutoConfirm: true})
		var can *workflow.ContinueAsNewError
		if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
			t.Fatalf("err = %v, want continue-as-new", err)
		}
		for _, s := range h.stages {
			if s == string(StageNeedsAttention) {
				t.Fatalf("stages %v: parked in needs-attention", h.stages)
			}
		}
	})
	t.Run("slot", func(t *testing.T) {
		h := newHarness(t)
		h.env.OnActivity(a.Preflight, mock.Anything, mock.Anything).Return(&activities.PreflightResult{SourceService: "mxplan-1", FreeSlots: 0}, nil)
		h.env.OnActivity(a.FreeSlots, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.SlotQuery) (int, error) {
			h.env.SetContinueAsNewSuggested(true)
			return 0, nil
		})
		h.defaults()
		h.env.ExecuteWorkflow(WorkflowName, Input{Address: addr, To: "emailpro-1", AutoConfirm: true, SlotRecheck: "1m"})
		var can *workflow.ContinueAsNewError
		if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
			t.Fatalf("err = %v, want continue-as-new", err)
		}
		for _, s := range h.stages {
			if s == string(StageNeedsAttention) {
				t.Fatalf("stages %v: parked in needs-attention", h.stages)
			}
		}
	})
}

// A DNS check that succeeds after one with problems carries none of them.
func TestDNSDiagnosticIsFreshEachCheck(t *testing.T) {
	h := newHarness(t)
	calls := 0
	h.env.OnActivity(a.CheckDNS, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.DNSInput) (*dnscheck.Diagnostic, error) {
		calls++
		if calls == 1 {
			d := badDiag()
			d.Problems = []string{"ns2.example.com. did not answer"}
			return d, nil
		}
		return &dnscheck.Diagnostic{Domain: "example.com.", OK: true}, nil
	})
	h.defaults()
	r := h.run(Input{AutoConfirm: true})
	if r.DNS == nil || !r.DNS.OK || len(r.DNS.Problems) != 0 || len(r.DNS.Records) != 0 {
		t.Fatalf("final diagnostic = %+v, want the last check's alone", r.DNS)
	}
}

// A Temporal cancellation (the UI's Request Cancellation) never leaves an
// account half-done: before the lock it cancels, between the lock and the
// routing switch it rolls back, after the switch the migration finishes.
func TestTemporalCancel(t *testing.T) {
	cases := []struct {
		name     string
		at       Stage // the stage during which the cancellation arrives
		outcome  Stage
		rollback bool
	}{
		{"awaiting confirmation", StageAwaitConfirm, StageCancelled, false},
		// The copy runs before the lock: cancelled, with the copy cleared.
		{"during copy", StageCopy, StageCancelled, true},
		// The final delta runs under the lock: rolled back.
		{"during final delta", StageFinalDelta, StageRolledBack, true},
		{"during DNS wait", StageDNS, StageDone, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.at == StageCopy || tc.at == StageFinalDelta {
				calls := 0
				h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.CopyInput) (*activities.CopySummary, error) {
					// Pass 1 is the copy, the next call the final delta.
					if calls++; (calls == 1) == (tc.at == StageCopy) {
						h.env.CancelWorkflow()
					}
					return &activities.CopySummary{Copied: 10}, nil
				})
			}
			if tc.at == StageDNS {
				n := 0
				h.env.OnActivity(a.CheckDNS, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.DNSInput) (*dnscheck.Diagnostic, error) {
					if n++; n == 1 {
						h.env.CancelWorkflow()
						return badDiag(), nil
					}
					return okDiag(), nil
				})
			}
			h.defaults()
			in := Input{AutoConfirm: tc.at != StageAwaitConfirm}
			if tc.at == StageAwaitConfirm {
				h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Minute)
			}
			r := h.run(in)
			if r.Outcome != tc.outcome {
				t.Fatalf("outcome = %s, want %s (stages %v)", r.Outcome, tc.outcome, h.stages)
			}
			if last := h.stages[len(h.stages)-1]; last != string(tc.outcome) {
				t.Fatalf("last MigrationStage = %s, want %s", last, tc.outcome)
			}
			if tc.rollback {
				h.env.AssertActivityCalled(t, "Rollback", mock.Anything, mock.Anything)
				h.env.AssertActivityNotCalled(t, "SwitchRouting", mock.Anything, mock.Anything)
			} else {
				h.env.AssertActivityNotCalled(t, "Rollback", mock.Anything, mock.Anything)
			}
			if tc.outcome == StageDone {
				h.env.AssertActivityCalled(t, "VerifyDestination", mock.Anything, mock.Anything)
				h.env.AssertActivityCalled(t, "Finish", mock.Anything, mock.Anything)
			}
			found := false
			for _, act := range r.Actions {
				found = found || act.Action == ActionTemporalCancel
			}
			if !found {
				t.Fatalf("actions %+v: the cancellation is not recorded", r.Actions)
			}
		})
	}
}

// A slot taken since preflight is waited for inside assign-slot, before
// the source is locked: cancel is accepted there, and never locks it.
func TestCancelWhileWaitingForSlotInAssign(t *testing.T) {
	h := newHarness(t)
	h.env.OnActivity(a.AssignSlot, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.AssignInput) (*activities.SlotResult, error) {
		return nil, temporal.NewNonRetryableApplicationError("no slot", activities.ErrTypeNoSlot, nil)
	})
	h.env.OnActivity(a.FreeSlots, mock.Anything, mock.Anything).Return(0, nil)
	h.defaults()
	var cancel *answer
	h.env.RegisterDelayedCallback(func() { cancel = h.update(UpdateCancel, "ana") }, time.Minute)
	r := h.run(Input{AutoConfirm: true, SlotRecheck: "10m"})
	if cancel.err != nil || r.Outcome != StageCancelled {
		t.Fatalf("cancel while waiting for a slot: %v, outcome %s; want cancelled", cancel.err, r.Outcome)
	}
	h.env.AssertActivityNotCalled(t, "LockSource", mock.Anything, mock.Anything)
}

// recheck looks for a free slot at once instead of at the next recheck;
// progress names the service waited on and the next check.
func TestRecheckWhileWaitingForSlot(t *testing.T) {
	h := newHarness(t)
	h.env.OnActivity(a.Preflight, mock.Anything, mock.Anything).Return(&activities.PreflightResult{SourceService: "mxplan-1", QuotaNeeded: 1 << 20, FreeSlots: 0}, nil)
	h.env.OnActivity(a.FreeSlots, mock.Anything, mock.Anything).Return(1, nil)
	h.defaults()
	var seen Progress
	var ans *answer
	h.env.RegisterDelayedCallback(func() {
		seen = h.progress()
		ans = h.update(UpdateRecheck, "ana")
	}, time.Minute)
	r := h.run(Input{AutoConfirm: true, SlotRecheck: "6h"})
	if r.Outcome != StageDone || ans.err != nil {
		t.Fatalf("outcome %s, recheck %v", r.Outcome, ans.err)
	}
	if !strings.Contains(seen.WaitingFor, "emailpro-1") || seen.NextCheck.IsZero() || !strings.Contains(strings.Join(seen.NextActions, ","), UpdateRecheck) {
		t.Fatalf("progress while waiting = %+v; want the service, the next check and recheck offered", seen)
	}
	if el := h.env.Now().Sub(h.start); el > time.Hour {
		t.Fatalf("finished %v after start; recheck should end the 6 h wait at once", el)
	}
}

// A message refused by the copy is refused again by every delta pass; the
// result lists it once.
func TestSkippedListedOnce(t *testing.T) {
	h := newHarness(t)
	h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.CopySummary, error) {
		s := &activities.CopySummary{Copied: 1, SkipCount: 1}
		s.Skips = append(s.Skips, skipOf("INBOX", 42))
		return s, nil
	})
	h.defaults()
	r := h.run(Input{AutoConfirm: true, MaxSkipped: 1})
	if len(r.Skipped) != 1 {
		t.Fatalf("skipped = %+v, want the one message once", r.Skipped)
	}
}

// More skipped messages than allowed park the migration before the routing
// switch, listing them; approve-skipped (recorded) lets it finish.
func TestSkippedOverLimitNeedsApproval(t *testing.T) {
	h := newHarness(t)
	h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.CopySummary, error) {
		s := &activities.CopySummary{Copied: 9, SkipCount: 1}
		s.Skips = append(s.Skips, skipOf("INBOX", 42))
		return s, nil
	})
	h.defaults()
	var seen Progress
	var ans *answer
	h.env.RegisterDelayedCallback(func() {
		seen = h.progress()
		ans = h.update(UpdateApproveSkipped, "ana")
	}, time.Hour)
	r := h.run(Input{AutoConfirm: true})
	if seen.Stage != StageNeedsAttention || seen.FailedStage != StageCopy || seen.ErrorType != ErrTypeSkippedOverLimit ||
		!strings.Contains(seen.LastError, "INBOX UID 42") || !strings.Contains(strings.Join(seen.NextActions, ","), UpdateApproveSkipped) {
		t.Fatalf("progress before approval = %+v", seen)
	}
	if ans.err != nil || r.Outcome != StageDone || len(r.Skipped) != 1 {
		t.Fatalf("approve: %v; outcome %s, skipped %d", ans.err, r.Outcome, len(r.Skipped))
	}
	if !hasAction(r.Actions, UpdateApproveSkipped, "ana") {
		t.Fatalf("approval not recorded: %+v", r.Actions)
	}
}

func hasAction(acts []OperatorAction, action, by string) bool {
	for _, a := range acts {
		if a.Action == action && a.By == by {
			return true
		}
	}
	return false
}

func skipOf(folder string, uid uint32) mailcopy.Skip {
	return mailcopy.Skip{Folder: folder, UID: uid, Size: 100, Reason: "NO [LIMIT] too big"}
}
