package directory_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/dnscheck"
)

// domainServices are the platform's services as the dev stack defines them.
var domainServices = []directory.Service{
	{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: "imap.mxplan.test:993", IMAPSecurity: "tls",
		MX: "10 mx1.mxplan.test", SPFInclude: "_spf.mxplan.test"},
	{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: "imap.pro.test:993", IMAPSecurity: "tls",
		MX: "10 mx1.pro.test, 20 mx2.pro.test", SPFInclude: "_spf.pro.test", Autodiscover: "autodiscover.pro.test"},
	{ID: "exchange-1", Kind: directory.KindExchange, IMAPAddr: "imap.exchange.test:993", IMAPSecurity: "tls",
		MX: "0 mx.exchange.test", SPFInclude: "_spf.exchange.test", Autodiscover: "autodiscover.exchange.test"},
}

// migrate walks an address through the directory side of a migration:
// claim, configure, lock, switch the route, mark migrated.
func migrate(t *testing.T, s *directory.Store, addr, to string) {
	t.Helper()
	ctx := context.Background()
	wf := "migrate:" + addr
	if _, err := s.ClaimSlot(ctx, to, addr, wf, 0); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func() error{
		func() error { return s.ConfigureSlot(ctx, wf) },
		func() error { return s.Lock(ctx, addr, wf) },
		func() error { return s.SwitchRoute(ctx, addr, to, wf) },
		func() error { return s.MarkMigrated(ctx, addr, wf) },
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDomainNeedsFromEveryAccount: the records a domain needs follow from
// where every one of its accounts receives mail (routes, MX Plan accounts,
// accounts of other services), with the migrating address at its
// destination — on SQLite and PostgreSQL.
func TestDomainNeedsFromEveryAccount(t *testing.T) {
	stores(t, func(t *testing.T, s *directory.Store) {
		ctx := context.Background()
		for _, sv := range domainServices {
			if err := s.AddService(ctx, sv); err != nil {
				t.Fatal(err)
			}
			if sv.Kind != directory.KindMXPlan {
				for _, ph := range []string{"1", "2", "3"} {
					if err := s.AddSlot(ctx, sv.ID, sv.ID+"-"+ph+"@configureme.me", 1<<30); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		for _, a := range []string{"alice@example.com", "bob@example.com", "carol@exam_le.com", "dan@sub.example.com", "eve@xexample.com"} {
			if err := s.AddAccount(ctx, directory.Account{Address: a, ServiceID: "mxplan-1"}, "x"); err != nil {
				t.Fatal(err)
			}
		}
		boxes := func() []directory.Mailbox {
			t.Helper()
			got, err := s.DomainMailboxes(ctx, "Example.COM")
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		mxOf := func(n *dnscheck.Needs) []string {
			var out []string
			for _, r := range n.Records {
				if r.Type == dnscheck.TypeMX {
					out = append(out, r.Value)
				}
			}
			return out
		}
		needs := func(moves map[string]string) *dnscheck.Needs {
			t.Helper()
			n, err := s.DomainNeeds(ctx, "example.com", moves)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		want := []directory.Mailbox{{Address: "alice@example.com", ServiceID: "mxplan-1"}, {Address: "bob@example.com", ServiceID: "mxplan-1"}}
		if got := boxes(); !reflect.DeepEqual(got, want) {
			t.Fatalf("DomainMailboxes() = %+v, want %+v (exact domain only)", got, want)
		}

		// Alice's migration, at its switch: the domain's MX stays on MX
		// Plan, which follows Alice's route; SPF gains E-mail Pro.
		n := needs(map[string]string{"alice@example.com": "emailpro-1"})
		if got := mxOf(n); n.Held || !reflect.DeepEqual(got, []string{"10 mx1.mxplan.test."}) || n.MXFrom != "mxplan-1" {
			t.Fatalf("needs with Alice moving = %+v, want MX Plan's MX kept", n)
		}
		if !strings.Contains(n.Note, "alice@example.com on emailpro-1; bob@example.com on mxplan-1") {
			t.Fatalf("note %q does not say who is where", n.Note)
		}

		// Her slot configured but the route not switched yet: she is still
		// on MX Plan.
		if _, err := s.ClaimSlot(ctx, "emailpro-1", "alice@example.com", "migrate:alice@example.com", 0); err != nil {
			t.Fatal(err)
		}
		if err := s.ConfigureSlot(ctx, "migrate:alice@example.com"); err != nil {
			t.Fatal(err)
		}
		if got := boxes(); !reflect.DeepEqual(got, want) {
			t.Fatalf("DomainMailboxes() before the switch = %+v, want %+v", got, want)
		}
		migrate(t, s, "alice@example.com", "emailpro-1")
		want[0] = directory.Mailbox{Address: "alice@example.com", ServiceID: "emailpro-1", Routed: true}
		if got := boxes(); !reflect.DeepEqual(got, want) {
			t.Fatalf("DomainMailboxes() after Alice = %+v, want %+v", got, want)
		}
		if n := needs(nil); n.MXFrom != "mxplan-1" || !n.Split() {
			t.Fatalf("needs after Alice = %+v, want MX Plan's MX", n)
		}

		// Bob to E-mail Pro too: the whole domain is there, its records
		// are E-mail Pro's.
		n = needs(map[string]string{"bob@example.com": "emailpro-1"})
		if got := mxOf(n); n.Held || n.Split() || !reflect.DeepEqual(got, []string{"10 mx1.pro.test.", "20 mx2.pro.test."}) || len(n.Records) != 4 {
			t.Fatalf("needs with Bob moving to E-mail Pro = %+v, want E-mail Pro's records", n)
		}
		// Bob to Exchange instead: no MX reaches both, DNS left as it is.
		n = needs(map[string]string{"bob@example.com": "exchange-1"})
		if !n.Held || len(n.Records) != 0 || !strings.Contains(n.Note, "bob@example.com on exchange-1") {
			t.Fatalf("needs with Bob moving to Exchange = %+v, want held with a note", n)
		}

		// A service of the domain whose definition went bad is named.
		if err := s.AddService(ctx, directory.Service{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: "imap.mxplan.test:993", IMAPSecurity: "tls",
			MX: "10 mx1.mxplan.test", SPFInclude: `_spf.mxplan.test"`}); err != nil {
			t.Fatal(err)
		}
		_, err := s.DomainNeeds(ctx, "example.com", nil)
		if svc, bad := dnscheck.IsBadService(err); !bad || svc != "mxplan-1" || !strings.Contains(err.Error(), "spfInclude") {
			t.Fatalf("DomainNeeds() with a bad MX Plan service = %v, want it named", err)
		}
		for _, bad := range []string{"", "%", "example.com'--", "*.com"} {
			if _, err := s.DomainMailboxes(ctx, bad); err == nil {
				t.Fatalf("DomainMailboxes(%q) accepted a bad domain", bad)
			}
		}
	})
}
