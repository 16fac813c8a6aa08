package mailcopy_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/mailgen"
	"github.com/mailshift/mailshift/internal/testenv"
)

const pw = "secret"

type memServer struct {
	addr string
	user *imapmemserver.User
}

// startMem runs a go-imap in-memory server with one user.
func startMem(t *testing.T, username string) *memServer {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(username, pw)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return devstack.StrictSession(mem.NewSession()), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
		Logger:       silent{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &memServer{addr: ln.Addr().String(), user: u}
}

type silent struct{}

func (silent) Printf(string, ...interface{}) {}

func (m *memServer) seed(t *testing.T, spec mailgen.Spec) int {
	t.Helper()
	for _, f := range append(append([]string{}, mailgen.Parents...), mailgen.Folders...) {
		_ = m.user.Create(f, nil)
	}
	n := 0
	err := mailgen.Generate(spec, func(msg mailgen.Message) error {
		n++
		_, err := m.user.Append(msg.Folder, bytes.NewReader(msg.Body), &imap.AppendOptions{Flags: msg.Flags, Time: msg.Date})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ep(addr, user string) mailcopy.Endpoint {
	return mailcopy.Endpoint{Addr: addr, Security: mailcopy.SecurityPlain, User: user, Password: pw}
}

func read(t *testing.T, addr, user string) testenv.Mailbox {
	t.Helper()
	mb, err := testenv.Read(addr, user, pw)
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

func assertSame(t *testing.T, src, dst testenv.Mailbox) {
	t.Helper()
	if miss := testenv.Missing(src, dst); len(miss) > 0 {
		t.Fatalf("%d differences, first: %s", len(miss), miss[0])
	}
	if dup := testenv.Duplicates(src, dst); len(dup) > 0 {
		t.Fatalf("%d duplicates, first: %s", len(dup), dup[0])
	}
	if extra := testenv.Extra(src, dst); len(extra) > 0 {
		t.Fatalf("%d unexpected messages on the destination, first: %s", len(extra), extra[0])
	}
	if src.Count() != dst.Count() {
		t.Fatalf("destination has %d messages, source %d", dst.Count(), src.Count())
	}
	for f := range src {
		if _, ok := dst[f]; !ok {
			t.Fatalf("folder %q missing on the destination", f)
		}
	}
}

var spec = mailgen.Spec{Seed: 42, Messages: 300, MeanSize: 4 << 10, NoIDPercent: 5, DupPercent: 5}

func TestCopyFaithful(t *testing.T) {
	src, dst := startMem(t, "a@x.test"), startMem(t, "a@x.test")
	n := src.seed(t, spec)
	res, err := mailcopy.Copy(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{Connections: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != n || res.Present != 0 || res.Skipped != 0 {
		t.Fatalf("Copy() copied %d, present %d, skipped %d; want %d, 0, 0", res.Copied, res.Present, res.Skipped, n)
	}
	assertSame(t, read(t, src.addr, "a@x.test"), read(t, dst.addr, "a@x.test"))

	// A second run copies nothing: everything is matched by fingerprint,
	// including messages without Message-ID and messages sharing one.
	res, err = mailcopy.Copy(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != 0 || res.Present != n {
		t.Fatalf("second Copy() copied %d, present %d; want 0, %d", res.Copied, res.Present, n)
	}
	v, err := mailcopy.Verify(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{})
	if err != nil || !v.OK() || v.Checked != n {
		t.Fatalf("Verify() = %+v, %v; want OK over %d messages", v, err, n)
	}
}

func TestDeltaCopiesOnlyNew(t *testing.T) {
	src, dst := startMem(t, "a@x.test"), startMem(t, "a@x.test")
	src.seed(t, mailgen.Spec{Seed: 1, Messages: 50})
	res, err := mailcopy.Copy(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		msg := []byte("Subject: new " + string(rune('a'+i)) + "\r\n\r\nhello\r\n")
		if _, err := src.user.Append("INBOX", bytes.NewReader(msg), &imap.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	delta, err := mailcopy.Copy(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{Checkpoints: res.Checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	if delta.Copied != 3 || delta.Present != 0 {
		t.Fatalf("delta copied %d, present %d; want 3 new, none rescanned", delta.Copied, delta.Present)
	}
	again, err := mailcopy.Copy(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{Checkpoints: delta.Checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	if again.Copied != 0 || again.Present != 0 {
		t.Fatalf("delta with nothing new copied %d, looked at %d; want 0, 0", again.Copied, again.Present)
	}
	assertSame(t, read(t, src.addr, "a@x.test"), read(t, dst.addr, "a@x.test"))
}

// TestResumeAfterCrash stops the copy mid-way, then resumes from a
// checkpoint older than what was really copied (a crash between APPEND and
// heartbeat): nothing is lost or duplicated.
func TestResumeAfterCrash(t *testing.T) {
	src, dst := startMem(t, "a@x.test"), startMem(t, "a@x.test")
	n := src.seed(t, spec)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var snaps []mailcopy.Progress
	_, err := mailcopy.Copy(ctx, ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{Connections: 2,
		OnProgress: func(p mailcopy.Progress) {
			mu.Lock()
			defer mu.Unlock()
			snaps = append(snaps, p)
			if p.Copied >= n/2 {
				cancel()
			}
		}})
	if err == nil {
		t.Fatalf("Copy() finished although cancelled half-way")
	}
	mu.Lock()
	stale := snaps[len(snaps)/2].Checkpoints // well behind the last APPEND
	mu.Unlock()
	half := read(t, dst.addr, "a@x.test").Count()
	if half == 0 || half >= n {
		t.Fatalf("%d of %d copied before the crash, want a partial copy", half, n)
	}
	res, err := mailcopy.Copy(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{Checkpoints: stale})
	if err != nil {
		t.Fatal(err)
	}
	if res.Present == 0 {
		t.Fatalf("resume found nothing already present; the checkpoint was stale, so some should be")
	}
	assertSame(t, read(t, src.addr, "a@x.test"), read(t, dst.addr, "a@x.test"))
}

func TestUIDValidityChangeRescans(t *testing.T) {
	src, dst := startMem(t, "a@x.test"), startMem(t, "a@x.test")
	src.seed(t, mailgen.Spec{Seed: 3, Messages: 60})
	res, err := mailcopy.Copy(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The source re-creates Sent (new UIDVALIDITY) with the same mail plus
	// one new message.
	before := read(t, src.addr, "a@x.test")["Sent"]
	var bodies [][]byte
	var dates []time.Time
	collect(t, src.addr, "Sent", &bodies, &dates)
	if err := src.user.Delete("Sent"); err != nil {
		t.Fatal(err)
	}
	if err := src.user.Create("Sent", nil); err != nil {
		t.Fatal(err)
	}
	for i, b := range bodies {
		if _, err := src.user.Append("Sent", bytes.NewReader(b), &imap.AppendOptions{Time: dates[i], Flags: []imap.Flag{imap.FlagSeen}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.user.Append("Sent", bytes.NewReader([]byte("Subject: after\r\n\r\nx\r\n")), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	delta, err := mailcopy.Copy(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{Checkpoints: res.Checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	var sent mailcopy.FolderResult
	for _, f := range delta.Folders {
		if f.Source == "Sent" {
			sent = f
		}
	}
	if !sent.Rescanned || sent.Copied != 1 || sent.Present != len(before) {
		t.Fatalf("Sent after UIDVALIDITY change: %+v; want rescanned, 1 copied, %d present", sent, len(before))
	}
	if dup := testenv.Duplicates(read(t, src.addr, "a@x.test"), read(t, dst.addr, "a@x.test")); len(dup) > 0 {
		t.Fatalf("duplicates after rescan: %v", dup[0])
	}
}

func collect(t *testing.T, addr, folder string, bodies *[][]byte, dates *[]time.Time) {
	t.Helper()
	c := dialRaw(t, addr)
	defer c.Close()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		*bodies = append(*bodies, m.BodySection[0].Bytes)
		*dates = append(*dates, m.InternalDate)
	}
}

func TestOversizedMessageSkippedWithReason(t *testing.T) {
	src, dst := startMem(t, "a@x.test"), startMem(t, "a@x.test")
	src.seed(t, mailgen.Spec{Seed: 5, Messages: 30, MeanSize: 2000, Huge: 300 << 10})
	res, err := mailcopy.Copy(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{MaxMessageBytes: 200 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 1 {
		t.Fatalf("skipped %d, want the one 300 KB message", res.Skipped)
	}
	var reason string
	for _, f := range res.Folders {
		for _, s := range f.Skipped {
			reason = s.Reason
		}
	}
	if !strings.Contains(reason, "over the destination's limit") {
		t.Fatalf("skip reason = %q", reason)
	}
	v, err := mailcopy.Verify(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{MaxMessageBytes: 200 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK() || len(v.Folders) == 0 {
		t.Fatalf("Verify() = %+v; the oversized message is reported, not missing", v)
	}
	over := 0
	for _, f := range v.Folders {
		over += len(f.OverLimit)
	}
	if over != 1 {
		t.Fatalf("Verify() lists %d over-limit messages, want 1", over)
	}
}

// expungeFirst deletes the first message of the INBOX at addr.
func expungeFirst(t *testing.T, addr string) {
	t.Helper()
	c := dialRaw(t, addr)
	defer c.Close()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyFindsMissing(t *testing.T) {
	src, dst := startMem(t, "a@x.test"), startMem(t, "a@x.test")
	src.seed(t, mailgen.Spec{Seed: 6, Messages: 40})
	if _, err := mailcopy.Copy(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{}); err != nil {
		t.Fatal(err)
	}
	expungeFirst(t, dst.addr)
	v, err := mailcopy.Verify(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v.OK() || v.Missing != 1 || !strings.Contains(v.MissingSummary(), "INBOX") {
		t.Fatalf("Verify() after deleting one message = missing %d (%s), want 1 in INBOX", v.Missing, v.MissingSummary())
	}
}

func TestWrongCredentialsArePermanent(t *testing.T) {
	src, dst := startMem(t, "a@x.test"), startMem(t, "a@x.test")
	bad := ep(src.addr, "a@x.test")
	bad.Password = "wrong"
	_, err := mailcopy.Copy(context.Background(), bad, ep(dst.addr, "a@x.test"), mailcopy.Options{})
	kind, ok := mailcopy.IsPermanent(err)
	if !ok || kind != mailcopy.KindAuthFailed || !strings.Contains(err.Error(), "a@x.test@"+src.addr) {
		t.Fatalf("Copy() with a wrong password = %v (kind %q), want a permanent AuthFailed naming the account", err, kind)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("error %q shows the password", err)
	}
	_, err = mailcopy.Copy(context.Background(), mailcopy.Endpoint{Addr: src.addr, Security: "ssl3", User: "a@x.test"}, ep(dst.addr, "a@x.test"), mailcopy.Options{})
	if kind, ok := mailcopy.IsPermanent(err); !ok || kind != mailcopy.KindBadConfig {
		t.Fatalf("unknown security: %v, want permanent BadConfig", err)
	}
}

func TestDroppedConnectionsResume(t *testing.T) {
	src, dst := startMem(t, "a@x.test"), startMem(t, "a@x.test")
	n := src.seed(t, mailgen.Spec{Seed: 8, Messages: 200, MeanSize: 3000, NoIDPercent: 5, DupPercent: 5})
	proxy, drops := testenv.CuttingProxy(t, src.addr, 150<<10)
	var cps map[string]mailcopy.Checkpoint
	var last error
	attempts := 0
	for ; attempts < 200; attempts++ {
		res, err := mailcopy.Copy(context.Background(), ep(proxy, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{Connections: 1, Checkpoints: cps,
			OnProgress: func(p mailcopy.Progress) { cps = p.Checkpoints }})
		if err == nil {
			_ = res
			break
		}
		if _, perm := mailcopy.IsPermanent(err); perm {
			t.Fatalf("a dropped connection became a permanent error: %v", err)
		}
		last = err
	}
	if attempts == 200 {
		t.Fatalf("no complete run in 200 attempts; last error %v", last)
	}
	if drops.Load() == 0 {
		t.Fatalf("the proxy never dropped a connection; the test proves nothing")
	}
	t.Logf("%d messages copied over %d attempts, %d drops", n, attempts+1, drops.Load())
	assertSame(t, read(t, src.addr, "a@x.test"), read(t, dst.addr, "a@x.test"))
}

func TestCancelStopsPromptly(t *testing.T) {
	src, dst := startMem(t, "a@x.test"), startMem(t, "a@x.test")
	src.seed(t, mailgen.Spec{Seed: 9, Messages: 400, MeanSize: 8000})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := mailcopy.Copy(ctx, ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{OnProgress: func(p mailcopy.Progress) {
			if p.Copied == 10 {
				cancel()
			}
		}})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Copy() after cancel = %v, want a cancellation error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Copy() did not return after its context was cancelled")
	}
}

func dialRaw(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("a@x.test", pw).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// unavailableSession refuses every login with "NO [UNAVAILABLE]", as
// Dovecot does while its user database is unreachable.
type unavailableSession struct{ imapserver.Session }

func (unavailableSession) Login(string, string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Temporary authentication failure"}
}

func TestTemporaryAuthFailureIsTransient(t *testing.T) {
	mem := imapmemserver.New()
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return unavailableSession{mem.NewSession()}, nil, nil
		},
		Caps: imap.CapSet{imap.CapIMAP4rev1: {}}, InsecureAuth: true, Logger: silent{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	dst := startMem(t, "a@x.test")
	_, err = mailcopy.Copy(context.Background(), ep(ln.Addr().String(), "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{})
	if err == nil {
		t.Fatalf("Copy() succeeded against a server refusing logins")
	}
	if _, perm := mailcopy.IsPermanent(err); perm {
		t.Fatalf("Copy() = %v: a temporary authentication failure must be retried, not parked as AuthFailed", err)
	}
}
