package activities

import (
	"context"
	"strings"

	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/mailcopy"
)

// ThrottleRecorder counts overload answers by service and kind (the
// worker's metrics implement it).
type ThrottleRecorder interface {
	Throttled(service, kind string)
}

// overloadSides names which of the two servers of a pass said it was
// overloaded: the one the error names (the engine prefixes "source:" or
// "destination:", a refused dial names the address), else both.
func overloadSides(err error, from, to, fromAddr, toAddr string) []string {
	s := err.Error()
	switch {
	case strings.HasPrefix(s, "source:"):
		return []string{from}
	case strings.HasPrefix(s, "destination:"):
		return []string{to}
	case fromAddr != "" && fromAddr != toAddr && strings.Contains(s, fromAddr):
		return []string{from}
	case toAddr != "" && fromAddr != toAddr && strings.Contains(s, toAddr):
		return []string{to}
	}
	return []string{from, to}
}

// reportOverloads tells the budget of whichever server of a pass said it
// was overloaded.
func (a *Activities) reportOverloads(ctx context.Context, err error, from, to, fromAddr, toAddr string) {
	if mailcopy.OverloadKind(err) == "" {
		return
	}
	for _, svc := range overloadSides(err, from, to, fromAddr, toAddr) {
		a.reportOverload(ctx, svc, err)
	}
}

// reportOverload tells service's budget that it said it was overloaded.
func (a *Activities) reportOverload(ctx context.Context, service string, err error) {
	kind := mailcopy.OverloadKind(err)
	if service == "" || kind == "" {
		return
	}
	if r, ok := a.Metrics.(ThrottleRecorder); ok {
		r.Throttled(service, kind)
	}
	if a.Temporal == nil {
		return
	}
	why := kind + ": " + err.Error()
	if len(why) > 200 {
		why = why[:200]
	}
	if serr := a.Temporal.SignalWorkflow(ctx, budgetID(service), "", "throttle", why); serr != nil {
		// No budget running for it (nothing holds a lease): nothing to shrink.
		a.log(ctx).Debug("report overload", zap.String("service", service), zap.Error(serr))
	}
}
