package e2e

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

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
	waitConnected(t, st.Source)
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

// waitConnected returns once the server has a connection open: a
// migration holds its leases and works. (A small mailbox's copy passes run
// inside one workflow task, which no progress query sees mid-way.)
func waitConnected(t *testing.T, is *devstack.IMAPServer) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if open, _ := is.Connections(); open > 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("no connection opened to the source in 90 s")
}
