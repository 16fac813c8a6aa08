package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/mailshift/mailshift/internal/dnscheck"
)

// DNS prints the propagation diagnostic of a domain for a destination
// service, without starting anything.
func (e *Env) DNS(ctx context.Context, domain, to string) error {
	dir, err := e.needDirectory(ctx, "dns")
	if err != nil {
		return err
	}
	sv, err := dir.Service(ctx, to)
	if err != nil {
		return err
	}
	want, err := dnscheck.Expected(domain, dnscheck.Requirements{MX: sv.MX, SPFInclude: sv.SPFInclude, Autodiscover: sv.Autodiscover})
	if err != nil {
		return err
	}
	chk := &dnscheck.Checker{}
	if e.Checker != nil {
		chk = e.Checker
	} else if info, _ := e.devInfo(); info != nil {
		_, port, _ := net.SplitHostPort(info.DNS)
		chk.Resolver, chk.Port = info.DNS, port
	}
	d, err := chk.Check(ctx, domain, want)
	if err != nil {
		return err
	}
	PrintDiagnostic(e.Out, d)
	if !d.OK {
		return fmt.Errorf("%s", d.Summary())
	}
	return nil
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
	for _, r := range d.Records {
		if r.Fix != "" {
			fmt.Fprintf(w, "set: %s\n", r.Fix)
		}
	}
	fmt.Fprintf(w, "%s\n", d.Summary())
}
