package activities

import (
	"context"
	"strings"

	"go.uber.org/zap"

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
}

// SwitchRouting sends the address's mail to the destination and, for a zone
// mailshift manages, sets the records the destination needs.
func (a *Activities) SwitchRouting(ctx context.Context, in RouteInput) (*RouteResult, error) {
	_, stop := keepAlive(ctx)
	defer stop()
	if err := a.Dir.SwitchRoute(ctx, in.Address, in.To, in.WorkflowID); err != nil {
		return nil, err
	}
	want, err := a.expected(ctx, in.Address, in.To)
	if err != nil {
		return nil, err
	}
	managed, changed, err := a.DNS.Apply(ctx, domainOf(in.Address), want)
	if err != nil {
		return nil, fromEngine(err)
	}
	a.log(ctx).Info("routing switched", zap.String("account", in.Address), zap.String("to", in.To), zap.Bool("dnsChanged", changed))
	return &RouteResult{ManagedZone: managed, DNSChanged: changed}, nil
}

func (a *Activities) expected(ctx context.Context, address, to string) ([]dnscheck.Record, error) {
	sv, err := a.Dir.Service(ctx, to)
	if err != nil {
		return nil, err
	}
	want, err := dnscheck.Expected(domainOf(address), dnscheck.Requirements{MX: sv.MX, SPFInclude: sv.SPFInclude, Autodiscover: sv.Autodiscover})
	if err != nil {
		return nil, permanent(ErrTypeConfig, "service %q: %v", to, err)
	}
	return want, nil
}

func domainOf(address string) string {
	_, d, _ := strings.Cut(address, "@")
	return d
}

// DNSInput asks for the DNS diagnostic of an address's domain.
type DNSInput struct {
	Address string
	To      string
}

// CheckDNS returns the diagnostic of the domain's records on every
// authoritative server. A failed lookup is a diagnostic, not an error: the
// workflow keeps polling until its deadline.
func (a *Activities) CheckDNS(ctx context.Context, in DNSInput) (*dnscheck.Diagnostic, error) {
	_, stop := keepAlive(ctx)
	defer stop()
	want, err := a.expected(ctx, in.Address, in.To)
	if err != nil {
		return nil, err
	}
	d, err := a.DNS.Check(ctx, domainOf(in.Address), want)
	if err != nil {
		return &dnscheck.Diagnostic{Domain: domainOf(in.Address), Problems: []string{err.Error()}}, nil
	}
	return d, nil
}
