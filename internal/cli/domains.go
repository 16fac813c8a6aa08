package cli

import (
	"context"
	"fmt"
	"sort"

	"github.com/mailshift/mailshift/internal/address"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/dnscheck"
	"github.com/mailshift/mailshift/internal/plan"
)

// splitDomains prints, for a plan's dry run, one line per domain whose
// accounts would be on different services once every row has moved (rows
// of the plan, other accounts where they are), with what that means for
// the domain's DNS: the rule of the routing switch (dnscheck.DomainNeeds).
// It returns how many domains would be split.
func (e *Env) splitDomains(ctx context.Context, dir *directory.Store, rows []plan.Row) (int, error) {
	moves := map[string]map[string]string{}
	for _, r := range rows {
		d := address.DomainOf(r.Input.Address)
		if moves[d] == nil {
			moves[d] = map[string]string{}
		}
		moves[d][r.Input.Address] = r.Input.To
	}
	domains := make([]string, 0, len(moves))
	for d := range moves {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	split := 0
	for _, d := range domains {
		needs, err := dir.DomainNeeds(ctx, d, moves[d])
		if err != nil {
			if _, bad := dnscheck.IsBadService(err); bad {
				fmt.Fprintf(e.Out, "domain %s: its DNS records cannot be computed: %v\n", d, err)
				continue
			}
			return split, err
		}
		if needs.Split() {
			split++
			fmt.Fprintf(e.Out, "split domain %s (once the plan has run): %s\n", d, needs.Note)
		}
	}
	return split, nil
}
