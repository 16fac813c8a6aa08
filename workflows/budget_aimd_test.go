package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

func newBudgetEnv(t *testing.T, service string) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(ServerBudget, workflow.RegisterOptions{Name: BudgetWorkflowName})
	env.RegisterActivity(&activities.Activities{})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: BudgetWorkflowID(service)})
	// The sweep finds every holder still running.
	env.OnActivity(a.ClosedWorkflows, mock.Anything, mock.Anything).Return([]string(nil), nil).Maybe()
	return env
}

func queryBudget(t *testing.T, env *testsuite.TestWorkflowEnvironment) BudgetState {
	t.Helper()
	v, err := env.QueryWorkflow(QueryBudget)
	if err != nil {
		t.Fatalf("query budget: %v", err)
	}
	var st BudgetState
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// An overload answer the activities report (the budget treats every kind
// alike; TestOverloadAnswersAtLogin reads each kind) halves the share
// (multiplicative decrease), several within a minute count once, and the
// share grows back one connection a minute (additive increase) to the
// limit, when the idle budget ends.
func TestBudgetAIMD(t *testing.T) {
	for _, kind := range []string{mailcopy.OverloadUnavailable, mailcopy.OverloadRefused} {
		t.Run(kind, func(t *testing.T) {
			env := newBudgetEnv(t, "mxplan-1")
			var after []BudgetState
			env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalThrottle, kind+": the server's answer") }, time.Second)
			env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalThrottle, kind+": again") }, 10*time.Second)
			for _, at := range []time.Duration{20 * time.Second, 90 * time.Second, 150 * time.Second} {
				env.RegisterDelayedCallback(func() { after = append(after, queryBudget(t, env)) }, at)
			}
			env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{Service: "mxplan-1", Limit: 8, Share: 8})
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			if len(after) != 3 {
				t.Fatalf("%d queries answered, want 3", len(after))
			}
			if after[0].Share != 4 || after[0].Throttles != 1 || after[0].Overloads != 2 {
				t.Fatalf("after two overload answers: share %v, %d halvings, %d answers; want 4, 1, 2", after[0].Share, after[0].Throttles, after[0].Overloads)
			}
			if after[1].Share != 5 || after[2].Share != 6 {
				t.Fatalf("share %v then %v, want 5 then 6 (one more a minute)", after[1].Share, after[2].Share)
			}
		})
	}
}
