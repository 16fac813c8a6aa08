// Package app wires the engines into activities and a Temporal worker. The
// worker's main and the end-to-end tests share it, so the tests run exactly
// what production runs.
package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/dnscheck"
	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/mailgen"
	"github.com/mailshift/mailshift/internal/notify"
	"github.com/mailshift/mailshift/workflows"
)

// HeartbeatThrottle is how often at most a running activity's heartbeat
// reaches the server. The SDK's default (80 % of the heartbeat timeout:
// 24 s for the copy) leaves watch's bars and the progress query still for
// most of a copy; one heartbeat a second per running copy is a small load
// next to the copy itself (the servers' budgets bound how many run).
const HeartbeatThrottle = time.Second

// WorkerOptions fills what opts leaves unset with mailshift's defaults:
// heartbeats throttled to HeartbeatThrottle, so live bars move.
func WorkerOptions(opts worker.Options) worker.Options {
	if opts.MaxHeartbeatThrottleInterval == 0 {
		opts.MaxHeartbeatThrottleInterval = HeartbeatThrottle
	}
	if opts.DefaultHeartbeatThrottleInterval == 0 {
		opts.DefaultHeartbeatThrottleInterval = HeartbeatThrottle
	}
	// A plan keeps hundreds of workflows and the budgets waking each
	// other: with the SDK's two workflow task pollers (one of them on the
	// sticky queue) a task waited about 100 ms for a poller under a busy
	// plan (make bench-plan -timeline). Polls are cheap long calls.
	if opts.MaxConcurrentWorkflowTaskPollers == 0 && opts.WorkflowTaskPollerBehavior == nil {
		opts.MaxConcurrentWorkflowTaskPollers = WorkflowTaskPollers
	}
	return opts
}

// WorkflowTaskPollers is how many workflow task polls a worker keeps
// open, unless its options say otherwise.
const WorkflowTaskPollers = 8

// NewWorker registers the workflow and the activities on a worker (options
// completed by WorkerOptions).
func NewWorker(c client.Client, taskQueue string, acts *activities.Activities, opts worker.Options) worker.Worker {
	w := worker.New(c, taskQueue, WorkerOptions(opts))
	w.RegisterWorkflowWithOptions(workflows.MigrateAccount, workflow.RegisterOptions{Name: workflows.WorkflowName})
	w.RegisterWorkflowWithOptions(workflows.ServerBudget, workflow.RegisterOptions{Name: workflows.BudgetWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.MeasureMailboxes, workflow.RegisterOptions{Name: workflows.MeasureWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.PlanWatch, workflow.RegisterOptions{Name: workflows.PlanWatchName})
	if acts.Temporal == nil {
		acts.Temporal = c
	}
	if acts.TaskQueue == "" {
		acts.TaskQueue = taskQueue
	}
	w.RegisterActivityWithOptions(acts, activity.RegisterOptions{})
	return w
}

// Activities builds the activities for a production configuration.
func Activities(ctx context.Context, cfg config.Config, dir *directory.Store, log *zap.Logger) (*activities.Activities, error) {
	ops := &dnscheck.Ops{Checker: &dnscheck.Checker{Resolver: cfg.DNSResolver, Port: cfg.DNSPort, Resolvers: cfg.DNSResolvers, Override: cfg.DNSOverride},
		Managed: map[string]*dnscheck.Updater{}}
	for _, z := range cfg.ManagedZones {
		secret := ""
		if z.KeyFile != "" {
			b, err := os.ReadFile(z.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("zone %s key file: %w", z.Zone, err)
			}
			secret = strings.TrimSpace(string(b))
		}
		ops.Managed[dns.Fqdn(strings.ToLower(z.Zone))] = &dnscheck.Updater{Primary: z.Primary,
			Key: dnscheck.TSIGKey{Name: z.KeyName, Algorithm: z.Algorithm, Secret: secret}}
	}
	master := activities.Master{User: cfg.MasterUser, Password: cfg.MasterPassword, Sep: cfg.MasterSep,
		Plain: cfg.IMAPPlain, InsecureSkipVerify: cfg.IMAPInsecureSkipVerify}
	if cfg.IMAPCAFile != "" {
		pool, err := mailcopy.LoadCAs(cfg.IMAPCAFile)
		if err != nil {
			return nil, fmt.Errorf("imapCAFile: %w", err)
		}
		master.RootCAs = pool
	}
	acts := &activities.Activities{
		Dir:           dir,
		Mail:          mailcopy.Engine{},
		DNS:           ops,
		Master:        master,
		Connections:   cfg.Connections,
		Logger:        log,
		Budgets:       cfg.ServerBudgets,
		DefaultBudget: cfg.DefaultServerBudget,
		Hashes:        activities.NewHashes(),
		Sessions:      activities.NewSessions(),
	}
	n, err := Notifier(cfg.Notify)
	if err != nil {
		return nil, err
	}
	if n != nil {
		acts.Notify = n
	}
	return acts, nil
}

// DevInfo is what the dev mode tells the starter (no secrets).
type DevInfo struct {
	Directory    string            `json:"directory"`
	DNS          string            `json:"dns"`
	IMAP         map[string]string `json:"imap"`
	Accounts     []string          `json:"accounts"`
	DemoPassword string            `json:"demoPassword"`
}

// DemoAccounts are the mailboxes the dev mode seeds, in order; the first
// five make the demo plan.
var DemoAccounts = []struct{ Address, Locale string }{
	{"alice@example.com", "en"}, {"bob@example.com", "fr"}, {"carol@example.com", "en"},
	{"dave@example.org", "de"}, {"erin@example.org", "fr"}, {"frank@example.com", "en"},
	{"grace@example.org", "en"}, {"henry@example.com", "fr"},
}

// StartDev starts the embedded platform, seeds it and returns activities
// bound to it. dsn is the directory (a fresh SQLite file in dev).
func StartDev(ctx context.Context, dsn string, accounts, messages int, log *zap.Logger) (*devstack.Stack, *activities.Activities, error) {
	st, err := devstack.Start(ctx, devstack.Options{DirectoryDSN: dsn})
	if err != nil {
		return nil, nil, err
	}
	if err := st.AddSlots(ctx, devstack.EmailProService, accounts+2, 5<<30); err != nil {
		return nil, nil, err
	}
	if err := st.AddSlots(ctx, devstack.ExchangeService, 3, 50<<30); err != nil {
		return nil, nil, err
	}
	for i := 0; i < accounts && i < len(DemoAccounts); i++ {
		d := DemoAccounts[i]
		spec := mailgen.Spec{Seed: uint64(i + 1), Messages: messages, MeanSize: 10 << 10, NoIDPercent: 3, DupPercent: 2}
		if _, err := st.AddAccount(ctx, d.Address, d.Locale, spec); err != nil {
			return nil, nil, err
		}
	}
	_, port, _ := net.SplitHostPort(st.DNS.Addr)
	ops := &dnscheck.Ops{Checker: &dnscheck.Checker{Resolver: st.DNS.Addr, Port: port}, Managed: map[string]*dnscheck.Updater{}}
	for _, z := range st.Zones {
		ops.Managed[dns.Fqdn(z)] = &dnscheck.Updater{Primary: st.DNS.Addr, Key: st.TSIG}
	}
	acts := &activities.Activities{
		Dir:         st.Dir,
		Mail:        mailcopy.Engine{},
		DNS:         ops,
		Master:      activities.Master{User: st.MasterUser, Password: st.MasterPassword, Sep: "*", Plain: true},
		Connections: 2,
		Logger:      log,
		// The dev platform's servers are shared like production's.
		DefaultBudget: 20,
		Hashes:        activities.NewHashes(),
		Sessions:      activities.NewSessions(),
	}
	return st, acts, nil
}

// WriteDevInfo records where the dev platform listens, for the starter.
func WriteDevInfo(dir, dsn string, st *devstack.Stack, accounts int) error {
	info := DevInfo{Directory: dsn, DNS: st.DNS.Addr, DemoPassword: devstack.DemoPassword, IMAP: map[string]string{
		devstack.SourceService: st.Source.Addr, devstack.EmailProService: st.EmailPro.Addr, devstack.ExchangeService: st.Exchange.Addr}}
	for i := 0; i < accounts && i < len(DemoAccounts); i++ {
		info.Accounts = append(info.Accounts, DemoAccounts[i].Address)
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "dev.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "dev.json"))
}

// ReadDevInfo reads what WriteDevInfo wrote.
func ReadDevInfo(dir string) (*DevInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, "dev.json"))
	if err != nil {
		return nil, fmt.Errorf("dev platform info: %w (is the worker running with --dev?)", err)
	}
	var info DevInfo
	return &info, json.Unmarshal(b, &info)
}

// Notifier builds the operator notifier of a configuration (nil: no
// channel configured).
func Notifier(n config.Notify) (*notify.Notifier, error) {
	if !n.Enabled() {
		return nil, nil
	}
	out := &notify.Notifier{}
	if n.WebhookURL != "" {
		wh := &notify.Webhook{URL: n.WebhookURL, Timeout: n.Timeout(), Attempts: n.WebhookAttempts}
		if n.WebhookSecret != "" {
			wh.Secret = []byte(n.WebhookSecret)
		}
		out.Channels = append(out.Channels, wh)
	}
	if n.SMTPRelay != "" {
		m := &notify.Mail{Relay: n.SMTPRelay, From: n.From, To: n.To, RequireTLS: n.SMTPRequireTLS, Username: n.SMTPUser, Password: n.SMTPPassword}
		if n.SMTPCAFile != "" {
			pool, err := mailcopy.LoadCAs(n.SMTPCAFile)
			if err != nil {
				return nil, fmt.Errorf("notify.smtpCAFile: %w", err)
			}
			m.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		out.Channels = append(out.Channels, m)
	}
	return out, nil
}
