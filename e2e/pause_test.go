package e2e

import (
	"context"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/internal/app"
	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/metrics"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

// syncBuffer collects a command's output.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.b.String()
	s.b.Reset()
	return out
}

func progressOf(t *testing.T, c client.Client, address string) workflows.Progress {
	t.Helper()
	var p workflows.Progress
	v, err := c.QueryWorkflow(context.Background(), workflows.WorkflowID(address), "", workflows.QueryProgress)
	if err == nil {
		_ = v.Get(&p)
	}
	return p
}

// currentDetails is what the Temporal UI shows on the workflow's page.
func currentDetails(t *testing.T, c client.Client, address string) string {
	t.Helper()
	v, err := c.QueryWorkflow(context.Background(), workflows.WorkflowID(address), "", "__temporal_workflow_metadata")
	if err != nil {
		t.Fatal(err)
	}
	var md sdkpb.WorkflowMetadata
	if err := v.Get(&md); err != nil {
		t.Fatal(err)
	}
	return md.GetCurrentDetails()
}

// until polls cond every 100 ms for up to 90 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// TestPauseAndResumePlan, on the real dev server: a paused plan's
// accounts, those started before and one added while paused, wait in
// the source's budget queue holding no connection, and progress, the
// workflow's details, status and the metrics say so; another plan's
// account passes them and finishes; after resume every account is
// admitted in queue order, the waiting ones say "queued for mxplan-1
// (n ahead)", and all finish done (verified).
func TestPauseAndResumePlan(t *testing.T) {
	_, c := testenv.StartTemporal(t, "")
	ctx := context.Background()
	st, acts, _ := devPlatform(t, c, 6, 40)
	acts.DefaultBudget = 2 // one copy (2 connections) per server at a time
	var out syncBuffer
	env := &cli.Env{Out: &out, Client: c, DirectoryDSN: dsnOf(t, st)}
	t.Cleanup(env.Close)

	if err := env.Pause(ctx, "spring", false); err != nil {
		t.Fatal(err)
	}
	if o := out.take(); !strings.Contains(o, "plan spring paused") || !strings.Contains(o, devstack.SourceService) {
		t.Fatalf("pause said %q", o)
	}
	plan := []string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.org"}
	for _, a := range plan[:3] {
		if _, _, err := cli.StartOne(ctx, c, workflows.Input{Address: a, To: devstack.EmailProService, Plan: "spring", AutoConfirm: true, DNSInterval: "1s"}); err != nil {
			t.Fatal(err)
		}
	}
	paused := func(a string) func() bool {
		return func() bool { return strings.Contains(progressOf(t, c, a).WaitingFor, "paused: plan spring is paused") }
	}
	for _, a := range plan[:3] {
		until(t, a+" says it is paused", paused(a))
	}
	// An account added to the paused plan joins the queue, paused too.
	if _, _, err := cli.StartOne(ctx, c, workflows.Input{Address: plan[3], To: devstack.EmailProService, Plan: "spring", AutoConfirm: true, DNSInterval: "1s"}); err != nil {
		t.Fatal(err)
	}
	until(t, plan[3]+" says it is paused", paused(plan[3]))
	// Another plan's account passes them and finishes.
	if _, _, err := cli.StartOne(ctx, c, workflows.Input{Address: "erin@example.org", To: devstack.EmailProService, Plan: "other", AutoConfirm: true, DNSInterval: "1s"}); err != nil {
		t.Fatal(err)
	}
	if r := result(t, c, "erin@example.org"); r.Outcome != workflows.StageDone {
		t.Fatalf("erin (plan other): %s", r.Outcome)
	}
	// The paused accounts hold nothing and stay where they were.
	budgets, err := env.Budgets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src := budgets[devstack.SourceService]
	d, err := c.DescribeWorkflowExecution(ctx, workflows.BudgetWorkflowID(devstack.SourceService), "")
	if err != nil {
		t.Fatal(err)
	}
	pausedRun := d.WorkflowExecutionInfo.Execution.RunId
	if len(src.Held) != 0 || len(src.Queue) != 4 || !src.IsPaused("spring") {
		t.Fatalf("source budget while spring is paused: held %v, queue %v, paused %v; want nothing held, 4 queued, spring paused", src.Held, src.Queue, src.Paused)
	}
	for _, a := range plan {
		if p := progressOf(t, c, a); p.Stage != workflows.StagePreflight || p.MessagesDone != 0 {
			t.Fatalf("%s moved while paused: %s, %d messages", a, p.Stage, p.MessagesDone)
		}
	}
	if d := currentDetails(t, c, plan[0]); !strings.Contains(d, "queued for "+devstack.SourceService+", paused") {
		t.Fatalf("details of %s: %q", plan[0], d)
	}
	if _, err := env.Status(ctx, "spring", nil); err != nil {
		t.Fatal(err)
	}
	if o := out.take(); !strings.Contains(o, "plan spring is paused") || !strings.Contains(o, "budget "+devstack.SourceService+": share 2 of 2 connections, 0 in use, 4 requests queued") {
		t.Fatalf("status while paused:\n%s", o)
	}
	m := metrics.New()
	defer m.Close()
	if err := m.RefreshBudgets(ctx, c, workflows.BudgetWorkflowName, app.ReadBudget); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`mailshift_budget_queue{service="mxplan-1"} 4`, `mailshift_budget_in_use{service="mxplan-1"} 0`,
		`mailshift_budget_paused_plans{service="mxplan-1"} 1`, `mailshift_budget_share{service="mxplan-1"} 2`, `mailshift_budget_connections{service="mxplan-1"} 2`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %s:\n%s", want, body)
		}
	}

	// Resume: admitted in queue order; the ones behind say how many are
	// ahead of them.
	if err := env.Pause(ctx, "spring", true); err != nil {
		t.Fatal(err)
	}
	ahead := regexp.MustCompile(`^queued for mxplan-1 \(([1-9]) ahead\)$`)
	var seen string
	until(t, "a waiting account says how many are ahead", func() bool {
		for _, a := range plan[1:] {
			if w := progressOf(t, c, a).WaitingFor; ahead.MatchString(w) {
				seen = a + ": " + w
				return true
			}
		}
		return false
	})
	t.Logf("while admitted one by one: %s", seen)
	// Done means verified: every source message is on the destination.
	for _, a := range plan {
		if r := result(t, c, a); r.Outcome != workflows.StageDone || r.Copied == 0 {
			t.Fatalf("%s: %s, %d copied", a, r.Outcome, r.Copied)
		}
	}
	if *updateHistory {
		writeHistory(t, history(t, c, workflows.WorkflowID(plan[0]), ""), "paused-plan")
		writeHistory(t, history(t, c, workflows.BudgetWorkflowID(devstack.SourceService), pausedRun), "budget-paused-plan")
	}
	_, peak := st.Source.Connections()
	if peak > 2 {
		t.Fatalf("peak source connections %d, budget 2", peak)
	}
}
