package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/workflows"
)

// TestDryRunCountsSlotsOfRowsThatWouldStart: an account already migrated
// is "already done", neither blocked nor counted against the free slots;
// a blocked row (a redirection) takes no slot either, so the rows that
// would start get the slots there are.
func TestDryRunCountsSlotsOfRowsThatWouldStart(t *testing.T) {
	s := start(t, 8, 5)
	ctx := context.Background()
	s.env.DirectoryDSN = dsnOf(t, s.st)
	if _, _, err := cli.StartOne(ctx, s.c, workflows.Input{Address: "carol@example.com", To: devstack.ExchangeService, AutoConfirm: true, DNSInterval: "1s"}); err != nil {
		t.Fatal(err)
	}
	if r := result(t, s.c, "carol@example.com"); r.Outcome != workflows.StageDone {
		t.Fatalf("carol: %s", r.Outcome)
	}
	free, err := s.st.Dir.FreeSlots(ctx, devstack.ExchangeService, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(free) != 2 {
		t.Fatalf("%d free slots on exchange-1 after carol, want 2", len(free))
	}
	if err := s.st.Dir.AddRedirection(ctx, directoryRedirection("dave@example.org")); err != nil {
		t.Fatal(err)
	}
	// carol done, dave blocked by his forward: alice and bob take the two
	// slots; with erin a third row wants one.
	for _, tc := range []struct {
		name string
		rows []string
		want []string
		err  string
	}{
		{"as many rows as slots", []string{"carol@example.com,exchange-1", "dave@example.org,exchange-1", "alice@example.com,exchange-1", "bob@example.com,exchange-1"},
			[]string{"already done: the account is migrated", "would start 2, already done 1, already running 0, blocked 1"}, "dry run: 1 row would block, 0 rows have problems"},
		{"one row more", []string{"carol@example.com,exchange-1", "alice@example.com,exchange-1", "bob@example.com,exchange-1", "erin@example.org,exchange-1"},
			[]string{"erin@example.org   exchange-1  block: wait for a free slot on exchange-1", "would start 2, already done 1, already running 0, blocked 1"}, "dry run: 1 row would block"},
		{"nothing blocks", []string{"carol@example.com,exchange-1", "alice@example.com,exchange-1"},
			[]string{"would start 1, already done 1", "dry run: no row would block; nothing started"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.out.Reset()
			err := s.env.Plan(ctx, cli.PlanArgs{File: writePlan(t, append([]string{"address,to"}, tc.rows...)...), PlanID: "dry2", DryRun: true})
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q\n%s", err, tc.err, s.out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(s.out.String(), w) {
					t.Fatalf("output lacks %q:\n%s", w, s.out.String())
				}
			}
			t.Logf("\n%s", s.out.String())
		})
	}
	for _, a := range []string{"alice@example.com", "bob@example.com", "erin@example.org"} {
		if _, err := s.c.DescribeWorkflowExecution(ctx, workflows.WorkflowID(a), ""); err == nil {
			t.Fatalf("a dry run started %s", a)
		}
	}
}

func directoryRedirection(addr string) directory.Redirection {
	return directory.Redirection{Address: addr, Kind: "forward", Target: "elsewhere@example.net"}
}
