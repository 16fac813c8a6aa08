package workflows

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
)

// A paused plan's requests keep their place and are granted nothing;
// another plan's pass them; after the resume they are granted in queue
// order. The pause is in the state a continue-as-new carries (the run
// here starts from such a state), and every waiter hears its place.
func TestBudgetPauseAndQueue(t *testing.T) {
	env := newBudgetEnv(t, "mxplan-1")
	var mu sync.Mutex
	var grants []string
	told := map[string][]LeaseQueued{}
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalGranted, mock.Anything).Return(func(_, id, _, _ string, arg interface{}) error {
		mu.Lock()
		grants = append(grants, arg.(LeaseGrant).Lease)
		mu.Unlock()
		return nil
	})
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalQueued, mock.Anything).Return(func(_, id, _, _ string, arg interface{}) error {
		mu.Lock()
		q := arg.(LeaseQueued)
		told[q.Lease] = append(told[q.Lease], q)
		mu.Unlock()
		return nil
	})
	req := func(holder, plan string, admission bool) LeaseRequest {
		return LeaseRequest{Holder: holder, Lease: holder + "#1", Connections: 2, Limit: 2, Plan: plan, Admission: admission}
	}
	at := func(d time.Duration, f func()) { env.RegisterDelayedCallback(f, d) }
	var states []BudgetState
	snap := func() { states = append(states, queryBudget(t, env)) }
	at(1*time.Second, func() { env.SignalWorkflow(SignalAcquire, req("migrate:a", "p", true)) })
	at(2*time.Second, func() { env.SignalWorkflow(SignalAcquire, req("migrate:b", "p", true)) })
	at(3*time.Second, func() { env.SignalWorkflow(SignalAcquire, req("migrate:c", "q", true)) })
	// A locked account's final delta is never held by its plan's pause.
	at(4*time.Second, func() { env.SignalWorkflow(SignalAcquire, req("migrate:d", "p", false)) })
	at(5*time.Second, snap) // 0: c granted; a, b paused; d waits for c
	at(6*time.Second, func() { env.SignalWorkflow(SignalRelease, "migrate:c#1") })
	at(7*time.Second, snap) // 1: d granted past the paused a and b
	at(8*time.Second, func() { env.SignalWorkflow(SignalRelease, "migrate:d#1") })
	at(9*time.Second, snap) // 2: nothing held, a and b still queued
	at(10*time.Second, func() { env.SignalWorkflow(SignalResume, PlanAdmission{Plan: "p"}) })
	at(11*time.Second, snap) // 3: a granted, b 0 ahead
	at(12*time.Second, func() { env.SignalWorkflow(SignalRelease, "migrate:a#1") })
	at(13*time.Second, func() { env.SignalWorkflow(SignalRelease, "migrate:b#1") })
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{Service: "mxplan-1", Limit: 2, Share: 2, Paused: []string{"p"}})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"migrate:c#1", "migrate:d#1", "migrate:a#1", "migrate:b#1"}; len(grants) != len(want) || grants[0] != want[0] || grants[1] != want[1] || grants[2] != want[2] || grants[3] != want[3] {
		t.Fatalf("grants %v, want %v", grants, want)
	}
	if len(states) != 4 {
		t.Fatalf("%d states read, want 4", len(states))
	}
	if s := states[0]; len(s.Held) != 1 || s.Held[0].Holder != "migrate:c" || len(s.Queue) != 3 || !s.IsPaused("p") {
		t.Fatalf("after the asks: held %v, queue %v, paused %v", s.Held, s.Queue, s.Paused)
	}
	// d, a pass of an account already admitted, waits ahead of the
	// admissions a and b.
	if ahead, paused := states[0].Ahead("migrate:a"); ahead != 1 || !paused {
		t.Fatalf("a: %d ahead, paused %v; want 1 (d, an account in flight), paused", ahead, paused)
	}
	if q := states[0].Queue; q[0].Holder != "migrate:d" {
		t.Fatalf("queue %v, want d first", q)
	}
	if ahead, paused := states[0].Ahead("migrate:d"); ahead != 0 || paused {
		t.Fatalf("d: %d ahead, paused %v; want 0 (the paused a and b let it pass), not paused", ahead, paused)
	}
	if s := states[2]; len(s.Held) != 0 || len(s.Queue) != 2 {
		t.Fatalf("while paused and idle: held %v (want none: a paused plan holds nothing), queue %v", s.Held, s.Queue)
	}
	if s := states[3]; len(s.Held) != 1 || s.Held[0].Holder != "migrate:a" || s.IsPaused("p") {
		t.Fatalf("after resume: held %v, paused %v", s.Held, s.Paused)
	}
	// a heard it was paused, then its place after the resume (or its grant).
	if n := told["migrate:a#1"]; len(n) == 0 || !n[0].Paused || n[0].Plan != "p" {
		t.Fatalf("a was told %+v, want paused first", n)
	}
	if n := told["migrate:b#1"]; len(n) < 2 || !n[0].Paused || n[len(n)-1].Paused || n[len(n)-1].Ahead != 0 {
		t.Fatalf("b was told %+v, want paused, then 0 ahead", n)
	}
	// d waited with nobody ahead (fewer than the share of 2): granted
	// within a turn, it hears nothing.
	if n := told["migrate:d#1"]; len(n) != 0 {
		t.Fatalf("d was told %+v, want nothing (0 ahead of a share of 2)", n)
	}
	if got := queuedFor(told["migrate:b#1"][0]); got != "queued for mxplan-1, paused: plan p is paused (starter resume --plan p)" {
		t.Fatalf("queuedFor = %q", got)
	}
}

// A waiter at the back of a long queue hears its place when it starts
// waiting and each time the place falls to a quarter — not once per grant
// ahead of it, and once at most after fewer are ahead than the share
// holds — and the places it hears only fall.
func TestBudgetTellsPlacesSparingly(t *testing.T) {
	const n = 40
	env := newBudgetEnv(t, "mxplan-1")
	told := placesTold(env)
	for i := range n {
		holder := fmt.Sprintf("migrate:u%02d", i)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalAcquire, LeaseRequest{Holder: holder, Lease: holder + "#1", Connections: 1, Limit: 1})
		}, time.Second+time.Duration(i)*100*time.Millisecond)
		// Each holder gives its lease back a minute after the previous.
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalRelease, holder+"#1") }, time.Duration(i+2)*time.Minute)
	}
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{Service: "mxplan-1", Limit: 1, Share: 1})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	// The first place under the share (1) is the last told: 0.
	last := told[fmt.Sprintf("migrate:u%02d#1", n-1)]
	if len(last) == 0 || last[0] != n-2 || last[len(last)-1] != 0 {
		t.Fatalf("the last waiter heard %v, want %d first and 0 last", last, n-2)
	}
	for i := 1; i < len(last); i++ {
		if last[i] >= last[i-1] {
			t.Fatalf("the last waiter heard %v: not falling", last)
		}
	}
	if len(last) > 7 {
		t.Fatalf("the last waiter heard %d notices %v for a queue of %d; want about log2(n)", len(last), last, n)
	}
	total := 0
	for _, l := range told {
		total += len(l)
	}
	t.Logf("the last waiter heard %v; %d notices in all for %d waiters (a notice per grant would be %d)", last, total, n-1, n*(n-1)/2)
}

// TestBudgetToldAgainWhenPlaceDoubles: accounts in flight queue ahead of
// admissions, one at a time; an admission waiting behind them hears of
// its place again only once it has grown past twice and four more, not at
// every step.
func TestBudgetToldAgainWhenPlaceDoubles(t *testing.T) {
	env := newBudgetEnv(t, "mxplan-1")
	told := placesTold(env)
	ask := func(at time.Duration, lease string, admission bool) {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalAcquire, LeaseRequest{Holder: "migrate:" + lease, Lease: lease, Connections: 1, Limit: 1, Admission: admission})
		}, at)
	}
	ask(time.Second, "busy", true)
	for i := range 6 {
		ask(2*time.Second+time.Duration(i)*time.Second, fmt.Sprintf("new%d", i), true)
	}
	// Ten accounts in flight ask, a second apart: new5's place goes 5,
	// 6, ..., 15.
	for i := range 10 {
		ask(10*time.Second+time.Duration(i)*time.Second, fmt.Sprintf("flight%d", i), false)
	}
	var st BudgetState
	env.RegisterDelayedCallback(func() { st = queryBudget(t, env) }, time.Minute)
	// Then every lease goes back (a queued one is withdrawn): the budget
	// ends with nothing held.
	for i, l := range []string{"busy", "flight0", "flight1", "flight2", "flight3", "flight4", "flight5", "flight6", "flight7", "flight8", "flight9", "new0", "new1", "new2", "new3", "new4", "new5"} {
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalRelease, l) }, time.Minute+time.Duration(i+1)*time.Second)
	}
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{Service: "mxplan-1", Limit: 1, Share: 1})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if ahead, _ := st.Ahead("migrate:new5"); ahead != 15 {
		t.Fatalf("new5 has %d ahead, want 15 (5 admissions and 10 accounts in flight)", ahead)
	}
	// (What it hears after the minute, as the queue drains, is quarters.)
	if got := told["new5"]; len(got) < 2 || !slices.Equal(got[:2], []int{5, 15}) {
		t.Fatalf("new5 heard %v, want 5 then 15: told again once its place passed 2×5+4, not at 6, 7, ...", got)
	}
	if got := told["flight0"]; len(got) != 0 {
		t.Fatalf("flight0 heard %v, want nothing (first in the queue: granted within a turn)", got)
	}
}

// placesTold records, by lease, the places the budget tells waiters (its
// grants go nowhere).
func placesTold(env *testsuite.TestWorkflowEnvironment) map[string][]int {
	var mu sync.Mutex
	told := map[string][]int{}
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalGranted, mock.Anything).Return(nil)
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalQueued, mock.Anything).Return(func(_, _, _, _ string, arg interface{}) error {
		mu.Lock()
		defer mu.Unlock()
		q := arg.(LeaseQueued)
		told[q.Lease] = append(told[q.Lease], q.Ahead)
		return nil
	})
	return told
}
