// Command mailcluster starts, stops and reports on a production-shaped
// Temporal cluster in the lab (see internal/cluster): deploy/cluster/cluster.sh
// runs it.
//
//	mailcluster start  -dir DIR -bin BINDIR [-shards 4] [-namespace default] [-retention 72h]
//	mailcluster status -dir DIR
//	mailcluster stop   -dir DIR
//	mailcluster restart -dir DIR -service history|matching|frontend|worker|postgres [-kill]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/mailshift/mailshift/internal/cluster"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mailcluster:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: mailcluster start|status|stop|restart -dir DIR [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	dir := fs.String("dir", "", "the cluster's directory")
	bin := fs.String("bin", "", "directory holding temporal-server and temporal-sql-tool (deploy/cluster/build.sh)")
	shards := fs.Int("shards", 4, "history shards")
	ns := fs.String("namespace", "default", "namespace to register")
	retention := fs.Duration("retention", 72*time.Hour, "the namespace's retention of closed workflows")
	service := fs.String("service", "", "restart: the service (or postgres)")
	kill := fs.Bool("kill", false, "restart: SIGKILL instead of SIGTERM")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("-dir is required")
	}
	ctx := context.Background()
	switch args[0] {
	case "start":
		c, err := cluster.Start(ctx, cluster.Options{Dir: *dir, Bin: *bin, Shards: *shards, Namespace: *ns, Retention: *retention})
		if err != nil {
			return err
		}
		t := c.ClientTLS()
		fmt.Printf("Temporal cluster up: frontend %s (mTLS), namespace %s, %d history shards, PostgreSQL on 127.0.0.1:%d\n",
			c.Frontend(), *ns, *shards, c.State.PGPort)
		fmt.Printf("client: MAILSHIFT_TEMPORAL_ADDRESS=%s MAILSHIFT_TEMPORAL_TLS_CERT=%s MAILSHIFT_TEMPORAL_TLS_KEY=%s MAILSHIFT_TEMPORAL_TLS_CA=%s MAILSHIFT_TEMPORAL_TLS_SERVER_NAME=%s\n",
			c.Frontend(), t.CertFile, t.KeyFile, t.CAFile, t.ServerName)
		return nil
	case "status":
		c, err := cluster.Attach(*dir)
		if err != nil {
			return err
		}
		for _, s := range cluster.Services {
			state := "stopped"
			if c.Alive(s) {
				state = fmt.Sprintf("running (pid %d)", c.State.PIDs[s])
			}
			fmt.Printf("%-9s %s\n", s, state)
		}
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := c.Health(hctx); err != nil {
			return fmt.Errorf("unhealthy: %w", err)
		}
		fmt.Printf("healthy: frontend %s answers for namespace %s over mTLS\n", c.Frontend(), c.State.Namespace)
		return nil
	case "stop":
		c, err := cluster.Attach(*dir)
		if err != nil {
			return err
		}
		c.Stop()
		fmt.Printf("stopped the cluster of %s (its files stay)\n", *dir)
		return nil
	case "restart":
		c, err := cluster.Attach(*dir)
		if err != nil {
			return err
		}
		if *service == "postgres" {
			return c.RestartPostgres()
		}
		sig := syscall.SIGTERM
		if *kill {
			sig = syscall.SIGKILL
		}
		return c.RestartService(*service, sig)
	}
	return fmt.Errorf("unknown command %q: start, status, stop or restart", args[0])
}
