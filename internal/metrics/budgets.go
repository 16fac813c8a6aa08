package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
)

// Budget is what the metrics show of one server's connection budget (the
// budget workflow's state, read by its query).
type Budget struct {
	Service string
	// Limit is the configured budget; Share what is granted at most now
	// (less for a while after the server said it was overloaded).
	Limit    int
	Share    float64
	InUse    int
	Queued   int
	Paused   int
	Throttle int // halvings of the share since the budget workflow started
}

// BudgetReader reads the running budgets (the workflows package knows
// their query; metrics does not import it).
type BudgetReader func(ctx context.Context, c client.Client, workflowID string) (Budget, error)

var (
	descLimit  = prometheus.NewDesc("mailshift_budget_connections", "Connections the service's budget allows (configured), across every worker.", []string{"service"}, nil)
	descShare  = prometheus.NewDesc("mailshift_budget_share", "Connections the service's budget grants at most now: the budget, or less for a while after the server said it was overloaded (AIMD).", []string{"service"}, nil)
	descInUse  = prometheus.NewDesc("mailshift_budget_in_use", "Connections held under granted leases.", []string{"service"}, nil)
	descQueued = prometheus.NewDesc("mailshift_budget_queue", "Lease requests waiting for the service's budget (paused plans' included).", []string{"service"}, nil)
	descPaused = prometheus.NewDesc("mailshift_budget_paused_plans", "Plans whose admission to the copy is paused.", []string{"service"}, nil)
	descThrot  = prometheus.NewDesc("mailshift_budget_throttles_total", "Times the service's share was halved because the server said it was overloaded (restarts at 0 when an idle budget workflow ends).", []string{"service"}, nil)
)

// budgets is a collector over the last snapshot of the budgets: every
// worker of a fleet reads the same workflows, so every worker reports the
// same numbers.
type budgets struct {
	mu   sync.Mutex
	last []Budget
}

func (b *budgets) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLimit, descShare, descInUse, descQueued, descPaused, descThrot} {
		ch <- d
	}
}

func (b *budgets) Collect(ch chan<- prometheus.Metric) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.last {
		ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, float64(s.Limit), s.Service)
		ch <- prometheus.MustNewConstMetric(descShare, prometheus.GaugeValue, s.Share, s.Service)
		ch <- prometheus.MustNewConstMetric(descInUse, prometheus.GaugeValue, float64(s.InUse), s.Service)
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(s.Queued), s.Service)
		ch <- prometheus.MustNewConstMetric(descPaused, prometheus.GaugeValue, float64(s.Paused), s.Service)
		ch <- prometheus.MustNewConstMetric(descThrot, prometheus.CounterValue, float64(s.Throttle), s.Service)
	}
}

// Throttled counts an overload answer from service (activities'
// ThrottleRecorder): every answer, where the budget halves at most once a
// minute.
func (m *Metrics) Throttled(service, kind string) {
	m.overloads.WithLabelValues(service, kind).Inc()
}

// RefreshBudgets reads every running budget workflow once (by its type,
// from visibility, then its query) and replaces the snapshot the budget
// metrics show: a budget that ended (nothing held, nothing queued) drops
// out.
func (m *Metrics) RefreshBudgets(ctx context.Context, c client.Client, workflowType string, read BudgetReader) error {
	var out []Budget
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{NextPageToken: token, PageSize: 1000,
			Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflowType)})
		if err != nil {
			return fmt.Errorf("list budgets: %w", err)
		}
		for _, ex := range resp.Executions {
			b, err := read(ctx, c, ex.Execution.WorkflowId)
			if err != nil {
				continue // ended meanwhile
			}
			out = append(out, b)
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	m.budgets.mu.Lock()
	m.budgets.last = out
	m.budgets.mu.Unlock()
	return nil
}

// WatchBudgets refreshes the budget metrics every interval until ctx ends.
func (m *Metrics) WatchBudgets(ctx context.Context, c client.Client, workflowType string, read BudgetReader, interval time.Duration, log *zap.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := m.RefreshBudgets(ctx, c, workflowType, read); err != nil && ctx.Err() == nil {
			log.Warn("read the server budgets", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
