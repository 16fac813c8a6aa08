// Command mailchaos runs the reliability suite on the real system and prints
// a table: "chaos" kills worker processes with SIGKILL at random moments
// while mail arrives, "load" migrates a large plan of small accounts. Both
// check every invariant of every account afterwards and fail on any
// violation.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/mailshift/mailshift/internal/reliability"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mailchaos:", err)
		os.Exit(1)
	}
}

func run() error {
	scenario := flag.String("scenario", "chaos", "chaos, temporal-restart, postgres-restart or load")
	runs := flag.Int("runs", 3, "runs of the scenario")
	accounts := flag.Int("accounts", 0, "accounts per run (default: chaos 20, load 1000)")
	messages := flag.Int("messages", 0, "messages per account (default: chaos 150, load 3)")
	killEvery := flag.Duration("kill-every", 4*time.Second, "chaos: longest wait between two kills")
	bin := flag.String("bin", "bin", "directory holding the worker binary")
	timeout := flag.Duration("timeout", 40*time.Minute, "per run")
	flag.Parse()
	o := reliability.Options{Bin: *bin, Temporal: os.Getenv("MAILSHIFT_TEMPORAL"), Deliver: true, Timeout: *timeout, Log: os.Stderr}
	switch *scenario {
	case "chaos":
		o.Accounts, o.Messages, o.KillEvery = 20, 150, *killEvery
	case "temporal-restart":
		o.Accounts, o.Messages, o.RestartTemporal = 20, 150, true
	case "postgres-restart":
		o.Accounts, o.Messages, o.RestartPostgres = 20, 150, true
	case "load":
		o.Accounts, o.Messages = 1000, 3
	default:
		return fmt.Errorf("scenario %q: want chaos, temporal-restart, postgres-restart or load", *scenario)
	}
	if *accounts > 0 {
		o.Accounts = *accounts
	}
	if *messages > 0 {
		o.Messages = *messages
	}
	if o.Temporal == "" {
		return fmt.Errorf("MAILSHIFT_TEMPORAL must name the Temporal CLI (make chaos / make load set it)")
	}
	failed := 0
	for i := 0; i < *runs; i++ {
		o.Seed = uint64(1000 + i)
		rep, err := reliability.Run(context.Background(), o)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		fmt.Printf("\nrun %d of %d (seed %d)\n", i+1, *runs, o.Seed)
		rep.Print(os.Stdout, *scenario)
		if len(rep.Violations) > 0 || rep.Done != rep.Accounts {
			failed++
		}
	}
	fmt.Printf("\n%s: %d runs, %d with invariant violations\n", *scenario, *runs, failed)
	if failed > 0 {
		return fmt.Errorf("%d of %d runs violated an invariant", failed, *runs)
	}
	return nil
}
