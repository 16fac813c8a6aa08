package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/workflows"
)

func TestWatchViewBarsRatesAndETA(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	copying := func(bytes int64, msgs int) Line {
		return Line{Address: "alice@example.com", Status: "Running", Stage: workflows.StageCopy,
			Progress: &workflows.Progress{Stage: workflows.StageCopy, MessagesTotal: 1000, BytesTotal: 100 << 20},
			Live:     &activities.CopyHeartbeat{Copied: msgs, Bytes: bytes}}
	}
	done := Line{Address: "bob@example.com", Status: "Completed", Stage: workflows.StageDone,
		Result: &workflows.Result{Outcome: workflows.StageDone, Copied: 90, Present: 10, Bytes: 100 << 20}}
	stuck := Line{Address: "carol@example.com", Status: "Running", Stage: workflows.StageNeedsAttention,
		Progress: &workflows.Progress{Stage: workflows.StageNeedsAttention, FailedStage: workflows.StagePreflight, ErrorType: "Redirection",
			LastError: "account has forward to x@y", NextActions: []string{"retry", "cancel"}}}
	v := newWatchView()
	first := v.render("plan p1", []Line{copying(25<<20, 250), done, stuck}, t0)
	for _, want := range []string{
		"plan p1 — 3 accounts: copy 1, done 1, needs-attention 1",
		"all", "[###############.........]   62%  350/1100 msgs  125.0 MB/200.0 MB  -  ETA ?",
		"alice@example.com", "[######..................]   25%  250/1000 msgs  25.0 MB/100.0 MB  -  ETA ?  (copy)",
		"carol@example.com                waits: needs attention at preflight: [Redirection] account has forward to x@y; next: retry, cancel",
	} {
		if !strings.Contains(first, want) {
			t.Fatalf("first frame lacks %q:\n%s", want, first)
		}
	}
	// 10 s later alice has 50 MB more: 5 MB/s, 25 MB left, ETA 5s.
	second := v.render("plan p1", []Line{copying(75<<20, 750), done, stuck}, t0.Add(10*time.Second))
	for _, want := range []string{
		"[##################......]   75%  750/1000 msgs  75.0 MB/100.0 MB  5.0 MB/s  ETA 5s  (copy)",
		"175.0 MB/200.0 MB  5.0 MB/s  ETA 5s",
	} {
		if !strings.Contains(second, want) {
			t.Fatalf("second frame lacks %q:\n%s", want, second)
		}
	}
	ended := Line{Address: "dave@example.com", Status: "Terminated", Error: "terminated by ops"}
	third := v.render("plan p1", []Line{ended}, t0.Add(20*time.Second))
	if !strings.Contains(third, "dave@example.com                 ended: terminated: terminated by ops") {
		t.Fatalf("third frame does not show the terminated migration:\n%s", third)
	}
}

func TestStageSeconds(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	stages := []workflows.StageEvent{
		{Stage: workflows.StagePreflight, At: at(0)},
		{Stage: workflows.StageNeedsAttention, At: at(2)},
		{Stage: "operator:retry", At: at(60)},
		{Stage: workflows.StagePreflight, At: at(60)},
		{Stage: workflows.StageCopy, At: at(61)},
		{Stage: workflows.StageDone, At: at(100)},
	}
	got := StageSeconds(stages, at(100))
	if want := "preflight=3.0;needs-attention=58.0;copy=39.0;done=0.0"; got != want {
		t.Fatalf("StageSeconds = %q, want %q", got, want)
	}
}
