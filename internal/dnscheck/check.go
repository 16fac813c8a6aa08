// Package dnscheck tells whether a domain's DNS says what a mail service
// needs (MX set, SPF include, autodiscover), asking every authoritative
// server of the zone directly, and changes managed zones with TSIG-signed
// RFC 2136 updates.
package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

// Record is one record a service needs. Name is a FQDN; Value is in
// presentation form ("10 mx1.example.net." for MX, the SPF include domain
// for SPF, the target for CNAME).
type Record struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Record types the checker knows.
const (
	TypeMX    = "MX"
	TypeSPF   = "SPF"
	TypeCNAME = "CNAME"
)

// Requirements describe what a service's domains need.
type Requirements struct {
	// MX is "pref host" pairs separated by commas.
	MX           string
	SPFInclude   string
	Autodiscover string
}

// Expected returns the records domain needs for a service. Every field of
// req is validated first: a bad one is a *FieldError (ErrBadService), never
// a record.
func Expected(domain string, req Requirements) ([]Record, error) {
	fqdn, err := Normalize(domain)
	if err != nil {
		return nil, err
	}
	p, err := req.parse()
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, mx := range p.mx {
		out = append(out, Record{Type: TypeMX, Name: fqdn, Value: mx.String()})
	}
	if p.spf != "" {
		out = append(out, Record{Type: TypeSPF, Name: fqdn, Value: p.spf})
	}
	if p.autodiscover != "" {
		out = append(out, Record{Type: TypeCNAME, Name: "autodiscover." + fqdn, Value: p.autodiscover})
	}
	return out, nil
}

// Normalize turns a domain (possibly non-ASCII) into a lower-case ASCII FQDN.
func Normalize(domain string) (string, error) {
	d := strings.TrimSuffix(strings.TrimSpace(domain), ".")
	if d == "" {
		return "", errors.New("empty domain")
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("domain %q: %w", domain, err)
	}
	if _, ok := dns.IsDomainName(a); !ok {
		return "", fmt.Errorf("domain %q is not a valid DNS name", domain)
	}
	return dns.Fqdn(strings.ToLower(a)), nil
}

// Checker asks a zone's authoritative servers directly.
type Checker struct {
	// Resolver (host:port) finds the zone, its NS and their addresses.
	// Empty: the first nameserver of /etc/resolv.conf.
	Resolver string
	// Port is the port of the authoritative servers (default 53; the dev
	// stack's embedded server listens elsewhere).
	Port string
	// Timeout per query (default 3 s).
	Timeout time.Duration
	// Resolvers are recursive resolvers whose caches are also checked.
	Resolvers []string
	// Override maps a nameserver's name (FQDN) to the host:port to query
	// instead of its address records: a hidden primary, a lab, a server
	// reached through a tunnel.
	Override map[string]string
}

// ServerAnswer is what one server said about one record.
type ServerAnswer struct {
	Server string   `json:"server"`
	Values []string `json:"values,omitempty"`
	OK     bool     `json:"ok"`
	Error  string   `json:"error,omitempty"`
}

// RecordCheck is the diagnostic of one expected record.
type RecordCheck struct {
	Record  Record         `json:"record"`
	Servers []ServerAnswer `json:"servers"`
	OK      bool           `json:"ok"`
	// Fix is the exact record to set, in zone-file form, when not OK.
	Fix string `json:"fix,omitempty"`
}

// Diagnostic is the state of a domain's records on every server.
type Diagnostic struct {
	Domain  string            `json:"domain"`
	Zone    string            `json:"zone"`
	Serials map[string]uint32 `json:"serials"`
	Records []RecordCheck     `json:"records"`
	// Problems lists server-level problems (timeouts, lame servers).
	Problems []string `json:"problems,omitempty"`
	// Warnings are mistakes that stop mail whatever the servers agree on:
	// a CNAME on the domain, an MX target without address records.
	Warnings []string `json:"warnings,omitempty"`
	// Notes explain the expected records: why a domain split between
	// services gets these records, or none (see Needs).
	Notes []string `json:"notes,omitempty"`
	OK    bool     `json:"ok"`
}

// Summary is a one-line description for progress reports.
func (d *Diagnostic) Summary() string {
	if d == nil {
		return "not checked"
	}
	bad := 0
	for _, r := range d.Records {
		if !r.OK {
			bad++
		}
	}
	if d.OK && len(d.Records) == 0 && len(d.Notes) > 0 {
		return fmt.Sprintf("%s: no record to check: %s", d.Domain, d.Notes[0])
	}
	if d.OK {
		return fmt.Sprintf("%s: all %d records seen on every server", d.Domain, len(d.Records))
	}
	return fmt.Sprintf("%s: %d of %d records not yet seen everywhere", d.Domain, bad, len(d.Records))
}

type nameserver struct {
	name, addr string
	// err is why the nameserver has no address.
	err error
}

func (c *Checker) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 3 * time.Second
}

func (c *Checker) resolver() (string, error) {
	if c.Resolver != "" {
		return c.Resolver, nil
	}
	cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil || len(cfg.Servers) == 0 {
		return "", fmt.Errorf("no resolver configured and none in /etc/resolv.conf")
	}
	return net.JoinHostPort(cfg.Servers[0], cfg.Port), nil
}

// exchange sends m to addr over UDP, and again over TCP when truncated.
func (c *Checker) exchange(ctx context.Context, m *dns.Msg, addr string) (*dns.Msg, error) {
	cl := &dns.Client{Timeout: c.timeout()}
	r, _, err := cl.ExchangeContext(ctx, m, addr)
	if err == nil && r.Truncated {
		cl.Net = "tcp"
		r, _, err = cl.ExchangeContext(ctx, m, addr)
	}
	return r, err
}

func (c *Checker) query(ctx context.Context, addr, name string, qtype uint16, recurse bool) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = recurse
	return c.exchange(ctx, m, addr)
}

// FindZone returns the zone apex that holds name and its nameservers.
func (c *Checker) findZone(ctx context.Context, name string) (string, []nameserver, error) {
	res, err := c.resolver()
	if err != nil {
		return "", nil, err
	}
	zone := ""
	for n := name; ; {
		r, err := c.query(ctx, res, n, dns.TypeSOA, true)
		if err != nil {
			return "", nil, fmt.Errorf("find zone of %s: %w", name, err)
		}
		for _, rr := range append(r.Answer, r.Ns...) {
			if soa, ok := rr.(*dns.SOA); ok {
				zone = soa.Hdr.Name
			}
		}
		if zone != "" {
			break
		}
		i, end := dns.NextLabel(n, 0)
		if end {
			return "", nil, fmt.Errorf("no zone found for %s", name)
		}
		n = n[i:]
	}
	r, err := c.query(ctx, res, zone, dns.TypeNS, true)
	if err != nil {
		return "", nil, fmt.Errorf("NS of %s: %w", zone, err)
	}
	var nss []nameserver
	port := c.Port
	if port == "" {
		port = "53"
	}
	for _, rr := range r.Answer {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		if addr, ok := c.Override[strings.ToLower(ns.Ns)]; ok {
			nss = append(nss, nameserver{name: ns.Ns, addr: addr})
			continue
		}
		ar, err := c.query(ctx, res, ns.Ns, dns.TypeA, true)
		if err != nil {
			nss = append(nss, nameserver{name: ns.Ns, err: fmt.Errorf("address lookup: %w", err)})
			continue
		}
		found := false
		for _, a := range ar.Answer {
			if a, ok := a.(*dns.A); ok {
				nss = append(nss, nameserver{name: ns.Ns, addr: net.JoinHostPort(a.A.String(), port)})
				found = true
			}
		}
		if !found {
			nss = append(nss, nameserver{name: ns.Ns, err: errors.New("no address record")})
		}
	}
	if len(nss) == 0 {
		return zone, nil, fmt.Errorf("zone %s has no NS records", zone)
	}
	sort.Slice(nss, func(i, j int) bool { return nss[i].name+nss[i].addr < nss[j].name+nss[j].addr })
	return zone, nss, nil
}

// Check asks every authoritative server of domain's zone (and the configured
// resolvers) for each wanted record. Each call builds its diagnostic from
// nothing: no problem of an earlier check is carried into a later one.
func (c *Checker) Check(ctx context.Context, domain string, want []Record) (*Diagnostic, error) {
	fqdn, err := Normalize(domain)
	if err != nil {
		return nil, err
	}
	if err := checkRecords(want); err != nil {
		return nil, err
	}
	zone, nss, err := c.findZone(ctx, fqdn)
	if err != nil {
		return nil, err
	}
	res, err := c.resolver()
	if err != nil {
		return nil, err
	}
	d := &Diagnostic{Domain: fqdn, Zone: zone, Serials: map[string]uint32{}}
	type target struct {
		label, addr string
		recurse     bool
	}
	var targets []target
	for _, ns := range nss {
		label := strings.TrimSuffix(ns.name, ".")
		if ns.addr == "" {
			d.Problems = append(d.Problems, fmt.Sprintf("%s: %v", label, ns.err))
			continue
		}
		targets = append(targets, target{label: label, addr: ns.addr})
		r, err := c.query(ctx, ns.addr, zone, dns.TypeSOA, false)
		switch {
		case err != nil:
			d.Problems = append(d.Problems, fmt.Sprintf("%s: %v", label, err))
		case !r.Authoritative:
			d.Problems = append(d.Problems, fmt.Sprintf("%s: lame (not authoritative for %s)", label, zone))
		default:
			for _, rr := range r.Answer {
				if soa, ok := rr.(*dns.SOA); ok {
					d.Serials[label] = soa.Serial
				}
			}
		}
	}
	for _, res := range c.Resolvers {
		targets = append(targets, target{label: "resolver " + res, addr: res, recurse: true})
	}
	if len(targets) > 0 {
		var problems []string
		d.Warnings, problems = c.lint(ctx, fqdn, targets[0].addr, res, want)
		d.Problems = append(d.Problems, problems...)
	}
	d.OK = len(targets) > 0
	var mxWant []string
	for _, rec := range want {
		if rec.Type == TypeMX {
			mxWant = append(mxWant, rec.Value)
		}
	}
	for _, rec := range want {
		rc := RecordCheck{Record: rec, OK: true, Fix: fixFor(rec, want)}
		for _, t := range targets {
			sa := c.ask(ctx, t.addr, t.recurse, rec, mxWant)
			sa.Server = t.label
			if !sa.OK {
				rc.OK = false
			}
			rc.Servers = append(rc.Servers, sa)
		}
		if rc.OK {
			rc.Fix = ""
		} else {
			d.OK = false
		}
		d.Records = append(d.Records, rc)
	}
	return d, nil
}

// ask queries one server for one record. An MX record is only OK when the
// server's whole MX set is mxWant: a stale MX left beside the new ones still
// draws mail to the old platform. An SPF include is only OK in the name's
// one SPF record: two SPF records are an error for every receiver (RFC 7208
// 4.5), whatever they include.
func (c *Checker) ask(ctx context.Context, addr string, recurse bool, rec Record, mxWant []string) ServerAnswer {
	qtype, ok := qtypes[rec.Type]
	if !ok {
		return ServerAnswer{Error: fmt.Sprintf("unknown record type %q", rec.Type)}
	}
	r, err := c.query(ctx, addr, rec.Name, qtype, recurse)
	if err != nil {
		return ServerAnswer{Error: err.Error()}
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return ServerAnswer{Error: dns.RcodeToString[r.Rcode]}
	}
	sa := ServerAnswer{}
	for _, rr := range r.Answer {
		if !strings.EqualFold(rr.Header().Name, rec.Name) {
			continue
		}
		switch v := rr.(type) {
		case *dns.MX:
			val := fmt.Sprintf("%d %s", v.Preference, strings.ToLower(v.Mx))
			sa.Values = append(sa.Values, val)
			if val == rec.Value {
				sa.OK = true
			}
		case *dns.TXT:
			txt := strings.Join(v.Txt, "")
			if !isSPF(txt) {
				continue
			}
			sa.Values = append(sa.Values, txt)
			if spfIncludes(txt)[strings.TrimSuffix(strings.ToLower(rec.Value), ".")] {
				sa.OK = true
			}
		case *dns.CNAME:
			sa.Values = append(sa.Values, strings.ToLower(v.Target))
			if strings.EqualFold(v.Target, rec.Value) {
				sa.OK = true
			}
		}
	}
	sort.Strings(sa.Values)
	if rec.Type == TypeMX && sa.OK && len(mxWant) > 0 && !sameSet(sa.Values, mxWant) {
		sa.OK = false
	}
	if rec.Type == TypeSPF && len(sa.Values) > 1 {
		sa.OK = false
	}
	return sa
}

var qtypes = map[string]uint16{TypeMX: dns.TypeMX, TypeSPF: dns.TypeTXT, TypeCNAME: dns.TypeCNAME}

// isSPF tells whether a TXT string is an SPF record ("v=spf1" alone or
// followed by a space).
func isSPF(txt string) bool {
	l := strings.ToLower(txt)
	return l == "v=spf1" || strings.HasPrefix(l, "v=spf1 ")
}

// spfIncludes returns the domains an SPF record includes with a pass
// qualifier ("include:x" or "+include:x"), lower-case, without a trailing
// dot.
func spfIncludes(txt string) map[string]bool {
	out := map[string]bool{}
	for _, term := range strings.Fields(strings.ToLower(txt)) {
		if d, ok := strings.CutPrefix(strings.TrimPrefix(term, "+"), "include:"); ok {
			out[strings.TrimSuffix(d, ".")] = true
		}
	}
	return out
}

// spfOf lists, in order and once each, the SPF includes wanted at name.
func spfOf(want []Record, name string) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range want {
		if r.Type == TypeSPF && strings.EqualFold(r.Name, name) && !seen[strings.ToLower(r.Value)] {
			seen[strings.ToLower(r.Value)] = true
			out = append(out, r.Value)
		}
	}
	return out
}

// spfText is the one SPF record of a name that includes every service's
// senders.
func spfText(includes []string) string {
	var b strings.Builder
	b.WriteString("v=spf1")
	for _, inc := range includes {
		b.WriteString(" include:" + inc)
	}
	b.WriteString(" ~all")
	return b.String()
}

// fixFor is the zone-file line that sets r. The SPF includes wanted at one
// name share one line: a name has a single SPF record.
func fixFor(r Record, want []Record) string {
	switch r.Type {
	case TypeMX:
		return fmt.Sprintf("%s 3600 IN MX %s", r.Name, r.Value)
	case TypeSPF:
		return fmt.Sprintf("%s 3600 IN TXT %q", r.Name, spfText(spfOf(want, r.Name)))
	case TypeCNAME:
		return fmt.Sprintf("%s 3600 IN CNAME %s", r.Name, r.Value)
	}
	return ""
}

// checkRecords refuses a record that could not be set as it is: an unknown
// type, a bad name, a value that is not a host name (or "preference host"
// for MX). Expected never makes one; a Record built elsewhere may.
func checkRecords(want []Record) error {
	for _, r := range want {
		if _, ok := dns.IsDomainName(r.Name); !ok || !dns.IsFqdn(r.Name) {
			return fmt.Errorf("record %s %q: the name is not a fully qualified domain name: %w", r.Type, r.Name, ErrBadService)
		}
		var err error
		switch r.Type {
		case TypeMX:
			_, err = ParseMX(r.Value)
			if err == nil && strings.Contains(r.Value, ",") {
				err = errors.New("one exchanger per record")
			}
		case TypeSPF:
			_, err = HostName(r.Value, true)
		case TypeCNAME:
			_, err = HostName(r.Value, false)
		default:
			err = errors.New("unknown record type")
		}
		if err != nil {
			return fmt.Errorf("record %s %s %q: %v: %w", r.Type, r.Name, r.Value, err, ErrBadService)
		}
	}
	return nil
}

// RRs returns the records to set for want, as dns.RR values: one per MX,
// one SPF TXT per name with all its includes, one CNAME per name.
func RRs(want []Record) ([]dns.RR, error) {
	if err := checkRecords(want); err != nil {
		return nil, err
	}
	var out []dns.RR
	done := map[string]bool{}
	for _, r := range want {
		line := fixFor(r, want)
		if done[line] {
			continue
		}
		done[line] = true
		rr, err := dns.NewRR(line)
		if err != nil {
			return nil, fmt.Errorf("record %s %s %q: %w", r.Type, r.Name, r.Value, err)
		}
		out = append(out, rr)
	}
	return out, nil
}

// lint finds what would stop mail whatever the records say: a CNAME on the
// domain itself (nothing else can live beside it, so no MX either), and an
// MX target without address records. A lookup that fails is a problem of
// the check, not a warning about the domain.
func (c *Checker) lint(ctx context.Context, fqdn, server, res string, want []Record) (warnings, problems []string) {
	r, err := c.query(ctx, server, fqdn, dns.TypeCNAME, false)
	if err != nil {
		problems = append(problems, fmt.Sprintf("CNAME check of %s: %v", fqdn, err))
	} else {
		for _, rr := range r.Answer {
			if cn, ok := rr.(*dns.CNAME); ok && strings.EqualFold(cn.Hdr.Name, fqdn) {
				warnings = append(warnings, fmt.Sprintf("%s is a CNAME to %s: no MX or TXT record can exist beside it; replace the CNAME", fqdn, cn.Target))
			}
		}
	}
	seen := map[string]bool{}
	for _, rec := range want {
		if rec.Type != TypeMX {
			continue
		}
		f := strings.Fields(rec.Value)
		host := f[len(f)-1]
		if seen[host] {
			continue
		}
		seen[host] = true
		// Only a clear answer counts: NXDOMAIN, or no A and no AAAA. A
		// refusal or a failure says nothing about the name.
		missing := true
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			r, err := c.query(ctx, res, host, t, true)
			if err != nil {
				problems = append(problems, fmt.Sprintf("address check of MX target %s: %v", host, err))
				missing = false
				break
			}
			if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
				missing = false
				break
			}
			for _, rr := range r.Answer {
				if rr.Header().Rrtype == t {
					missing = false
				}
			}
		}
		if missing {
			warnings = append(warnings, fmt.Sprintf("MX target %s has no A or AAAA record: mail cannot be delivered to it", host))
		}
	}
	return warnings, problems
}
