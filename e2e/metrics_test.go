package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/mailshift/mailshift/internal/app"
	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/metrics"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

// TestMetricsShowBlockedMigrations: the worker's /metrics counts copied
// messages and the migrations waiting for an operator.
func TestMetricsShowBlockedMigrations(t *testing.T) {
	s := start(t, 7, 10)
	ctx := context.Background()
	m := metrics.New()
	m.Copied(12, 3400)
	if err := s.st.Dir.AddRedirection(ctx, directory.Redirection{Address: "grace@example.org", Kind: "forward", Target: "g@elsewhere.test"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli.StartOne(ctx, s.c, workflows.Input{Address: "grace@example.org", To: devstack.EmailProService}); err != nil {
		t.Fatal(err)
	}
	waitStage(t, s.c, "grace@example.org", workflows.StageNeedsAttention)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := m.Refresh(ctx, s.c, []string{string(workflows.StageNeedsAttention)}); err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text := string(body)
		if !strings.Contains(text, "mailshift_messages_copied_total 12") || !strings.Contains(text, "mailshift_bytes_copied_total 3400") {
			t.Fatalf("copy counters missing:\n%s", text)
		}
		if strings.Contains(text, `mailshift_migrations{stage="needs-attention"} 1`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("blocked migration not counted:\n%s", text)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMetricsSDKAndStageDurations: with the worker's metrics handler on the
// Temporal client, /metrics carries the SDK's own metrics and the
// workflow's stage-duration histograms, outcome and needs-attention
// counters — each counted once, although a second worker replays a blocked
// migration's history from the start before finishing it.
func TestMetricsSDKAndStageDurations(t *testing.T) {
	srv, _ := testenv.StartTemporal(t, "")
	m := metrics.New()
	defer m.Close()
	c, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Logger: cli.QuietLogger{}, MetricsHandler: m.Temporal()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	st, acts, w := devPlatform(t, c, 3, 20)
	if err := st.Dir.AddRedirection(ctx, directory.Redirection{Address: "bob@example.com", Kind: "forward", Target: "b@elsewhere.test"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"alice@example.com", "bob@example.com"} {
		if _, _, err := cli.StartOne(ctx, c, workflows.Input{Address: a, To: devstack.EmailProService, AutoConfirm: true, DNSInterval: "1s"}); err != nil {
			t.Fatal(err)
		}
	}
	if r := result(t, c, "alice@example.com"); r.Outcome != workflows.StageDone {
		t.Fatalf("alice: %s", r.Outcome)
	}
	waitStage(t, c, "bob@example.com", workflows.StageNeedsAttention)
	// A new worker with an empty cache: bob's history is replayed from
	// the start (preflight, needs-attention) before the retry goes on.
	w.Stop()
	worker.PurgeStickyWorkflowCache()
	w2 := app.NewWorker(c, workflows.TaskQueue, acts, worker.Options{})
	if err := w2.Start(); err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	if err := st.Dir.RemoveRedirections(ctx, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Update(ctx, c, workflows.WorkflowID("bob@example.com"), workflows.UpdateRetry, workflows.ActionInput{By: "test"}); err != nil {
		t.Fatal(err)
	}
	if r := result(t, c, "bob@example.com"); r.Outcome != workflows.StageDone {
		t.Fatalf("bob: %s", r.Outcome)
	}
	hs := httptest.NewServer(m.Mux(func() error {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := c.CheckHealth(hctx, &client.CheckHealthRequest{})
		return err
	}))
	defer hs.Close()
	get := func(path string) (int, string) {
		resp, err := hs.Client().Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// name, label pairs the sample must carry, and its value ("" any).
	type sample struct{ name, labels, value string }
	want := []sample{
		{"mailshift_migrations_finished_total", `outcome="done"`, "2"},
		{"mailshift_needs_attention_total", `error_type="RedirectionPresent" stage="preflight"`, "1"},
		// alice once, bob twice (before and after the retry).
		{"mailshift_stage_duration_seconds_count", `stage="preflight"`, "3"},
		{"mailshift_stage_duration_seconds_count", `stage="needs-attention"`, "1"},
		{"mailshift_stage_duration_seconds_count", `stage="copy"`, "2"},
		{"mailshift_stage_duration_seconds_count", `stage="dns-propagation"`, "2"},
		{"mailshift_stage_duration_seconds_bucket", `stage="copy" le="+Inf"`, "2"},
		{"mailshift_migration_duration_seconds_count", `outcome="done"`, "2"},
		{"temporal_workflow_completed_total", `workflow_type="MigrateAccount"`, ""},
		// A small mailbox copies in local activities (State.Local).
		{"temporal_local_activity_execution_latency_seconds_bucket", `activity_type="CopyMailbox"`, ""},
		{"temporal_workflow_task_replay_latency_seconds_count", "", ""},
	}
	has := func(text string, w sample) bool {
		for _, l := range strings.Split(text, "\n") {
			if !strings.HasPrefix(l, w.name+"{") || (w.value != "" && !strings.HasSuffix(l, "} "+w.value)) {
				continue
			}
			ok := true
			for _, pair := range strings.Fields(w.labels) {
				ok = ok && strings.Contains(l, pair)
			}
			if ok {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, text := get("/metrics")
		missing := ""
		for _, w := range want {
			if !has(text, w) {
				missing = fmt.Sprintf("%s{%s} %s", w.name, w.labels, w.value)
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			var ours []string
			for _, l := range strings.Split(text, "\n") {
				if strings.HasPrefix(l, "mailshift_") {
					ours = append(ours, l)
				}
			}
			t.Fatalf("/metrics lacks %q; mailshift lines:\n%s", missing, strings.Join(ours, "\n"))
		}
		time.Sleep(300 * time.Millisecond)
	}
	// Probes: alive and ready; once Temporal is gone, alive but not ready.
	if code, body := get("/healthz"); code != 200 {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("/readyz with Temporal up = %d %q", code, body)
	}
	w2.Stop()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz with Temporal down = %d, want 200 (a restart would not help)", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "not ready") {
		t.Fatalf("/readyz with Temporal down = %d %q, want 503 with the reason", code, body)
	}

}
