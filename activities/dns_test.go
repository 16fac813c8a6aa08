package activities

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/dnscheck"
	"github.com/mailshift/mailshift/internal/testenv"
)

// labServices are the dev stack's services; MX Plan's records are those of
// the lab zone (deploy/lab/bind/lab.zone.tmpl).
var labServices = []directory.Service{
	{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: "127.0.0.1:1", IMAPSecurity: "plain",
		MX: "10 mx1.mxplan.mailshift.test", SPFInclude: "_spf.mxplan.mailshift.test"},
	{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: "127.0.0.1:2", IMAPSecurity: "plain",
		MX: "10 mx1.pro.mailshift.test, 20 mx2.pro.mailshift.test", SPFInclude: "_spf.pro.mailshift.test",
		Autodiscover: "autodiscover.pro.mailshift.test"},
	{ID: "exchange-1", Kind: directory.KindExchange, IMAPAddr: "127.0.0.1:3", IMAPSecurity: "plain",
		MX: "0 mx.exchange.mailshift.test", SPFInclude: "_spf.exchange.mailshift.test"},
}

func labDirectory(t *testing.T, dsn string, accounts ...string) *directory.Store {
	t.Helper()
	ctx := context.Background()
	dir, err := directory.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	for _, sv := range labServices {
		if err := dir.AddService(ctx, sv); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range accounts {
		if err := dir.AddAccount(ctx, directory.Account{Address: a, ServiceID: "mxplan-1"}, directory.HashPassword("pw")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSwitchRoutingKeepsTheDomainsMail: on a real BIND9 pair and a
// directory on SQLite and PostgreSQL, migrating one account of a
// two-account domain leaves the MX on MX Plan, which follows the migrated
// address's route and still holds the other account (the SPF record gains
// the new service's senders); once the last account moves, the domain gets
// the new service's records. Each migration used to set its destination's
// MX for the whole domain, taking the other account's mail away.
func TestSwitchRoutingKeepsTheDomainsMail(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			ctx := context.Background()
			dsn := filepath.Join(t.TempDir(), "d.db")
			if store == "postgres" {
				dsn = testenv.StartPostgres(t)
			}
			dir := labDirectory(t, dsn, "alice@example.com", "bob@example.com")
			b := testenv.StartBIND(t, "example.com")
			chk := &dnscheck.Checker{Resolver: b.PrimaryAddr(), Override: b.Override(), Timeout: 2 * time.Second}
			a := &Activities{Dir: dir, DNS: &dnscheck.Ops{Checker: chk, Managed: map[string]*dnscheck.Updater{
				"example.com.": {Primary: b.PrimaryAddr(), Key: dnscheck.TSIGKey{Name: b.KeyName, Secret: b.Secret}}}}}
			env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
			env.RegisterActivity(a)
			switchTo := func(addr, to string) RouteResult {
				t.Helper()
				v, err := env.ExecuteActivity(a.SwitchRouting, RouteInput{Address: addr, To: to, WorkflowID: "migrate:" + addr})
				if err != nil {
					t.Fatalf("SwitchRouting(%s, %s) = %v", addr, to, err)
				}
				var rr RouteResult
				if err := v.Get(&rr); err != nil {
					t.Fatal(err)
				}
				if r, err := dir.Route(ctx, addr); err != nil || r.ServiceID != to {
					t.Fatalf("route of %s = %+v, %v; want %s", addr, r, err, to)
				}
				return rr
			}
			// propagated waits until CheckDNS sees every record the domain
			// needs on both servers.
			propagated := func(addr, to string) *dnscheck.Diagnostic {
				t.Helper()
				if err := b.Retransfer(ctx); err != nil {
					t.Fatal(err)
				}
				var d *dnscheck.Diagnostic
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
					v, err := env.ExecuteActivity(a.CheckDNS, DNSInput{Address: addr, To: to})
					if err != nil {
						t.Fatalf("CheckDNS() = %v", err)
					}
					d = nil
					if err := v.Get(&d); err != nil {
						t.Fatal(err)
					}
					if d.OK {
						return d
					}
				}
				t.Fatalf("not propagated: %+v", d)
				return nil
			}

			rr := switchTo("alice@example.com", "emailpro-1")
			if got := lookup(t, b.PrimaryAddr(), "example.com.", dns.TypeMX); !reflect.DeepEqual(got, []string{"10 mx1.mxplan.mailshift.test."}) {
				t.Fatalf("MX after Alice moved = %v, want MX Plan's, which still holds Bob", got)
			}
			if got := lookup(t, b.PrimaryAddr(), "example.com.", dns.TypeTXT); !reflect.DeepEqual(got, []string{"v=spf1 include:_spf.mxplan.mailshift.test include:_spf.pro.mailshift.test ~all"}) {
				t.Fatalf("SPF after Alice moved = %v, want one record with both services", got)
			}
			if got := lookup(t, b.PrimaryAddr(), "autodiscover.example.com.", dns.TypeCNAME); len(got) != 0 {
				t.Fatalf("autodiscover after Alice moved = %v, want none (Bob's clients are on MX Plan)", got)
			}
			if !rr.DNSChanged || !strings.Contains(rr.DNSNote, "bob@example.com on mxplan-1") {
				t.Fatalf("SwitchRouting(alice) = %+v, want the SPF changed and a note naming Bob on MX Plan", rr)
			}
			d := propagated("alice@example.com", "emailpro-1")
			if len(d.Records) != 3 || len(d.Notes) != 1 {
				t.Fatalf("diagnostic after Alice = %+v, want MX, two SPF includes and the note", d)
			}

			rr = switchTo("bob@example.com", "emailpro-1")
			if got := lookup(t, b.PrimaryAddr(), "example.com.", dns.TypeMX); !reflect.DeepEqual(got, []string{"10 mx1.pro.mailshift.test.", "20 mx2.pro.mailshift.test."}) {
				t.Fatalf("MX after the last account moved = %v, want E-mail Pro's", got)
			}
			if got := lookup(t, b.PrimaryAddr(), "autodiscover.example.com.", dns.TypeCNAME); !reflect.DeepEqual(got, []string{"autodiscover.pro.mailshift.test."}) {
				t.Fatalf("autodiscover after the last account moved = %v", got)
			}
			if !rr.DNSChanged || rr.DNSNote != "" {
				t.Fatalf("SwitchRouting(bob) = %+v, want a change and no note", rr)
			}
			if d := propagated("bob@example.com", "emailpro-1"); len(d.Records) != 4 || len(d.Notes) != 0 {
				t.Fatalf("diagnostic after Bob = %+v, want E-mail Pro's four records", d)
			}
		})
	}
}

// TestSwitchRoutingHoldsASplitDomain: when no MX reaches every account (one
// on E-mail Pro, one on Exchange), the switch moves the route and leaves
// the zone alone, saying why; the DNS check asks no server (there is
// nothing to wait for) and says the same.
func TestSwitchRoutingHoldsASplitDomain(t *testing.T) {
	ctx := context.Background()
	dir := labDirectory(t, filepath.Join(t.TempDir(), "d.db"), "alice@example.com", "bob@example.com")
	if err := dir.SwitchRoute(ctx, "alice@example.com", "emailpro-1", "migrate:alice@example.com"); err != nil {
		t.Fatal(err)
	}
	rec := &recordingDNS{}
	a := &Activities{Dir: dir, DNS: rec}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.SwitchRouting, RouteInput{Address: "bob@example.com", To: "exchange-1", WorkflowID: "migrate:bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var rr RouteResult
	if err := v.Get(&rr); err != nil {
		t.Fatal(err)
	}
	if r, err := dir.Route(ctx, "bob@example.com"); err != nil || r.ServiceID != "exchange-1" {
		t.Fatalf("route of Bob = %+v, %v; want exchange-1", r, err)
	}
	if rec.applied != 0 || rr.DNSChanged || !strings.Contains(rr.DNSNote, "alice@example.com on emailpro-1; bob@example.com on exchange-1") {
		t.Fatalf("SwitchRouting() = %+v with %d updates, want the zone untouched and a note saying who is where", rr, rec.applied)
	}
	v, err = env.ExecuteActivity(a.CheckDNS, DNSInput{Address: "bob@example.com", To: "exchange-1"})
	if err != nil {
		t.Fatal(err)
	}
	var d *dnscheck.Diagnostic
	if err := v.Get(&d); err != nil {
		t.Fatal(err)
	}
	if len(rec.checked) != 0 || len(d.Notes) != 1 || !strings.Contains(d.Summary(), "no record to check") {
		t.Fatalf("CheckDNS() = %+v checking %v, want nothing checked and the note", d, rec.checked)
	}
}

// TestBadServiceIsPermanentBeforeTheSwitch: a service whose DNS fields
// cannot make records stops the switch with a permanent error naming the
// service and field, before the route moves. A quote in spfInclude once
// panicked the switch six times, after the route had switched.
func TestBadServiceIsPermanentBeforeTheSwitch(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		bad      directory.Service
		to, typ  string
		addr     string
		wantWord string
	}{
		{directory.Service{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: "127.0.0.1:2", IMAPSecurity: "plain",
			MX: "10 mx1.pro.mailshift.test", SPFInclude: `bad"quote`}, "emailpro-1", ErrTypeBadService, "alice@example.com", "spfInclude"},
		{directory.Service{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: "127.0.0.1:2", IMAPSecurity: "plain",
			MX: "10 mx1.pro.mailshift.test", SPFInclude: "_spf.pro.example +all"}, "emailpro-1", ErrTypeBadService, "alice@example.com", "spfInclude"},
		{directory.Service{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: "127.0.0.1:2", IMAPSecurity: "plain",
			MX: "10 mx1.pro.mailshift.test 20 mx2.pro.mailshift.test"}, "emailpro-1", ErrTypeBadService, "alice@example.com", "mx"},
		// The other account's service (MX Plan) is the bad one.
		{directory.Service{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: "127.0.0.1:1", IMAPSecurity: "plain",
			MX: "10 mx1.mxplan.mailshift.test", SPFInclude: "_spf.mxplan.mailshift.test ?all"}, "emailpro-1", ErrTypeConfig, "alice@example.com", "spfInclude"},
	} {
		dir := labDirectory(t, filepath.Join(t.TempDir(), "d.db"), "alice@example.com", "bob@example.com")
		if err := dir.AddService(ctx, tc.bad); err != nil {
			t.Fatal(err)
		}
		rec := &recordingDNS{}
		a := &Activities{Dir: dir, DNS: rec}
		env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
		env.RegisterActivity(a)
		for name, run := range map[string]func() error{
			"SwitchRouting": func() error {
				_, err := env.ExecuteActivity(a.SwitchRouting, RouteInput{Address: tc.addr, To: tc.to, WorkflowID: "migrate:" + tc.addr})
				return err
			},
			"CheckDNS": func() error {
				_, err := env.ExecuteActivity(a.CheckDNS, DNSInput{Address: tc.addr, To: tc.to})
				return err
			},
		} {
			err := run()
			var ae *temporal.ApplicationError
			if !errors.As(err, &ae) || ae.Type() != tc.typ || !ae.NonRetryable() || !strings.Contains(ae.Message(), tc.wantWord) ||
				!strings.Contains(ae.Message(), `"`+tc.bad.ID+`"`) {
				t.Fatalf("%s with %+v = %v, want a non-retryable %s naming %s and %s", name, tc.bad, err, tc.typ, tc.bad.ID, tc.wantWord)
			}
		}
		if _, err := dir.Route(ctx, tc.addr); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("route of %s after a refused switch: %v, want none", tc.addr, err)
		}
		if rec.applied != 0 || len(rec.checked) != 0 {
			t.Fatalf("DNS touched with a bad service: %d updates, %d checks", rec.applied, len(rec.checked))
		}
	}
}

// recordingDNS counts what the activities ask of DNS.
type recordingDNS struct {
	applied int
	checked [][]dnscheck.Record
}

func (r *recordingDNS) Check(_ context.Context, domain string, want []dnscheck.Record) (*dnscheck.Diagnostic, error) {
	r.checked = append(r.checked, want)
	return &dnscheck.Diagnostic{Domain: domain, OK: true}, nil
}

func (r *recordingDNS) Apply(context.Context, string, []dnscheck.Record) (bool, bool, error) {
	r.applied++
	return true, true, nil
}

// lookup returns what server holds at name, in presentation form.
func lookup(t *testing.T, server, name string, qtype uint16) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r, err := dns.Exchange(m, server)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rr := range r.Answer {
		switch v := rr.(type) {
		case *dns.MX:
			out = append(out, v.String()[len(v.Hdr.String()):])
		case *dns.TXT:
			out = append(out, strings.Join(v.Txt, ""))
		case *dns.CNAME:
			out = append(out, v.Target)
		}
	}
	sort.Strings(out)
	return out
}
