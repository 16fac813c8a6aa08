package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/mailgen"
	"github.com/mailshift/mailshift/internal/testenv"
)

const masterPW = "lab-master-password"

type lab struct {
	dbPath   string
	dir      *directory.Store
	src, dst *testenv.Dovecot
}

// startLab runs two Dovecots that read one directory: the MX Plan server
// ("/" separator) and an E-mail Pro server (Courier-style "INBOX." prefix
// with "." separator, an APPENDLIMIT).
func startLab(t *testing.T) *lab {
	t.Helper()
	return startLabOn(t, filepath.Join(t.TempDir(), "directory.db"))
}

// startLabOn is startLab on a given directory (SQLite path or PostgreSQL URL).
func startLabOn(t *testing.T, dbPath string) *lab {
	t.Helper()
	return startLabWith(t, dbPath, false)
}

// startLabWith is startLabOn, with TLS (implicit and STARTTLS) on both
// servers when tls is set.
func startLabWith(t *testing.T, dbPath string, tls bool) *lab {
	t.Helper()
	return startLabOpts(t, dbPath, tls, false)
}

// startLabOpts is startLabWith, with Pigeonhole (ManageSieve, Sieve on
// delivery) on both servers when sieve is set.
func startLabOpts(t *testing.T, dbPath string, tls, sieve bool) *lab {
	t.Helper()
	ctx := context.Background()
	dir, err := directory.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	srcPort, dstPort := testenv.FreePort(t), testenv.FreePort(t)
	for _, sv := range []directory.Service{
		{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: addrOf(srcPort), IMAPSecurity: "plain"},
		{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: addrOf(dstPort), IMAPSecurity: "plain", MaxMessageBytes: 1 << 20},
	} {
		if err := dir.AddService(ctx, sv); err != nil {
			t.Fatal(err)
		}
	}
	if err := dir.AddAccount(ctx, directory.Account{Address: "alice@example.com", ServiceID: "mxplan-1", Locale: "fr"}, directory.HashPassword("alice-pw")); err != nil {
		t.Fatal(err)
	}
	if err := dir.AddSlot(ctx, "emailpro-1", "ab12@configureme.me", 5<<30); err != nil {
		t.Fatal(err)
	}
	mh := directory.HashPassword(masterPW)
	src := testenv.StartDovecot(t, testenv.DovecotOptions{Name: "mxplan", Directory: dbPath, Services: []string{"mxplan-1"},
		MasterUser: "mailshift", MasterHash: mh, Port: srcPort, TLS: tls, Sieve: sieve})
	dst := testenv.StartDovecot(t, testenv.DovecotOptions{Name: "emailpro", Directory: dbPath, Services: []string{"emailpro-1"},
		Separator: ".", Prefix: "INBOX.", MasterUser: "mailshift", MasterHash: mh, AppendLimit: 1 << 20, Port: dstPort, TLS: tls, Sieve: sieve})
	return &lab{dbPath: dbPath, dir: dir, src: src, dst: dst}
}

func addrOf(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// aliceEndpoints are alice's accounts on the lab's source and destination,
// through the master user.
func (l *lab) aliceEndpoints() (src, dst mailcopy.Endpoint) {
	src = mailcopy.Endpoint{Addr: l.src.Addr, Security: mailcopy.SecurityPlain, User: "alice@example.com", MasterUser: "mailshift", Password: masterPW}
	dst = src
	dst.Addr = l.dst.Addr
	return src, dst
}

func login(addr, user, pw string) error {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Login(user, pw).Wait()
}

// TestDovecotObeysDirectory: a lock, a slot and a release written to the
// directory are obeyed by real Dovecot servers reading it.
func TestDovecotObeysDirectory(t *testing.T) {
	l := startLab(t)
	ctx := context.Background()
	const wf = "migrate:alice@example.com"
	if err := login(l.src.Addr, "alice@example.com", "alice-pw"); err != nil {
		t.Fatalf("owner login before lock: %v\n%s", err, l.src.Log())
	}
	if err := login(l.src.Addr, "alice@example.com", "wrong"); err == nil {
		t.Fatalf("a wrong password logged in")
	}
	if err := l.dir.Lock(ctx, "alice@example.com", wf); err != nil {
		t.Fatal(err)
	}
	if err := login(l.src.Addr, "alice@example.com", "alice-pw"); err == nil {
		t.Fatalf("owner still logs in after lock")
	}
	if err := login(l.src.Addr, "alice@example.com*mailshift", masterPW); err != nil {
		t.Fatalf("master login on a locked account: %v\n%s", err, l.src.Log())
	}
	if err := l.dir.Unlock(ctx, "alice@example.com", wf); err != nil {
		t.Fatal(err)
	}
	if err := login(l.src.Addr, "alice@example.com", "alice-pw"); err != nil {
		t.Fatalf("owner login after unlock: %v", err)
	}

	if err := login(l.dst.Addr, "alice@example.com", "alice-pw"); err == nil {
		t.Fatalf("address logs in on the destination before any slot is configured")
	}
	if _, err := l.dir.ClaimSlot(ctx, "emailpro-1", "alice@example.com", wf, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.dir.ConfigureSlot(ctx, wf); err != nil {
		t.Fatal(err)
	}
	if err := login(l.dst.Addr, "alice@example.com", "alice-pw"); err != nil {
		t.Fatalf("owner login on the configured slot with the source password: %v\n%s", err, l.dst.Log())
	}
	if err := l.dir.ReleaseSlot(ctx, wf); err != nil {
		t.Fatal(err)
	}
	if err := login(l.dst.Addr, "alice@example.com", "alice-pw"); err == nil {
		t.Fatalf("address still logs in on the destination after release")
	}
}

// TestCopyBetweenDovecots copies a generated mailbox between two real
// Dovecots with different separators and namespaces, interrupts and resumes
// it, and compares every message.
func TestCopyBetweenDovecots(t *testing.T) {
	l := startLab(t)
	ctx := context.Background()
	const wf = "migrate:alice@example.com"
	l.assignSlot(t, wf)
	n := seedOverIMAP(t, l.src.Addr, "alice@example.com", "alice-pw", mailgen.Spec{Seed: 11, Messages: 400, MeanSize: 6 << 10,
		NoIDPercent: 3, DupPercent: 3, Huge: 2 << 20})
	if err := l.dir.Lock(ctx, "alice@example.com", wf); err != nil {
		t.Fatal(err)
	}
	src := mailcopy.Endpoint{Addr: l.src.Addr, Security: mailcopy.SecurityPlain, User: "alice@example.com", MasterUser: "mailshift", Password: masterPW}
	dst := src
	dst.Addr = l.dst.Addr

	// First attempt dies part-way.
	cctx, cancel := context.WithCancel(ctx)
	var cps map[string]mailcopy.Checkpoint
	_, err := mailcopy.Copy(cctx, src, dst, mailcopy.Options{OnProgress: func(p mailcopy.Progress) {
		cps = p.Checkpoints
		if p.Copied >= n/3 {
			cancel()
		}
	}})
	if err == nil {
		t.Fatalf("interrupted copy reported success")
	}
	res, err := mailcopy.Copy(ctx, src, dst, mailcopy.Options{Checkpoints: cps})
	if err != nil {
		t.Fatalf("resumed copy: %v\n%s", err, l.dst.Log())
	}
	if res.Skipped != 1 {
		t.Fatalf("skipped %d, want the 2 MB message over the 1 MB APPENDLIMIT", res.Skipped)
	}
	mapping := map[string]string{}
	for _, f := range res.Folders {
		mapping[f.Source] = f.Dest
	}
	for from, to := range map[string]string{"Sent": "INBOX.Sent", "Projets/Été 2025": "INBOX.Projets.Été 2025", "Archives/2023": "INBOX.Archives.2023", "Factures & Reçus": "INBOX.Factures & Reçus"} {
		if mapping[from] != to {
			t.Fatalf("%q went to %q, want %q (all: %v)", from, mapping[from], to, mapping)
		}
	}

	// Owner view of both sides (the source read through the master user:
	// the owner is locked out).
	before, err := testenv.Read(l.src.Addr, "alice@example.com*mailshift", masterPW)
	if err != nil {
		t.Fatal(err)
	}
	after, err := testenv.Read(l.dst.Addr, "alice@example.com", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	mapped := testenv.Mailbox{}
	for f, msgs := range before {
		for _, m := range msgs {
			if m.Size > 1<<20 {
				continue // reported as skipped above
			}
			mapped[mapping[f]] = append(mapped[mapping[f]], m)
		}
	}
	if miss := testenv.Missing(mapped, after); len(miss) > 0 {
		t.Fatalf("%d differences after resume, first: %s", len(miss), miss[0])
	}
	if dup := testenv.Duplicates(mapped, after); len(dup) > 0 {
		t.Fatalf("duplicates after resume: %s", dup[0])
	}
	if extra := testenv.Extra(mapped, after); len(extra) > 0 {
		t.Fatalf("unexpected messages: %s", extra[0])
	}
	v, err := mailcopy.Verify(ctx, src, dst, mailcopy.Options{})
	if err != nil || !v.OK() {
		t.Fatalf("Verify() = %+v, %v", v, err)
	}
	t.Logf("%d messages, %d copied on resume, %d already there, verified %d", n, res.Copied, res.Present, v.Checked)
}

// seedOverIMAP fills a mailbox through APPEND, as mail clients would.
func seedOverIMAP(t *testing.T, addr, user, pw string, spec mailgen.Spec) int {
	t.Helper()
	n, _, err := testenv.Seed(addr, user, pw, spec)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPipelinedCopySurvivesDroppedSource: the source connection is cut
// every 200 KB while LITERAL+ APPENDs stream into Dovecot; after the
// retries the destination holds every message once and no truncated one.
func TestPipelinedCopySurvivesDroppedSource(t *testing.T) {
	l := startLab(t)
	ctx := context.Background()
	l.assignSlot(t, "migrate:alice@example.com")
	seedOverIMAP(t, l.src.Addr, "alice@example.com", "alice-pw", mailgen.Spec{Seed: 21, Messages: 250, MeanSize: 6 << 10, NoIDPercent: 3, DupPercent: 3})
	proxy, drops := testenv.CuttingProxy(t, l.src.Addr, 200<<10)
	src := mailcopy.Endpoint{Addr: proxy, Security: mailcopy.SecurityPlain, User: "alice@example.com", MasterUser: "mailshift", Password: masterPW}
	dst := mailcopy.Endpoint{Addr: l.dst.Addr, Security: mailcopy.SecurityPlain, User: "alice@example.com", MasterUser: "mailshift", Password: masterPW}
	var cps map[string]mailcopy.Checkpoint
	attempts := 0
	for ; attempts < 100; attempts++ {
		_, err := mailcopy.Copy(ctx, src, dst, mailcopy.Options{Connections: 1, Checkpoints: cps, OnProgress: func(p mailcopy.Progress) { cps = p.Checkpoints }})
		if err == nil {
			break
		}
		if _, perm := mailcopy.IsPermanent(err); perm {
			t.Fatalf("dropped connection became permanent: %v", err)
		}
	}
	if attempts == 100 || drops.Load() == 0 {
		t.Fatalf("%d attempts, %d drops", attempts, drops.Load())
	}
	before, after := l.mailboxes(t)
	sameMail(t, fmt.Sprintf("after %d attempts and %d drops", attempts+1, drops.Load()), toCourier(before), after)
	t.Logf("%d messages copied over %d attempts with %d dropped connections", before.Count(), attempts+1, drops.Load())
}

// assignSlot claims and configures the lab's slot for alice, as the
// assign-slot stage does.
func (l *lab) assignSlot(t *testing.T, wf string) {
	t.Helper()
	ctx := context.Background()
	if _, err := l.dir.ClaimSlot(ctx, "emailpro-1", "alice@example.com", wf, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.dir.ConfigureSlot(ctx, wf); err != nil {
		t.Fatal(err)
	}
}

// toCourier maps a "/"-separated mailbox to the lab destination's
// namespace ("INBOX." prefix, "." separator).
func toCourier(mb testenv.Mailbox) testenv.Mailbox {
	out := testenv.Mailbox{}
	for f, msgs := range mb {
		dest := "INBOX"
		if f != "INBOX" {
			dest = "INBOX." + strings.ReplaceAll(f, "/", ".")
		}
		out[dest] = append(out[dest], msgs...)
	}
	return out
}

// TestCopyOverTLS: implicit TLS from the source, STARTTLS to the
// destination (the pipelined LITERAL+ appender upgrades its own connection
// too), certificates checked against the servers' CA; without that CA the
// copy fails at once as a permanent configuration error naming the fix.
func TestCopyOverTLS(t *testing.T) {
	l := startLabWith(t, filepath.Join(t.TempDir(), "directory.db"), true)
	ctx := context.Background()
	l.assignSlot(t, "migrate:alice@example.com")
	seedOverIMAP(t, l.src.Addr, "alice@example.com", "alice-pw", mailgen.Spec{Seed: 31, Messages: 120, MeanSize: 6 << 10, NoIDPercent: 3, DupPercent: 3})
	srcCAs, err := mailcopy.LoadCAs(l.src.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	dstCAs, err := mailcopy.LoadCAs(l.dst.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	src := mailcopy.Endpoint{Addr: l.src.TLSAddr, Security: mailcopy.SecurityTLS, RootCAs: srcCAs, User: "alice@example.com", MasterUser: "mailshift", Password: masterPW}
	dst := mailcopy.Endpoint{Addr: l.dst.Addr, Security: mailcopy.SecurityStartTLS, RootCAs: dstCAs, User: "alice@example.com", MasterUser: "mailshift", Password: masterPW}

	untrusted := src
	untrusted.RootCAs = nil
	_, err = mailcopy.Copy(ctx, untrusted, dst, mailcopy.Options{})
	if kind, perm := mailcopy.IsPermanent(err); !perm || kind != mailcopy.KindBadConfig || !strings.Contains(err.Error(), "not trusted") || !strings.Contains(err.Error(), "imapCAFile") {
		t.Fatalf("copy from a server with an unknown CA: %v (permanent %v %s), want a permanent BadConfig naming imapCAFile", err, perm, kind)
	}
	wrongCA := dst
	wrongCA.RootCAs = srcCAs // the other server's CA: the certificate does not chain
	if _, err := mailcopy.Copy(ctx, src, wrongCA, mailcopy.Options{}); err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("STARTTLS to a server signed by another CA: %v, want not trusted", err)
	}

	res, err := mailcopy.Copy(ctx, src, dst, mailcopy.Options{})
	if err != nil {
		t.Fatalf("copy over TLS: %v\n%s\n%s", err, l.src.Log(), l.dst.Log())
	}
	if res.Copied < 120 {
		t.Fatalf("copied %d, want every message", res.Copied)
	}
	before, after := l.mailboxes(t)
	sameMail(t, "after the TLS copy", toCourier(before), after)
	vr, err := mailcopy.Verify(ctx, src, dst, mailcopy.Options{})
	if err != nil || !vr.OK() {
		t.Fatalf("verify over TLS: %v %+v", err, vr)
	}
}

// sameMail fails unless got holds every message of want exactly once and
// nothing else.
func sameMail(t *testing.T, when string, want, got testenv.Mailbox) {
	t.Helper()
	for _, check := range [][]string{testenv.Missing(want, got), testenv.Duplicates(want, got), testenv.Extra(want, got)} {
		if len(check) > 0 {
			t.Fatalf("%s: %s", when, check[0])
		}
	}
}

// mailboxes reads alice's mailbox on both servers, as the owner.
func (l *lab) mailboxes(t *testing.T) (src, dst testenv.Mailbox) {
	t.Helper()
	src, err := testenv.Read(l.src.Addr, "alice@example.com", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	dst, err = testenv.Read(l.dst.Addr, "alice@example.com", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	return src, dst
}
