// Command mailbench-plan measures a plan of many realistic accounts on one
// lab Dovecot pair (the directory on PostgreSQL, a master user, BIND9 for
// the domain's records), in one run: mbsync J accounts at a time,
// mailshift-copy J accounts at a time, and the whole plan through a
// Temporal dev server and a worker process with a server budget of J
// copies. It prints one table: messages/s, accounts/min, the ratio to
// mbsync, the CPU seconds of each component and the peak connections each
// server saw, counted at the server.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/mailgen"
	"github.com/mailshift/mailshift/internal/procstat"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

const (
	masterPW = "bench-master-password"
	ownerPW  = "bench-owner-password"
	domain   = "example.com"
	// Destination accounts of the mbsync and mailshift-copy runs live in
	// their own domain, so the plan's domain records are its own.
	benchDomain = "bench.test"
)

type options struct {
	accounts, messages, mean, jobs, conns, check int
	huge                                         int
	bin, cpuProfile, workerLog, workerLogLevel   string
	timeout                                      time.Duration
	repeat, eager, timeline, memoryDB            bool
}

// result is one row of the table.
type result struct {
	name            string
	seconds         float64
	accounts        int
	messages        int
	tool            float64 // CPU of mbsync, mailshift-copy or the worker
	temporal        float64
	src, dst, pg    float64
	peakSrc, peakDt int
	lost, checked   int
	// run names the destination accounts of the run ("plan": the slots
	// the plan configured under the source addresses).
	run  string
	note string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mailbench-plan:", err)
		os.Exit(1)
	}
}

func run() error {
	var o options
	flag.IntVar(&o.accounts, "accounts", 100, "accounts in the plan")
	flag.IntVar(&o.messages, "messages", 200, "messages per account")
	flag.IntVar(&o.mean, "mean", 30<<10, "mean message size in bytes")
	flag.IntVar(&o.huge, "huge", 0, "one message of this many bytes per account (0: none)")
	flag.IntVar(&o.jobs, "j", 4, "accounts at a time (the plan's server budget is j x connections)")
	flag.IntVar(&o.conns, "connections", 2, "connection pairs per account for mailshift-copy and the worker")
	flag.IntVar(&o.check, "check", 20, "accounts of each run compared message by message with the source afterwards")
	flag.StringVar(&o.bin, "bin", "bin", "where worker and mailshift-copy are built")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "directory for CPU profiles of the worker and of one mailshift-copy")
	flag.StringVar(&o.workerLog, "worker-log", "", "file to keep the plan's worker log in (default: discarded)")
	flag.StringVar(&o.workerLogLevel, "worker-log-level", "warn", "the plan's worker's log level (info: a line per pass, with its duration)")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Minute, "longest the plan may take")
	flag.BoolVar(&o.memoryDB, "temporal-memory", false, "run the Temporal dev server on an in-memory database (default: a file, like a server's disk)")
	flag.BoolVar(&o.timeline, "timeline", false, "print the history of one account of the plan, event by event, with times")
	flag.BoolVar(&o.eager, "eager", true, "enable eager activity execution on the Temporal server (system.enableActivityEagerExecution)")
	flag.BoolVar(&o.repeat, "repeat", true, "run mbsync and mailshift-copy twice, in alternating order, and keep the faster of each")
	flag.Parse()
	if o.accounts < 1 || o.messages < 1 || o.jobs < 1 || o.conns < 1 {
		return errors.New("-accounts, -messages, -j and -connections must be at least 1")
	}
	// Ctrl-C stops the runs and still stops every server the bench started.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return bench(ctx, o)
}

// lab is the platform every run uses.
type lab struct {
	work     string
	dir      *directory.Store
	pg       *testenv.PG
	src, dst *testenv.Dovecot
	srcPort  int
	dstPort  int
	bind     *testenv.BIND
	srcPID   int
	dstPID   int
	pgPID    int
	counter  *connCounter
	addrs    []string
	// want is the source mailbox of the first accounts, read before any
	// run (the plan locks the sources).
	want       map[string]testenv.Mailbox
	messages   int
	mb         float64
	cpuProfile string
}

func bench(ctx context.Context, o options) error {
	work, err := os.MkdirTemp("", "mailbench-plan-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	l := &lab{work: work, cpuProfile: o.cpuProfile}
	if l.pg, err = testenv.LaunchPostgres(); err != nil {
		return err
	}
	defer l.pg.Stop()
	if l.dir, err = directory.Open(ctx, l.pg.DSN); err != nil {
		return err
	}
	defer l.dir.Close()
	b, stopBIND, err := testenv.LaunchBIND(domain)
	if err != nil {
		return err
	}
	defer stopBIND()
	l.bind = b
	l.srcPort, l.dstPort = testenv.MustPickPort(), testenv.MustPickPort()
	for _, sv := range []directory.Service{
		{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: addr(l.srcPort), IMAPSecurity: "plain"},
		{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: addr(l.dstPort), IMAPSecurity: "plain",
			MX: "10 mx1.pro.example.net", SPFInclude: "_spf.pro.example.net"},
	} {
		if err := l.dir.AddService(ctx, sv); err != nil {
			return err
		}
	}
	hash := directory.HashPassword(ownerPW)
	l.addrs = make([]string, o.accounts)
	for i := range l.addrs {
		l.addrs[i] = fmt.Sprintf("u%04d@%s", i, domain)
		if err := l.dir.AddAccount(ctx, directory.Account{Address: l.addrs[i], ServiceID: "mxplan-1"}, hash); err != nil {
			return err
		}
		if err := l.dir.AddSlot(ctx, "emailpro-1", fmt.Sprintf("s%04d@configureme.me", i), 1<<40); err != nil {
			return err
		}
		for _, run := range []string{"m1", "m2", "c1", "c2"} {
			if err := l.dir.AddAccount(ctx, directory.Account{Address: destUser(run, i), ServiceID: "emailpro-1"}, hash); err != nil {
				return err
			}
		}
	}
	mh := directory.HashPassword(masterPW)
	// Enough per-user connections for any -connections; the budget, not
	// this limit, is what the plan must respect.
	var stopSrc, stopDst func()
	if l.src, stopSrc, err = testenv.LaunchDovecot(testenv.DovecotOptions{Name: "plan-src", Directory: l.pg.DSN, Services: []string{"mxplan-1"},
		MasterUser: "mailshift", MasterHash: mh, Port: l.srcPort, MaxConns: 50}); err != nil {
		return err
	}
	defer stopSrc()
	if l.dst, stopDst, err = testenv.LaunchDovecot(testenv.DovecotOptions{Name: "plan-dst", Directory: l.pg.DSN, Services: []string{"emailpro-1"},
		MasterUser: "mailshift", MasterHash: mh, Port: l.dstPort, MaxConns: 50}); err != nil {
		return err
	}
	defer stopDst()
	l.srcPID = findPID("dovecot", filepath.Join(l.src.Dir, "dovecot.conf"))
	l.dstPID = findPID("dovecot", filepath.Join(l.dst.Dir, "dovecot.conf"))
	l.pgPID = findPID("bin/postgres", "-p "+strings.TrimPrefix(l.pg.DSN[strings.LastIndex(l.pg.DSN, ":"):strings.LastIndex(l.pg.DSN, "/")], ":")+" ")
	if l.srcPID == 0 || l.dstPID == 0 || l.pgPID == 0 {
		return fmt.Errorf("could not find the servers' processes (source Dovecot %d, destination Dovecot %d, PostgreSQL %d)", l.srcPID, l.dstPID, l.pgPID)
	}
	l.counter = newConnCounter(20*time.Millisecond, l.srcPort, l.dstPort)
	defer l.counter.Close()

	fmt.Printf("seeding %d accounts x %d messages (mean %d KiB) ...\n", o.accounts, o.messages, o.mean>>10)
	t0 := time.Now()
	if err := l.seed(o); err != nil {
		return err
	}
	fmt.Printf("seeded %d messages, %.0f MiB in %.1fs\n", l.messages, l.mb, time.Since(t0).Seconds())
	l.want = map[string]testenv.Mailbox{}
	for _, a := range l.addrs[:min(o.check, len(l.addrs))] {
		mb, err := testenv.Read(l.src.Addr, a, ownerPW)
		if err != nil {
			return fmt.Errorf("read %s: %w", a, err)
		}
		l.want[a] = mb
	}

	release := func() { runtime.GC(); debug.FreeOSMemory() }
	var rows []result
	add := func(r result, err error) error {
		if err != nil {
			return err
		}
		// Each row as it is measured, so a run cut short still tells.
		fmt.Printf("%s: %.1fs, %.0f msg/s; CPU-s tool/worker %.2f, Temporal %.2f, source %.2f, destination %.2f, PostgreSQL %.2f; peak connections source %d, destination %d\n",
			r.name, r.seconds, float64(r.messages)/r.seconds, r.tool, r.temporal, r.src, r.dst, r.pg, r.peakSrc, r.peakDt)
		rows = append(rows, r)
		release()
		return nil
	}
	// The first run after the corpus is laid down is slower for any tool
	// (fresh files on this ext4): alternate the order and keep the best.
	if err := add(l.runPool(ctx, o, "mbsync", "m1")); err != nil {
		return err
	}
	if err := add(l.runPool(ctx, o, "mailshift-copy", "c1")); err != nil {
		return err
	}
	if o.repeat {
		if err := add(l.runPool(ctx, o, "mailshift-copy", "c2")); err != nil {
			return err
		}
		if err := add(l.runPool(ctx, o, "mbsync", "m2")); err != nil {
			return err
		}
	}
	// The plan comes last: it locks and marks the source accounts migrated.
	if err := add(l.runPlan(ctx, o)); err != nil {
		return err
	}
	// Compare after every timed run (reading would disturb them).
	for i := range rows {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.checkRun(&rows[i], o.check)
	}
	print(os.Stdout, o, rows)
	return nil
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func destUser(run string, i int) string { return fmt.Sprintf("%s-u%04d@%s", run, i, benchDomain) }

func (l *lab) seed(o options) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 4)
	for i, a := range l.addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			spec := mailgen.Spec{Seed: 2026 + uint64(i), Messages: o.messages, MeanSize: o.mean, NoIDPercent: 3, DupPercent: 3, Huge: o.huge, Address: a}
			n, size, err := testenv.Seed(l.src.Addr, a, ownerPW, spec)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("seed %s: %w", a, err)
			}
			l.messages += n
			l.mb += float64(size) / (1 << 20)
		}()
	}
	wg.Wait()
	return firstErr
}

// snapshot is the CPU of the servers at one moment.
type snapshot struct{ src, dst, pg float64 }

func (l *lab) snap() snapshot {
	return snapshot{src: treeCPU(l.srcPID), dst: treeCPU(l.dstPID), pg: treeCPU(l.pgPID)}
}

func (s snapshot) since(r *result, before snapshot) {
	r.src, r.dst, r.pg = s.src-before.src, s.dst-before.dst, s.pg-before.pg
}

// runPool copies every account with tool, o.jobs accounts at a time, into
// the destination accounts of run.
func (l *lab) runPool(ctx context.Context, o options, tool, run string) (result, error) {
	r := result{name: fmt.Sprintf("%s, %d at a time", tool, o.jobs), accounts: len(l.addrs), messages: l.messages, run: run}
	if tool == "mailshift-copy" {
		r.name = fmt.Sprintf("mailshift-copy (%d pairs), %d at a time", o.conns, o.jobs)
	}
	var mu sync.Mutex
	var firstErr error
	jobs := make(chan int)
	var wg sync.WaitGroup
	before := l.snap()
	l.counter.Reset()
	t0 := time.Now()
	for range o.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				var cmd *exec.Cmd
				var err error
				if tool == "mbsync" {
					cmd, err = l.mbsyncCmd(ctx, i, destUser(run, i))
				} else {
					cmd = l.copyCmd(ctx, o, i, destUser(run, i), run == "c1" && i == 0)
				}
				var out bytes.Buffer
				if err == nil {
					cmd.Stdout, cmd.Stderr = &out, &out
					err = cmd.Run()
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("%s %s: %v: %s", tool, l.addrs[i], err, out.String())
				}
				if cmd != nil && cmd.ProcessState != nil {
					r.tool += cmd.ProcessState.UserTime().Seconds() + cmd.ProcessState.SystemTime().Seconds()
				}
				mu.Unlock()
			}
		}()
	}
	for i := range l.addrs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	r.seconds = time.Since(t0).Seconds()
	l.counter.poll()
	l.snap().since(&r, before)
	r.peakSrc, r.peakDt = l.counter.Peak(l.srcPort), l.counter.Peak(l.dstPort)
	return r, firstErr
}

// mbsyncTLSKeyword is how the installed mbsync names the TLS setting:
// TLSType from isync 1.5 on, SSLType before (Debian 12 ships 1.4.4).
var mbsyncTLSKeyword = sync.OnceValue(func() string {
	out, err := exec.Command("mbsync", "--version").Output()
	var major, minor int
	if err == nil {
		_, _ = fmt.Sscanf(strings.TrimSpace(string(out)), "isync %d.%d", &major, &minor)
	}
	if major > 1 || (major == 1 && minor >= 5) {
		return "TLSType"
	}
	return "SSLType"
})

func (l *lab) mbsyncCmd(ctx context.Context, i int, dstUser string) (*exec.Cmd, error) {
	tlsKey := mbsyncTLSKeyword()
	state := filepath.Join(l.work, "mbsync-state", dstUser) + "/"
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`IMAPAccount src
Host 127.0.0.1
Port %d
User %s*mailshift
Pass %s
%s None
AuthMechs LOGIN

IMAPStore src
Account src

IMAPAccount dst
Host 127.0.0.1
Port %d
User %s
Pass %s
%s None
AuthMechs LOGIN

IMAPStore dst
Account dst

Channel bench
Far :src:
Near :dst:
Patterns *
Create Near
Sync Pull
SyncState %s
CopyArrivalDate yes
`, l.srcPort, l.addrs[i], masterPW, tlsKey, l.dstPort, dstUser, ownerPW, tlsKey, state)
	cf := filepath.Join(l.work, "mbsyncrc-"+dstUser)
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, "mbsync", "-c", cf, "-a", "-q"), nil
}

func (l *lab) copyCmd(ctx context.Context, o options, i int, dstUser string, profile bool) *exec.Cmd {
	args := []string{"--from", l.src.Addr, "--from-user", l.addrs[i], "--from-master", "mailshift",
		"--from-security", "plain", "--to", l.dst.Addr, "--to-user", dstUser, "--to-security", "plain",
		"--connections", strconv.Itoa(o.conns)}
	cmd := exec.CommandContext(ctx, filepath.Join(o.bin, "mailshift-copy"), args...)
	cmd.Env = append(os.Environ(), "MAILSHIFT_FROM_PASSWORD="+masterPW, "MAILSHIFT_TO_PASSWORD="+ownerPW, "GOMAXPROCS=1")
	if profile && l.cpuProfile != "" {
		cmd.Env = append(cmd.Env, "MAILSHIFT_CPUPROFILE="+filepath.Join(l.cpuProfile, "mailshift-copy.pprof"))
	}
	return cmd
}

// runPlan migrates every account as one plan through Temporal, every stage
// included, with a server budget of o.jobs copies per server.
func (l *lab) runPlan(ctx context.Context, o options) (result, error) {
	// The budgets admit j copies at a time, as many as mailshift-copy
	// runs, with the connections they open: a pair per 1,000 messages up
	// to -connections, each a source session and two destination ones
	// (the second pipelines the APPENDs); the copy's lease asks that.
	pairs := max(1, min(o.conns, (o.messages+mailcopy.DefaultMessagesPerPair-1)/mailcopy.DefaultMessagesPerPair))
	budget, destBudget := o.jobs*pairs, 2*o.jobs*pairs
	r := result{name: fmt.Sprintf("plan via Temporal, budget %d/%d conns (%d copies)", budget, destBudget, o.jobs), accounts: len(l.addrs), messages: l.messages, run: "plan"}
	temporal := os.Getenv("MAILSHIFT_TEMPORAL")
	if temporal == "" {
		return r, errors.New("MAILSHIFT_TEMPORAL is not set: export MAILSHIFT_TEMPORAL=$(deploy/dev/temporal.sh) (make bench-plan does)")
	}
	port := testenv.MustPickPort()
	dbFile := filepath.Join(l.work, "temporal.db")
	if o.memoryDB {
		dbFile = "" // the dev server keeps its SQLite database in memory
	}
	dso := testenv.DevServerOptions(temporal, addr(port), dbFile)
	if o.eager {
		// The activity a workflow task schedules comes back with the
		// task's answer, without a poll (README: Capacity planning).
		dso.ExtraArgs = append(dso.ExtraArgs, "--dynamic-config-value", "system.enableActivityEagerExecution=true")
	}
	srv, err := testsuite.StartDevServer(ctx, dso)
	if err != nil {
		return r, err
	}
	defer func() { _ = srv.Stop() }()
	tpid := findPID("start-dev", strconv.Itoa(port))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.MustPickPort())
	pwFile := filepath.Join(l.work, "master.pw")
	keyFile := filepath.Join(l.work, "tsig.key")
	if err := os.WriteFile(pwFile, []byte(masterPW), 0o600); err != nil {
		return r, err
	}
	if err := os.WriteFile(keyFile, []byte(l.bind.Secret), 0o600); err != nil {
		return r, err
	}
	cfg := map[string]any{"temporalAddress": srv.FrontendHostPort(), "directory": l.pg.DSN, "masterUser": "mailshift",
		"masterPasswordFile": pwFile, "imapPlain": true, "connections": o.conns, "defaultServerBudget": budget,
		"serverBudgets": map[string]int{"mxplan-1": budget, "emailpro-1": destBudget},
		"dnsResolver":   l.bind.PrimaryAddr(),
		"metricsAddr":   metricsAddr,
		"dnsOverride":   map[string]string{"ns1." + domain + ".": l.bind.PrimaryAddr(), "ns2." + domain + ".": l.bind.PrimaryAddr()},
		"logLevel":      o.workerLogLevel,
		"managedZones":  []map[string]string{{"zone": domain, "primary": l.bind.PrimaryAddr(), "keyName": l.bind.KeyName, "keyFile": keyFile}}}
	b, _ := json.Marshal(cfg)
	cf := filepath.Join(l.work, "worker.json")
	if err := os.WriteFile(cf, b, 0o600); err != nil {
		return r, err
	}
	w := exec.Command(filepath.Join(o.bin, "worker"), "--config", cf)
	if l.cpuProfile != "" {
		w.Env = append(os.Environ(), "MAILSHIFT_CPUPROFILE="+filepath.Join(l.cpuProfile, "worker.pprof"))
	}
	var wlog io.Writer = io.Discard
	if o.workerLog != "" {
		f, err := os.Create(o.workerLog)
		if err != nil {
			return r, err
		}
		defer f.Close()
		wlog = f
	}
	w.Stdout, w.Stderr = wlog, wlog
	c := srv.Client()
	var sb strings.Builder
	sb.WriteString("address,to,dns_interval,no_notice\n")
	for _, a := range l.addrs {
		sb.WriteString(a + ",emailpro-1,1s,true\n")
	}
	planFile := filepath.Join(l.work, "plan.csv")
	if err := os.WriteFile(planFile, []byte(sb.String()), 0o644); err != nil {
		return r, err
	}
	runCtx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	tBefore := treeCPU(tpid)
	before := l.snap()
	l.counter.Reset()
	t0 := time.Now()
	if err := w.Start(); err != nil {
		return r, err
	}
	stopWorker := func() {
		if w.Process != nil {
			_ = w.Process.Signal(syscall.SIGTERM)
			_ = w.Wait()
		}
	}
	env := &cli.Env{Out: io.Discard, Client: c, DirectoryDSN: l.pg.DSN}
	if err := env.Plan(runCtx, cli.PlanArgs{File: planFile, PlanID: "bench", AutoConfirm: true, Rate: 200}); err != nil {
		stopWorker()
		return r, fmt.Errorf("plan: %w", err)
	}
	var notDone []string
	var durations []time.Duration
	perStage := map[workflows.Stage][]time.Duration{}
	var stageOrder []workflows.Stage
	for _, a := range l.addrs {
		var res workflows.Result
		if err := c.GetWorkflow(runCtx, workflows.WorkflowID(a), "").Get(runCtx, &res); err != nil {
			notDone = append(notDone, fmt.Sprintf("%s: %v", a, err))
			continue
		}
		if res.Outcome != workflows.StageDone {
			notDone = append(notDone, fmt.Sprintf("%s: %s", a, res.Outcome))
			continue
		}
		durations = append(durations, res.Finished.Sub(res.Started))
		for k, st := range res.Stages {
			end := res.Finished
			if k+1 < len(res.Stages) {
				end = res.Stages[k+1].At
			}
			if _, ok := perStage[st.Stage]; !ok {
				stageOrder = append(stageOrder, st.Stage)
			}
			perStage[st.Stage] = append(perStage[st.Stage], end.Sub(st.At))
		}
	}
	r.seconds = time.Since(t0).Seconds()
	l.counter.poll()
	r.peakSrc, r.peakDt = l.counter.Peak(l.srcPort), l.counter.Peak(l.dstPort)
	l.snap().since(&r, before)
	r.temporal = treeCPU(tpid) - tBefore
	r.tool = treeCPU(w.Process.Pid)
	rss := procstat.PeakRSSMB(w.Process.Pid)
	lats := scrapeLatencies("http://" + metricsAddr + "/metrics")
	stopWorker()
	// History events per account, on a sample.
	events, maxEvents, sampled := 0, 0, 0
	byType := map[string]int{}
	// How long each activity ran (scheduled to completed): the work done
	// under the leases, without the waits for them.
	type scheduled struct {
		name string
		at   time.Time
	}
	sched := map[int64]scheduled{}
	actTimes := map[string][]time.Duration{}
	for i, a := range l.addrs {
		if i >= 50 {
			break
		}
		n := 0
		eachEvent(ctx, c, workflows.WorkflowID(a), "", func(e *historypb.HistoryEvent) {
			byType[eventType(e)]++
			n++
			if at := e.GetActivityTaskScheduledEventAttributes(); at != nil {
				sched[e.GetEventId()] = scheduled{at.GetActivityType().GetName(), e.GetEventTime().AsTime()}
			}
			if at := e.GetActivityTaskCompletedEventAttributes(); at != nil {
				if sc, ok := sched[at.GetScheduledEventId()]; ok {
					actTimes[sc.name] = append(actTimes[sc.name], e.GetEventTime().AsTime().Sub(sc.at))
				}
			}
		})
		events += n
		maxEvents = max(maxEvents, n)
		sampled++
	}
	if o.timeline && len(l.addrs) > 0 {
		printTimeline(ctx, c, workflows.WorkflowID(l.addrs[len(l.addrs)/2]))
	}
	// The budgets' own histories: every lease is work for them too.
	budgetEvents, budgetRuns := int64(0), 0
	runs := map[string][]string{}
	for _, svc := range []string{"mxplan-1", "emailpro-1"} {
		var token []byte
		for {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{NextPageToken: token,
				Query: fmt.Sprintf("WorkflowId = '%s'", workflows.BudgetWorkflowID(svc))})
			if err != nil {
				break
			}
			for _, e := range resp.GetExecutions() {
				budgetEvents += e.GetHistoryLength()
				budgetRuns++
				runs[svc] = append(runs[svc], e.GetExecution().GetRunId())
			}
			if token = resp.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
	}
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	p50 := time.Duration(0)
	if len(durations) > 0 {
		p50 = durations[len(durations)/2]
	}
	r.note = fmt.Sprintf("plan: %d of %d done; worker peak RSS %.0f MB; history events per account mean %.0f, max %d (first %d accounts); one account end to end p50 %s",
		len(durations), len(l.addrs), rss, float64(events)/float64(max(sampled, 1)), maxEvents, sampled, p50.Round(100*time.Millisecond))
	type kv struct {
		k string
		v int
	}
	var kinds []kv
	for k, v := range byType {
		kinds = append(kinds, kv{k, v})
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i].v > kinds[j].v })
	r.note += "\nevents per account by type:"
	for _, e := range kinds {
		r.note += fmt.Sprintf(" %s %.1f", e.k, float64(e.v)/float64(max(sampled, 1)))
	}
	r.note += fmt.Sprintf("\nbudget workflows: %d runs, %d events (%.0f per account)", budgetRuns, budgetEvents, float64(budgetEvents)/float64(max(len(l.addrs), 1)))
	books := map[string]*leaseBook{}
	for _, svc := range []string{"mxplan-1", "emailpro-1"} {
		// A lease asked in one run of a budget can be granted or given
		// back in a later one (continue-as-new): one book for all runs.
		lb := newLeaseBook()
		books[svc] = lb
		for _, run := range runs[svc] {
			lb.read(ctx, c, workflows.BudgetWorkflowID(svc), run)
		}
		u := lb.usage()
		limit := budget
		if svc == "emailpro-1" {
			limit = destBudget
		}
		r.note += fmt.Sprintf("\nbudget %s: %d leases, held %.1f s each on average, %.0f %% of its %d connections x %.0f s in use",
			svc, u.leases, u.held.Seconds()/float64(max(u.leases, 1)), 100*u.connSeconds/(float64(limit)*r.seconds), limit, r.seconds)
	}
	if w := destAfterSource(books["mxplan-1"], books["emailpro-1"]); len(w) > 0 {
		r.note += fmt.Sprintf("\nthe destination's grant after the source's (the source held meanwhile): median %s, p90 %s, over %d lease rounds",
			w[len(w)/2].Round(time.Millisecond), w[len(w)*9/10].Round(time.Millisecond), len(w))
	}
	if len(lats) > 0 {
		r.note += "\nworker's own timings, mean (count), from its metrics:" + lats
	}
	r.note += "\nactivities, median (total over the sampled accounts):"
	var names []string
	for k := range actTimes {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		med, sum := medianSum(actTimes[k])
		r.note += fmt.Sprintf(" %s %s x%d (%s)", k, med.Round(10*time.Millisecond), len(actTimes[k]), sum.Round(100*time.Millisecond))
	}
	r.note += "\ntime per stage, median (total over accounts):"
	for _, st := range stageOrder {
		med, sum := medianSum(perStage[st])
		r.note += fmt.Sprintf(" %s %s (%s)", st, med.Round(10*time.Millisecond), sum.Round(100*time.Millisecond))
	}
	if len(notDone) > 0 {
		r.note += fmt.Sprintf("; NOT DONE: %d, first %s", len(notDone), notDone[0])
		r.lost = -1
	}
	return r, nil
}

// checkRun compares the first n accounts of a run with the source, message
// by message (content, flags, date).
func (l *lab) checkRun(r *result, n int) {
	for i := 0; i < min(n, len(l.addrs)); i++ {
		user := l.addrs[i]
		if r.run != "plan" {
			user = destUser(r.run, i)
		}
		want := l.want[l.addrs[i]]
		got, err := testenv.Read(l.dst.Addr, user+"*mailshift", masterPW)
		if err != nil {
			r.lost += want.Count()
			continue
		}
		miss := testenv.Missing(want, got)
		if strings.HasPrefix(r.name, "mbsync") {
			// mbsync writes its own X-TUID header into every message.
			if norm, err := testenv.ReadNormalized(l.dst.Addr, user+"*mailshift", masterPW, stripTUID); err == nil {
				miss = testenv.Missing(want, norm)
			}
		}
		r.lost += len(miss) + len(testenv.Duplicates(want, got))
		r.checked++
	}
}

func stripTUID(b []byte) []byte {
	i := bytes.Index(b, []byte("X-TUID: "))
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 || (end >= 0 && i > end) {
		return b
	}
	j := bytes.Index(b[i:], []byte("\r\n"))
	if j < 0 {
		return b
	}
	return append(append([]byte{}, b[:i]...), b[i+j+2:]...)
}

func print(w io.Writer, o options, rows []result) {
	best := map[string]float64{}
	for _, r := range rows {
		k := strings.SplitN(r.name, " ", 2)[0]
		best[k] = max(best[k], float64(r.messages)/r.seconds)
	}
	base := best["mbsync,"]
	fmt.Fprintf(w, "\n%d accounts x %d messages, J = %d, %d connection pairs per copy (mailshift-copy, worker)\n", o.accounts, o.messages, o.jobs, o.conns)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tseconds\tmsg/s\taccounts/min\tvs mbsync\tCPU-s tool/worker\tTemporal\tsrc Dovecot\tdst Dovecot\tPostgreSQL\tCPU-s total\tCPU-ms/account\tpeak conns src\tdst\tchecked\tlost/dup\t")
	for _, r := range rows {
		rate := float64(r.messages) / r.seconds
		total := r.tool + r.temporal + r.src + r.dst + r.pg
		fmt.Fprintf(tw, "%s\t%.1f\t%.0f\t%.1f\t%.2fx\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t%d\t%d\t%d\t%d\t\n", r.name, r.seconds, rate,
			float64(r.accounts)/(r.seconds/60), rate/base, r.tool, r.temporal, r.src, r.dst, r.pg, total, total*1000/float64(r.accounts),
			r.peakSrc, r.peakDt, r.checked, r.lost)
	}
	tw.Flush()
	for _, r := range rows {
		if strings.HasPrefix(r.note, "plan:") {
			fmt.Fprintln(w, r.note)
		}
	}
	fmt.Fprintln(w, "vs mbsync: against the faster of the mbsync runs. CPU seconds while the run lasted: tool = the mbsync or mailshift-copy")
	fmt.Fprintln(w, "processes (their rusage), or the worker process; Temporal = the dev server process; Dovecot = the master, its live")
	fmt.Fprintln(w, "children (auth, imap-login, imap) and the children it reaped (cutime+cstime); PostgreSQL = the postmaster and its")
	fmt.Fprintln(w, "backends (Dovecot's passdb/userdb lookups, the worker's directory). Peak conns: established sockets on the server's")
	fmt.Fprintln(w, "port, polled every 20 ms from /proc/net/tcp. checked/lost: accounts compared with the source; messages missing,")
	fmt.Fprintln(w, "altered or duplicated among them (mbsync's own X-TUID header removed first).")
}

// usage is what a budget's leases held: how many, for how long in all,
// and connection-seconds.
type usage struct {
	leases      int
	held        time.Duration
	connSeconds float64
}

// leaseBook reads budget histories: each lease from its grant (the
// signal sent to the holder) to its release (the signal received).
type leaseBook struct {
	conns    map[string]int
	granted  map[string]time.Time
	released map[string]time.Time
}

func newLeaseBook() *leaseBook {
	return &leaseBook{conns: map[string]int{}, granted: map[string]time.Time{}, released: map[string]time.Time{}}
}

func (b *leaseBook) read(ctx context.Context, c client.Client, id, run string) {
	dc := converter.GetDefaultDataConverter()
	eachEvent(ctx, c, id, run, func(e *historypb.HistoryEvent) {
		at := e.GetEventTime().AsTime()
		if s := e.GetWorkflowExecutionSignaledEventAttributes(); s != nil {
			switch s.GetSignalName() {
			case workflows.SignalAcquire:
				var r workflows.LeaseRequest
				if dc.FromPayloads(s.GetInput(), &r) == nil {
					b.conns[r.Lease] = r.Connections
				}
			case workflows.SignalRelease:
				var lease string
				if dc.FromPayloads(s.GetInput(), &lease) == nil {
					b.released[lease] = at
				}
			}
		}
		if s := e.GetSignalExternalWorkflowExecutionInitiatedEventAttributes(); s != nil && s.GetSignalName() == workflows.SignalGranted {
			var g workflows.LeaseGrant
			if dc.FromPayloads(s.GetInput(), &g) == nil {
				b.granted[g.Lease] = at
			}
		}
	})
}

// destAfterSource is, for each lease round that asked both servers (the
// destination's lease numbered right after the source's), how long after
// the source's grant the destination's came, sorted.
func destAfterSource(src, dst *leaseBook) []time.Duration {
	var out []time.Duration
	for lease, g := range src.granted {
		i := strings.LastIndexByte(lease, '#')
		n, err := strconv.Atoi(lease[i+1:])
		if i < 0 || err != nil {
			continue
		}
		if dg, ok := dst.granted[lease[:i+1]+strconv.Itoa(n+1)]; ok {
			out = append(out, max(dg.Sub(g), 0))
		}
	}
	slices.Sort(out)
	return out
}

func (b *leaseBook) usage() usage {
	var u usage
	for lease, g := range b.granted {
		r, ok := b.released[lease]
		if !ok || r.Before(g) {
			continue
		}
		u.leases++
		u.held += r.Sub(g)
		u.connSeconds += float64(b.conns[lease]) * r.Sub(g).Seconds()
	}
	return u
}

// printTimeline prints one migration's history: each event's time since
// the start, its type and what it is about (an activity's type, a
// signal's name, a marker's).
func printTimeline(ctx context.Context, c client.Client, id string) {
	fmt.Printf("timeline of %s:\n", id)
	var t0 time.Time
	eachEvent(ctx, c, id, "", func(e *historypb.HistoryEvent) {
		at := e.GetEventTime().AsTime()
		if t0.IsZero() {
			t0 = at
		}
		what := ""
		switch {
		case e.GetActivityTaskScheduledEventAttributes() != nil:
			what = e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case e.GetWorkflowExecutionSignaledEventAttributes() != nil:
			what = e.GetWorkflowExecutionSignaledEventAttributes().GetSignalName()
		case e.GetMarkerRecordedEventAttributes() != nil:
			var name string
			if p := e.GetMarkerRecordedEventAttributes().GetDetails()["type"]; p != nil {
				_ = converter.GetDefaultDataConverter().FromPayloads(p, &name)
			}
			what = e.GetMarkerRecordedEventAttributes().GetMarkerName() + " " + name
		}
		fmt.Printf("  %8.3fs %-45s %s\n", at.Sub(t0).Seconds(), eventType(e), what)
	})
}

// eachEvent calls f with each event of a run's history (run "": the
// latest), until the end or the first error reading it.
func eachEvent(ctx context.Context, c client.Client, id, run string, f func(*historypb.HistoryEvent)) {
	it := c.GetWorkflowHistory(ctx, id, run, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return
		}
		f(e)
	}
}

// eventType is an event's type without its EVENT_TYPE_ prefix.
func eventType(e *historypb.HistoryEvent) string {
	return strings.TrimPrefix(e.GetEventType().String(), "EVENT_TYPE_")
}

// medianSum sorts d and returns its median and its sum (d not empty).
func medianSum(d []time.Duration) (median, sum time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	for _, x := range d {
		sum += x
	}
	return d[len(d)/2], sum
}

// scrapeLatencies reads the worker's Prometheus metrics and returns, for
// each local activity type and for workflow tasks (time to start, time to
// run), the mean and the count: what the steps under a lease cost and how
// long a workflow task waits for the worker.
func scrapeLatencies(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	type acc struct{ sum, count float64 }
	sums := map[string]*acc{}
	var keys []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var name, kind string
		switch {
		case strings.HasPrefix(line, "temporal_local_activity_execution_latency_seconds_"):
			i := strings.Index(line, `activity_type="`)
			if i < 0 {
				continue
			}
			rest := line[i+len(`activity_type="`):]
			name = "LA " + rest[:strings.IndexByte(rest, '"')]
			kind = strings.TrimPrefix(line[:strings.IndexAny(line, "{ ")], "temporal_local_activity_execution_latency_seconds_")
		case strings.HasPrefix(line, "temporal_workflow_task_schedule_to_start_latency_seconds_"):
			name = "workflow task, scheduled to started"
			kind = strings.TrimPrefix(line[:strings.IndexAny(line, "{ ")], "temporal_workflow_task_schedule_to_start_latency_seconds_")
		case strings.HasPrefix(line, "temporal_workflow_task_execution_latency_seconds_"):
			name = "workflow task, run"
			kind = strings.TrimPrefix(line[:strings.IndexAny(line, "{ ")], "temporal_workflow_task_execution_latency_seconds_")
		default:
			continue
		}
		if kind != "sum" && kind != "count" {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		a := sums[name]
		if a == nil {
			a = &acc{}
			sums[name] = a
			keys = append(keys, name)
		}
		if kind == "sum" {
			a.sum += v
		} else {
			a.count += v
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if a := sums[k]; a.count > 0 {
			fmt.Fprintf(&b, " %s %.0fms (%.0f);", k, 1000*a.sum/a.count, a.count)
		}
	}
	return strings.TrimSuffix(b.String(), ";")
}
