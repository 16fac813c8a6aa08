// Command mailbench measures the copy on real servers and prints a table:
// two lab Dovecots reading one directory, a generated corpus, then (c)
// mbsync, (a) the engine alone (mailshift-copy) and (b) the copy stage of a
// migration through a Temporal dev server and a worker process, each into
// a fresh destination account, each checked message by message afterwards.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/mailgen"
	"github.com/mailshift/mailshift/internal/procstat"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

const (
	masterPW = "bench-master-password"
	ownerPW  = "bench-owner-password"
	source   = "bench@example.com"
)

type row struct {
	name     string
	seconds  float64
	messages int
	bytes    int64
	rssMB    float64
	lost     int
	dups     int
	note     string
	// verify is the cost of verifying the copy by content (seconds).
	verify float64
	// lockout is the owner's lockout (lock-source to routing switched),
	// with the stages inside it.
	lockout float64
	inside  string
	run     bool // false when -runs left it out
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mailbench:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("messages", 10000, "messages in the corpus")
	mean := flag.Int("mean", 30<<10, "mean message size in bytes")
	huge := flag.Int("huge", 50<<20, "size of the one huge message (0: none)")
	conns := flag.Int("connections", 2, "engine connection pairs")
	bin := flag.String("bin", "bin", "where worker and mailshift-copy are built")
	runs := flag.String("runs", "c,a,b,c", "runs in order: c mbsync, a the engine, b the migration through Temporal (mbsync is run first and last: the faster is the reference)")
	flag.Parse()
	want := map[string]bool{}
	for _, r := range strings.Split(*runs, ",") {
		want[strings.TrimSpace(r)] = true
	}
	ctx := context.Background()
	work, err := os.MkdirTemp("", "mailbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}

	dbPath := filepath.Join(work, "directory.db")
	dir, err := directory.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer dir.Close()
	srcPort, dstPort := testenv.MustPickPort(), testenv.MustPickPort()
	for _, sv := range []directory.Service{
		{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: addr(srcPort), IMAPSecurity: "plain"},
		{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: addr(dstPort), IMAPSecurity: "plain", MX: "10 mx1.pro.mailshift.test"},
	} {
		if err := dir.AddService(ctx, sv); err != nil {
			return err
		}
	}
	hash := directory.HashPassword(ownerPW)
	if err := dir.AddAccount(ctx, directory.Account{Address: source, ServiceID: "mxplan-1"}, hash); err != nil {
		return err
	}
	for _, a := range []string{"run-a@example.com", "run-c@example.com", "run-d@example.com"} {
		if err := dir.AddAccount(ctx, directory.Account{Address: a, ServiceID: "emailpro-1"}, hash); err != nil {
			return err
		}
	}
	if err := dir.AddSlot(ctx, "emailpro-1", "bench@configureme.me", 1<<40); err != nil {
		return err
	}
	mh := directory.HashPassword(masterPW)
	src, stopSrc, err := testenv.LaunchDovecot(testenv.DovecotOptions{Name: "bench-src", Directory: dbPath, Services: []string{"mxplan-1"},
		MasterUser: "mailshift", MasterHash: mh, Port: srcPort})
	if err != nil {
		return err
	}
	defer stopSrc()
	dst, stopDst, err := testenv.LaunchDovecot(testenv.DovecotOptions{Name: "bench-dst", Directory: dbPath, Services: []string{"emailpro-1"},
		MasterUser: "mailshift", MasterHash: mh, Port: dstPort})
	if err != nil {
		return err
	}
	defer stopDst()

	fmt.Printf("seeding %d messages (mean %d KB, one of %d MB) ...\n", *n, *mean>>10, *huge>>20)
	t0 := time.Now()
	count, size, err := testenv.Seed(src.Addr, source, ownerPW, mailgen.Spec{Seed: 2026, Messages: *n, MeanSize: *mean, NoIDPercent: 3, DupPercent: 2, Huge: *huge})
	if err != nil {
		return err
	}
	fmt.Printf("seeded %d messages, %.0f MB in %.1fs\n", count, float64(size)/1e6, time.Since(t0).Seconds())
	wantBox, err := testenv.Read(src.Addr, source, ownerPW)
	if err != nil {
		return err
	}

	rows := make([]row, 4)
	// A child's peak RSS counts the parent's pages at fork time: give the
	// corpus read above back to the OS before each run.
	release := func() { runtime.GC(); debug.FreeOSMemory() }
	release()
	// (c) mbsync
	if want["c"] {
		r, err := runMbsync(work, src.Addr, dst.Addr, "run-c@example.com")
		if err != nil {
			return err
		}
		rows[0] = check(r, dst.Addr, "run-c@example.com", wantBox)
		release()
	}
	// (a) the engine alone
	if want["a"] {
		r, err := runEngine(*bin, src.Addr, dst.Addr, *conns)
		if err != nil {
			return err
		}
		rows[1] = check(r, dst.Addr, "run-a@example.com", wantBox)
		release()
	}
	// (b) the migration through Temporal
	if want["b"] {
		r, err := runWorkflow(ctx, work, *bin, dbPath, *conns)
		if err != nil {
			return err
		}
		rows[2] = check(r, dst.Addr, source, wantBox)
		release()
	}
	// mbsync again, last: the filesystem slows down for minutes after a
	// big delete (an earlier run's cleanup), which would handicap the first
	// run; the faster mbsync run is the reference.
	if want["c"] {
		r, err := runMbsync(work, src.Addr, dst.Addr, "run-d@example.com")
		if err != nil {
			return err
		}
		r.name = "(c) mbsync, again"
		rows[3] = check(r, dst.Addr, "run-d@example.com", wantBox)
	}
	printTable(rows, count, size)
	return nil
}

// printTable prints the runs, each against the faster mbsync run, then
// what the table cannot show: verify's cost beside the copy's, the copy
// stage against the engine alone, and the owner's lockout.
func printTable(rows []row, count int, size int64) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tseconds\tmessages\tmsg/s\tMB/s\tpeak RSS MB\tvs mbsync\tlost or altered\tduplicated\t")
	base := 0.0
	for _, i := range []int{0, 3} {
		if rows[i].run {
			base = max(base, float64(rows[i].messages)/rows[i].seconds)
		}
	}
	for _, r := range rows {
		if !r.run {
			continue
		}
		rate := float64(r.messages) / r.seconds
		vs := "-"
		if base > 0 {
			vs = fmt.Sprintf("%.2fx", rate/base)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%d\t%.0f\t%.1f\t%.0f\t%s\t%d\t%d\t\n", r.name, r.seconds, r.messages, rate,
			float64(r.bytes)/1e6/r.seconds, r.rssMB, vs, r.lost, r.dups)
	}
	tw.Flush()
	fmt.Printf("corpus: %d messages, %.0f MB\n", count, float64(size)/1e6)
	a, b := rows[1], rows[2]
	if a.run {
		fmt.Printf("verify by content after the engine's copy: %.2fs (%.0f%% of the copy's %.2fs)\n", a.verify, 100*a.verify/a.seconds, a.seconds)
	}
	if b.run {
		fmt.Printf("verify stage of the migration: %.2fs (%.0f%% of the copy stage's %.2fs)\n", b.verify, 100*b.verify/b.seconds, b.seconds)
		fmt.Printf("owner's lockout (lock-source to routing switched): %.2fs (stages it overlaps: %s)\n", b.lockout, b.inside)
	}
	if a.run && b.run {
		fmt.Printf("copy stage through Temporal / engine alone: %.2fx\n", b.seconds/a.seconds)
	}
	for _, r := range rows {
		if r.run && r.note != "" {
			fmt.Printf("%s: %s\n", r.name, r.note)
		}
	}
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// check compares the destination with the source by folder path (the
// separators match), message by message.
func check(r row, dstAddr, user string, want testenv.Mailbox) row {
	r.run = true
	r.messages = want.Count()
	for _, msgs := range want {
		for _, m := range msgs {
			r.bytes += int64(m.Size)
		}
	}
	got, err := testenv.Read(dstAddr, user, ownerPW)
	if err != nil {
		r.note = "could not read the destination: " + err.Error()
		r.lost = want.Count()
		return r
	}
	miss := testenv.Missing(want, got)
	r.lost = len(miss)
	r.dups = len(testenv.Duplicates(want, got))
	if len(miss) > 0 {
		r.note = fmt.Sprintf("first difference: %s", miss[0])
		// mbsync writes its own X-TUID header into every message it copies;
		// say so when that is the only difference.
		if norm, err := testenv.ReadNormalized(dstAddr, user, ownerPW, stripTUID); err == nil && len(testenv.Missing(want, norm)) == 0 {
			r.note = fmt.Sprintf("all %d messages altered: an X-TUID header was added to each; nothing else differs", len(miss))
		}
	}
	return r
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

func maxRSS(ps *os.ProcessState) float64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return float64(ru.Maxrss) / 1024
	}
	return 0
}

// mbsyncTLSKeyword is how the installed mbsync names the TLS setting:
// TLSType from isync 1.5 on, SSLType before (Debian 12 ships 1.4.4).
func mbsyncTLSKeyword() string {
	out, err := exec.Command("mbsync", "--version").Output()
	var major, minor int
	if err == nil {
		_, _ = fmt.Sscanf(strings.TrimSpace(string(out)), "isync %d.%d", &major, &minor)
	}
	if major > 1 || (major == 1 && minor >= 5) {
		return "TLSType"
	}
	return "SSLType"
}

func runMbsync(work, srcAddr, dstAddr, dstUser string) (row, error) {
	tlsKey := mbsyncTLSKeyword()
	host := func(a string) (string, string) { h, p, _ := strings.Cut(a, ":"); return h, p }
	sh, sp := host(srcAddr)
	dh, dp := host(dstAddr)
	state := filepath.Join(work, "mbsync-state-"+dstUser) + "/"
	if err := os.MkdirAll(state, 0o755); err != nil {
		return row{}, err
	}
	conf := fmt.Sprintf(`IMAPAccount src
Host %s
Port %s
User %s*mailshift
Pass %s
%s None
AuthMechs LOGIN

IMAPStore src
Account src

IMAPAccount dst
Host %s
Port %s
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
`, sh, sp, source, masterPW, tlsKey, dh, dp, dstUser, ownerPW, tlsKey, state)
	cf := filepath.Join(work, "mbsyncrc-"+dstUser)
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return row{}, err
	}
	cmd := exec.Command("mbsync", "-c", cf, "-a", "-q")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return row{}, fmt.Errorf("mbsync: %v: %s", err, out.String())
	}
	return row{name: "(c) mbsync", seconds: time.Since(t0).Seconds(), rssMB: maxRSS(cmd.ProcessState), messages: -1}, nil
}

func runEngine(bin, srcAddr, dstAddr string, conns int) (row, error) {
	cmd := exec.Command(filepath.Join(bin, "mailshift-copy"), "--from", srcAddr, "--from-user", source, "--from-master", "mailshift",
		"--from-security", "plain", "--to", dstAddr, "--to-user", "run-a@example.com", "--to-security", "plain",
		"--connections", strconv.Itoa(conns), "--verify")
	cmd.Env = append(os.Environ(), "MAILSHIFT_FROM_PASSWORD="+masterPW, "MAILSHIFT_TO_PASSWORD="+ownerPW, "GOMAXPROCS=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return row{}, fmt.Errorf("mailshift-copy: %v: %s", err, out.String())
	}
	el := time.Since(t0).Seconds()
	// The run verifies after copying; its own line says how long that
	// took, which is not the copy's time.
	var verify float64
	if i := strings.Index(out.String(), "verify (by content, "); i >= 0 {
		if _, err := fmt.Sscanf(out.String()[i+len("verify (by content, "):], "%fs", &verify); err != nil {
			return row{}, fmt.Errorf("mailshift-copy: unreadable verify line: %v: %s", err, out.String())
		}
	} else {
		return row{}, fmt.Errorf("mailshift-copy printed no verify line: %s", out.String())
	}
	r := row{name: "(a) engine", seconds: el - verify, verify: verify, rssMB: maxRSS(cmd.ProcessState), messages: -1}
	// The engine reports its own peak, free of the fork-time pages.
	if i := strings.Index(out.String(), "peak RSS "); i >= 0 {
		var mb float64
		if _, err := fmt.Sscan(out.String()[i+len("peak RSS "):], &mb); err == nil {
			r.rssMB = mb
		}
	}
	return r, nil
}

func runWorkflow(ctx context.Context, work, bin, dbPath string, conns int) (row, error) {
	temporal := os.Getenv("MAILSHIFT_TEMPORAL")
	if temporal == "" {
		out, err := exec.Command("deploy/dev/temporal.sh").Output()
		if err != nil {
			return row{}, fmt.Errorf("deploy/dev/temporal.sh: %v", err)
		}
		temporal = strings.TrimSpace(string(out))
	}
	srv, err := testsuite.StartDevServer(ctx, testenv.DevServerOptions(temporal, "127.0.0.1:"+strconv.Itoa(testenv.MustPickPort()), ""))
	if err != nil {
		return row{}, err
	}
	defer srv.Stop()
	pwFile := filepath.Join(work, "master.pw")
	if err := os.WriteFile(pwFile, []byte(masterPW), 0o600); err != nil {
		return row{}, err
	}
	cfg := map[string]interface{}{"temporalAddress": srv.FrontendHostPort(), "directory": dbPath, "masterUser": "mailshift",
		"masterPasswordFile": pwFile, "imapPlain": true, "connections": conns, "dnsResolver": "127.0.0.1:9", "logLevel": "warn"}
	b, _ := json.Marshal(cfg)
	cf := filepath.Join(work, "worker.json")
	if err := os.WriteFile(cf, b, 0o600); err != nil {
		return row{}, err
	}
	w := exec.Command(filepath.Join(bin, "worker"), "--config", cf)
	w.Env = append(os.Environ(), "GOMAXPROCS=1")
	var wlog bytes.Buffer
	w.Stdout, w.Stderr = &wlog, &wlog
	if err := w.Start(); err != nil {
		return row{}, err
	}
	c := srv.Client()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(source), TaskQueue: workflows.TaskQueue},
		workflows.WorkflowName, workflows.Input{Address: source, To: "emailpro-1", AutoConfirm: true, DNSDeadline: "1s", DNSInterval: "1s", NoNotice: true})
	if err != nil {
		_ = w.Process.Kill()
		return row{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	var res workflows.Result
	err = run.Get(wctx, &res)
	hwm := procstat.PeakRSSMB(w.Process.Pid)
	_ = w.Process.Signal(syscall.SIGTERM)
	_ = w.Wait()
	if err != nil {
		return row{}, fmt.Errorf("workflow: %v\n%s", err, wlog.String())
	}
	if res.Outcome != workflows.StageDone {
		return row{}, fmt.Errorf("workflow ended %s, not done\n%s", res.Outcome, wlog.String())
	}
	// Each stage lasts from its event to the next one's.
	took := map[workflows.Stage]float64{}
	for i, s := range res.Stages {
		end := res.Finished
		if i+1 < len(res.Stages) {
			end = res.Stages[i+1].At
		}
		took[s.Stage] += end.Sub(s.At).Seconds()
	}
	if took[workflows.StageCopy] == 0 {
		return row{}, fmt.Errorf("the workflow recorded no copy stage: %+v", res.Stages)
	}
	var inside []string
	for _, s := range []workflows.Stage{workflows.StageLockSource, workflows.StageAssignSlot, workflows.StageCopy, workflows.StageFinalDelta, workflows.StageSwitchRouting} {
		if t, ok := took[s]; ok && lockedDuring(res.Stages, s) {
			inside = append(inside, fmt.Sprintf("%s %.2fs", s, t))
		}
	}
	return row{name: "(b) copy stage via Temporal", seconds: took[workflows.StageCopy], rssMB: hwm, messages: -1,
		verify: took[workflows.StageVerify], lockout: res.LockoutSeconds, inside: strings.Join(inside, ", "),
		note: fmt.Sprintf("workflow %s, whole migration %.1fs, %d copied", res.Outcome, res.Finished.Sub(res.Started).Seconds(), res.Copied)}, nil
}

// lockedDuring reports whether stage s ran while the owner was locked
// out: from lock-source up to the routing switch.
func lockedDuring(stages []workflows.StageEvent, s workflows.Stage) bool {
	locked := false
	for _, e := range stages {
		switch e.Stage {
		case workflows.StageLockSource:
			locked = true
		case workflows.StageSwitchRouting:
			return locked && s == workflows.StageSwitchRouting
		}
		if e.Stage == s && locked {
			return true
		}
	}
	return false
}
