package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/workflows"
)

// TestImportChecksEveryRowFirst: an import file with wrong rows lists each
// problem and imports nothing (it once imported the rows before the first
// wrong one, or said so when nothing had been); fixed, it imports all, and
// run again it skips what is there.
func TestImportChecksEveryRowFirst(t *testing.T) {
	s := start(t, 2, 1)
	ctx := context.Background()
	s.env.DirectoryDSN = dsnOf(t, s.st)
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "import.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const service = `{"id": "pro-9", "kind": "emailpro", "imapAddr": "pro9.test:993", "imapSecurity": "tls", "mx": "10 mx1.pro.test"}`
	const slot = `{"service": "pro-9", "placeholder": "x1@configureme.me", "quotaBytes": 5000000000}`
	bad := write(`{"services": [` + service + `], "slots": [` + slot + `, {"service": "pro-10", "placeholder": "x2@configureme.me", "quotaBytes": 1}],
  "accounts": [{"address": "zoe@example.com", "service": "mxplan-1"}],
  "redirections": [{"address": "zoe@example.com", "target": "x"}]}`)
	err := s.env.Import(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), "3 problems; nothing imported") {
		t.Fatalf("import of wrong rows: err = %v\n%s", err, s.out.String())
	}
	for _, want := range []string{`slots[1]: service "pro-10" is neither in the file nor in the directory`,
		"accounts[0] (zoe@example.com): password or passwordHash is required", "redirections[0]: address and kind are required"} {
		if !strings.Contains(s.out.String(), want) {
			t.Fatalf("problems lack %q:\n%s", want, s.out.String())
		}
	}
	if _, err := s.st.Dir.Service(ctx, "pro-9"); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("service of a refused file: err = %v, want not found", err)
	}
	if err := s.env.Import(ctx, write(`{"servces": []}`)); err == nil || !strings.Contains(err.Error(), `unknown field "servces"`) {
		t.Fatalf("unknown field: err = %v", err)
	}
	good := write(`{"services": [` + service + `], "slots": [` + slot + `],
  "accounts": [{"address": "zoe@example.com", "service": "mxplan-1", "password": "pw"}],
  "redirections": [{"address": "zoe@example.com", "kind": "auto-responder", "target": "on holiday"}]}`)
	for _, want := range []string{"imported 1 service, 1 slot, 1 account, 1 redirection; 0 already there",
		"imported 1 service, 0 slots, 0 accounts, 0 redirections; 3 already there"} {
		s.out.Reset()
		if err := s.env.Import(ctx, good); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(s.out.String(), want) {
			t.Fatalf("import said %q, want %q", s.out.String(), want)
		}
	}
	// The example of import --help imports as it is (last: it redefines
	// the platform's mxplan-1).
	_, example, _ := strings.Cut(cli.ImportHelp, "Example:\n")
	example, _, _ = strings.Cut(example, "\n\nEvery row")
	s.out.Reset()
	if err := s.env.Import(ctx, write(example)); err != nil {
		t.Fatalf("the example of import --help: %v\n%s", err, s.out.String())
	}
}

// TestRedirectionsListAndRemove: the blocked preflight's redirection is
// listed, removed by kind and target with the starter, and the retry
// finishes the migration.
func TestRedirectionsListAndRemove(t *testing.T) {
	s := start(t, 8, 3)
	ctx := context.Background()
	s.env.DirectoryDSN = dsnOf(t, s.st)
	for _, r := range []directory.Redirection{{Address: "grace@example.org", Kind: "forward", Target: "g@elsewhere.test"},
		{Address: "grace@example.org", Kind: "auto-responder", Target: "on holiday: back Monday"}} {
		if err := s.st.Dir.AddRedirection(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := cli.StartOne(ctx, s.c, workflows.Input{Address: "grace@example.org", To: devstack.EmailProService, AutoConfirm: true, DNSInterval: "1s"}); err != nil {
		t.Fatal(err)
	}
	waitStage(t, s.c, "grace@example.org", workflows.StageNeedsAttention)
	if err := s.env.Redirections(ctx, "Grace@Example.org", "", "ops"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"grace@example.org has 2 redirections", "forward         g@elsewhere.test", "--remove 'auto-responder:on holiday: back Monday'"} {
		if !strings.Contains(s.out.String(), want) {
			t.Fatalf("listing lacks %q:\n%s", want, s.out.String())
		}
	}
	if err := s.env.Redirections(ctx, "grace@example.org", "forward:someone@else.test", "ops"); err == nil || !strings.Contains(err.Error(), "nothing removed") {
		t.Fatalf("removing one that is not there: err = %v", err)
	}
	if err := s.env.Redirections(ctx, "grace@example.org", "nocolon", "ops"); err == nil || !strings.Contains(err.Error(), "want KIND:TARGET") {
		t.Fatalf("--remove without a colon: err = %v", err)
	}
	for _, rm := range []string{"forward:g@elsewhere.test", "auto-responder:on holiday: back Monday"} {
		s.out.Reset()
		if err := s.env.Redirections(ctx, "grace@example.org", rm, "ops"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(s.out.String(), "removed 1 redirection") {
			t.Fatalf("remove %s said:\n%s", rm, s.out.String())
		}
	}
	if !strings.Contains(s.out.String(), "grace@example.org has no redirection") {
		t.Fatalf("after removing both:\n%s", s.out.String())
	}
	audit, err := s.st.Dir.Audit(ctx, "grace@example.org")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range audit {
		if a.Action == "remove-redirection" && strings.Contains(a.Detail, "by ops") {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d audit lines of removals, want 2: %+v", n, audit)
	}
	s.out.Reset()
	if err := s.env.Act(ctx, workflows.UpdateRetry, "", []string{"grace@example.org"}, "ops", "redirections removed"); err != nil {
		t.Fatalf("retry: %v\n%s", err, s.out.String())
	}
	if r := result(t, s.c, "grace@example.org"); r.Outcome != workflows.StageDone {
		t.Fatalf("grace: %s", r.Outcome)
	}
}
