package plan

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/directory"
)

// TestCheckRefusesWhatNoOperatorFixesLater: Check refuses rows by the
// eligibility rule's account and service reasons and keeps the rows whose
// preflight will park them for an operator (a redirection, another lock).
func TestCheckRefusesWhatNoOperatorFixesLater(t *testing.T) {
	ctx := context.Background()
	dir, err := directory.Open(ctx, filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(dir.AddService(ctx, directory.Service{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: "127.0.0.1:1", IMAPSecurity: "plain"}))
	must(dir.AddService(ctx, directory.Service{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: "127.0.0.1:2", IMAPSecurity: "plain"}))
	for _, a := range []string{"alice@example.com", "bob@example.com", "carol@example.com"} {
		must(dir.AddAccount(ctx, directory.Account{Address: a, ServiceID: "mxplan-1"}, directory.HashPassword("pw")))
	}
	must(dir.AddRedirection(ctx, directory.Redirection{Address: "bob@example.com", Kind: "forward", Target: "b@elsewhere.test"}))
	must(dir.Lock(ctx, "carol@example.com", "migrate:someone-else"))

	rows, probs, err := ParseCSV(strings.NewReader("address,to\nalice@example.com,emailpro-1\nbob@example.com,emailpro-1\n"+
		"carol@example.com,emailpro-1\nzed@example.com,emailpro-1\nalice@example.org,nosuch-1\n"), Defaults{})
	if err != nil || len(probs) != 0 {
		t.Fatalf("ParseCSV() = %v, %v", probs, err)
	}
	// alice@example.org has no account either: every reason is listed.
	ok, probs, err := Check(ctx, dir, rows)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, r := range ok {
		kept = append(kept, r.Input.Address)
	}
	if strings.Join(kept, " ") != "alice@example.com bob@example.com carol@example.com" {
		t.Fatalf("Check() kept %v, want alice, bob and carol", kept)
	}
	want := []string{
		`line 5 (zed@example.com): no MX Plan account "zed@example.com" in the directory`,
		`line 6 (alice@example.org): no MX Plan account "alice@example.org" in the directory`,
		`line 6 (alice@example.org): unknown destination service "nosuch-1"`,
	}
	ps := problemStrings(probs)
	if len(ps) != len(want) {
		t.Fatalf("Check() problems = %q, want %q", ps, want)
	}
	for i := range want {
		if !strings.HasPrefix(ps[i], want[i]) {
			t.Fatalf("Check() problem %d = %q, want %q...", i, ps[i], want[i])
		}
	}
}
