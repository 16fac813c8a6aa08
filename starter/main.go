// Command starter is the operator's CLI: start migrations one by one or
// from a plan, watch them, act on them (confirm, cancel, retry, rollback,
// skip-dns, recheck, approve-skipped, cutover-now, set-window) and export
// reports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/codec"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/workflows"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Getenv); err != nil {
		var ue usageError
		fmt.Fprintln(os.Stderr, "starter:", err)
		if errors.As(err, &ue) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

const usage = `usage: starter [global flags] COMMAND [args]

global flags (or MAILSHIFT_TEMPORAL_ADDRESS, MAILSHIFT_NAMESPACE, MAILSHIFT_DIRECTORY):
  --temporal host:port   Temporal frontend (default localhost:7233)
  --namespace NAME       (default "default")
  --directory DSN        directory, for validating plans and the dns command
  --dev-dir DIR          read the directory and DNS address of a worker running --dev
  --codec-keys FILE      payload encryption keys (MAILSHIFT_CODEC_KEY_FILE), as the worker's
  --temporal-tls-cert FILE --temporal-tls-key FILE   client certificate for an mTLS frontend
                         (MAILSHIFT_TEMPORAL_TLS_CERT, MAILSHIFT_TEMPORAL_TLS_KEY)
  --temporal-tls-ca FILE the authority of the frontend's certificate (MAILSHIFT_TEMPORAL_TLS_CA)
  --temporal-tls-server-name NAME   name to check in it (MAILSHIFT_TEMPORAL_TLS_SERVER_NAME)

commands:
  start ADDRESS --to SERVICE [--plan ID] [--auto-confirm] [--dns-interval D] [--dns-deadline D] [--slot-recheck D]
  plan FILE.csv|FILE.yaml [--plan-id ID] [--to SERVICE] [--auto-confirm] [--validate] [--dry-run] [--valid-only] [--wait] [--rate N]
  plan --domain DOMAIN --to SERVICE [--plan-id ID] [...]   every MX Plan account of a domain
  status [--plan ID | ADDRESS...]
  watch --plan ID [--interval D]
  confirm|cancel|retry|rollback|skip-dns|recheck|approve-skipped|cutover-now (ADDRESS... | --plan ID) [--by NAME] [--reason TEXT]
  set-window (ADDRESS... | --plan ID) --window "22:00-06:00 Europe/Paris" [--by NAME] [--reason TEXT]
                                         (--window "" clears it: cut over as soon as the copy is done)
  pause --plan ID                        stop admitting the plan's accounts to the copy: queued ones wait
                                         holding no connection, running passes finish, locked accounts go on
  resume --plan ID                       admit them again, in queue order
  report (--plan ID | ADDRESS...) [--format csv|items|folders|folders-text|json|html]
                                         csv: one row per account (lockout, counts by reason); items: one row
                                         per skipped or reported message, each once; folders: one row per
                                         folder (source size, copied, present, skipped by reason, preserved,
                                         altered, excluded by rule), folders-text the same as a table;
                                         html: printable summary
  dns DOMAIN --to SERVICE
  import FILE.json                       load services, slots, accounts, redirections into the directory
                                         (checked first: a wrong row imports nothing; format: import --help)
  redirections ADDRESS [--remove KIND:TARGET]   list an address's redirections, or remove one (dev and lab
                                         platforms, which have no control panel)
  slots [--service SERVICE]              free slots per destination service

A plan ID is 1 to 100 letters, digits and . _ - : / (no spaces or quotes).
An address is ASCII before the @ (letters, digits and . _ - +); a Unicode
domain is accepted. --by is at most 200 bytes, --reason at most 2000.
A migration that was cancelled or rolled back can be started again; one that
ended done cannot.
`

func run(args []string, out io.Writer, getenv func(string) string) error {
	g := flag.NewFlagSet("starter", flag.ContinueOnError)
	g.SetOutput(io.Discard)
	temporalAddr := g.String("temporal", envOr(getenv, "MAILSHIFT_TEMPORAL_ADDRESS", "localhost:7233"), "")
	namespace := g.String("namespace", envOr(getenv, "MAILSHIFT_NAMESPACE", "default"), "")
	dirDSN := g.String("directory", getenv("MAILSHIFT_DIRECTORY"), "")
	devDir := g.String("dev-dir", "", "")
	codecKeys := g.String("codec-keys", getenv("MAILSHIFT_CODEC_KEY_FILE"), "")
	var ttls config.TemporalTLS
	g.StringVar(&ttls.CertFile, "temporal-tls-cert", "", "")
	g.StringVar(&ttls.KeyFile, "temporal-tls-key", "", "")
	g.StringVar(&ttls.CAFile, "temporal-tls-ca", "", "")
	g.StringVar(&ttls.ServerName, "temporal-tls-server-name", "", "")
	if err := g.Parse(args); err != nil {
		return usageError{err}
	}
	if g.NArg() == 0 {
		return usageError{errors.New("no command")}
	}
	// Flags win over the environment, field by field.
	flagTLS := ttls
	ttls = config.TemporalTLS{}.FromEnv(getenv)
	for _, f := range []struct {
		dst *string
		v   string
	}{{&ttls.CertFile, flagTLS.CertFile}, {&ttls.KeyFile, flagTLS.KeyFile},
		{&ttls.CAFile, flagTLS.CAFile}, {&ttls.ServerName, flagTLS.ServerName}} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	tlsCfg, err := ttls.Config()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cd *codec.Codec
	if *codecKeys != "" {
		var err error
		if cd, err = codec.LoadKeys(*codecKeys); err != nil {
			return err
		}
	}
	env := &cli.Env{Out: out, TemporalAddress: *temporalAddr, Namespace: *namespace, DirectoryDSN: *dirDSN, DevDir: *devDir,
		Dial: func(addr, ns string) (client.Client, error) {
			opts := client.Options{HostPort: addr, Namespace: ns, Logger: cli.QuietLogger{}}
			opts.ConnectionOptions.TLS = tlsCfg
			if cd != nil {
				cd.Apply(&opts)
			}
			return client.Dial(opts)
		}}
	if cd != nil {
		env.Converter = cd.DataConverter()
	}
	defer env.Close()
	cmd, rest := g.Arg(0), g.Args()[1:]
	if h, ok := commandHelp[cmd]; ok && wantsHelp(rest) {
		fmt.Fprint(out, h)
		return nil
	}
	f := flag.NewFlagSet(cmd, flag.ContinueOnError)
	f.SetOutput(io.Discard)
	parse := func() error {
		// Flags may follow positional arguments.
		var pos []string
		a := rest
		for {
			if err := f.Parse(a); err != nil {
				return usageError{fmt.Errorf("%s: %w", cmd, err)}
			}
			if f.NArg() == 0 {
				break
			}
			pos = append(pos, f.Arg(0))
			a = f.Args()[1:]
		}
		env.Args = pos
		return nil
	}
	switch cmd {
	case "start":
		to := f.String("to", "", "")
		planID := f.String("plan", "", "")
		auto := f.Bool("auto-confirm", false, "")
		dnsInt := f.String("dns-interval", "", "")
		dnsDeadline := f.String("dns-deadline", "", "")
		slotRecheck := f.String("slot-recheck", "", "")
		if err := parse(); err != nil {
			return err
		}
		if len(env.Args) != 1 {
			return usageError{errors.New("start: want exactly one ADDRESS")}
		}
		return env.Start(ctx, cli.StartArgs{Address: env.Args[0], To: *to, Plan: *planID, AutoConfirm: *auto, DNSInterval: *dnsInt, DNSDeadline: *dnsDeadline, SlotRecheck: *slotRecheck})
	case "plan":
		var p cli.PlanArgs
		f.StringVar(&p.PlanID, "plan-id", "", "")
		f.StringVar(&p.To, "to", "", "")
		f.StringVar(&p.Domain, "domain", "", "")
		f.BoolVar(&p.AutoConfirm, "auto-confirm", false, "")
		f.BoolVar(&p.ValidateOnly, "validate", false, "")
		f.BoolVar(&p.ValidOnly, "valid-only", false, "")
		f.BoolVar(&p.DryRun, "dry-run", false, "")
		f.BoolVar(&p.Wait, "wait", false, "")
		f.Float64Var(&p.Rate, "rate", 20, "")
		f.StringVar(&p.DNSInterval, "dns-interval", "", "")
		f.DurationVar(&p.Timeout, "timeout", 30*time.Minute, "")
		if err := parse(); err != nil {
			return err
		}
		if len(env.Args) == 1 {
			p.File = env.Args[0]
		} else if len(env.Args) > 1 || (p.Domain == "" && len(env.Args) == 0) {
			return usageError{errors.New("plan: want one FILE, or --domain DOMAIN --to SERVICE")}
		}
		return env.Plan(ctx, p)
	case "status":
		planID := f.String("plan", "", "")
		if err := parse(); err != nil {
			return err
		}
		_, err := env.Status(ctx, *planID, env.Args)
		return err
	case "watch":
		planID := f.String("plan", "", "")
		interval := f.Duration("interval", 2*time.Second, "")
		timeout := f.Duration("timeout", 0, "")
		if err := parse(); err != nil {
			return err
		}
		if *planID == "" && len(env.Args) == 0 {
			return usageError{errors.New("watch: want --plan ID or addresses")}
		}
		return env.Watch(ctx, *planID, env.Args, *interval, *timeout)
	case "confirm", "cancel", "retry", "rollback", "skip-dns", "recheck", "approve-skipped", "cutover-now", "set-window":
		planID := f.String("plan", "", "")
		by := f.String("by", envOr(getenv, "USER", ""), "")
		reason := f.String("reason", "", "")
		var window *string
		if cmd == "set-window" {
			window = f.String("window", "", "")
		}
		if err := parse(); err != nil {
			return err
		}
		if *planID == "" && len(env.Args) == 0 {
			return usageError{fmt.Errorf("%s: want addresses or --plan ID", cmd)}
		}
		in := workflows.ActionInput{By: *by, Reason: *reason}
		if window != nil {
			if !flagSet(f, "window") {
				return usageError{errors.New(`set-window: want --window "HH:MM-HH:MM Zone" (or --window "" to clear it)`)}
			}
			in.Window = *window
		}
		return env.ActWith(ctx, cmd, *planID, env.Args, in)
	case "pause", "resume":
		planID := f.String("plan", "", "")
		if err := parse(); err != nil {
			return err
		}
		if *planID == "" || len(env.Args) > 0 {
			return usageError{fmt.Errorf("%s: want --plan ID (and nothing else)", cmd)}
		}
		return env.Pause(ctx, *planID, cmd == "resume")
	case "report":
		planID := f.String("plan", "", "")
		format := f.String("format", "csv", "")
		if err := parse(); err != nil {
			return err
		}
		return env.Report(ctx, *planID, env.Args, *format)
	case "dns":
		to := f.String("to", "", "")
		if err := parse(); err != nil {
			return err
		}
		if len(env.Args) != 1 || *to == "" {
			return usageError{errors.New("dns: want DOMAIN --to SERVICE")}
		}
		return env.DNS(ctx, env.Args[0], *to)
	case "import":
		if err := parse(); err != nil {
			return err
		}
		if len(env.Args) != 1 {
			return usageError{errors.New("import: want one FILE.json")}
		}
		return env.Import(ctx, env.Args[0])
	case "redirections":
		remove := f.String("remove", "", "")
		by := f.String("by", envOr(getenv, "USER", ""), "")
		if err := parse(); err != nil {
			return err
		}
		if len(env.Args) != 1 {
			return usageError{errors.New("redirections: want one ADDRESS")}
		}
		return env.Redirections(ctx, env.Args[0], *remove, *by)
	case "slots":
		service := f.String("service", "", "")
		if err := parse(); err != nil {
			return err
		}
		return env.Slots(ctx, *service)
	case "help", "-h", "--help":
		fmt.Fprint(out, usage)
		return nil
	}
	return usageError{fmt.Errorf("unknown command %q", cmd)}
}

// commandHelp is what `starter COMMAND --help` prints for the commands
// that need more than their usage line.
var commandHelp = map[string]string{
	"import": cli.ImportHelp,
	"redirections": `usage: starter redirections ADDRESS [--remove KIND:TARGET] [--by NAME]

Lists the redirections, forwards and auto-responders of ADDRESS in the
directory; --remove deletes the one of that kind and target (as listed),
with an audit line naming --by. A migration whose preflight was blocked by a
redirection then goes on with: starter retry ADDRESS.
For the dev and lab platforms, which have no control panel.
`,
}

func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// flagSet reports whether the flag was given (an empty --window clears the
// window; no --window at all is a mistake).
func flagSet(f *flag.FlagSet, name string) bool {
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}
