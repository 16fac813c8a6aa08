// Package reliability attacks the real system — a Temporal dev server,
// worker processes, two Dovecots reading the directory on PostgreSQL, BIND9
// — while mail keeps arriving, then checks mailshift's invariants for every
// account: each message is on the destination exactly once with its flags
// and date, the source is migrated, one slot is claimed, the route points
// to the destination, and no workflow failed.
package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/cluster"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/mailgen"
	"github.com/mailshift/mailshift/internal/procstat"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

const (
	masterPW = "reliability-master"
	ownerPW  = "reliability-owner"
	domain   = "example.com"
)

// Options shape a run.
type Options struct {
	// Bin holds the built worker binary.
	Bin string
	// Temporal is the Temporal CLI.
	Temporal string
	Accounts int
	Messages int
	// KillEvery kills one worker with SIGKILL at random intervals up to
	// this long (0: no kills).
	KillEvery time.Duration
	// Deliver keeps mail arriving during the run.
	Deliver bool
	Seed    uint64
	Timeout time.Duration
	Log     io.Writer
	// RestartTemporal stops the Temporal dev server once mid-plan and
	// starts it again on the same port and history database.
	RestartTemporal bool
	// RestartPostgres stops the directory's PostgreSQL abruptly mid-plan
	// and starts it again.
	RestartPostgres bool
	// IMAPFaults puts a fault proxy in front of each IMAP server as the
	// workers see it: connections refused, cut mid-transfer, stalled.
	IMAPFaults bool
	// DNSOutage stops the zone's primary nameserver for this long, from
	// the moment the first account's routing switches (so accounts are in
	// switch-routing and in the propagation wait while it is down).
	DNSOutage time.Duration
	// Cluster runs the plan on a production-shaped Temporal cluster
	// (internal/cluster) instead of the dev server; ClusterOptions says
	// which faults hit it.
	Cluster        bool
	ClusterOptions ClusterOptions
	// Redeploy replaces the workers by a build with changed workflow
	// code while migrations wait in every long stage.
	Redeploy *RedeployOptions
	// Budget is every IMAP server's connection budget (0: the worker's
	// default). A relay in front of each server then counts the
	// connections the server holds open at once; above the budget is a
	// violation.
	Budget int
	// KillHolders kills (SIGKILL) a worker that holds connections to a
	// server, so under leases: up to 4 times, 10 s plus up to this long
	// apart (0: never).
	KillHolders time.Duration
	// UnavailableFor makes the source answer every new connection with NO
	// [UNAVAILABLE] for this long, from a moment its first copy runs.
	UnavailableFor time.Duration
	// Realistic seeds mailboxes with folders, a heavy-tailed size
	// distribution around 30 KiB and one 5 MiB message each, instead of
	// small messages.
	Realistic bool
	// OwnerChanges holds the migrations before the lock while each owner
	// changes the mailbox, then kills the worker of each final delta
	// (ownerchanges.go).
	OwnerChanges bool
}

// Report is the outcome of a run.
type Report struct {
	Accounts     int
	Done         int
	Kills        int
	Delivered    int
	Violations   []string
	Restarts     int
	Cuts, Stalls int
	Refused      int
	DNSDown      time.Duration
	// Budget is the servers' connection budget; PeakSource and PeakDest
	// the most connections each server held open at once (counted at the
	// relay in front of it); Busy the connections answered NO
	// [UNAVAILABLE]; HolderKills the workers killed while connected.
	Budget               int
	PeakSource, PeakDest int
	Busy, HolderKills    int
	Messages             int
	MB                   float64
	Seconds              float64
	P50, P95             time.Duration
	EventsMax            int
	EventsMean           float64
	// ActionsMean estimates Temporal actions per account from the history
	// (workflow start, each activity attempt, timers, updates, signals,
	// search-attribute upserts, markers, continue-as-new); heartbeats are
	// not in the history and not counted.
	ActionsMean   float64
	WorkerRSSMB   float64
	AccountsPerMn float64
	// FinalDeltaKills counts migrations whose final delta a kill
	// interrupted (it ran again); Replayed sums the owner's changes the
	// final deltas carried over (OwnerChanges).
	FinalDeltaKills int
	Replayed        mailcopy.ReplayCounts
	// Redeploys counts worker redeploys; RedeployStages says where the
	// migrations were when it happened.
	Redeploys      int
	RedeployStages string
}

type platform struct {
	dir          *directory.Store
	dsn          string
	pg           *testenv.PG
	src, dst     *testenv.Dovecot
	bind         *testenv.BIND
	temporal     *testsuite.DevServer
	temporalOpts testsuite.DevServerOptions
	c            client.Client
	work         string
	stops        []func()
	proxies      []*faultProxy
	cluster      *cluster.Cluster
	// lockKills are the migrations whose workers were all killed between
	// the lock and the switch (owner-changes, local final deltas).
	lockKills map[string]bool
}

func (p *platform) close() {
	for i := len(p.stops) - 1; i >= 0; i-- {
		p.stops[i]()
	}
}

func (p *platform) logf(o Options, format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

func start(ctx context.Context, o Options) (*platform, error) {
	p := &platform{lockKills: map[string]bool{}}
	ok := false
	defer func() {
		if !ok {
			p.close()
		}
	}()
	work, err := os.MkdirTemp("", "mailshift-reliability-")
	if err != nil {
		return nil, err
	}
	p.work = work
	p.stops = append(p.stops, func() { os.RemoveAll(work) })
	pg, err := testenv.LaunchPostgres()
	if err != nil {
		return nil, err
	}
	p.stops = append(p.stops, pg.Stop)
	p.pg = pg
	dsn := pg.DSN
	p.dsn = dsn
	if p.dir, err = directory.Open(ctx, dsn); err != nil {
		return nil, err
	}
	p.stops = append(p.stops, func() { p.dir.Close() })
	b, stopBIND, err := testenv.LaunchBIND(domain)
	if err != nil {
		return nil, err
	}
	p.bind = b
	p.stops = append(p.stops, stopBIND)
	mh := directory.HashPassword(masterPW)
	srcPort, dstPort := testenv.MustPickPort(), testenv.MustPickPort()
	// The workers reach the servers at the addresses of the directory:
	// the servers themselves, or fault proxies in front of them.
	srcIMAP, dstIMAP := "127.0.0.1:"+strconv.Itoa(srcPort), "127.0.0.1:"+strconv.Itoa(dstPort)
	if o.IMAPFaults || o.Budget > 0 || o.UnavailableFor > 0 || o.KillHolders > 0 {
		for i, target := range []*string{&srcIMAP, &dstIMAP} {
			fp, err := newFaultProxy("127.0.0.1:"+strconv.Itoa(testenv.MustPickPort()), *target, o.Seed+uint64(i))
			if err != nil {
				return nil, err
			}
			if !o.IMAPFaults {
				// A counting relay only.
				fp.mu.Lock()
				fp.Refuse, fp.Cut, fp.Stall = 0, 0, 0
				fp.mu.Unlock()
			}
			p.proxies = append(p.proxies, fp)
			p.stops = append(p.stops, fp.Close)
			*target = fp.Addr()
		}
	}
	for _, sv := range []directory.Service{
		{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: srcIMAP, IMAPSecurity: "plain"},
		{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: dstIMAP, IMAPSecurity: "plain",
			MX: "10 mx1.pro.example.net", SPFInclude: "_spf.pro.example.net"},
	} {
		if err := p.dir.AddService(ctx, sv); err != nil {
			return nil, err
		}
	}
	src, stopSrc, err := testenv.LaunchDovecot(testenv.DovecotOptions{Name: "rel-src", Directory: dsn, Services: []string{"mxplan-1"},
		MasterUser: "mailshift", MasterHash: mh, Port: srcPort, MaxConns: 50})
	if err != nil {
		return nil, err
	}
	p.src = src
	p.stops = append(p.stops, stopSrc)
	dst, stopDst, err := testenv.LaunchDovecot(testenv.DovecotOptions{Name: "rel-dst", Directory: dsn, Services: []string{"emailpro-1"},
		MasterUser: "mailshift", MasterHash: mh, Port: dstPort, MaxConns: 50})
	if err != nil {
		return nil, err
	}
	p.dst = dst
	p.stops = append(p.stops, stopDst)
	if o.Cluster {
		if err := p.startCluster(ctx, o); err != nil {
			return nil, err
		}
		ok = true
		return p, nil
	}
	p.temporalOpts = testenv.DevServerOptions(o.Temporal, "127.0.0.1:"+strconv.Itoa(testenv.MustPickPort()), filepath.Join(work, "temporal.db"))
	p.temporal, err = testsuite.StartDevServer(ctx, p.temporalOpts)
	if err != nil {
		return nil, err
	}
	p.stops = append(p.stops, func() { _ = p.temporal.Stop() })
	p.c = p.temporal.Client()
	ok = true
	return p, nil
}

// worker is one worker process; it can be killed and restarted.
type worker struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	args []string
	hwm  float64
}

func (w *worker) start() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	cmd := exec.Command(w.args[0], w.args[1:]...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	w.cmd = cmd
	return nil
}

func (w *worker) pid() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd == nil || w.cmd.Process == nil {
		return 0
	}
	return w.cmd.Process.Pid
}

func (w *worker) sample() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd != nil && w.cmd.Process != nil {
		w.hwm = max(w.hwm, procstat.PeakRSSMB(w.cmd.Process.Pid))
	}
}

func (w *worker) kill() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd != nil && w.cmd.Process != nil {
		w.hwm = max(w.hwm, procstat.PeakRSSMB(w.cmd.Process.Pid))
		_ = w.cmd.Process.Signal(syscall.SIGKILL)
		_ = w.cmd.Wait()
		w.cmd = nil
	}
}

// Run sets up the platform, migrates o.Accounts accounts as one plan under
// the configured faults, and checks every invariant.
func Run(ctx context.Context, o Options) (*Report, error) {
	p, err := start(ctx, o)
	if err != nil {
		return nil, err
	}
	defer p.close()

	// Accounts, their mail, and a slot each.
	addrs := make([]string, o.Accounts)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("u%04d@%s", i, domain)
		if o.Redeploy != nil && redeployGroup(i) == "" {
			addrs[i] = fmt.Sprintf("u%04d@d%04d.example.org", i, i)
		}
		if err := p.dir.AddAccount(ctx, directory.Account{Address: addrs[i], ServiceID: "mxplan-1"}, directory.HashPassword(ownerPW)); err != nil {
			return nil, err
		}
		if o.Redeploy != nil && redeployGroup(i) == "slot" {
			continue // its slot comes after the redeploy
		}
		if err := p.dir.AddSlot(ctx, "emailpro-1", fmt.Sprintf("s%04d@configureme.me", i), 1<<30); err != nil {
			return nil, err
		}
	}
	p.logf(o, "seeding %d accounts x %d messages", o.Accounts, o.Messages)
	if err := seedAll(p.src.Addr, addrs, o); err != nil {
		return nil, err
	}
	before := map[string]testenv.Mailbox{}
	for _, a := range addrs {
		mb, err := testenv.Read(p.src.Addr, a, ownerPW)
		if err != nil {
			return nil, err
		}
		before[a] = mb
	}
	rep := &Report{Accounts: o.Accounts}
	for _, mb := range before {
		for _, msgs := range mb {
			rep.Messages += len(msgs)
			for _, m := range msgs {
				rep.MB += float64(m.Size) / (1 << 20)
			}
		}
	}

	// Two worker processes.
	pwFile := filepath.Join(p.work, "master.pw")
	keyFile := filepath.Join(p.work, "tsig.key")
	_ = os.WriteFile(pwFile, []byte(masterPW), 0o600)
	_ = os.WriteFile(keyFile, []byte(p.bind.Secret), 0o600)
	cfg := map[string]any{"temporalAddress": p.frontend(), "directory": p.dsn, "masterUser": "mailshift",
		"masterPasswordFile": pwFile, "imapPlain": true, "connections": 2, "dnsResolver": p.bind.PrimaryAddr(),
		// Both nameservers answer from the primary here: the lab secondary
		// only transfers when told to (the DNS tests use that).
		"dnsOverride":  map[string]string{"ns1." + domain + ".": p.bind.PrimaryAddr(), "ns2." + domain + ".": p.bind.PrimaryAddr()},
		"logLevel":     "warn",
		"managedZones": []map[string]string{{"zone": domain, "primary": p.bind.PrimaryAddr(), "keyName": p.bind.KeyName, "keyFile": keyFile}}}
	if p.cluster != nil {
		cfg["temporalTLS"] = p.cluster.ClientTLS()
	}
	if o.Redeploy != nil {
		// A tight budget admits two copies at a time: accounts are still
		// copying while others already wait.
		cfg["defaultServerBudget"] = 4
	}
	if o.Budget > 0 {
		cfg["serverBudgets"] = map[string]int{"mxplan-1": o.Budget, "emailpro-1": o.Budget}
	}
	b, _ := json.Marshal(cfg)
	cf := filepath.Join(p.work, "worker.json")
	if err := os.WriteFile(cf, b, 0o600); err != nil {
		return nil, err
	}
	workers := []*worker{{args: []string{filepath.Join(o.Bin, "worker"), "--config", cf}}, {args: []string{filepath.Join(o.Bin, "worker"), "--config", cf}}}
	for _, w := range workers {
		if err := w.start(); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, w := range workers {
			w.kill()
		}
	}()

	runCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var bg sync.WaitGroup
	stop := make(chan struct{})

	// Mail arrives all along: on the source before the route switches, on
	// the destination after, as the MTA's transport map decides.
	delivered := map[string][][]byte{}
	var dmu sync.Mutex
	if o.Deliver {
		bg.Add(1)
		go func() {
			defer bg.Done()
			rng := rand.New(rand.NewPCG(o.Seed, 1))
			for i := 0; ; i++ {
				if !wait(stop, 20*time.Millisecond) {
					return
				}
				a := addrs[rng.IntN(len(addrs))]
				msg := []byte(fmt.Sprintf("From: x@partner.example\r\nTo: %s\r\nSubject: live %d\r\nMessage-ID: <live.%d@partner.example>\r\n\r\nbody %d\r\n", a, i, i, i))
				target := p.src.Addr
				if r, err := p.dir.Route(ctx, a); err == nil && r.ServiceID == "emailpro-1" {
					target = p.dst.Addr
				}
				if err := testenv.Deliver(target, a+"*mailshift", masterPW, msg); err != nil {
					continue // the delivery agent retries later, like an MTA queue
				}
				dmu.Lock()
				delivered[a] = append(delivered[a], msg)
				dmu.Unlock()
			}
		}()
	}
	// Kill -9 a worker at random moments, and start it again.
	if o.KillEvery > 0 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			rng := rand.New(rand.NewPCG(o.Seed, 2))
			for {
				pause := time.Duration(rng.Int64N(int64(o.KillEvery))) + 200*time.Millisecond
				if !wait(stop, pause) {
					return
				}
				w := workers[rng.IntN(len(workers))]
				w.kill()
				rep.Kills++
				time.Sleep(300 * time.Millisecond)
				_ = w.start()
			}
		}()
	}
	// Kill -9 a worker while it holds connections (and so leases), and
	// start it again.
	var holderKills atomic.Int64
	if o.KillHolders > 0 && len(p.proxies) == 2 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			ports := map[int]bool{}
			for _, fp := range p.proxies {
				_, port, _ := strings.Cut(fp.Addr(), ":")
				n, _ := strconv.Atoi(port)
				ports[n] = true
			}
			rng := rand.New(rand.NewPCG(o.Seed, 4))
			// A killed copy resumes after its heartbeat times out (30 s),
			// under the same leases, and each kill costs the activity one
			// of its attempts: a few kills, far apart, let the plan move.
			// The first kill comes early (2-5 s): a plan of small accounts
			// can be over before a later one.
			pause := 2*time.Second + time.Duration(rng.Int64N(int64(3*time.Second)))
			for holderKills.Load() < maxHolderKills {
				if !wait(stop, pause) {
					return
				}
				pause = time.Duration(rng.Int64N(int64(o.KillHolders))) + 10*time.Second
				// Until a worker holds server connections: looked for every
				// quarter second, not a whole pause later.
				for killed := false; !killed; {
					for _, i := range rng.Perm(len(workers)) {
						w := workers[i]
						if pid := w.pid(); pid > 0 && connectedTo(pid, ports) {
							w.kill()
							holderKills.Add(1)
							p.logf(o, "killed worker %d while it held server connections", pid)
							time.Sleep(300 * time.Millisecond)
							_ = w.start()
							killed = true
							break
						}
					}
					if !killed && !wait(stop, 250*time.Millisecond) {
						return
					}
				}
			}
		}()
	}
	// The source answers NO [UNAVAILABLE] for a while, from a moment a
	// copy holds connections to it.
	if o.UnavailableFor > 0 && len(p.proxies) == 2 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			src := p.proxies[0]
			for src.open.Load() == 0 {
				if !wait(stop, 50*time.Millisecond) {
					return
				}
			}
			if !wait(stop, 2*time.Second) {
				return
			}
			src.unavailable.Store(true)
			p.logf(o, "source answers NO [UNAVAILABLE] for %s", o.UnavailableFor)
			wait(stop, o.UnavailableFor)
			src.unavailable.Store(false)
			p.logf(o, "source available again")
		}()
	}
	// Restart a server once, mid-plan: Temporal on its history database,
	// or the directory's PostgreSQL.
	var restarts atomic.Int64
	restartOnce := func(name string, after time.Duration, restart func() error) {
		bg.Add(1)
		go func() {
			defer bg.Done()
			if !wait(stop, after) {
				return
			}
			if err := restart(); err != nil {
				p.logf(o, "restart %s: %v", name, err)
				return
			}
			restarts.Add(1)
			p.logf(o, "%s restarted", name)
		}()
	}
	if o.RestartTemporal {
		restartOnce("Temporal", 4*time.Second, func() error {
			if p.cluster != nil {
				return p.restartWholeCluster()
			}
			_ = p.temporal.Stop()
			time.Sleep(time.Second)
			srv, err := testsuite.StartDevServer(ctx, p.temporalOpts)
			if err == nil {
				p.temporal = srv
			}
			return err
		})
	}
	if o.RestartPostgres {
		restartOnce("PostgreSQL", 3*time.Second, p.pg.Restart)
	}
	if p.cluster != nil {
		p.clusterFaults(o, stop, &bg, &restarts)
	}
	if o.Redeploy != nil {
		p.redeploy(ctx, o, workers, addrs, stop, &bg, rep)
	}
	// Take the DNS primary down once the first route has switched.
	if o.DNSOutage > 0 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			for {
				if !wait(stop, 100*time.Millisecond) {
					return
				}
				if p.anyRouted(ctx) {
					break
				}
			}
			p.bind.StopPrimary()
			t := time.Now()
			p.logf(o, "DNS primary down")
			wait(stop, o.DNSOutage)
			if err := p.bind.StartPrimary(); err != nil {
				p.logf(o, "DNS primary did not come back: %v", err)
				return
			}
			rep.DNSDown = time.Since(t).Round(time.Second)
			p.logf(o, "DNS primary back after %s", rep.DNSDown)
		}()
	}
	// Sample worker memory.
	bg.Add(1)
	go func() {
		defer bg.Done()
		for {
			if !wait(stop, 500*time.Millisecond) {
				return
			}
			for _, w := range workers {
				w.sample()
			}
		}
	}()

	t0 := time.Now()
	var plan strings.Builder
	plan.WriteString("address,to,dns_interval,no_notice\n")
	for _, a := range addrs {
		plan.WriteString(a + ",emailpro-1,1s,true\n")
	}
	planFile := filepath.Join(p.work, "plan.csv")
	_ = os.WriteFile(planFile, []byte(plan.String()), 0o644)
	env := &cli.Env{Out: io.Discard, Client: p.c, DirectoryDSN: p.dsn}
	start := func() error {
		switch {
		case o.Redeploy != nil:
			return p.startRedeployPlan(runCtx, addrs)
		case o.OwnerChanges:
			if err := p.heldStart(runCtx, addrs); err != nil {
				return err
			}
			return p.ownerPhase(runCtx, o, addrs, workers, before, rep)
		}
		return env.Plan(runCtx, cli.PlanArgs{File: planFile, PlanID: "reliability", AutoConfirm: true, Rate: 200})
	}
	if err := start(); err != nil {
		close(stop)
		bg.Wait()
		return nil, err
	}
	p.logf(o, "plan of %d accounts started", len(addrs))
	var durations []time.Duration
	for _, a := range addrs {
		var r workflows.Result
		err := p.c.GetWorkflow(runCtx, workflows.WorkflowID(a), "").Get(runCtx, &r)
		if err != nil {
			rep.Violations = append(rep.Violations, fmt.Sprintf("%s: workflow did not finish: %v", a, err))
			continue
		}
		if r.Outcome != workflows.StageDone {
			rep.Violations = append(rep.Violations, fmt.Sprintf("%s: outcome %s", a, r.Outcome))
			continue
		}
		rep.Done++
		durations = append(durations, r.Finished.Sub(r.Started))
	}
	rep.Seconds = time.Since(t0).Seconds()
	// Let deliveries that raced with the end settle, then stop the faults.
	close(stop)
	bg.Wait()
	rep.Restarts = int(restarts.Load())
	rep.HolderKills = int(holderKills.Load())
	rep.Kills += rep.HolderKills
	for _, fp := range p.proxies {
		rep.Cuts += int(fp.cuts.Load())
		rep.Stalls += int(fp.stalls.Load())
		rep.Refused += int(fp.refused.Load())
		rep.Busy += int(fp.busy.Load())
	}
	if len(p.proxies) == 2 {
		rep.PeakSource, rep.PeakDest = int(p.proxies[0].peak.Load()), int(p.proxies[1].peak.Load())
	}
	if rep.Budget = o.Budget; o.Budget > 0 {
		for _, pk := range []struct {
			name string
			n    int
		}{{"source", rep.PeakSource}, {"destination", rep.PeakDest}} {
			if pk.n > o.Budget {
				rep.Violations = append(rep.Violations, fmt.Sprintf("the %s held %d connections at once; budget %d", pk.name, pk.n, o.Budget))
			}
			if pk.n == 0 {
				rep.Violations = append(rep.Violations, fmt.Sprintf("the relay before the %s counted no connection: the count is broken", pk.name))
			}
		}
	}
	for _, w := range workers {
		rep.WorkerRSSMB = max(rep.WorkerRSSMB, w.hwm)
	}
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	if len(durations) > 0 {
		rep.P50 = durations[len(durations)/2]
		rep.P95 = durations[min(len(durations)-1, len(durations)*95/100)]
	}
	rep.AccountsPerMn = float64(rep.Done) / (rep.Seconds / 60)

	// A final delta for mail delivered to the source after the workflows'
	// last pass is not mailshift's promise: the route had switched by then,
	// so deliveries after it went to the destination.
	if o.OwnerChanges {
		var v []string
		v, delivered = p.ownerChecks(ctx, addrs, before, delivered, rep)
		rep.Violations = append(rep.Violations, v...)
	}
	rep.Violations = append(rep.Violations, p.checkInvariants(ctx, addrs, before, delivered, rep)...)
	if o.Redeploy != nil {
		rep.Violations = append(rep.Violations, p.checkRedeploy(ctx, addrs, o.Redeploy)...)
	}
	return rep, nil
}

// maxHolderKills is how many lease holders a run kills at most.
const maxHolderKills = 4

// wait sleeps d and reports false, at once, when stop is closed.
func wait(stop <-chan struct{}, d time.Duration) bool {
	select {
	case <-stop:
		return false
	case <-time.After(d):
		return true
	}
}

// anyRouted tells whether some account's mail already goes to the
// destination.
func (p *platform) anyRouted(ctx context.Context) bool {
	var n int
	err := p.dir.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM routes WHERE service_id = 'emailpro-1'").Scan(&n)
	return err == nil && n > 0
}

func (p *platform) checkInvariants(ctx context.Context, addrs []string, before map[string]testenv.Mailbox, delivered map[string][][]byte, rep *Report) []string {
	var v []string
	events, actionsAll := 0, 0
	for i, a := range addrs {
		rep.Delivered += len(delivered[a])
		after, err := testenv.Read(p.dst.Addr, a, ownerPW)
		if err != nil {
			v = append(v, fmt.Sprintf("%s: cannot read the destination: %v", a, err))
			continue
		}
		// Every message of the mailbox, with its flags and date.
		for _, miss := range testenv.Missing(before[a], after) {
			v = append(v, a+": "+miss)
		}
		// Every message delivered during the run, once.
		all := testenv.Mailbox{}
		for f, msgs := range before[a] {
			all[f] = append(all[f], msgs...)
		}
		inbox := map[string]int{}
		for _, m := range after["INBOX"] {
			inbox[m.Hash]++
		}
		for _, m := range delivered[a] {
			h := testenv.HashOf(m)
			all["INBOX"] = append(all["INBOX"], testenv.Msg{Hash: h, Size: len(m)})
			if inbox[h] == 0 {
				v = append(v, fmt.Sprintf("%s: a message delivered during the run is missing: %q", a, strings.SplitN(string(m), "\r\n", 4)[2]))
			}
		}
		for _, d := range testenv.Duplicates(all, after) {
			v = append(v, a+": "+d)
		}
		for _, x := range testenv.Extra(all, after) {
			v = append(v, a+": "+x)
		}
		acct, err := p.dir.SourceAccount(ctx, a)
		if err != nil || acct.State != directory.StateMigrated {
			v = append(v, fmt.Sprintf("%s: source state %q, want migrated", a, acct.State))
		}
		route, err := p.dir.Route(ctx, a)
		if err != nil || route.ServiceID != "emailpro-1" {
			v = append(v, fmt.Sprintf("%s: route %+v, want emailpro-1", a, route))
		}
		var claimed int
		if err := p.dir.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM slots WHERE claimed_by = $1", workflows.WorkflowID(a)).Scan(&claimed); err != nil || claimed != 1 {
			v = append(v, fmt.Sprintf("%s: %d slots claimed, want 1", a, claimed))
		}
		if i < 50 { // history size on a sample
			n, acts := 0, 0
			iter := p.c.GetWorkflowHistory(ctx, workflows.WorkflowID(a), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for iter.HasNext() {
				e, err := iter.Next()
				if err != nil {
					break
				}
				n++
				acts += actions(e)
			}
			events += n
			actionsAll += acts
			rep.EventsMax = max(rep.EventsMax, n)
			rep.EventsMean = float64(events) / float64(i+1)
			rep.ActionsMean = float64(actionsAll) / float64(i+1)
		}
	}
	return v
}

// actions is how many Temporal actions a history event stands for.
func actions(e *historypb.HistoryEvent) int {
	switch e.EventType {
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, enums.EVENT_TYPE_TIMER_STARTED, enums.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
		enums.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, enums.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
		enums.EVENT_TYPE_MARKER_RECORDED, enums.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
		return 1
	case enums.EVENT_TYPE_ACTIVITY_TASK_STARTED:
		// Each attempt is an action; the started event of the last
		// attempt carries the attempt number.
		return int(max(e.GetActivityTaskStartedEventAttributes().GetAttempt(), 1))
	}
	return 0
}

func seedAll(addr string, addrs []string, o Options) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(addrs))
	sem := make(chan struct{}, 8)
	for i, a := range addrs {
		wg.Add(1)
		go func(i int, a string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			spec := mailgen.Spec{Seed: o.Seed + uint64(i), Messages: o.Messages, MeanSize: 4 << 10, NoIDPercent: 3, DupPercent: 3}
			if o.Realistic {
				spec.MeanSize, spec.Huge = 30<<10, 2<<20
			}
			_, _, err := testenv.Seed(addr, a, ownerPW, spec)
			errs <- err
		}(i, a)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Faults says which faults the run injected, and how many.
func (r *Report) Faults() string {
	var f []string
	add := func(n int, what string) {
		if n > 0 {
			f = append(f, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(r.Kills, "kills")
	add(r.FinalDeltaKills, "final deltas interrupted")
	add(r.Restarts, "restarts")
	add(r.Cuts, "cuts")
	add(r.Stalls, "stalls")
	add(r.Refused, "refused")
	add(r.HolderKills, "of them while connected")
	add(r.Busy, "answered NO [UNAVAILABLE]")
	add(r.Redeploys, "redeploys")
	if r.DNSDown > 0 {
		f = append(f, "DNS down "+r.DNSDown.String())
	}
	if len(f) == 0 {
		return "none"
	}
	return strings.Join(f, ", ")
}

// Print writes the report as a table.
func (r *Report) Print(w io.Writer, scenario string) {
	fmt.Fprintf(w, "%-18s %8s %6s %8s %8s %9s %8s %8s %8s %7s %7s %7s %7s %10s %13s  %s\n", "scenario", "accounts", "done", "messages", "MB", "delivered",
		"acc/min", "p50", "p95", "ev max", "ev avg", "actions", "RSS MB", "violations", "peak src/dst", "faults")
	fmt.Fprintf(w, "%-18s %8d %6d %8d %8.1f %9d %8.1f %8s %8s %7d %7.0f %7.0f %7.0f %10d %13s  %s\n", scenario, r.Accounts, r.Done, r.Messages, r.MB, r.Delivered,
		r.AccountsPerMn, r.P50.Round(100*time.Millisecond), r.P95.Round(100*time.Millisecond), r.EventsMax, r.EventsMean, r.ActionsMean, r.WorkerRSSMB, len(r.Violations), r.Peaks(), r.Faults())
	if c := r.Replayed; c.Total() > 0 {
		fmt.Fprintf(w, "  owner's changes replayed: %d expunged, %d flags, %d moved, %d folders\n", c.Expunged, c.Flags, c.Moved, c.Folders)
	}
	if r.RedeployStages != "" {
		fmt.Fprintf(w, "  migrations by stage at the redeploy: %s\n", r.RedeployStages)
	}
	for i, v := range r.Violations {
		if i == 10 {
			fmt.Fprintf(w, "  ... %d more\n", len(r.Violations)-10)
			break
		}
		fmt.Fprintf(w, "  violation: %s\n", v)
	}
}

// Peaks is the peak connections each server held at once, against the
// budget ("-" when no relay counted).
func (r *Report) Peaks() string {
	if r.Budget == 0 && r.PeakSource+r.PeakDest == 0 {
		return "-"
	}
	b := "-"
	if r.Budget > 0 {
		b = strconv.Itoa(r.Budget)
	}
	return fmt.Sprintf("%d/%d of %s", r.PeakSource, r.PeakDest, b)
}
