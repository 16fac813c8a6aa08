package activities

import (
	"context"

	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/address"
	"github.com/mailshift/mailshift/internal/dnscheck"
)

// RouteInput switches an address to a service.
type RouteInput struct {
	Address    string
	To         string
	WorkflowID string
}

// RouteResult says what the switch did to DNS.
type RouteResult struct {
	ManagedZone bool `json:"managedZone"`
	DNSChanged  bool `json:"dnsChanged"`
	// DNSNote explains the records of a domain whose accounts are on
	// several services, or why its DNS was left as it is.
	DNSNote string `json:"dnsNote,omitempty"`
}

// SwitchRouting sends the address's mail to the destination and, for a zone
// mailshift manages, sets the records the domain needs with all of its
// accounts (the address counted at its destination). A domain whose
// accounts no one set of records serves keeps its DNS: the route written
// here is what delivers the address's mail.
func (a *Activities) SwitchRouting(ctx context.Context, in RouteInput) (*RouteResult, error) {
	_, stop := keepAlive(ctx)
	defer stop()
	// The records are computed (and a bad service refused) before the
	// route moves, so a bad definition stops the switch instead of
	// leaving it half done; the rule counts the address at its
	// destination either way.
	needs, err := a.expected(ctx, in.Address, in.To)
	if err != nil {
		return nil, err
	}
	if err := a.Dir.SwitchRoute(ctx, in.Address, in.To, in.WorkflowID); err != nil {
		return nil, err
	}
	res := &RouteResult{DNSNote: needs.Note}
	if !needs.Held {
		res.ManagedZone, res.DNSChanged, err = a.DNS.Apply(ctx, needs.Domain, needs.Records)
		if err != nil {
			if svc, bad := dnscheck.IsBadService(err); bad {
				return nil, a.badService(in.To, svc, err)
			}
			return nil, fromEngine(err)
		}
	}
	a.log(ctx).Info("routing switched", zap.String("account", in.Address), zap.String("to", in.To),
		zap.Bool("dnsChanged", res.DNSChanged), zap.String("dnsNote", needs.Note))
	return res, nil
}

// expected is the records the address's domain needs once the address is
// on service to, from every account of the domain (dnscheck.DomainNeeds).
// A bad service definition is a permanent error.
func (a *Activities) expected(ctx context.Context, addr, to string) (*dnscheck.Needs, error) {
	n, err := address.Normalize(addr)
	if err != nil {
		return nil, permanent(ErrTypeBadInput, "address: %v", err)
	}
	needs, err := a.Dir.DomainNeeds(ctx, address.DomainOf(n), map[string]string{n: to})
	if err != nil {
		if svc, bad := dnscheck.IsBadService(err); bad {
			return nil, a.badService(to, svc, err)
		}
		return nil, err
	}
	return needs, nil
}

// badService is the permanent error of a service definition that cannot
// make records: the destination's own (BadDestinationService) or another
// service of the domain (BadConfig).
func (a *Activities) badService(to, svc string, err error) error {
	typ := ErrTypeConfig
	if svc == to || svc == "" {
		typ = ErrTypeBadService
	}
	return permanent(typ, "DNS records: %v; correct the service definition (starter import), then retry", err)
}

func domainOf(addr string) string {
	return address.DomainOf(address.Key(addr))
}

// DNSInput asks for the DNS diagnostic of an address's domain.
type DNSInput struct {
	Address string
	To      string
}

// CheckDNS returns the diagnostic of the domain's records on every
// authoritative server, for the records the domain needs with all of its
// accounts. A failed lookup is a diagnostic, not an error: the workflow
// keeps polling until its deadline. Each call returns a diagnostic of its
// own; nothing of an earlier check is in it.
func (a *Activities) CheckDNS(ctx context.Context, in DNSInput) (*dnscheck.Diagnostic, error) {
	_, stop := keepAlive(ctx)
	defer stop()
	needs, err := a.expected(ctx, in.Address, in.To)
	if err != nil {
		return nil, err
	}
	if needs.Held {
		// Nothing is expected of the domain's DNS: there is nothing to
		// wait for, whatever its servers would answer.
		return &dnscheck.Diagnostic{Domain: needs.Domain, Notes: []string{needs.Note}, OK: true}, nil
	}
	d, err := a.DNS.Check(ctx, needs.Domain, needs.Records)
	if err != nil {
		if svc, bad := dnscheck.IsBadService(err); bad {
			return nil, a.badService(in.To, svc, err)
		}
		d = &dnscheck.Diagnostic{Domain: needs.Domain, Problems: []string{err.Error()}}
	}
	if needs.Note != "" {
		d.Notes = append(d.Notes, needs.Note)
	}
	return d, nil
}
