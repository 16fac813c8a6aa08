// Package metrics exposes the worker's Prometheus metrics: what the
// activities copied, how each activity ended, and how many migrations wait
// for an operator (read from Temporal's visibility, so every worker of a
// fleet reports the same number).
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
)

// Metrics holds the collectors.
type Metrics struct {
	Registry *prometheus.Registry
	messages prometheus.Counter
	bytes    prometheus.Counter
	blocked  *prometheus.GaugeVec
}

// New registers mailshift's metrics and the Go runtime's.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		messages: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailshift_messages_copied_total", Help: "Messages copied to destination mailboxes."}),
		bytes:    prometheus.NewCounter(prometheus.CounterOpts{Name: "mailshift_bytes_copied_total", Help: "Bytes copied to destination mailboxes."}),
		blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mailshift_migrations",
			Help: "Running migrations by stage (from Temporal visibility); alert on stage=\"needs-attention\"."}, []string{"stage"}),
	}
	m.Registry.MustRegister(m.messages, m.bytes, m.blocked, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Copied counts a copy pass (activities.Recorder).
func (m *Metrics) Copied(messages int, bytes int64) {
	m.messages.Add(float64(messages))
	m.bytes.Add(float64(bytes))
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// WatchStages refreshes the per-stage gauge every interval until ctx ends.
func (m *Metrics) WatchStages(ctx context.Context, c client.Client, stages []string, interval time.Duration, log *zap.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := m.Refresh(ctx, c, stages); err != nil && ctx.Err() == nil {
			log.Warn("count migrations by stage", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh counts the running migrations of each stage once.
func (m *Metrics) Refresh(ctx context.Context, c client.Client, stages []string) error {
	for _, s := range stages {
		resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: "ExecutionStatus = 'Running' AND MigrationStage = '" + s + "'"})
		if err != nil {
			return fmt.Errorf("stage %s: %w", s, err)
		}
		m.blocked.WithLabelValues(s).Set(float64(resp.Count))
	}
	return nil
}
