package dnscheck

import (
	"context"
	"strings"

	"github.com/miekg/dns"
)

// Ops is the DNS side of a migration: checking every domain, updating the
// zones mailshift manages.
type Ops struct {
	Checker *Checker
	// Managed maps a zone apex (FQDN) to its updater.
	Managed map[string]*Updater
}

// Check runs the checker.
func (o *Ops) Check(ctx context.Context, domain string, want []Record) (*Diagnostic, error) {
	return o.Checker.Check(ctx, domain, want)
}

// Apply sets the records when the domain's zone is managed; for any other
// domain it sends nothing and reports managed = false.
func (o *Ops) Apply(ctx context.Context, domain string, want []Record) (managed, changed bool, err error) {
	fqdn, err := Normalize(domain)
	if err != nil {
		return false, false, err
	}
	for n := fqdn; ; {
		if u, ok := o.Managed[strings.ToLower(n)]; ok {
			changed, err := u.Apply(ctx, n, want)
			return true, changed, err
		}
		i, end := dns.NextLabel(n, 0)
		if end {
			return false, false, nil
		}
		n = n[i:]
	}
}
