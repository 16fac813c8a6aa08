package dnscheck

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var ruleServices = map[string]MailService{
	"mxplan-1": {ID: "mxplan-1", FollowsRoutes: true,
		Req: Requirements{MX: "10 mx1.mxplan.test", SPFInclude: "_spf.mxplan.test"}},
	"emailpro-1": {ID: "emailpro-1",
		Req: Requirements{MX: "10 mx1.pro.test, 20 mx2.pro.test", SPFInclude: "_spf.pro.test", Autodiscover: "autodiscover.pro.test"}},
	// emailpro-2 is another E-mail Pro cluster behind the same MX.
	"emailpro-2": {ID: "emailpro-2",
		Req: Requirements{MX: "20 mx2.pro.test, 10 mx1.pro.test", SPFInclude: "_spf2.pro.test", Autodiscover: "autodiscover.pro.test"}},
	"exchange-1": {ID: "exchange-1",
		Req: Requirements{MX: "0 mx.exchange.test", SPFInclude: "_spf.exchange.test", Autodiscover: "autodiscover.exchange.test"}},
	"bad-1": {ID: "bad-1", Req: Requirements{MX: "10 mx.bad.test", SPFInclude: "_spf.bad.test +all"}},
}

// TestDomainNeeds: a domain's records follow from all of its accounts; a
// move never takes the domain's mail away from the others.
func TestDomainNeeds(t *testing.T) {
	mx := func(v string) Record { return Record{TypeMX, "example.com.", v} }
	spf := func(v string) Record { return Record{TypeSPF, "example.com.", v} }
	ad := func(v string) Record { return Record{TypeCNAME, "autodiscover.example.com.", v} }
	pro := []Record{mx("10 mx1.pro.test."), mx("20 mx2.pro.test."), spf("_spf.pro.test"), ad("autodiscover.pro.test.")}
	for _, tc := range []struct {
		name   string
		boxes  []Mailbox
		want   []Record
		held   bool
		from   string
		phrase string
	}{
		{name: "all on MX Plan", boxes: []Mailbox{{"a@example.com", "mxplan-1", false}, {"b@example.com", "mxplan-1", false}},
			want: []Record{mx("10 mx1.mxplan.test."), spf("_spf.mxplan.test")}, from: "mxplan-1"},
		{name: "all moved to E-mail Pro", boxes: []Mailbox{{"a@example.com", "emailpro-1", true}, {"b@example.com", "emailpro-1", true}},
			want: pro, from: "emailpro-1"},
		{name: "one moved, one still on MX Plan: MX Plan's MX follows the route",
			boxes: []Mailbox{{"a@example.com", "emailpro-1", true}, {"b@example.com", "mxplan-1", false}},
			want:  []Record{mx("10 mx1.mxplan.test."), spf("_spf.mxplan.test"), spf("_spf.pro.test")}, from: "mxplan-1",
			phrase: "a@example.com on emailpro-1; b@example.com on mxplan-1"},
		{name: "E-mail Pro and Exchange, none left on MX Plan",
			boxes: []Mailbox{{"a@example.com", "emailpro-1", true}, {"b@example.com", "exchange-1", true}},
			held:  true, phrase: "a@example.com on emailpro-1; b@example.com on exchange-1"},
		{name: "a native E-mail Pro account without a route beside an MX Plan one",
			boxes: []Mailbox{{"a@example.com", "emailpro-1", false}, {"b@example.com", "mxplan-1", false}},
			held:  true, phrase: "no service's MX reaches every address"},
		{name: "two services behind the same MX",
			boxes: []Mailbox{{"a@example.com", "emailpro-1", true}, {"b@example.com", "emailpro-2", false}},
			want:  []Record{mx("10 mx1.pro.test."), mx("20 mx2.pro.test."), spf("_spf.pro.test"), spf("_spf2.pro.test"), ad("autodiscover.pro.test.")},
			from:  "emailpro-1"},
		{name: "MX Plan, E-mail Pro and Exchange, the moved ones routed",
			boxes: []Mailbox{{"a@example.com", "emailpro-1", true}, {"b@example.com", "mxplan-1", false}, {"c@example.com", "exchange-1", true}},
			want:  []Record{mx("10 mx1.mxplan.test."), spf("_spf.mxplan.test"), spf("_spf.pro.test"), spf("_spf.exchange.test")},
			from:  "mxplan-1", phrase: "autodiscover is left as it is"},
		{name: "no account", held: true, phrase: "no account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := DomainNeeds("Example.com", tc.boxes, ruleServices)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(n.Records, tc.want) || n.Held != tc.held || n.MXFrom != tc.from {
				t.Fatalf("DomainNeeds() = %+v, want records %v, held %v, MX from %q", n, tc.want, tc.held, tc.from)
			}
			if n.Held && len(n.Records) != 0 {
				t.Fatalf("a held domain has records: %v", n.Records)
			}
			if !strings.Contains(n.Note, tc.phrase) || (n.Split() && n.Note == "") {
				t.Fatalf("note %q, want it to say %q", n.Note, tc.phrase)
			}
			if _, err := RRs(n.Records); err != nil {
				t.Fatalf("records cannot be written: %v", err)
			}
		})
	}
}

// TestDomainNeedsRefusesBadServices: a service of the domain that is bad or
// unknown is a ServiceError naming it and the field, never a record.
func TestDomainNeedsRefusesBadServices(t *testing.T) {
	for _, tc := range []struct {
		boxes []Mailbox
		svc   string
		words string
	}{
		{[]Mailbox{{"a@example.com", "bad-1", true}}, "bad-1", `spfInclude "_spf.bad.test +all"`},
		{[]Mailbox{{"a@example.com", "emailpro-1", true}, {"b@example.com", "bad-1", false}}, "bad-1", "spfInclude"},
		{[]Mailbox{{"a@example.com", "gone-1", true}}, "gone-1", "not in the directory"},
	} {
		_, err := DomainNeeds("example.com", tc.boxes, ruleServices)
		svc, bad := IsBadService(err)
		if !bad || svc != tc.svc || !errors.Is(err, ErrBadService) || !strings.Contains(err.Error(), tc.words) {
			t.Fatalf("DomainNeeds(%v) = %v, want a bad service %s naming %q", tc.boxes, err, tc.svc, tc.words)
		}
	}
}
