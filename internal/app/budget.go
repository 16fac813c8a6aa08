package app

import (
	"context"

	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/internal/metrics"
	"github.com/mailshift/mailshift/workflows"
)

// ReadBudget queries one server budget workflow for the metrics.
func ReadBudget(ctx context.Context, c client.Client, workflowID string) (metrics.Budget, error) {
	v, err := c.QueryWorkflow(ctx, workflowID, "", workflows.QueryBudget)
	if err != nil {
		return metrics.Budget{}, err
	}
	var st workflows.BudgetState
	if err := v.Get(&st); err != nil {
		return metrics.Budget{}, err
	}
	b := metrics.Budget{Service: st.Service, Limit: st.Limit, Share: st.Share, Queued: len(st.Queue), Paused: len(st.Paused), Throttle: st.Throttles}
	for _, l := range st.Held {
		b.InUse += l.Connections
	}
	return b, nil
}
