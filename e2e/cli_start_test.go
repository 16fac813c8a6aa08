package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/workflows"
)

// waitClosed waits until the latest run of address's migration is closed
// and returns its status.
func waitClosed(t *testing.T, s *stack, address string) enumspb.WorkflowExecutionStatus {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		d, err := s.c.DescribeWorkflowExecution(context.Background(), workflows.WorkflowID(address), "")
		if err != nil {
			t.Fatal(err)
		}
		if st := d.WorkflowExecutionInfo.Status; st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still running", address)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStartAgainAfterCancelOrRollback: the runbook's "cancel, then start
// again with the right service" works however the first run ended short of
// done (the starter once answered "already running; nothing started"); a
// migration that ended done is refused, saying so, and starts nothing.
func TestStartAgainAfterCancelOrRollback(t *testing.T) {
	s := start(t, 8, 5)
	ctx := context.Background()
	s.env.DirectoryDSN = dsnOf(t, s.st)
	// A destination whose IMAP security setting is broken: the copy fails
	// for good and the migration waits for a rollback.
	if err := s.st.Dir.AddService(ctx, directory.Service{ID: "emailpro-broken", Kind: directory.KindEmailPro, IMAPAddr: s.st.EmailPro.Addr,
		IMAPSecurity: "ssl-please"}); err != nil {
		t.Fatal(err)
	}
	if err := s.st.AddSlots(ctx, "emailpro-broken", 2, 5<<30); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, address, wrongService string
		// end ends the first run short of done.
		end      func(t *testing.T, address string)
		previous string
	}{
		{name: "cancelled by the operator", address: "alice@example.com", wrongService: devstack.ExchangeService,
			end: func(t *testing.T, address string) {
				waitStage(t, s.c, address, workflows.StageAwaitConfirm)
				if err := s.env.Act(ctx, workflows.UpdateCancel, "", []string{address}, "ops", "wrong service"); err != nil {
					t.Fatal(err)
				}
			}, previous: "the previous run ended cancelled"},
		{name: "rolled back by the operator", address: "henry@example.com", wrongService: "emailpro-broken",
			end: func(t *testing.T, address string) {
				waitStage(t, s.c, address, workflows.StageAwaitConfirm)
				if err := s.env.Act(ctx, workflows.UpdateConfirm, "", []string{address}, "ops", ""); err != nil {
					t.Fatal(err)
				}
				waitStage(t, s.c, address, workflows.StageNeedsAttention)
				if err := s.env.Act(ctx, workflows.UpdateRollback, "", []string{address}, "ops", "bad service"); err != nil {
					t.Fatal(err)
				}
			}, previous: "the previous run ended rolled-back"},
		{name: "terminated in the Temporal UI", address: "bob@example.com", wrongService: devstack.ExchangeService,
			end: func(t *testing.T, address string) {
				waitStage(t, s.c, address, workflows.StageAwaitConfirm)
				if err := s.c.TerminateWorkflow(ctx, workflows.WorkflowID(address), "", "wrong service"); err != nil {
					t.Fatal(err)
				}
			}, previous: "the previous run ended terminated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.env.Start(ctx, cli.StartArgs{Address: tc.address, To: tc.wrongService, DNSInterval: "1s"}); err != nil {
				t.Fatal(err)
			}
			tc.end(t, tc.address)
			waitClosed(t, s, tc.address)
			// The account is whole again: the right service can start.
			s.out.Reset()
			if err := s.env.Start(ctx, cli.StartArgs{Address: tc.address, To: devstack.EmailProService, AutoConfirm: true, DNSInterval: "1s"}); err != nil {
				t.Fatalf("start again: %v", err)
			}
			if !strings.Contains(s.out.String(), "started "+workflows.WorkflowID(tc.address)) || !strings.Contains(s.out.String(), tc.previous) {
				t.Fatalf("start again printed %q, want started, %q", s.out.String(), tc.previous)
			}
			r := result(t, s.c, tc.address)
			if r.Outcome != workflows.StageDone || r.To != devstack.EmailProService {
				t.Fatalf("second run ended %s to %s, want done to %s", r.Outcome, r.To, devstack.EmailProService)
			}
			// Done is final: a third start is refused and starts nothing.
			before, err := s.c.DescribeWorkflowExecution(ctx, workflows.WorkflowID(tc.address), "")
			if err != nil {
				t.Fatal(err)
			}
			s.out.Reset()
			err = s.env.Start(ctx, cli.StartArgs{Address: tc.address, To: devstack.EmailProService})
			if err == nil || !strings.Contains(err.Error(), "is already migrated") || !strings.Contains(err.Error(), "ended done") {
				t.Fatalf("start after done: err = %v (printed %q), want a refusal saying it is done", err, s.out.String())
			}
			after, err := s.c.DescribeWorkflowExecution(ctx, workflows.WorkflowID(tc.address), "")
			if err != nil {
				t.Fatal(err)
			}
			if a, b := after.WorkflowExecutionInfo.Execution.RunId, before.WorkflowExecutionInfo.Execution.RunId; a != b {
				t.Fatalf("start after done started run %s (done run %s)", a, b)
			}
		})
	}
}
