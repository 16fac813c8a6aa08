package e2e

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/metrics"
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
