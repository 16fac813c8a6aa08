package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/mailshift/mailshift/activities"
)

// A locked-out owner's requests (Urgent) pass the plan's queue, in the
// order they came, and the others keep plan order behind them.
func TestBudgetGrantsLockedOutOwnersFirst(t *testing.T) {
	env := newBudgetEnv(t, "mxplan-1")
	var mu sync.Mutex
	var grants []string
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalGranted, mock.Anything).Return(func(_, _, _, _ string, arg interface{}) error {
		mu.Lock()
		grants = append(grants, arg.(LeaseGrant).Lease)
		mu.Unlock()
		return nil
	})
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalQueued, mock.Anything).Return(nil)
	req := func(holder string, urgent bool) LeaseRequest {
		return LeaseRequest{Holder: holder, Lease: holder + "#1", Connections: 2, Limit: 2, Plan: "p", Urgent: urgent}
	}
	at := func(d time.Duration, f func()) { env.RegisterDelayedCallback(f, d) }
	var queued []string
	at(1*time.Second, func() { env.SignalWorkflow(SignalAcquire, req("migrate:a", false)) })
	at(2*time.Second, func() { env.SignalWorkflow(SignalAcquire, req("migrate:b", false)) })
	at(3*time.Second, func() { env.SignalWorkflow(SignalAcquire, req("migrate:c", false)) })
	at(4*time.Second, func() { env.SignalWorkflow(SignalAcquire, req("migrate:d", true)) })
	at(5*time.Second, func() { env.SignalWorkflow(SignalAcquire, req("migrate:e", true)) })
	at(6*time.Second, func() {
		for _, q := range queryBudget(t, env).Queue {
			queued = append(queued, q.Holder)
		}
	})
	for i, h := range []string{"a", "d", "e", "b", "c"} {
		at(time.Duration(7+i)*time.Second, func() { env.SignalWorkflow(SignalRelease, "migrate:"+h+"#1") })
	}
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{Service: "mxplan-1", Limit: 2, Share: 2})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	wantQueue := []string{"migrate:d", "migrate:e", "migrate:b", "migrate:c"}
	if len(queued) != len(wantQueue) {
		t.Fatalf("queue %v, want %v", queued, wantQueue)
	}
	for i := range wantQueue {
		if queued[i] != wantQueue[i] {
			t.Fatalf("queue %v, want %v", queued, wantQueue)
		}
	}
	want := []string{"migrate:a#1", "migrate:d#1", "migrate:e#1", "migrate:b#1", "migrate:c#1"}
	if len(grants) != len(want) {
		t.Fatalf("grants %v, want %v", grants, want)
	}
	for i := range want {
		if grants[i] != want[i] {
			t.Fatalf("grants %v, want %v", grants, want)
		}
	}
}

// Budgets with batch grants queue a pass of an account already admitted
// (verify, a delta) ahead of the admissions of new accounts, and an
// urgent request (an owner locked out) ahead of both; each kind keeps its
// order.
func TestBudgetQueuesAccountsInFlightBeforeAdmissions(t *testing.T) {
	var q []LeaseRequest
	for _, r := range []LeaseRequest{
		{Lease: "new1", Admission: true}, {Lease: "new2", Admission: true},
		{Lease: "verify1"}, {Lease: "locked1", Urgent: true}, {Lease: "verify2"},
		{Lease: "new3", Admission: true}, {Lease: "locked2", Urgent: true},
	} {
		q = enqueueInFlight(q, r)
	}
	var got []string
	for _, r := range q {
		got = append(got, r.Lease)
	}
	want := []string{"locked1", "locked2", "verify1", "verify2", "new1", "new2", "new3"}
	if !slices.Equal(got, want) {
		t.Fatalf("queue %v, want %v", got, want)
	}
}

// TestBudgetHandsTheNextRequestOn: granting a request that carries the
// next budget's (Then), the budget delivers that one (RequestLease) and
// its grant says so; a hand-off that fails is said too, so the holder
// asks itself. Held leases keep no request to hand on.
func TestBudgetHandsTheNextRequestOn(t *testing.T) {
	for _, fails := range []bool{false, true} {
		t.Run(fmt.Sprintf("hand-off fails: %v", fails), func(t *testing.T) {
			env := newBudgetEnv(t, "mxplan-1")
			var handed []activities.LeaseInput
			env.OnActivity(a.RequestLease, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LeaseInput) error {
				handed = append(handed, in)
				if fails {
					return errors.New("the next budget cannot be reached")
				}
				return nil
			})
			var grants []LeaseGrant
			env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalGranted, mock.Anything).Return(func(_, _, _, _ string, arg interface{}) error {
				grants = append(grants, arg.(LeaseGrant))
				return nil
			})
			env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalQueued, mock.Anything).Return(nil).Maybe()
			next := activities.LeaseInput{WorkflowID: BudgetWorkflowID("emailpro-1"), Workflow: BudgetWorkflowName, Signal: SignalAcquire,
				Request: LeaseRequest{Holder: "migrate:a", Lease: "migrate:a#2", Connections: 2, Limit: 8}}
			var st BudgetState
			env.RegisterDelayedCallback(func() {
				env.SignalWorkflow(SignalAcquire, LeaseRequest{Holder: "migrate:a", Lease: "migrate:a#1", Connections: 1, Limit: 4, Then: &next})
			}, time.Second)
			env.RegisterDelayedCallback(func() { st = queryBudget(t, env) }, 2*time.Second)
			env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalRelease, "migrate:a#1") }, 3*time.Second)
			env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{Service: "mxplan-1", Limit: 4, Share: 4})
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			if len(handed) != 1 || handed[0].WorkflowID != "budget:emailpro-1" || handed[0].Request.Lease != "migrate:a#2" {
				t.Fatalf("handed on %+v, want migrate:a#2 to budget:emailpro-1", handed)
			}
			if len(grants) != 1 || grants[0].Lease != "migrate:a#1" || grants[0].Forwarded == fails {
				t.Fatalf("grants %+v, want migrate:a#1 with forwarded %v", grants, !fails)
			}
			if len(st.Held) != 1 || st.Held[0].Then != nil {
				t.Fatalf("held %+v, want the lease without its hand-off", st.Held)
			}
		})
	}
}
