package directory

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/mailshift/mailshift/internal/address"
	"github.com/mailshift/mailshift/internal/dnscheck"
)

// Mailbox is where one address of a domain receives its mail.
type Mailbox struct {
	Address   string
	ServiceID string
	// Routed: the address has a route (the platform's transport map sends
	// its mail to ServiceID). Without one, the MX Plan platform keeps it.
	Routed bool
}

// DomainMailboxes lists every address of a domain (matched exactly, never
// as a pattern) with the service that receives its mail: its route when it
// has one; else its MX Plan account (the transport map's default), whatever
// that account's state; else its account on another service.
func (s *Store) DomainMailboxes(ctx context.Context, domain string) ([]Mailbox, error) {
	d, err := address.Domain(domain)
	if err != nil {
		return nil, err
	}
	pattern := "%@" + mailboxEscaper.Replace(d)
	byAddr := map[string]*Mailbox{}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT address, service_id FROM routes WHERE address LIKE ? ESCAPE '\'`), pattern)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var m Mailbox
		if err := rows.Scan(&m.Address, &m.ServiceID); err != nil {
			rows.Close()
			return nil, err
		}
		if address.DomainOf(m.Address) == d {
			m.Routed = true
			byAddr[m.Address] = &m
		}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, s.q(`SELECT a.address, a.service_id, s.kind FROM accounts a JOIN services s ON s.id = a.service_id
		WHERE a.address LIKE ? ESCAPE '\' ORDER BY a.address, a.service_id`), pattern)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var addr, svc, kind string
		if err := rows.Scan(&addr, &svc, &kind); err != nil {
			return nil, err
		}
		if address.DomainOf(addr) != d {
			continue
		}
		m := byAddr[addr]
		switch {
		case m == nil:
			byAddr[addr] = &Mailbox{Address: addr, ServiceID: svc}
		case m.Routed:
		case kind == KindMXPlan:
			// No route: the MX Plan account keeps the mail, even beside a
			// configured slot whose migration has not switched yet.
			m.ServiceID = svc
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Mailbox, 0, len(byAddr))
	for _, m := range byAddr {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

// mailboxEscaper makes a domain match itself in a LIKE pattern with
// ESCAPE '\' (SQLite and PostgreSQL alike).
var mailboxEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// DomainNeeds computes the DNS records a domain needs from all of its
// addresses (dnscheck.DomainNeeds), with moves (address → service) applied
// first: a migration counts its own address at its destination, routed, as
// the routing switch leaves it; a plan counts each of its rows. A service
// whose DNS fields are bad is a *dnscheck.ServiceError.
func (s *Store) DomainNeeds(ctx context.Context, domain string, moves map[string]string) (*dnscheck.Needs, error) {
	d, err := address.Domain(domain)
	if err != nil {
		return nil, err
	}
	boxes, err := s.DomainMailboxes(ctx, d)
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	for i, b := range boxes {
		idx[b.Address] = i
	}
	// Moves in a fixed order, so the result never depends on map order.
	var moved []string
	for a := range moves {
		moved = append(moved, a)
	}
	sort.Strings(moved)
	for _, a := range moved {
		addr, err := address.Normalize(a)
		if err != nil {
			return nil, err
		}
		if address.DomainOf(addr) != d {
			continue
		}
		m := Mailbox{Address: addr, ServiceID: moves[a], Routed: true}
		if i, ok := idx[addr]; ok {
			boxes[i] = m
		} else {
			idx[addr] = len(boxes)
			boxes = append(boxes, m)
		}
	}
	services := map[string]dnscheck.MailService{}
	var in []dnscheck.Mailbox
	for _, b := range boxes {
		in = append(in, dnscheck.Mailbox{Address: b.Address, Service: b.ServiceID, Routed: b.Routed})
		if _, ok := services[b.ServiceID]; ok {
			continue
		}
		sv, err := s.Service(ctx, b.ServiceID)
		if err != nil {
			// A missing service is left out here and named as a
			// ServiceError by the rule; any other failure is the
			// directory's.
			if isNotFound(err) {
				continue
			}
			return nil, err
		}
		services[sv.ID] = dnscheck.MailService{ID: sv.ID, Req: sv.Requirements(), FollowsRoutes: sv.Kind == KindMXPlan}
	}
	return dnscheck.DomainNeeds(d, in, services)
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
