// Package grafana holds mailshift's Grafana dashboard (mailshift.json) and
// the test that keeps its queries on metrics the worker exports.
package grafana

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/app"
	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/metrics"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

// metricName matches the metric names a query can use: mailshift's and the
// Temporal SDK's.
var metricName = regexp.MustCompile(`\b(?:mailshift|temporal)_[a-z0-9_]+\b`)

// TestDashboardQueriesNameExportedMetrics: every panel query of the
// dashboard names at least one metric, and every metric it names is one
// the worker's registry exports once the worker has counted a copy, the
// workflow has recorded its stage and outcome metrics through the SDK's
// handler, and the stage gauge has been read from a real Temporal server.
func TestDashboardQueriesNameExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("mailshift.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("mailshift.json: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("mailshift.json has no panels")
	}

	exported := exportedMetrics(t)
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			names := metricName.FindAllString(q.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no mailshift metric", p.Title, q.Expr)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("panel %q: query %q names %s, which the worker does not export (it exports %s)", p.Title, q.Expr, n, keys(exported))
				}
			}
		}
	}
}

// exportedMetrics is every sample name the worker's registry serves after
// each of mailshift's metrics has been recorded once.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	_, c := testenv.StartTemporal(t, "")
	m := metrics.New()
	defer m.Close()
	m.Copied(3, 4096)
	m.Throttled("mxplan-1", mailcopy.OverloadUnavailable)
	// A real budget workflow, kept running by a paused plan, read the way
	// the worker reads it.
	w := app.NewWorker(c, workflows.TaskQueue, &activities.Activities{}, worker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	id := workflows.BudgetWorkflowID("mxplan-1")
	if _, err := c.SignalWithStartWorkflow(context.Background(), id, workflows.SignalPause, workflows.PlanAdmission{Plan: "p"},
		client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, workflows.BudgetWorkflowName,
		workflows.BudgetState{Service: "mxplan-1", Limit: 4, Share: 4}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := m.RefreshBudgets(context.Background(), c, workflows.BudgetWorkflowName, app.ReadBudget); err != nil {
			t.Fatal(err)
		}
		if fams, _ := m.Registry.Gather(); hasFamily(fams, "mailshift_budget_share") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the running budget was never read")
		}
		time.Sleep(200 * time.Millisecond)
	}
	h := m.Temporal()
	h.WithTags(map[string]string{"stage": string(workflows.StageCopy)}).Timer(workflows.MetricStageDuration).Record(time.Second)
	h.WithTags(map[string]string{"stage": string(workflows.StagePreflight), "error_type": "RedirectionPresent"}).Counter(workflows.MetricNeedsAttention).Inc(1)
	h.WithTags(map[string]string{"outcome": string(workflows.StageDone)}).Counter(workflows.MetricFinished).Inc(1)
	h.WithTags(map[string]string{"outcome": string(workflows.StageDone)}).Timer(workflows.MetricMigrationDuration).Record(time.Minute)
	stages := []string{string(workflows.StageNeedsAttention)}
	if err := m.Refresh(context.Background(), c, stages); err != nil {
		t.Fatal(err)
	}
	// The SDK's metrics reach the registry on its reporting loop (every
	// second): wait for the last of them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		names := map[string]bool{}
		fams, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			names[f.GetName()] = true
			switch f.GetType().String() {
			case "HISTOGRAM":
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					names[f.GetName()+s] = true
				}
			case "SUMMARY":
				names[f.GetName()+"_sum"], names[f.GetName()+"_count"] = true, true
			}
		}
		if names["mailshift_migration_duration_seconds_bucket"] && names["mailshift_migrations_finished_total"] {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("the workflow's metrics did not reach the registry: %s", keys(names))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hasFamily(fams []*dto.MetricFamily, name string) bool {
	for _, f := range fams {
		if f.GetName() == name {
			return true
		}
	}
	return false
}

func keys(m map[string]bool) string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, "mailshift_") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
