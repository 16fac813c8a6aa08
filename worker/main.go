// Command worker runs mailshift's Temporal worker: the account-migration
// workflow and its activities. With --dev it also runs the embedded
// platform (in-memory IMAP servers, SQLite directory, DNS) in-process.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/app"
	"github.com/mailshift/mailshift/internal/codec"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/logging"
	"github.com/mailshift/mailshift/internal/metrics"
	"github.com/mailshift/mailshift/internal/profiling"
	"github.com/mailshift/mailshift/workflows"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run() error {
	// A CPU profile of the whole run, for the benchmarks.
	stopProfile, err := profiling.StartCPU(os.Getenv("MAILSHIFT_CPUPROFILE"))
	if err != nil {
		return err
	}
	defer stopProfile()
	cfg, err := config.Load(os.Args[1:], os.Getenv)
	if err != nil {
		return err
	}
	log, err := logging.New(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ctx := context.Background()

	var acts *activities.Activities
	if cfg.Dev {
		if err := os.MkdirAll(cfg.DevDir, 0o755); err != nil {
			return err
		}
		dsn := filepath.Join(cfg.DevDir, "directory.db")
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(dsn + suffix)
		}
		_ = os.Remove(filepath.Join(cfg.DevDir, "dev.json"))
		st, a, err := app.StartDev(ctx, dsn, cfg.DevAccounts, cfg.DevMessages, log)
		if err != nil {
			return fmt.Errorf("dev platform: %w", err)
		}
		defer st.Close()
		acts = a
		// The demo notifies too when notify is configured.
		n, err := app.Notifier(cfg.Notify)
		if err != nil {
			return err
		}
		if n != nil {
			acts.Notify = n
		}
		if err := app.WriteDevInfo(cfg.DevDir, dsn, st, cfg.DevAccounts); err != nil {
			return err
		}
		log.Info("dev platform up", zap.String("source", st.Source.Addr), zap.String("emailpro", st.EmailPro.Addr),
			zap.String("exchange", st.Exchange.Addr), zap.String("dns", st.DNS.Addr), zap.String("directory", dsn))
	} else {
		dir, err := directory.Open(ctx, cfg.DirectoryDSN)
		if err != nil {
			return err
		}
		defer dir.Close()
		if acts, err = app.Activities(ctx, cfg, dir, log); err != nil {
			return err
		}
	}
	acts.Connections = cfg.Connections

	copts := client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.Namespace, Logger: logging.NewTemporal(log)}
	if copts.ConnectionOptions.TLS, err = cfg.TemporalTLS.Config(); err != nil {
		return err
	}
	if cfg.CodecKeyFile != "" {
		cd, err := codec.LoadKeys(cfg.CodecKeyFile)
		if err != nil {
			return err
		}
		cd.Apply(&copts)
		if cfg.CodecServerAddr != "" {
			srv := &http.Server{Addr: cfg.CodecServerAddr, Handler: cd.Server(cfg.CodecToken, cfg.CodecUIOrigin), ReadHeaderTimeout: 10 * time.Second}
			go func() {
				if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("codec server stopped", zap.Error(err))
				}
			}()
			defer srv.Close()
			log.Info("codec server listening", zap.String("addr", cfg.CodecServerAddr))
		}
	}
	var m *metrics.Metrics
	if cfg.MetricsAddr != "" {
		m = metrics.New()
		defer m.Close()
		copts.MetricsHandler = m.Temporal()
		acts.Metrics = m
	}
	c, err := client.Dial(copts)
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	defer c.Close()
	if m != nil {
		ready := func() error {
			hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, err := c.CheckHealth(hctx, &client.CheckHealthRequest{})
			return err
		}
		srv := &http.Server{Addr: cfg.MetricsAddr, Handler: m.Mux(ready), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server stopped", zap.Error(err))
			}
		}()
		defer srv.Close()
		mctx, stop := context.WithCancel(ctx)
		defer stop()
		var stages []string
		for _, s := range append(workflows.Stages, workflows.StageNeedsAttention) {
			stages = append(stages, string(s))
		}
		go m.WatchStages(mctx, c, stages, 30*time.Second, log)
		go m.WatchBudgets(mctx, c, workflows.BudgetWorkflowName, app.ReadBudget, 15*time.Second, log)
		log.Info("metrics on /metrics, probes on /healthz and /readyz", zap.String("addr", cfg.MetricsAddr))
	}
	if cfg.WorkflowCache > 0 {
		// Process-wide, before the worker starts.
		worker.SetStickyWorkflowCacheSize(cfg.WorkflowCache)
	}
	w := app.NewWorker(c, cfg.TaskQueue, acts, worker.Options{})
	log.Info("worker started", zap.String("taskQueue", cfg.TaskQueue), zap.String("temporal", cfg.TemporalAddress))
	// Run returns on SIGINT/SIGTERM after in-flight activities are given
	// the worker's stop timeout to finish; their heartbeats let the next
	// attempt resume.
	return w.Run(worker.InterruptCh())
}
