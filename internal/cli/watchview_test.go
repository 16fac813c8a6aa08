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
		"all", "[###############.........]   62%  350/1100 msgs  125.0 MB/200.0 MB  -  ETA ? (1 account waiting, not counted)",
		"alice@example.com", "[######..................]   25%  250/1000 msgs  25.0 MB/100.0 MB  -  ETA ?  (copy)",
		"carol@example.com                needs-attention: failed at preflight: [Redirection] account has forward to x@y; to move on: starter retry carol@example.com",
	} {
		if !strings.Contains(first, want) {
			t.Fatalf("first frame lacks %q:\n%s", want, first)
		}
	}
	// 10 s later alice has 50 MB more: 5 MB/s, 25 MB left, ETA 5s; the
	// plan's ETA counts alice only, and says carol waits.
	second := v.render("plan p1", []Line{copying(75<<20, 750), done, stuck}, t0.Add(10*time.Second))
	for _, want := range []string{
		"[##################......]   75%  750/1000 msgs  75.0 MB/100.0 MB  5.0 MB/s  ETA 5s  (copy)",
		"175.0 MB/200.0 MB  5.0 MB/s  ETA 5s (1 account waiting, not counted)",
	} {
		if !strings.Contains(second, want) {
			t.Fatalf("second frame lacks %q:\n%s", want, second)
		}
	}
	// alice done: her result counts what was copied (an excluded folder
	// left out), but the plan's totals stay those measured.
	aliceDone := Line{Address: "alice@example.com", Status: "Completed", Stage: workflows.StageDone,
		Result: &workflows.Result{Outcome: workflows.StageDone, Copied: 900, Bytes: 90 << 20}}
	if f := v.render("plan p1", []Line{aliceDone, done, stuck}, t0.Add(15*time.Second)); !strings.Contains(f, "1100/1100 msgs  200.0 MB/200.0 MB") {
		t.Fatalf("totals changed when alice finished:\n%s", f)
	}
	ended := Line{Address: "dave@example.com", Status: "Terminated", Error: "terminated by ops"}
	third := v.render("plan p1", []Line{ended}, t0.Add(20*time.Second))
	if !strings.Contains(third, "dave@example.com                 ended: terminated: terminated by ops") {
		t.Fatalf("third frame does not show the terminated migration:\n%s", third)
	}
}

// TestWatchViewWaitingAccounts: each waiting account says what it waits
// for, when it looks again and the command that moves it on; the second
// pass of a copy adds its heartbeat to what the first copied.
func TestWatchViewWaitingAccounts(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	slot := Line{Address: "dave@example.com", Status: "Running", Stage: workflows.StageWaitingForSlot,
		Progress: &workflows.Progress{Stage: workflows.StageWaitingForSlot, WaitingFor: "a free account on exchange-1 with 1.0 MiB of quota; next check 10:05, or now with recheck",
			NextCheck: t0.Add(5 * time.Minute), NextActions: []string{"cancel", "recheck"}}}
	window := Line{Address: "erin@example.com", Status: "Running", Stage: workflows.StageWaitWindow,
		Progress: &workflows.Progress{Stage: workflows.StageWaitWindow, WaitingFor: "the cutover window (opens 2026-11-24 22:00 CET)",
			NextActions: []string{"cancel", "cutover-now", "set-window"}}}
	second := Line{Address: "frank@example.com", Status: "Running", Stage: workflows.StageCopy,
		Progress: &workflows.Progress{Stage: workflows.StageCopy, MessagesTotal: 100, BytesTotal: 1000, MessagesDone: 90, BytesDone: 900},
		Live:     &activities.CopyHeartbeat{Copied: 5, Bytes: 50}}
	window.Progress.NextCheck = t0.Add(12 * time.Hour)
	f := newWatchView().render("plan p2", []Line{slot, window, second}, t0)
	for _, want := range []string{
		"3 accounts: waiting-for-slot 1, copy 1, waiting-for-window 1",
		"dave@example.com                 waiting-for-slot: waits for a free account on exchange-1 with 1.0 MiB of quota; next check 10:05, or now with recheck; to move on: starter recheck dave@example.com",
		"erin@example.com                 waiting-for-window: waits for the cutover window (opens 2026-11-24 22:00 CET); next check in 12h0m0s; to move on: starter cutover-now erin@example.com",
		"95/100 msgs  950 B/1000 B",
		"ETA ? (2 accounts waiting, not counted)",
	} {
		if !strings.Contains(f, want) {
			t.Fatalf("frame lacks %q:\n%s", want, f)
		}
	}
}

// TestWatchViewBarNeverFallsBackDuringTheCopy: when the copy activity has
// ended but the workflow has not yet recorded its result, the progress
// shows neither the heartbeat nor the pass; the bar stays where it was.
func TestWatchViewBarNeverFallsBackDuringTheCopy(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	p := workflows.Progress{Stage: workflows.StageCopy, MessagesTotal: 100, BytesTotal: 1000}
	v := newWatchView()
	live := v.render("p", []Line{{Address: "a@example.com", Status: "Running", Stage: workflows.StageCopy, Progress: &p,
		Live: &activities.CopyHeartbeat{Copied: 98, Bytes: 980}}}, t0)
	gap := v.render("p", []Line{{Address: "a@example.com", Status: "Running", Stage: workflows.StageCopy, Progress: &p}}, t0.Add(time.Second))
	for _, f := range []string{live, gap} {
		if !strings.Contains(f, "98/100 msgs") {
			t.Fatalf("frame lacks 98/100 msgs:\n%s", f)
		}
	}
}

func TestCountAndRefusal(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{count(1, "account"), "1 account"}, {count(2, "account"), "2 accounts"}, {count(0, "problem"), "0 problems"},
		{count(1, "redirection"), "1 redirection"},
		{refusal("refused: refused: confirm is only possible"), "confirm is only possible"},
		{refusal("no running migration"), "no running migration"},
	} {
		if tc.got != tc.want {
			t.Fatalf("got %q, want %q", tc.got, tc.want)
		}
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
