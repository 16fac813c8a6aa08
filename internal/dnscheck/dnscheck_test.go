package dnscheck

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var req = Requirements{MX: "10 mx1.pro.test, 20 mx2.pro.test", SPFInclude: "_spf.pro.test", Autodiscover: "autodiscover.pro.test"}

const zoneText = `$ORIGIN lab.test.
$TTL 60
@ IN SOA ns1.lab.test. hostmaster.lab.test. 1 3600 600 86400 60
@ IN NS ns1.lab.test.
@ IN NS ns2.lab.test.
ns1 IN A 127.0.0.1
ns2 IN A 127.0.0.1
@ IN MX 10 mx.old.test.
@ IN TXT "v=spf1 include:_spf.old.test ~all"
@ IN TXT "google-site-verification=abc"
`

var secret = base64.StdEncoding.EncodeToString([]byte("a test key of thirty-two bytes!!"))

func startEmbedded(t *testing.T) (*Server, *Checker) {
	t.Helper()
	s, err := NewServer(map[string]string{"lab.test": zoneText}, map[string]string{"lab-key.": secret})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	_, port, _ := net.SplitHostPort(s.Addr)
	return s, &Checker{Resolver: s.Addr, Port: port, Timeout: time.Second}
}

func TestExpected(t *testing.T) {
	got, err := Expected("Exämple.Test", req)
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{
		{TypeMX, "xn--exmple-cua.test.", "10 mx1.pro.test."},
		{TypeMX, "xn--exmple-cua.test.", "20 mx2.pro.test."},
		{TypeSPF, "xn--exmple-cua.test.", "_spf.pro.test"},
		{TypeCNAME, "autodiscover.xn--exmple-cua.test.", "autodiscover.pro.test."},
	}
	if len(got) != len(want) {
		t.Fatalf("Expected() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Expected()[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"", "exa mple.test", "a..b"} {
		if _, err := Expected(bad, req); err == nil {
			t.Fatalf("Expected(%q) accepted a bad domain", bad)
		}
	}
	if _, err := Expected("x.test", Requirements{MX: "mx1.pro.test"}); err == nil {
		t.Fatalf("an MX without preference was accepted")
	}
}

func TestCheckUpdateCheck(t *testing.T) {
	_, chk := startEmbedded(t)
	ctx := context.Background()
	want, _ := Expected("lab.test", req)
	d, err := chk.Check(ctx, "lab.test", want)
	if err != nil {
		t.Fatal(err)
	}
	if d.OK || d.Zone != "lab.test." || len(d.Serials) != 2 {
		t.Fatalf("before update: %+v, want not OK, zone lab.test., 2 servers", d)
	}
	for _, r := range d.Records {
		if r.OK || r.Fix == "" {
			t.Fatalf("record %v OK=%v fix=%q before update", r.Record, r.OK, r.Fix)
		}
	}
	u := &Updater{Primary: chk.Resolver, Key: TSIGKey{Name: "lab-key", Secret: secret}}
	changed, err := u.Apply(ctx, "lab.test", want)
	if err != nil || !changed {
		t.Fatalf("Apply() = %v, %v; want a change", changed, err)
	}
	changed, err = u.Apply(ctx, "lab.test", want)
	if err != nil || changed {
		t.Fatalf("second Apply() = %v, %v; want nothing to change", changed, err)
	}
	d, err = chk.Check(ctx, "lab.test", want)
	if err != nil || !d.OK {
		t.Fatalf("after update: %+v, %v; want OK", d, err)
	}
	// Other TXT records stay; the old SPF is replaced, not added to.
	r, _ := chk.query(ctx, chk.Resolver, "lab.test.", dns.TypeTXT, false)
	var txts []string
	for _, rr := range r.Answer {
		txts = append(txts, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	if len(txts) != 2 || !strings.Contains(strings.Join(txts, "|"), "google-site-verification") {
		t.Fatalf("TXT after update = %v, want the verification record kept and one SPF", txts)
	}
}

func TestUpdateRefusals(t *testing.T) {
	_, chk := startEmbedded(t)
	want, _ := Expected("lab.test", req)
	for name, key := range map[string]TSIGKey{
		"wrong secret": {Name: "lab-key", Secret: base64.StdEncoding.EncodeToString([]byte("not the right key at all........"))},
		"unknown key":  {Name: "other-key", Secret: secret},
		"no key":       {},
	} {
		u := &Updater{Primary: chk.Resolver, Key: key}
		_, err := u.Apply(context.Background(), "lab.test", want)
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("%s: Apply() = %v, want ErrRefused", name, err)
		}
	}
}

func TestCheckReportsDeadServerWithoutFailing(t *testing.T) {
	s, chk := startEmbedded(t)
	// ns2 moves to an address where nothing answers.
	rr, _ := dns.NewRR("ns2.lab.test. 60 IN A 127.0.0.9")
	s.Set("lab.test.", rr)
	chk.Timeout = 300 * time.Millisecond
	want, _ := Expected("lab.test", Requirements{SPFInclude: "_spf.old.test"})
	d, err := chk.Check(context.Background(), "lab.test", want)
	if err != nil {
		t.Fatalf("Check() = %v; a dead server must be reported, not fatal", err)
	}
	if d.OK || len(d.Problems) == 0 || !strings.Contains(d.Problems[0], "ns2.lab.test") {
		t.Fatalf("diagnostic = %+v, want not OK with a problem naming ns2", d)
	}
	var okServers, bad int
	for _, s := range d.Records[0].Servers {
		if s.OK {
			okServers++
		} else if s.Error != "" {
			bad++
		}
	}
	if okServers != 1 || bad != 1 {
		t.Fatalf("servers = %+v, want one OK and one with an error", d.Records[0].Servers)
	}
}

func TestCheckBadDomains(t *testing.T) {
	_, chk := startEmbedded(t)
	if _, err := chk.Check(context.Background(), "nowhere.invalid", nil); err == nil {
		t.Fatalf("Check() of a domain without a zone succeeded")
	}
	if _, err := chk.Check(context.Background(), "bad domain", nil); err == nil {
		t.Fatalf("Check() of a malformed domain succeeded")
	}
}

func TestOpsApplyOnlyManaged(t *testing.T) {
	_, chk := startEmbedded(t)
	ops := &Ops{Checker: chk, Managed: map[string]*Updater{"lab.test.": {Primary: chk.Resolver, Key: TSIGKey{Name: "lab-key", Secret: secret}}}}
	want, _ := Expected("lab.test", req)
	managed, changed, err := ops.Apply(context.Background(), "lab.test", want)
	if err != nil || !managed || !changed {
		t.Fatalf("Apply(managed) = %v %v %v", managed, changed, err)
	}
	want2, _ := Expected("other.test", req)
	managed, changed, err = ops.Apply(context.Background(), "other.test", want2)
	if err != nil || managed || changed {
		t.Fatalf("Apply(unmanaged) = %v %v %v, want nothing sent", managed, changed, err)
	}
}

func TestLintCNAMEAndAddresslessMX(t *testing.T) {
	s, chk := startEmbedded(t)
	cn, _ := dns.NewRR("alias.lab.test. 60 IN CNAME elsewhere.example.")
	s.Set("lab.test.", cn)
	want, _ := Expected("alias.lab.test", Requirements{MX: "10 mx.lab.test, 20 ns1.lab.test"})
	d, err := chk.Check(context.Background(), "alias.lab.test", want)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(d.Warnings, "\n")
	if d.OK || !strings.Contains(all, "is a CNAME to elsewhere.example.") {
		t.Fatalf("warnings = %q (OK %v), want the CNAME on the domain named", all, d.OK)
	}
	if !strings.Contains(all, "MX target mx.lab.test. has no A or AAAA record") || strings.Contains(all, "ns1.lab.test. has no") {
		t.Fatalf("warnings = %q, want mx.lab.test flagged and ns1 (which has an address) not", all)
	}
}
