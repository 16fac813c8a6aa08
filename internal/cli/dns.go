package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/mailshift/mailshift/internal/address"
	"github.com/mailshift/mailshift/internal/dnscheck"
)

// DNS prints the propagation diagnostic of a domain, without starting
// anything: the records it needs with all of its accounts where the
// directory has them now (the rule of the routing switch and the DNS
// check). to names the service whose records a domain without any account
// in the directory would need.
func (e *Env) DNS(ctx context.Context, domain, to string) error {
	dir, err := e.needDirectory(ctx, "dns")
	if err != nil {
		return err
	}
	d, err := address.Domain(domain)
	if err != nil {
		return err
	}
	needs, err := dir.DomainNeeds(ctx, d, nil)
	if err != nil {
		return err
	}
	if len(needs.Services) == 0 {
		if to == "" {
			return fmt.Errorf("no account of %s in the directory; name a service with --to to see its records", d)
		}
		sv, err := dir.Service(ctx, to)
		if err != nil {
			return err
		}
		if err := sv.Validate(); err != nil {
			return err
		}
		if needs.Records, err = dnscheck.Expected(d, sv.Requirements()); err != nil {
			return err
		}
		needs.Held = false
		needs.Note = fmt.Sprintf("no account of %s in the directory: the records of %s", d, to)
	}
	for _, sb := range needs.Services {
		fmt.Fprintf(e.Out, "on %s: %s\n", sb.Service, strings.Join(sb.Addresses, ", "))
	}
	if to != "" && len(needs.Services) > 0 && !onService(needs, to) {
		fmt.Fprintf(e.Out, "note: no account of %s is on %s yet; the records follow where its accounts are now\n", d, to)
	}
	chk := &dnscheck.Checker{}
	if e.Checker != nil {
		chk = e.Checker
	} else {
		info, err := e.devInfo()
		if err != nil {
			return err
		}
		if info != nil {
			_, port, err := net.SplitHostPort(info.DNS)
			if err != nil {
				return fmt.Errorf("dev stack DNS address %q: %w", info.DNS, err)
			}
			chk.Resolver, chk.Port = info.DNS, port
		}
	}
	diag, err := chk.Check(ctx, d, needs.Records)
	if err != nil {
		return err
	}
	if needs.Note != "" {
		diag.Notes = append(diag.Notes, needs.Note)
	}
	PrintDiagnostic(e.Out, diag)
	if !diag.OK {
		return fmt.Errorf("%s", diag.Summary())
	}
	return nil
}

func onService(n *dnscheck.Needs, id string) bool {
	for _, sb := range n.Services {
		if sb.Service == id {
			return true
		}
	}
	return false
}

// PrintDiagnostic prints a diagnostic as a table.
func PrintDiagnostic(w io.Writer, d *dnscheck.Diagnostic) {
	fmt.Fprintf(w, "zone %s, serials:", d.Zone)
	var names []string
	for n := range d.Serials {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, " %s=%d", n, d.Serials[n])
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORD\tEXPECTED\tSERVER\tSEEN\tOK")
	for _, r := range d.Records {
		for i, s := range r.Servers {
			rec, exp := "", ""
			if i == 0 {
				rec, exp = r.Record.Type+" "+r.Record.Name, r.Record.Value
			}
			seen := strings.Join(s.Values, " | ")
			if s.Error != "" {
				seen = "error: " + s.Error
			}
			if seen == "" {
				seen = "(nothing)"
			}
			ok := "ok"
			if !s.OK {
				ok = "NOT OK"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", rec, exp, s.Server, seen, ok)
		}
	}
	tw.Flush()
	for _, p := range d.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
	for _, p := range d.Warnings {
		fmt.Fprintf(w, "warning: %s\n", p)
	}
	for _, p := range d.Notes {
		fmt.Fprintf(w, "note: %s\n", p)
	}
	for _, r := range d.Records {
		if r.Fix != "" {
			fmt.Fprintf(w, "set: %s\n", r.Fix)
		}
	}
	fmt.Fprintf(w, "%s\n", d.Summary())
}
