package dnscheck

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestExpectedRefusesBadRequirements: a service field that is not just a
// host name (or "preference host" for MX) never becomes a record. An SPF
// include with "+all" once published a record that authorized any sender; a
// quote once made the updater panic.
func TestExpectedRefusesBadRequirements(t *testing.T) {
	for _, tc := range []struct {
		req   Requirements
		field string
	}{
		{Requirements{SPFInclude: "_spf.pro.example +all"}, "spfInclude"},
		{Requirements{SPFInclude: `bad"quote`}, "spfInclude"},
		{Requirements{SPFInclude: `_spf.pro.example"`}, "spfInclude"},
		{Requirements{SPFInclude: "include:_spf.pro.example"}, "spfInclude"},
		{Requirements{SPFInclude: "+_spf.pro.example"}, "spfInclude"},
		{Requirements{SPFInclude: "~all"}, "spfInclude"},
		{Requirements{SPFInclude: "%{i}._spf.pro.example"}, "spfInclude"},
		{Requirements{SPFInclude: "_spf.pro.example ~all"}, "spfInclude"},
		{Requirements{SPFInclude: "pro"}, "spfInclude"},
		{Requirements{SPFInclude: "a..b"}, "spfInclude"},
		{Requirements{SPFInclude: "_spf.pro.example\n"}, "spfInclude"},
		{Requirements{MX: "mx1.pro.test"}, "mx"},
		{Requirements{MX: "70000 mx1.pro.test"}, "mx"},
		{Requirements{MX: "-1 mx1.pro.test"}, "mx"},
		{Requirements{MX: "10 mx1.pro.test extra"}, "mx"},
		{Requirements{MX: "10 mx1.pro.test,,20 mx2.pro.test"}, "mx"},
		{Requirements{MX: "10 mx1.pro.test, 20 MX1.pro.test"}, "mx"},
		{Requirements{MX: "10 192.0.2.1"}, "mx"},
		{Requirements{MX: "10 _mx.pro.test"}, "mx"},
		{Requirements{MX: `10 mx"1.pro.test`}, "mx"},
		{Requirements{MX: "10 -mx.pro.test"}, "mx"},
		{Requirements{Autodiscover: "autodiscover.pro.test; rm"}, "autodiscover"},
		{Requirements{Autodiscover: "https://autodiscover.pro.test"}, "autodiscover"},
		{Requirements{Autodiscover: "auto discover.pro.test"}, "autodiscover"},
	} {
		_, err := Expected("example.com", tc.req)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrBadService) {
			t.Fatalf("Expected(%+v) = %v, want a FieldError on %s (ErrBadService)", tc.req, err, tc.field)
		}
		if err := tc.req.Validate(); err == nil {
			t.Fatalf("Validate(%+v) accepted a bad field", tc.req)
		}
	}
	for _, good := range []Requirements{
		{MX: "0 mx.exchange.test", SPFInclude: "_spf.exchange.test", Autodiscover: "autodiscover.exchange.test."},
		{MX: "10 MX1.Pro.Test., 20 mx2.pro.test", SPFInclude: "spf.pro-mail.test"},
		{MX: " 10 mx1.pro.test ,20 mx2.pro.test "},
		{SPFInclude: "_spf.bücher.test"},
		{},
	} {
		if err := good.Validate(); err != nil {
			t.Fatalf("Validate(%+v) = %v, want nil", good, err)
		}
	}
}

// TestApplyBadRecordIsAnErrorNotAPanic: a record that cannot be written
// (built without Expected) is refused before anything is sent; the parse
// error of the record was once ignored and the update panicked on it.
func TestApplyBadRecordIsAnErrorNotAPanic(t *testing.T) {
	s, chk := startEmbedded(t)
	u := &Updater{Primary: chk.Resolver, Key: TSIGKey{Name: "lab-key", Secret: secret}}
	serial := soaSerial(t, chk, "lab.test.")
	for _, bad := range []Record{
		{Type: TypeSPF, Name: "lab.test.", Value: `bad"quote`},
		{Type: TypeSPF, Name: "lab.test.", Value: "_spf.pro.test +all"},
		{Type: TypeCNAME, Name: "autodiscover.lab.test.", Value: "x y"},
		{Type: TypeMX, Name: "lab.test.", Value: "10"},
		{Type: TypeMX, Name: "lab.test.", Value: "10 a.test, 20 b.test"},
		{Type: "TXT", Name: "lab.test.", Value: "anything"},
		{Type: TypeMX, Name: "lab.test", Value: "10 mx.pro.test."},
	} {
		changed, err := u.Apply(context.Background(), "lab.test", []Record{{Type: TypeMX, Name: "lab.test.", Value: "10 mx1.pro.test."}, bad})
		if changed || !errors.Is(err, ErrBadService) {
			t.Fatalf("Apply(%+v) = %v, %v; want ErrBadService and no change", bad, changed, err)
		}
		if _, err := chk.Check(context.Background(), "lab.test", []Record{bad}); !errors.Is(err, ErrBadService) {
			t.Fatalf("Check(%+v) = %v; want ErrBadService", bad, err)
		}
		if _, err := RRs([]Record{bad}); err == nil {
			t.Fatalf("RRs(%+v) made a record", bad)
		}
	}
	if got := soaSerial(t, chk, "lab.test."); got != serial {
		t.Fatalf("serial %d -> %d: a refused update changed the zone", serial, got)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("server errors: %v", err)
	}
}

// TestApplyOneSPFRecordWithEveryInclude: the includes of a domain whose
// accounts are on several services go into its one SPF record (two SPF
// records make every receiver fail the check); a record that already
// includes them all is kept.
func TestApplyOneSPFRecordWithEveryInclude(t *testing.T) {
	_, chk := startEmbedded(t)
	ctx := context.Background()
	u := &Updater{Primary: chk.Resolver, Key: TSIGKey{Name: "lab-key", Secret: secret}}
	want := []Record{
		{Type: TypeMX, Name: "lab.test.", Value: "10 mx.old.test."},
		{Type: TypeSPF, Name: "lab.test.", Value: "_spf.old.test"},
		{Type: TypeSPF, Name: "lab.test.", Value: "_spf.pro.test"},
	}
	d, err := chk.Check(ctx, "lab.test", want)
	if err != nil {
		t.Fatal(err)
	}
	wantFix := `lab.test. 3600 IN TXT "v=spf1 include:_spf.old.test include:_spf.pro.test ~all"`
	if d.OK || !d.Records[1].OK || d.Records[2].Fix != wantFix {
		t.Fatalf("diagnostic before = %+v, want not OK and the fix %s", d, wantFix)
	}
	if changed, err := u.Apply(ctx, "lab.test", want); err != nil || !changed {
		t.Fatalf("Apply() = %v, %v; want a change", changed, err)
	}
	if spf := spfRecords(t, chk); len(spf) != 1 || spf[0] != "v=spf1 include:_spf.old.test include:_spf.pro.test ~all" {
		t.Fatalf("SPF records = %q, want one with both includes", spf)
	}
	if d, err := chk.Check(ctx, "lab.test", want); err != nil || !d.OK {
		t.Fatalf("Check() after = %+v, %v; want OK", d, err)
	}
	for _, w := range [][]Record{want, want[2:]} {
		if changed, err := u.Apply(ctx, "lab.test", w); err != nil || changed {
			t.Fatalf("Apply(%v) = %v, %v; want nothing to change", w, changed, err)
		}
	}
}

// TestTwoSPFRecordsAreNotOK: a second SPF record beside the right one is an
// error for receivers, so the check does not pass it.
func TestTwoSPFRecordsAreNotOK(t *testing.T) {
	s, chk := startEmbedded(t)
	a, _ := dns.NewRR(`lab.test. 60 IN TXT "v=spf1 include:_spf.old.test ~all"`)
	b, _ := dns.NewRR(`lab.test. 60 IN TXT "v=spf1 include:_spf.pro.test ~all"`)
	s.Set("lab.test.", a, b)
	d, err := chk.Check(context.Background(), "lab.test", []Record{{Type: TypeSPF, Name: "lab.test.", Value: "_spf.pro.test"}})
	if err != nil || d.OK {
		t.Fatalf("Check() with two SPF records = %+v, %v; want not OK", d, err)
	}
}

// TestEachCheckIsFresh: a problem of one check (a dead nameserver) is not
// in the next one once the server answers again.
func TestEachCheckIsFresh(t *testing.T) {
	s, chk := startEmbedded(t)
	chk.Timeout = 300 * time.Millisecond
	want := []Record{{Type: TypeSPF, Name: "lab.test.", Value: "_spf.old.test"}}
	dead, _ := dns.NewRR("ns2.lab.test. 60 IN A 127.0.0.9")
	s.Set("lab.test.", dead)
	first, err := chk.Check(context.Background(), "lab.test", want)
	if err != nil || first.OK || len(first.Problems) == 0 {
		t.Fatalf("first Check() = %+v, %v; want a problem with ns2", first, err)
	}
	alive, _ := dns.NewRR("ns2.lab.test. 60 IN A 127.0.0.1")
	s.Set("lab.test.", alive)
	second, err := chk.Check(context.Background(), "lab.test", want)
	if err != nil || !second.OK || len(second.Problems) != 0 || len(second.Warnings) != 0 || len(second.Notes) != 0 {
		t.Fatalf("second Check() = %+v, %v; want OK with nothing of the first", second, err)
	}
	if first == second || len(first.Problems) == 0 {
		t.Fatalf("the first diagnostic was changed by the second check: %+v", first)
	}
}

func soaSerial(t *testing.T, chk *Checker, zone string) uint32 {
	t.Helper()
	r, err := chk.query(context.Background(), chk.Resolver, zone, dns.TypeSOA, false)
	if err != nil || len(r.Answer) == 0 {
		t.Fatalf("SOA of %s: %v", zone, err)
	}
	return r.Answer[0].(*dns.SOA).Serial
}

func spfRecords(t *testing.T, chk *Checker) []string {
	t.Helper()
	r, err := chk.query(context.Background(), chk.Resolver, "lab.test.", dns.TypeTXT, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rr := range r.Answer {
		if txt := strings.Join(rr.(*dns.TXT).Txt, ""); isSPF(txt) {
			out = append(out, txt)
		}
	}
	return out
}
