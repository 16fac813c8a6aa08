package e2e

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/app"
	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

// TestServerBudget migrates six accounts at once through two workers with
// a budget of 2 connections per server (a copy opens 2): the servers never
// see more than 2 connections at once — counted at the servers — although
// every migration starts together and one worker is stopped mid-plan; all
// finish done.
func TestServerBudget(t *testing.T) {
	_, c := testenv.StartTemporal(t, "")
	ctx := context.Background()
	st, acts, err := app.StartDev(ctx, filepath.Join(t.TempDir(), "directory.db"), 6, 30, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	acts.DefaultBudget = 2
	workers := make([]worker.Worker, 2)
	for i := range workers {
		workers[i] = app.NewWorker(c, workflows.TaskQueue, acts, worker.Options{})
		if err := workers[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { workers[1].Stop() })
	st.Source.ResetPeak()
	st.EmailPro.ResetPeak()

	accounts := []string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.org", "erin@example.org", "frank@example.com"}
	var wg sync.WaitGroup
	for _, a := range accounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := cli.StartOne(ctx, c, workflows.Input{Address: a, To: devstack.EmailProService, AutoConfirm: true, DNSInterval: "1s"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// One worker goes away while copies run; the other carries on under
	// the same leases.
	waitAnyCopying(t, c, accounts)
	workers[0].Stop()
	for _, a := range accounts {
		if r := result(t, c, a); r.Outcome != workflows.StageDone {
			t.Fatalf("%s: %s", a, r.Outcome)
		}
	}
	_, srcPeak := st.Source.Connections()
	_, dstPeak := st.EmailPro.Connections()
	t.Logf("peak connections seen by the servers: source %d, destination %d (budget 2 each, 6 migrations at once)", srcPeak, dstPeak)
	if srcPeak > 2 || dstPeak > 2 {
		t.Fatalf("peak connections source %d, destination %d; budget 2", srcPeak, dstPeak)
	}
	if srcPeak == 0 || dstPeak == 0 {
		t.Fatalf("no connection counted (source %d, destination %d): the count is broken", srcPeak, dstPeak)
	}
	// Every lease was given back: the budget workflows ended.
	deadline := time.Now().Add(30 * time.Second)
	for _, svc := range []string{devstack.SourceService, devstack.EmailProService} {
		for {
			d, err := c.DescribeWorkflowExecution(ctx, workflows.BudgetWorkflowID(svc), "")
			if err == nil && d.WorkflowExecutionInfo.CloseTime != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("budget of %s still running (%v): a lease was not given back", svc, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// waitAnyCopying returns once one of the accounts is in a stage that holds
// connections (a copy pass, verify). Polling one account for one stage
// misses it when its copy takes less than a poll; any of several accounts
// queued behind a budget of one copy at a time is caught.
func waitAnyCopying(t *testing.T, c client.Client, accounts []string) {
	t.Helper()
	holding := map[workflows.Stage]bool{workflows.StageCopy: true, workflows.StageFinalDelta: true,
		workflows.StageDeltaSync: true, workflows.StageVerify: true}
	deadline := time.Now().Add(90 * time.Second)
	seen := map[string]workflows.Stage{}
	for time.Now().Before(deadline) {
		for _, a := range accounts {
			p := progressOf(t, c, a)
			if holding[p.Stage] {
				return
			}
			seen[a] = p.Stage
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no account seen copying or verifying; last stages %v", seen)
}
