package reliability

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mailshift/mailshift/internal/cluster"
)

// ClusterOptions are the faults only a cluster has. Each happens once,
// mid-plan: when the first account's routing has switched, so some
// accounts are done or in their DNS wait and others still copy.
type ClusterOptions struct {
	// Bin holds temporal-server and temporal-sql-tool (default:
	// cluster.BinDir()).
	Bin string
	// KillHistory SIGKILLs the history service and starts it again.
	KillHistory bool
	// RestartMatching stops the matching service (SIGTERM) and starts it.
	RestartMatching bool
	// RestartFrontend stops the frontend the starter and the workers are
	// connected to, and starts it again.
	RestartFrontend bool
	// RestartPostgres crashes the cluster's PostgreSQL (immediate stop)
	// and starts it again under the running services.
	RestartPostgres bool
	// Down is how long a stopped service stays down (default 2s).
	Down time.Duration
}

func (p *platform) startCluster(ctx context.Context, o Options) error {
	bin := o.ClusterOptions.Bin
	if bin == "" {
		var err error
		if bin, err = cluster.BinDir(); err != nil {
			return err
		}
	}
	dir, err := cluster.TempDir()
	if err != nil {
		return err
	}
	p.logf(o, "starting the Temporal cluster in %s", dir)
	c, err := cluster.Start(ctx, cluster.Options{Dir: dir, Bin: bin})
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("cluster: %w", err)
	}
	p.cluster = c
	p.stops = append(p.stops, func() {
		c.Stop()
		os.RemoveAll(dir)
	})
	if p.c, err = c.Dial(quietLog{}); err != nil {
		return err
	}
	p.stops = append(p.stops, p.c.Close)
	return nil
}

// frontend is where workers and the starter reach Temporal.
func (p *platform) frontend() string {
	if p.cluster != nil {
		return p.cluster.Frontend()
	}
	return p.temporal.FrontendHostPort()
}

// restartWholeCluster stops every service, then starts them again: a
// cluster-wide restart (an upgrade done all at once).
func (p *platform) restartWholeCluster() error {
	for i := len(cluster.Services) - 1; i >= 0; i-- {
		if err := p.cluster.StopService(cluster.Services[i], syscall.SIGTERM); err != nil {
			return err
		}
	}
	time.Sleep(time.Second)
	for _, s := range cluster.Services {
		if err := p.cluster.StartService(s); err != nil {
			return err
		}
	}
	return nil
}

// clusterFaults injects o.ClusterOptions' faults once the first route has
// switched, in order, each after the previous one is over.
func (p *platform) clusterFaults(o Options, stop <-chan struct{}, bg *sync.WaitGroup, restarts *atomic.Int64) {
	co := o.ClusterOptions
	down := co.Down
	if down == 0 {
		down = 2 * time.Second
	}
	type fault struct {
		name string
		do   func() error
	}
	stopStart := func(svc string, sig syscall.Signal) func() error {
		return func() error {
			if err := p.cluster.StopService(svc, sig); err != nil {
				return err
			}
			time.Sleep(down)
			return p.cluster.StartService(svc)
		}
	}
	var faults []fault
	if co.KillHistory {
		faults = append(faults, fault{"history (SIGKILL)", stopStart("history", syscall.SIGKILL)})
	}
	if co.RestartMatching {
		faults = append(faults, fault{"matching", stopStart("matching", syscall.SIGTERM)})
	}
	if co.RestartFrontend {
		faults = append(faults, fault{"frontend", stopStart("frontend", syscall.SIGTERM)})
	}
	if co.RestartPostgres {
		faults = append(faults, fault{"cluster PostgreSQL", p.cluster.RestartPostgres})
	}
	if len(faults) == 0 {
		return
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		ctx := context.Background()
		for !p.anyRouted(ctx) {
			if !wait(stop, 100*time.Millisecond) {
				return
			}
		}
		for _, f := range faults {
			t := time.Now()
			if err := f.do(); err != nil {
				p.logf(o, "restart %s: %v", f.name, err)
				continue
			}
			restarts.Add(1)
			p.logf(o, "%s restarted (%s)", f.name, time.Since(t).Round(100*time.Millisecond))
		}
	}()
}

type quietLog struct{}

func (quietLog) Debug(string, ...any) {}
func (quietLog) Info(string, ...any)  {}
func (quietLog) Warn(string, ...any)  {}
func (quietLog) Error(string, ...any) {}
