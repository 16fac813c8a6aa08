package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/workflows"
)

// TestUpdatesAnswerInPlainWords: every operator command prints the
// workflow's own answer, once ("confirm refused: refused:" is gone), with
// correct plurals; status names what a waiting migration waits for and the
// command that moves it on; recheck takes a slot added meanwhile without
// waiting for the next look; set-window and cutover-now move a migration
// waiting for its window; a cancelled migration's DNS reads "untouched".
func TestUpdatesAnswerInPlainWords(t *testing.T) {
	s := start(t, 6, 5)
	ctx := context.Background()
	act := func(action string, in workflows.ActionInput, addrs ...string) (string, error) {
		t.Helper()
		s.out.Reset()
		err := s.env.ActWith(ctx, action, "", addrs, in)
		return s.out.String(), err
	}
	status := func(addrs ...string) string {
		t.Helper()
		s.out.Reset()
		if _, err := s.env.Status(ctx, "", addrs); err != nil {
			t.Fatal(err)
		}
		return s.out.String()
	}
	contains := func(what, text string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Fatalf("%s lacks %q:\n%s", what, w, text)
			}
		}
		if strings.Contains(text, "refused: refused") || strings.Contains(text, "1 accounts") || strings.Contains(text, "1 migrations") {
			t.Fatalf("%s says something twice or in the wrong number:\n%s", what, text)
		}
	}

	// Confirm: the answer, then a refusal said once.
	if _, _, err := cli.StartOne(ctx, s.c, workflows.Input{Address: "alice@example.com", To: devstack.EmailProService, DNSInterval: "1s"}); err != nil {
		t.Fatal(err)
	}
	waitStage(t, s.c, "alice@example.com", workflows.StageAwaitConfirm)
	contains("status while awaiting confirmation", status("alice@example.com"), "1 account: awaiting-confirmation 1",
		"to move on: starter confirm alice@example.com")
	out, err := act(workflows.UpdateConfirm, workflows.ActionInput{By: "ops"}, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	contains("confirm", out, "alice@example.com: confirmed by ops: the migration goes on")
	out, err = act(workflows.UpdateConfirm, workflows.ActionInput{By: "ops"}, "alice@example.com")
	if err == nil || err.Error() != "confirm refused for 1 of 1 migration" {
		t.Fatalf("second confirm: err = %v", err)
	}
	contains("second confirm", out, "alice@example.com: confirm refused: ")
	if r := result(t, s.c, "alice@example.com"); r.Outcome != workflows.StageDone {
		t.Fatalf("alice: %s", r.Outcome)
	}
	contains("status of a done migration", status("alice@example.com"), " ok ")

	// Recheck: a service with no free account, then one added.
	ep, err := s.st.Dir.Service(ctx, devstack.EmailProService)
	if err != nil {
		t.Fatal(err)
	}
	ep.ID = "emailpro-2"
	if err := s.st.Dir.AddService(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli.StartOne(ctx, s.c, workflows.Input{Address: "bob@example.com", To: "emailpro-2", AutoConfirm: true, SlotRecheck: "2h", DNSInterval: "1s"}); err != nil {
		t.Fatal(err)
	}
	waitStage(t, s.c, "bob@example.com", workflows.StageWaitingForSlot)
	contains("status while waiting for a slot", status("bob@example.com"), "waits for a free account on emailpro-2", "to move on: starter recheck bob@example.com")
	if err := s.st.AddSlots(ctx, "emailpro-2", 1, 5<<30); err != nil {
		t.Fatal(err)
	}
	out, err = act(workflows.UpdateRecheck, workflows.ActionInput{By: "ops"}, "bob@example.com")
	if err != nil {
		t.Fatalf("recheck: %v\n%s", err, out)
	}
	contains("recheck", out, "bob@example.com: looking for a free account on emailpro-2 now")
	// Far sooner than the 2 h recheck.
	if r := result(t, s.c, "bob@example.com"); r.Outcome != workflows.StageDone {
		t.Fatalf("bob: %s", r.Outcome)
	}

	// A cutover a day away: set-window, then cutover-now.
	after := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	if _, _, err := cli.StartOne(ctx, s.c, workflows.Input{Address: "carol@example.com", To: devstack.EmailProService, AutoConfirm: true, CutoverAfter: after, DNSInterval: "1s"}); err != nil {
		t.Fatal(err)
	}
	waitStage(t, s.c, "carol@example.com", workflows.StageWaitWindow)
	contains("status while waiting for the window", status("carol@example.com"), "waits for the cutover window", "to move on: starter cutover-now carol@example.com")
	out, err = act(workflows.UpdateSetWindow, workflows.ActionInput{By: "ops", Window: "22:00-06:00 Europe/Paris"}, "carol@example.com")
	if err != nil {
		t.Fatalf("set-window: %v\n%s", err, out)
	}
	contains("set-window", out, "carol@example.com: cutover window set to 22:00-06:00 Europe/Paris")
	if err := s.env.ActWith(ctx, workflows.UpdateSetWindow, "", []string{"carol@example.com"}, workflows.ActionInput{Window: "25:00-06:00 UTC"}); err == nil || !strings.HasPrefix(err.Error(), "--window:") {
		t.Fatalf("a bad window: err = %v", err)
	}
	out, err = act(workflows.UpdateCutoverNow, workflows.ActionInput{By: "ops"}, "carol@example.com")
	if err != nil {
		t.Fatalf("cutover-now: %v\n%s", err, out)
	}
	contains("cutover-now", out, "carol@example.com: cutting over now")
	if r := result(t, s.c, "carol@example.com"); r.Outcome != workflows.StageDone {
		t.Fatalf("carol: %s", r.Outcome)
	}

	// Cancel: the answer, and DNS untouched in the status.
	if _, _, err := cli.StartOne(ctx, s.c, workflows.Input{Address: "dave@example.org", To: devstack.EmailProService}); err != nil {
		t.Fatal(err)
	}
	waitStage(t, s.c, "dave@example.org", workflows.StageAwaitConfirm)
	out, err = act(workflows.UpdateCancel, workflows.ActionInput{By: "ops"}, "dave@example.org")
	if err != nil {
		t.Fatal(err)
	}
	contains("cancel", out, "dave@example.org: cancelled")
	if r := result(t, s.c, "dave@example.org"); r.Outcome != workflows.StageCancelled {
		t.Fatalf("dave: %s", r.Outcome)
	}
	st := status("dave@example.org")
	contains("status of a cancelled migration", st, "1 account: cancelled 1", "untouched")
	if strings.Contains(st, " ok ") || strings.Contains(st, "canceled") {
		t.Fatalf("a cancelled migration reads DNS ok or 'canceled':\n%s", st)
	}
	t.Logf("\n%s", st)
}
