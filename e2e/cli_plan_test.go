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

// TestPlanIDsAreValidatedByEveryCommand: a plan ID that is not a plan ID
// is refused by every command that takes one, before anything is sent (a
// quote was once stripped, so cancel --plan "wave'x" cancelled plan
// "wavex"), and a domain is a domain (plan --domain '%' once listed every
// account).
func TestPlanIDsAreValidatedByEveryCommand(t *testing.T) {
	s := start(t, 3, 5)
	ctx := context.Background()
	s.env.DirectoryDSN = dsnOf(t, s.st)
	if err := s.env.Start(ctx, cli.StartArgs{Address: "bob@example.com", To: devstack.EmailProService, Plan: "wavex"}); err != nil {
		t.Fatal(err)
	}
	waitStage(t, s.c, "bob@example.com", workflows.StageAwaitConfirm)
	file := writePlan(t, "address,to", "alice@example.com,emailpro-1")
	long := strings.Repeat("w", 3000)
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"cancel, a quote", func() error { return s.env.Act(ctx, workflows.UpdateCancel, "wave'x", nil, "ops", "") }, `--plan: plan ID "wave'x": character '\''`},
		{"confirm, a backslash", func() error { return s.env.Act(ctx, workflows.UpdateConfirm, `wave\`, nil, "ops", "") }, `character '\\'`},
		{"status, 3000 bytes", func() error { _, err := s.env.Status(ctx, long, nil); return err }, "plan ID is 3000 bytes long; at most 100"},
		{"report, not UTF-8", func() error { return s.env.Report(ctx, "w\xffve", nil, "csv") }, "not valid UTF-8"},
		{"watch, a space", func() error { return s.env.Watch(ctx, "wave x", nil, time.Second, time.Minute) }, `character ' '`},
		{"start", func() error {
			return s.env.Start(ctx, cli.StartArgs{Address: "alice@example.com", To: devstack.EmailProService, Plan: "wave'x"})
		}, "--plan: plan ID"},
		{"plan --plan-id", func() error { return s.env.Plan(ctx, cli.PlanArgs{File: file, PlanID: "wave'x", Rate: 50}) }, "--plan-id: plan ID"},
		{"plan --domain '%'", func() error {
			return s.env.Plan(ctx, cli.PlanArgs{Domain: "%", To: devstack.EmailProService, Rate: 50})
		}, `--domain: domain "%"`},
		{"plan --domain '_xample.com'", func() error {
			return s.env.Plan(ctx, cli.PlanArgs{Domain: "_xample.com", To: devstack.EmailProService, Rate: 50})
		}, `--domain: domain "_xample.com"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.out.Reset()
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q\n%s", err, tc.want, s.out.String())
			}
			if p := waitStage(t, s.c, "bob@example.com", workflows.StageAwaitConfirm); p.Stage != workflows.StageAwaitConfirm {
				t.Fatalf("bob (plan wavex) is %s", p.Stage)
			}
		})
	}
	for _, a := range []string{"alice@example.com", "carol@example.com"} {
		if _, err := s.c.DescribeWorkflowExecution(ctx, workflows.WorkflowID(a), ""); err == nil {
			t.Fatalf("a refused command started %s", a)
		}
	}
	// The plan itself is found by its exact ID.
	if err := s.env.Act(ctx, workflows.UpdateCancel, "wavex", nil, "ops", ""); err != nil {
		t.Fatal(err)
	}
	if r := result(t, s.c, "bob@example.com"); r.Outcome != workflows.StageCancelled {
		t.Fatalf("bob: %s, want cancelled", r.Outcome)
	}
}

// TestPlanWaitWithNothingLeftToWatch: plan --wait over rows done under
// another plan says which, and returns at once (it once watched "0
// accounts" until its timeout); rows done before are not watched when
// others run.
func TestPlanWaitWithNothingLeftToWatch(t *testing.T) {
	s := start(t, 5, 5)
	s.env.DirectoryDSN = dsnOf(t, s.st)
	first := writePlan(t, "address,to,dns_interval", "carol@example.com,emailpro-1,1s", "dave@example.org,exchange-1,1s")
	if err := s.env.Plan(context.Background(), cli.PlanArgs{File: first, PlanID: "first", AutoConfirm: true, Wait: true, Rate: 50, Timeout: 3 * time.Minute}); err != nil {
		t.Fatalf("first plan: %v\n%s", err, tail(s.out.String(), 12))
	}
	mixed := writePlan(t, "address,to,dns_interval", "carol@example.com,emailpro-1,1s", "dave@example.org,exchange-1,1s", "erin@example.org,emailpro-1,1s")
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"all done under another plan", first, []string{
			"line 2 (carol@example.com): already done under plan first",
			"line 3 (dave@example.org): already done under plan first",
			"started 0, already running or done 2 (running 0, done 2)",
			"nothing to watch",
		}},
		{"one new row among done ones", mixed, []string{
			"line 3 (dave@example.org): already done under plan first",
			"started 1, already running or done 2",
			"plan second (2 rows done before, not watched)",
			"1 account: done 1",
			"erin@example.org",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.out.Reset()
			// Far below the watch's own timeout: a watch of nothing runs
			// into this deadline and fails.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err := s.env.Plan(ctx, cli.PlanArgs{File: tc.file, PlanID: "second", AutoConfirm: true, Wait: true, Rate: 50, Timeout: time.Hour})
			if err != nil {
				t.Fatalf("plan --wait: %v\n%s", err, tail(s.out.String(), 12))
			}
			for _, w := range tc.want {
				if !strings.Contains(s.out.String(), w) {
					t.Fatalf("plan --wait output lacks %q:\n%s", w, tail(s.out.String(), 15))
				}
			}
		})
	}
}
