package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

// waitStage polls the progress query until the migration reaches stage.
func waitStage(t *testing.T, c client.Client, address string, stage workflows.Stage) workflows.Progress {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var p workflows.Progress
	for time.Now().Before(deadline) {
		if p = progressOf(t, c, address); p.Stage == stage {
			return p
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not reach %s; last progress %+v", address, stage, p)
	return p
}

func result(t *testing.T, c client.Client, address string) workflows.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var r workflows.Result
	if err := c.GetWorkflow(ctx, workflows.WorkflowID(address), "").Get(ctx, &r); err != nil {
		t.Fatalf("%s: %v", address, err)
	}
	return r
}

func TestPlanWithBadRowsStartsNothing(t *testing.T) {
	s := start(t, 3, 5)
	s.env.DirectoryDSN = dsnOf(t, s.st)
	plan := writePlan(t, "address,to",
		"not-an-address,emailpro-1",
		"alice@example.com,nosuch-1",
		"zed@example.com,emailpro-1",
		"bob@example.com,emailpro-1",
		"bob@example.com,emailpro-1",
		"carol@example.com,mxplan-1")
	err := s.env.Plan(context.Background(), cli.PlanArgs{File: plan, PlanID: "bad", AutoConfirm: true})
	if err == nil || !strings.Contains(err.Error(), "nothing started") {
		t.Fatalf("plan with bad rows: err = %v, want a refusal", err)
	}
	out := s.out.String()
	for _, want := range []string{
		"line 2 (not-an-address): address \"not-an-address\" has no @",
		"line 3 (alice@example.com): unknown destination service \"nosuch-1\"",
		"line 4 (zed@example.com): no MX Plan account",
		"line 6 (bob@example.com): duplicate of line 5",
		"line 7 (carol@example.com): destination service \"mxplan-1\" is mxplan",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := s.c.DescribeWorkflowExecution(context.Background(), workflows.WorkflowID("bob@example.com"), ""); err == nil {
		t.Fatalf("the valid row was started although the plan had problems")
	}
}

func TestOperatorPaths(t *testing.T) {
	s := start(t, 8, 20)
	ctx := context.Background()
	s.env.DirectoryDSN = dsnOf(t, s.st)

	// 1. A redirection blocks preflight, naming it; removed, retry goes on.
	if err := s.st.Dir.AddRedirection(ctx, directory.Redirection{Address: "frank@example.com", Kind: "redirection", Target: "frank@elsewhere.test"}); err != nil {
		t.Fatal(err)
	}
	if err := s.env.Start(ctx, cli.StartArgs{Address: "frank@example.com", To: devstack.EmailProService, DNSInterval: "1s"}); err != nil {
		t.Fatal(err)
	}
	p := waitStage(t, s.c, "frank@example.com", workflows.StageNeedsAttention)
	if p.FailedStage != workflows.StagePreflight || p.ErrorType != "RedirectionPresent" || !strings.Contains(p.LastError, "frank@elsewhere.test") {
		t.Fatalf("progress = %+v, want preflight refused naming the redirection", p)
	}
	s.out.Reset()
	if err := s.env.Start(ctx, cli.StartArgs{Address: "Frank@Example.com", To: devstack.EmailProService}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.out.String(), "already running") {
		t.Fatalf("second start: %q, want already running", s.out.String())
	}
	if err := s.env.Act(ctx, workflows.UpdateConfirm, "", []string{"frank@example.com"}, "ops", ""); err == nil || !strings.Contains(s.out.String(), "confirm refused") {
		t.Fatalf("confirm while needing attention: err = %v, out %q", err, s.out.String())
	}
	if err := s.st.Dir.RemoveRedirections(ctx, "frank@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.env.Act(ctx, workflows.UpdateRetry, "", []string{"frank@example.com"}, "ops", "redirection removed"); err != nil {
		t.Fatal(err)
	}
	waitStage(t, s.c, "frank@example.com", workflows.StageAwaitConfirm)
	if _, err := testenv.Read(s.st.Source.Addr, "frank@example.com", devstack.DemoPassword); err != nil {
		t.Fatalf("owner locked out before confirmation: %v", err)
	}
	if err := s.env.Act(ctx, workflows.UpdateConfirm, "", []string{"frank@example.com"}, "ops", ""); err != nil {
		t.Fatal(err)
	}
	if r := result(t, s.c, "frank@example.com"); r.Outcome != workflows.StageDone || r.ConfirmedBy != "ops" {
		t.Fatalf("frank: %s confirmed by %q", r.Outcome, r.ConfirmedBy)
	}

	// 2. No free slot: waits, and proceeds once a slot is added.
	if err := s.st.Dir.AddService(ctx, directory.Service{ID: "exchange-2", Kind: directory.KindExchange, IMAPAddr: s.st.Exchange.Addr,
		IMAPSecurity: "plain", MX: "0 mx.exchange.mailshift.test"}); err != nil {
		t.Fatal(err)
	}
	// exchange-2 shares the Exchange server: its accounts log in there.
	if _, _, err := cli.StartOne(ctx, s.c, workflows.Input{Address: "grace@example.org", To: "exchange-2", AutoConfirm: true,
		SlotRecheck: "1s", DNSInterval: "1s"}); err != nil {
		t.Fatal(err)
	}
	waitStage(t, s.c, "grace@example.org", workflows.StageWaitingForSlot)
	if err := s.st.AddSlots(ctx, "exchange-2", 1, 50<<30); err != nil {
		t.Fatal(err)
	}
	if r := result(t, s.c, "grace@example.org"); r.Outcome != workflows.StageDone {
		t.Fatalf("grace: %s", r.Outcome)
	}

	// 3. A broken destination fails the copy for good; the copy runs
	// before the lock, so the owner still reads mail meanwhile; rollback
	// releases the slot.
	if err := s.st.Dir.AddService(ctx, directory.Service{ID: "emailpro-broken", Kind: directory.KindEmailPro, IMAPAddr: s.st.EmailPro.Addr,
		IMAPSecurity: "ssl-please"}); err != nil {
		t.Fatal(err)
	}
	if err := s.st.AddSlots(ctx, "emailpro-broken", 1, 5<<30); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli.StartOne(ctx, s.c, workflows.Input{Address: "henry@example.com", To: "emailpro-broken", AutoConfirm: true}); err != nil {
		t.Fatal(err)
	}
	p = waitStage(t, s.c, "henry@example.com", workflows.StageNeedsAttention)
	if p.FailedStage != workflows.StageCopy || !strings.Contains(p.LastError, "ssl-please") {
		t.Fatalf("henry progress = %+v, want copy failed naming the bad security setting", p)
	}
	if _, err := testenv.Read(s.st.Source.Addr, "henry@example.com", devstack.DemoPassword); err != nil {
		t.Fatalf("henry locked out during the copy, which runs before the lock: %v", err)
	}
	if err := s.env.Act(ctx, workflows.UpdateSkipDNS, "", []string{"henry@example.com"}, "ops", ""); err == nil {
		t.Fatalf("skip-dns accepted at copy")
	}
	if err := s.env.Act(ctx, workflows.UpdateRollback, "", []string{"henry@example.com"}, "ops", "bad service"); err != nil {
		t.Fatal(err)
	}
	if r := result(t, s.c, "henry@example.com"); r.Outcome != workflows.StageRolledBack {
		t.Fatalf("henry: %s, want rolled-back", r.Outcome)
	}
	if _, err := testenv.Read(s.st.Source.Addr, "henry@example.com", devstack.DemoPassword); err != nil {
		t.Fatalf("henry cannot log in to his mailbox after rollback: %v", err)
	}
	if free, err := s.st.Dir.FreeSlots(ctx, "emailpro-broken", 0); err != nil || len(free) != 1 {
		t.Fatalf("free slots after rollback = %d (%v), want the slot back", len(free), err)
	}
}

// TestPlanDryRun: the pre-check names what would block each row and
// starts nothing.
func TestPlanDryRun(t *testing.T) {
	s := start(t, 8, 5)
	ctx := context.Background()
	s.env.DirectoryDSN = dsnOf(t, s.st)
	if err := s.st.Dir.AddRedirection(ctx, directory.Redirection{Address: "bob@example.com", Kind: "auto-responder", Target: "on holiday"}); err != nil {
		t.Fatal(err)
	}
	// exchange-1 has 3 free slots: the fourth row must wait for one.
	plan := writePlan(t, "address,to", "alice@example.com,emailpro-1", "bob@example.com,emailpro-1",
		"carol@example.com,exchange-1", "dave@example.org,exchange-1", "erin@example.org,exchange-1", "frank@example.com,exchange-1")
	err := s.env.Plan(ctx, cli.PlanArgs{File: plan, PlanID: "dry", DryRun: true})
	if err == nil || !strings.Contains(err.Error(), "2 rows would block") {
		t.Fatalf("dry run: err = %v, want 2 rows blocking\n%s", err, s.out.String())
	}
	out := s.out.String()
	for _, want := range []string{"has auto-responder to on holiday", "wait for a free slot on exchange-1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if _, err := s.c.DescribeWorkflowExecution(ctx, workflows.WorkflowID("alice@example.com"), ""); err == nil {
		t.Fatalf("a dry run started a migration")
	}
	t.Logf("\n%s", out)
}
