//go:build cluster

package cluster_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/internal/cluster"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/workflows"
)

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

func startCluster(t *testing.T) *cluster.Cluster {
	t.Helper()
	bin, err := cluster.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := cluster.TempDir()
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Start(context.Background(), cluster.Options{Dir: dir, Bin: bin})
	if err != nil {
		t.Fatalf("%v (files kept in %s)", err, dir)
	}
	t.Cleanup(func() {
		c.Stop()
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("cluster files kept in %s", dir)
		}
	})
	return c
}

// probe is a workflow that marks itself with the plan's search attribute,
// runs an activity, sleeps across the services' restarts and runs another.
func probe(ctx workflow.Context, plan string) (int, error) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, workflows.SAPlan.ValueSet(plan), workflows.SAStage.ValueSet("pre-copy")); err != nil {
		return 0, err
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumInterval: time.Second}})
	var n int
	if err := workflow.ExecuteActivity(ctx, "Count", 1).Get(ctx, &n); err != nil {
		return 0, err
	}
	if err := workflow.Sleep(ctx, 8*time.Second); err != nil {
		return 0, err
	}
	var m int
	if err := workflow.ExecuteActivity(ctx, "Count", n).Get(ctx, &m); err != nil {
		return 0, err
	}
	return m, workflow.UpsertTypedSearchAttributes(ctx, workflows.SAStage.ValueSet("done"))
}

// The cluster refuses a client without the lab CA's certificate, runs
// workflows for one with it across a SIGKILL of the history service and a
// restart of matching and frontend, and answers visibility queries on
// mailshift's search attributes from PostgreSQL.
func TestClusterMTLSRestartsAndVisibility(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// No client certificate: the frontend refuses the handshake.
	noCert := config.TemporalTLS{CAFile: c.State.Certs.CA, ServerName: "localhost"}
	tlsCfg, err := noCert.Config()
	if err != nil {
		t.Fatal(err)
	}
	opts := client.Options{HostPort: c.Frontend(), Namespace: "default", Logger: quiet{}}
	opts.ConnectionOptions.TLS = tlsCfg
	if bad, err := client.Dial(opts); err == nil {
		_, err = bad.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
		bad.Close()
		if err == nil {
			t.Fatal("a client without a certificate described the namespace, want it refused")
		}
	}
	// Plaintext: refused too.
	if bad, err := client.Dial(client.Options{HostPort: c.Frontend(), Namespace: "default", Logger: quiet{}}); err == nil {
		_, err = bad.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
		bad.Close()
		if err == nil {
			t.Fatal("a plaintext client described the namespace, want it refused")
		}
	}

	cl, err := c.Dial(quiet{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	w := worker.New(cl, "cluster-probe", worker.Options{})
	w.RegisterWorkflowWithOptions(probe, workflow.RegisterOptions{Name: "Probe"})
	w.RegisterActivityWithOptions(func(ctx context.Context, n int) (int, error) { return n + 1, nil }, activity.RegisterOptions{Name: "Count"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	const n = 8 // over 4 shards
	var runs []client.WorkflowRun
	for i := range n {
		r, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("probe-%d", i), TaskQueue: "cluster-probe"}, "Probe", "plan-x")
		if err != nil {
			t.Fatalf("start probe-%d: %v", i, err)
		}
		runs = append(runs, r)
	}
	// Every workflow sleeps now; crash history under them, then restart
	// matching and the frontend the client is connected to.
	if err := c.RestartService("history", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartService("matching", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartService("frontend", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i, r := range runs {
		var got int
		if err := r.Get(ctx, &got); err != nil {
			t.Fatalf("probe-%d: %v", i, err)
		}
		if got != 3 {
			t.Fatalf("probe-%d = %d, want 3 (two activities)", i, got)
		}
	}
	// Visibility is eventually consistent: wait for the count.
	var count int64
	for ctx.Err() == nil {
		resp, err := cl.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: "default",
			Query: `MigrationPlan = "plan-x" AND MigrationStage = "done"`})
		if err == nil {
			count = resp.Count
			if count == n {
				break
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	if count != n {
		t.Fatalf("CountWorkflow(MigrationPlan = plan-x AND MigrationStage = done) = %d, want %d", count, n)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatalf("Health() after the restarts = %v", err)
	}
	starterOverMTLS(t, c)
	// PostgreSQL crashes under the running cluster: it comes back healthy.
	if err := c.RestartPostgres(); err != nil {
		t.Fatal(err)
	}
	// For a few seconds after the crash the services' pools hold dead
	// connections and a namespace lookup can fail (seen: "Namespace
	// default is not found" from a start): a starter retries, so does
	// this test, for at most a minute.
	var r client.WorkflowRun
	t0 := time.Now()
	for {
		r, err = cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "probe-after-pg", TaskQueue: "cluster-probe"}, "Probe", "plan-y")
		if err == nil {
			break
		}
		if time.Since(t0) > time.Minute {
			t.Fatalf("start after the PostgreSQL restart, still failing after a minute: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("first start after the PostgreSQL crash accepted after %s", time.Since(t0).Round(100*time.Millisecond))
	var got int
	if err := r.Get(ctx, &got); err != nil || got != 3 {
		t.Fatalf("probe after the PostgreSQL restart = %d, %v; want 3", got, err)
	}
}

// starterOverMTLS runs the starter binary against the cluster: with the
// client certificate in its environment it lists the plan's migrations by
// their search attribute; without it, the frontend refuses it.
func starterOverMTLS(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "starter")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/mailshift/mailshift/starter").CombinedOutput(); err != nil {
		t.Fatalf("build the starter: %v: %s", err, out)
	}
	tt := c.ClientTLS()
	status := func(env ...string) (string, error) {
		cmd := exec.Command(bin, "--temporal", c.Frontend(), "status", "--plan", "plan-x")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := status("MAILSHIFT_TEMPORAL_TLS_CERT="+tt.CertFile, "MAILSHIFT_TEMPORAL_TLS_KEY="+tt.KeyFile,
		"MAILSHIFT_TEMPORAL_TLS_CA="+tt.CAFile, "MAILSHIFT_TEMPORAL_TLS_SERVER_NAME="+tt.ServerName)
	if strings.Contains(out, "failed reaching server") || strings.Contains(out, "certificate") || !strings.Contains(out, "probe") {
		t.Fatalf("starter status over mTLS = %v:\n%s\nwant the plan's workflows listed", err, out)
	}
	out, err = status("MAILSHIFT_TEMPORAL_TLS_CA=" + tt.CAFile)
	if err == nil {
		t.Fatalf("starter status without a client certificate succeeded:\n%s", out)
	}
}
