package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/dnscheck"
)

func domainsDirectory(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "d.db")
	dir, err := directory.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	for _, sv := range []directory.Service{
		{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: "127.0.0.1:1", IMAPSecurity: "plain",
			MX: "10 mx1.mxplan.test", SPFInclude: "_spf.mxplan.test"},
		{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: "127.0.0.1:2", IMAPSecurity: "plain",
			MX: "10 mx1.pro.test", SPFInclude: "_spf.pro.test", Autodiscover: "autodiscover.pro.test"},
		{ID: "exchange-1", Kind: directory.KindExchange, IMAPAddr: "127.0.0.1:3", IMAPSecurity: "plain",
			MX: "0 mx.exchange.test", SPFInclude: "_spf.exchange.test"},
	} {
		if err := dir.AddService(ctx, sv); err != nil {
			t.Fatal(err)
		}
		if sv.Kind != directory.KindMXPlan {
			for _, ph := range []string{"a", "b", "c"} {
				if err := dir.AddSlot(ctx, sv.ID, sv.ID+ph+"@configureme.me", 1<<30); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, a := range []string{"alice@example.com", "bob@example.com", "carol@example.org", "dave@example.org", "erin@example.net"} {
		if err := dir.AddAccount(ctx, directory.Account{Address: a, ServiceID: "mxplan-1"}, directory.HashPassword("pw")); err != nil {
			t.Fatal(err)
		}
	}
	return dsn
}

// TestDryRunShowsSplitDomains: the dry run of a plan prints a line for each
// domain whose accounts would end on different services — naming who is
// where and what its DNS gets — and none for a domain that moves whole.
func TestDryRunShowsSplitDomains(t *testing.T) {
	dsn := domainsDirectory(t)
	file := filepath.Join(t.TempDir(), "plan.csv")
	if err := os.WriteFile(file, []byte("address,to\nalice@example.com,emailpro-1\ncarol@example.org,emailpro-1\n"+
		"dave@example.org,exchange-1\nerin@example.net,emailpro-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	e := &Env{Out: out, DirectoryDSN: dsn}
	defer e.Close()
	defer func() { t.Log(out.String()) }()
	if err := e.Plan(context.Background(), PlanArgs{File: file, DryRun: true}); err != nil {
		t.Fatalf("Plan(dry run) = %v\n%s", err, out)
	}
	var split []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "split domain ") {
			split = append(split, l)
		}
	}
	if len(split) != 2 ||
		!strings.Contains(split[0], "split domain example.com ") || !strings.Contains(split[0], "alice@example.com on emailpro-1; bob@example.com on mxplan-1") ||
		!strings.Contains(split[0], "the MX of mxplan-1 reaches every address") ||
		!strings.Contains(split[1], "split domain example.org ") || !strings.Contains(split[1], "carol@example.org on emailpro-1; dave@example.org on exchange-1") ||
		!strings.Contains(split[1], "DNS is left as it is") {
		t.Fatalf("split lines = %q, want example.com (MX Plan's MX kept) and example.org (DNS left as is), not example.net\n%s", split, out)
	}
}

// TestDNSCommandFollowsEveryAccount: the dns command checks what the
// routing switch would set: with one account of the domain moved and one
// on MX Plan, MX Plan's MX and both SPF includes, and it says why.
func TestDNSCommandFollowsEveryAccount(t *testing.T) {
	dsn := domainsDirectory(t)
	ctx := context.Background()
	dir, err := directory.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.SwitchRoute(ctx, "alice@example.com", "emailpro-1", "migrate:alice@example.com"); err != nil {
		t.Fatal(err)
	}
	dir.Close()
	zone := `$ORIGIN example.com.
$TTL 60
@ IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 86400 60
@ IN NS ns1.example.com.
ns1 IN A 127.0.0.1
@ IN MX 10 mx1.mxplan.test.
@ IN TXT "v=spf1 include:_spf.mxplan.test ~all"
`
	s, err := dnscheck.NewServer(map[string]string{"example.com": zone}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	e := &Env{Out: out, DirectoryDSN: dsn, Checker: &dnscheck.Checker{Resolver: s.Addr, Port: port, Timeout: time.Second}}
	defer e.Close()
	if err := e.DNS(ctx, "example.com", "emailpro-1"); err == nil {
		t.Fatalf("DNS() = nil before the SPF has E-mail Pro\n%s", out)
	}
	for _, want := range []string{
		"on emailpro-1: alice@example.com", "on mxplan-1: bob@example.com",
		`set: example.com. 3600 IN TXT "v=spf1 include:_spf.mxplan.test include:_spf.pro.test ~all"`,
		"note: example.com is split between services",
	} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("dns output does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out.String(), "set: example.com. 3600 IN MX") {
		t.Fatalf("dns asks to change the MX while Bob is on MX Plan:\n%s", out)
	}
}
