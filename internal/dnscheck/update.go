package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ErrRefused marks an update the server refused for a reason a retry cannot
// fix (REFUSED, NOTAUTH, a bad key or signature).
var ErrRefused = errors.New("update refused")

// TSIGKey is a TSIG key. Secret is base64 and never logged.
type TSIGKey struct {
	Name      string
	Algorithm string // default hmac-sha256
	Secret    string
}

// Updater changes a managed zone with TSIG-signed RFC 2136 updates.
type Updater struct {
	// Primary is host:port of the zone's primary server.
	Primary string
	Key     TSIGKey
	Timeout time.Duration
}

// Apply makes the zone hold exactly the wanted MX set, one SPF record
// including every wanted include, and the autodiscover CNAME. It reads the
// primary first and sends nothing when the zone is already right, so running
// it twice changes nothing the second time. It reports whether it changed
// the zone. A record that cannot be written (see RRs) is an ErrBadService
// error and nothing is sent.
func (u *Updater) Apply(ctx context.Context, zone string, want []Record) (bool, error) {
	zone, err := Normalize(zone)
	if err != nil {
		return false, err
	}
	if _, err := RRs(want); err != nil {
		return false, err
	}
	c := &Checker{Timeout: u.Timeout}
	var ins, del, rrsetDel []dns.RR
	done := map[string]bool{}
	for _, rec := range want {
		key := rec.Type + " " + strings.ToLower(rec.Name)
		if done[key] {
			continue
		}
		done[key] = true
		// Everything wanted of this type at this name: the MX set, the SPF
		// includes, the CNAME.
		var same []Record
		var values []string
		for _, r := range want {
			if r.Type == rec.Type && strings.EqualFold(r.Name, rec.Name) {
				same = append(same, r)
				values = append(values, r.Value)
			}
		}
		sa := c.ask(ctx, u.Primary, false, rec, nil)
		if sa.Error != "" {
			return false, fmt.Errorf("read %s %s on %s: %s", rec.Name, rec.Type, u.Primary, sa.Error)
		}
		rrs, err := RRs(same)
		if err != nil {
			return false, err
		}
		switch rec.Type {
		case TypeMX:
			if sameSet(sa.Values, values) {
				continue
			}
			rrsetDel = append(rrsetDel, &dns.ANY{Hdr: dns.RR_Header{Name: rec.Name, Rrtype: dns.TypeMX, Class: dns.ClassANY}})
		case TypeSPF:
			if len(sa.Values) == 1 && hasAll(spfIncludes(sa.Values[0]), values) {
				continue
			}
			for _, old := range sa.Values {
				del = append(del, &dns.TXT{Hdr: dns.RR_Header{Name: rec.Name, Rrtype: dns.TypeTXT, Class: dns.ClassNONE}, Txt: splitTXT(old)})
			}
		case TypeCNAME:
			if len(same) > 1 {
				return false, fmt.Errorf("%s: %d CNAME targets wanted, a name has one: %w", rec.Name, len(same), ErrBadService)
			}
			if sa.OK {
				continue
			}
			rrsetDel = append(rrsetDel, &dns.ANY{Hdr: dns.RR_Header{Name: rec.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassANY}})
		}
		ins = append(ins, rrs...)
	}
	if len(ins) == 0 && len(del) == 0 && len(rrsetDel) == 0 {
		return false, nil
	}
	m := new(dns.Msg)
	m.SetUpdate(zone)
	// Prerequisite: the zone's SOA exists there, so an update sent to a
	// server that does not hold the zone fails instead of doing nothing.
	m.RRsetUsed([]dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET}}})
	m.Ns = append(m.Ns, rrsetDel...)
	m.Ns = append(m.Ns, del...)
	m.Insert(ins)
	cl := &dns.Client{Net: "tcp", Timeout: u.timeout()}
	if u.Key.Name != "" {
		alg := u.Key.Algorithm
		if alg == "" {
			alg = dns.HmacSHA256
		}
		name := dns.Fqdn(u.Key.Name)
		cl.TsigSecret = map[string]string{name: u.Key.Secret}
		m.SetTsig(name, dns.Fqdn(alg), 300, time.Now().Unix())
	}
	r, _, err := cl.ExchangeContext(ctx, m, u.Primary)
	if err != nil {
		if errors.Is(err, dns.ErrAuth) || errors.Is(err, dns.ErrSig) || errors.Is(err, dns.ErrSecret) || errors.Is(err, dns.ErrKeyAlg) || errors.Is(err, dns.ErrAlg) {
			return false, fmt.Errorf("update %s on %s: %w: TSIG: %v", zone, u.Primary, ErrRefused, err)
		}
		return false, fmt.Errorf("update %s on %s: %w", zone, u.Primary, err)
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
		return true, nil
	case dns.RcodeRefused, dns.RcodeNotAuth, dns.RcodeBadSig, dns.RcodeBadKey, dns.RcodeBadTime, dns.RcodeNotZone, dns.RcodeYXRrset, dns.RcodeNXRrset, dns.RcodeNotImplemented:
		return false, fmt.Errorf("update %s on %s: %w: %s", zone, u.Primary, ErrRefused, dns.RcodeToString[r.Rcode])
	}
	return false, fmt.Errorf("update %s on %s: %s", zone, u.Primary, dns.RcodeToString[r.Rcode])
}

// hasAll tells whether every wanted include is in have.
func hasAll(have map[string]bool, want []string) bool {
	for _, w := range want {
		if !have[strings.TrimSuffix(strings.ToLower(w), ".")] {
			return false
		}
	}
	return true
}

func (u *Updater) timeout() time.Duration {
	if u.Timeout > 0 {
		return u.Timeout
	}
	return 5 * time.Second
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[strings.ToLower(x)]++
	}
	for _, x := range b {
		m[strings.ToLower(x)]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}
