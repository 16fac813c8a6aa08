// Package metrics exposes the worker's Prometheus metrics: what the
// activities copied; how many migrations are in each stage and how many wait
// for an operator (read from Temporal's visibility, so every worker of a
// fleet reports the same number); the Temporal SDK's own metrics (polls,
// task latencies, activity and workflow outcomes, temporal_*) and the
// workflow's stage-duration histograms (mailshift_stage_duration_seconds),
// both through the SDK's metrics handler.
package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
	"go.uber.org/zap"
)

// Metrics holds the collectors.
type Metrics struct {
	Registry *prometheus.Registry
	messages prometheus.Counter
	bytes    prometheus.Counter
	blocked  *prometheus.GaugeVec
	// overloads counts servers' overload answers; budgets shows the
	// server budgets (budgets.go).
	overloads *prometheus.CounterVec
	budgets   *budgets
	scope     tally.Scope
	closer    io.Closer
}

// sanitize keeps metric names and label keys to Prometheus' rules and
// label values readable: stage names keep their dashes.
var sanitize = tally.SanitizeOptions{
	NameCharacters:       sdktally.PrometheusSanitizeOptions.NameCharacters,
	KeyCharacters:        sdktally.PrometheusSanitizeOptions.KeyCharacters,
	ValueCharacters:      tally.ValidCharacters{Ranges: tally.AlphanumericRange, Characters: []rune{'_', '-', '.', ':', '@'}},
	ReplacementCharacter: tally.DefaultReplacementCharacter,
}

// durationBuckets cover a quick directory call (10 ms) to the 24-hour DNS
// wait, in seconds.
var durationBuckets = []float64{0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400}

// New registers mailshift's metrics and the Go runtime's.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		messages: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailshift_messages_copied_total", Help: "Messages copied to destination mailboxes."}),
		bytes:    prometheus.NewCounter(prometheus.CounterOpts{Name: "mailshift_bytes_copied_total", Help: "Bytes copied to destination mailboxes."}),
		blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mailshift_migrations",
			Help: "Running migrations by stage (from Temporal visibility); alert on stage=\"needs-attention\"."}, []string{"stage"}),
		overloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailshift_server_overloads_total",
			Help: "Answers by which an IMAP server said it was overloaded (NO [UNAVAILABLE], [LIMIT], throttled, try again later, too many connections, connection refused), by service and kind."},
			[]string{"service", "kind"}),
		budgets: &budgets{},
	}
	m.Registry.MustRegister(m.messages, m.bytes, m.blocked, m.overloads, m.budgets, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reporter := tallyprom.NewReporter(tallyprom.Options{Registerer: m.Registry, DefaultTimerType: tallyprom.HistogramTimerType,
		DefaultHistogramBuckets: durationBuckets, OnRegisterError: func(error) {}})
	m.scope, m.closer = tally.NewRootScope(tally.ScopeOptions{CachedReporter: reporter, Separator: tallyprom.DefaultSeparator,
		SanitizeOptions: &sanitize}, time.Second)
	return m
}

// Temporal is the handler to give the Temporal client (client.Options
// MetricsHandler): the SDK's metrics and the workflow's land in Registry.
func (m *Metrics) Temporal() client.MetricsHandler {
	return sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(m.scope))
}

// Close flushes and stops the SDK metrics' reporting loop.
func (m *Metrics) Close() error { return m.closer.Close() }

// Copied counts a copy pass (activities.Recorder).
func (m *Metrics) Copied(messages int, bytes int64) {
	m.messages.Add(float64(messages))
	m.bytes.Add(float64(bytes))
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Mux serves /metrics; /healthz, the liveness probe, which answers 200
// while the process serves HTTP; and /readyz, the readiness probe, which
// answers 503 with the reason while ready reports an error (the worker
// cannot reach Temporal, say). Liveness does not depend on Temporal: a
// restart would not bring Temporal back.
func (m *Metrics) Mux(ready func() error) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
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
