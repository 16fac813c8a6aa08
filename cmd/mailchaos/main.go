// Command mailchaos runs the reliability suite on the real system — a
// Temporal dev server, two worker processes, two Dovecots reading the
// directory on PostgreSQL, BIND9 — under one or more fault scenarios while
// mail keeps arriving, checks every invariant of every account after each
// run, and prints a table per run and a runs × scenarios summary. It exits
// non-zero on any violation.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailshift/mailshift/internal/reliability"
)

// scenario is a named fault setting with its default size.
type scenario struct {
	name, what         string
	accounts, messages int
	set                func(*reliability.Options, flags)
}

type flags struct {
	killEvery, dnsOutage, unavailable time.Duration
	budget                            int
	saveHistories                     string
}

var scenarios = []scenario{
	{"kill-workers", "SIGKILL one of two worker processes at random moments", 20, 150,
		func(o *reliability.Options, f flags) { o.KillEvery = f.killEvery }},
	{"imap-faults", "TCP proxies before both IMAP servers refuse, cut and stall connections", 20, 150,
		func(o *reliability.Options, f flags) { o.IMAPFaults = true }},
	{"dns-primary-down", "the zone's primary nameserver down during switch-routing and the propagation wait", 20, 150,
		func(o *reliability.Options, f flags) { o.DNSOutage = f.dnsOutage }},
	{"temporal-restart", "the Temporal dev server stopped and started again on its database", 20, 150,
		func(o *reliability.Options, f flags) { o.RestartTemporal = true }},
	{"postgres-restart", "the directory's PostgreSQL stopped abruptly and started again", 20, 150,
		func(o *reliability.Options, f flags) { o.RestartPostgres = true }},
	{"kill-lease-holders", "SIGKILL a worker while it holds server connections under its leases (up to 4 times, 10 s + up to 3x -kill-every apart); both servers under a connection budget", 20, 150,
		func(o *reliability.Options, f flags) {
			o.KillHolders, o.Budget = 3*f.killEvery, f.budget
		}},
	{"source-unavailable", "the source answers every new connection NO [UNAVAILABLE] for a while; both servers under a connection budget", 20, 150,
		func(o *reliability.Options, f flags) { o.UnavailableFor, o.Budget = f.unavailable, f.budget }},
	{"owner-changes", "owners change flags, delete, move, create, rename and delete folders during the pre-copy; the worker of each final delta is killed", 6, 80,
		func(o *reliability.Options, f flags) { o.OwnerChanges = true }},
	{"load", "1,000 small accounts, no faults", 1000, 3, func(*reliability.Options, flags) {}},
	{"load-realistic", "100 accounts with folders, 30 KiB mean messages and one 2 MiB message each", 100, 200,
		func(o *reliability.Options, f flags) { o.Realistic = true }},
}

// faultScenarios is what "all" runs: every fault, not the load plans.
const faultScenarios = 8

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mailchaos:", err)
		os.Exit(1)
	}
}

func usage() string {
	var b strings.Builder
	for _, s := range scenarios {
		fmt.Fprintf(&b, "  %-18s %s (default %d accounts x %d messages)\n", s.name, s.what, s.accounts, s.messages)
	}
	b.WriteString("  all                the fault scenarios up to postgres-restart (not the load plans, not the cluster's own)\n")
	b.WriteString("  cluster-all        the cluster's own scenarios (history-kill and after)\n")
	return b.String()
}

func run() error {
	names := flag.String("scenario", "all", "comma-separated scenarios, or all")
	runs := flag.Int("runs", 3, "runs of each scenario")
	accounts := flag.Int("accounts", 0, "accounts per run (default: the scenario's)")
	messages := flag.Int("messages", 0, "messages per account (default: the scenario's)")
	var f flags
	flag.DurationVar(&f.killEvery, "kill-every", 4*time.Second, "kill-workers: longest wait between two kills")
	flag.DurationVar(&f.dnsOutage, "dns-outage", 15*time.Second, "dns-primary-down: how long the primary stays down")
	flag.DurationVar(&f.unavailable, "unavailable", 20*time.Second, "source-unavailable: how long the source answers NO [UNAVAILABLE]")
	flag.IntVar(&f.budget, "budget", 4, "kill-lease-holders, source-unavailable: connections per server (a copy opens 2)")
	bin := flag.String("bin", "bin", "directory holding the worker binary")
	flag.StringVar(&f.saveHistories, "save-histories", "", "redeploy: write the histories of one account per group here (for replay tests)")
	timeout := flag.Duration("timeout", 40*time.Minute, "per run")
	verbose := flag.Bool("v", true, "log each run's progress on stderr")
	onCluster := flag.Bool("cluster", false, "run every scenario on a production-shaped Temporal cluster (deploy/cluster) instead of the dev server")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: mailchaos [flags]\n\nscenarios:\n%s\nflags:\n", usage())
		flag.PrintDefaults()
	}
	flag.Parse()
	var chosen []scenario
	for _, n := range strings.Split(*names, ",") {
		n = strings.TrimSpace(n)
		if n == "all" {
			chosen = append(chosen, scenarios[:faultScenarios]...)
			continue
		}
		if n == "cluster-all" {
			chosen = append(chosen, clusterScenarios...)
			continue
		}
		found := false
		for _, s := range scenarios {
			if s.name == n {
				chosen, found = append(chosen, s), true
			}
		}
		if !found {
			return fmt.Errorf("scenario %q does not exist; the scenarios are:\n%s", n, usage())
		}
	}
	temporal := os.Getenv("MAILSHIFT_TEMPORAL")
	if temporal == "" {
		return fmt.Errorf("MAILSHIFT_TEMPORAL must name the Temporal CLI (make chaos / make load set it)")
	}
	log := io.Writer(io.Discard)
	if *verbose {
		log = os.Stderr
	}
	type line struct {
		scenario string
		run      int
		rep      *reliability.Report
		err      error
	}
	var lines []line
	failed := 0
	for _, s := range chosen {
		for i := 0; i < *runs; i++ {
			o := reliability.Options{Bin: *bin, Temporal: temporal, Deliver: true, Timeout: *timeout, Log: log,
				Accounts: s.accounts, Messages: s.messages, Seed: uint64(1000 + i)}
			if *accounts > 0 {
				o.Accounts = *accounts
			}
			if *messages > 0 {
				o.Messages = *messages
			}
			s.set(&o, f)
			name := s.name
			if *onCluster && !o.Cluster {
				name += "@cluster"
			}
			o.Cluster = o.Cluster || *onCluster
			fmt.Printf("\n%s, run %d of %d (seed %d)\n", name, i+1, *runs, o.Seed)
			rep, err := reliability.Run(context.Background(), o)
			if err != nil {
				fmt.Printf("  could not run: %v\n", err)
			} else {
				rep.Print(os.Stdout, name)
			}
			if err != nil || len(rep.Violations) > 0 || rep.Done != rep.Accounts {
				failed++
			}
			lines = append(lines, line{name, i + 1, rep, err})
		}
	}
	fmt.Printf("\nsummary: %d scenarios x %d runs\n", len(chosen), *runs)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\trun\taccounts\tdone\tmessages\tMB\tdelivered\tacc/min\tp50\tp95\tevents max\tactions avg\tRSS MB\tpeak src/dst\tfaults\tviolations")
	for _, l := range lines {
		if l.err != nil {
			fmt.Fprintf(tw, "%s\t%d\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\tcould not run: %v\n", l.scenario, l.run, l.err)
			continue
		}
		r := l.rep
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.1f\t%d\t%.1f\t%s\t%s\t%d\t%.0f\t%.0f\t%s\t%s\t%d\n", l.scenario, l.run, r.Accounts, r.Done, r.Messages, r.MB, r.Delivered,
			r.AccountsPerMn, r.P50.Round(100*time.Millisecond), r.P95.Round(100*time.Millisecond), r.EventsMax, r.ActionsMean, r.WorkerRSSMB, r.Peaks(), r.Faults(), len(r.Violations))
	}
	tw.Flush()
	fmt.Printf("runs with a violation or a failure: %d of %d\n", failed, len(lines))
	if failed > 0 {
		return fmt.Errorf("%d of %d runs violated an invariant or could not run", failed, len(lines))
	}
	return nil
}
