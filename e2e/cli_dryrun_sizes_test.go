package e2e

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/workflows"
)

// TestDryRunMeasuresMailboxes: plan --dry-run asks the worker to measure
// each row's source mailbox and shows its size, its largest message against
// the destination's limit (flagged when over, with how many messages would
// be skipped) and an estimated duration. The numbers are checked against
// what the migration then does: the messages the dry run counted over the
// limit are exactly the ones the copy skips as too big, and its message
// count is preflight's.
func TestDryRunMeasuresMailboxes(t *testing.T) {
	s := start(t, 2, 30)
	ctx := context.Background()
	s.env.DirectoryDSN = dsnOf(t, s.st)
	small, err := s.st.Dir.Service(ctx, devstack.EmailProService)
	if err != nil {
		t.Fatal(err)
	}
	small.ID, small.MaxMessageBytes = "emailpro-small", 4000
	if err := s.st.Dir.AddService(ctx, small); err != nil {
		t.Fatal(err)
	}
	if err := s.st.AddSlots(ctx, small.ID, 1, 5<<30); err != nil {
		t.Fatal(err)
	}
	err = s.env.Plan(ctx, cli.PlanArgs{File: writePlan(t, "address,to", "alice@example.com,"+small.ID, "bob@example.com,"+devstack.EmailProService),
		PlanID: "sizes", DryRun: true})
	out := s.out.String()
	t.Logf("\n%s", out)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	alice := regexp.MustCompile(`alice@example.com\s+emailpro-small\s+start\s+(\d+) messages, \S+ \S+\s+\S+ \S+ / limit 3.9 KB OVER LIMIT \((\d+) messages? would be skipped\)\s+(\S+)`).FindStringSubmatch(out)
	if alice == nil {
		t.Fatalf("no alice row with her size, the limit flagged and an estimate:\n%s", out)
	}
	bob := regexp.MustCompile(`bob@example.com\s+emailpro-1\s+start\s+(\d+) messages, .*\ds\n`).FindStringSubmatch(out)
	if bob == nil || strings.Contains(strings.SplitN(out[strings.Index(out, "bob@"):], "\n", 2)[0], "OVER") {
		t.Fatalf("bob's row lacks his size and estimate, or is flagged without a limit:\n%s", out)
	}
	for _, want := range []string{"would start 2", "the rows that would start hold", "1 account holds messages over the destination's size limit"} {
		if !strings.Contains(out, want) {
			t.Fatalf("dry run lacks %q", want)
		}
	}
	msgs, _ := strconv.Atoi(alice[1])
	over, _ := strconv.Atoi(alice[2])

	// Now the migration itself.
	if _, _, err := cli.StartOne(ctx, s.c, workflows.Input{Address: "alice@example.com", To: small.ID, AutoConfirm: true, DNSInterval: "1s", MaxSkipped: 1000}); err != nil {
		t.Fatal(err)
	}
	r := result(t, s.c, "alice@example.com")
	tooBig, source := 0, 0
	for _, it := range r.Skipped {
		if it.Category == mailcopy.CatTooBig {
			tooBig++
		}
	}
	for _, f := range r.FolderRows {
		source += f.SourceMessages
	}
	if r.Outcome != workflows.StageDone || tooBig != over || source != msgs || over == 0 {
		t.Fatalf("migration: %s, %d skipped as too big, %d at the source; the dry run said %d over the limit of %d messages",
			r.Outcome, tooBig, source, over, msgs)
	}
}
