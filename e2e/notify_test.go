package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/notify"
	"github.com/mailshift/mailshift/internal/testenv"
)

const opsAddr, opsPW = "ops@example.net", "ops-pw"

// opsMailbox is a lab Dovecot serving the operators' mailbox and a lab
// Postfix relaying into it, offering STARTTLS.
func opsMailbox(t *testing.T) (*testenv.Dovecot, *testenv.Postfix, *tls.Config) {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "directory.db")
	dir, err := directory.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	port := testenv.FreePort(t)
	if err := dir.AddService(ctx, directory.Service{ID: "ops-1", Kind: directory.KindEmailPro, IMAPAddr: addrOf(port), IMAPSecurity: "plain"}); err != nil {
		t.Fatal(err)
	}
	if err := dir.AddAccount(ctx, directory.Account{Address: opsAddr, ServiceID: "ops-1", Locale: "en"}, directory.HashPassword(opsPW)); err != nil {
		t.Fatal(err)
	}
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{Name: "ops", Directory: dbPath, Services: []string{"ops-1"},
		MasterUser: "mailshift", MasterHash: directory.HashPassword(masterPW), Port: port})
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{Mailboxes: []string{opsAddr}, MailDir: filepath.Join(dc.Dir, "mail"), TLS: true})
	pem, err := os.ReadFile(pf.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("the relay's CA does not parse")
	}
	return dc, pf, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// inboxBodies reads the bodies in an account's INBOX over IMAP.
func inboxBodies(t *testing.T, addr, user, pw string) []string {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pw).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		for _, b := range m.BodySection {
			out = append(out, string(b.Bytes))
		}
	}
	return out
}

// waitInbox waits until the INBOX holds n messages (Postfix delivers
// asynchronously), and returns them.
func waitInbox(t *testing.T, dc *testenv.Dovecot, pf *testenv.Postfix, n int) []string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := inboxBodies(t, dc.Addr, opsAddr, opsPW)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("INBOX holds %d messages after 60 s, want %d\n%s", len(got), n, pf.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestOperatorMailThroughPostfix: a notification mailed through the lab
// Postfix (STARTTLS, the relay's CA trusted) lands in the operators'
// mailbox on the lab Dovecot, with the event's facts and nothing else; a
// relay that refuses the recipient is a rejection, not a retry.
func TestOperatorMailThroughPostfix(t *testing.T) {
	dc, pf, tc := opsMailbox(t)
	ev := notify.Event{ID: "plan-watch:p7/finished/cancelled=0,done=3,needs-attention=1,rolled-back=0", Kind: notify.KindPlanFinished, Plan: "p7",
		Counts: map[string]int{"done": 3, "cancelled": 0, "rolled-back": 0, "needs-attention": 1}, At: time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC),
		Summary: "no account of plan p7 is moving any more: 4 account(s), 1 waiting for an operator"}
	m := &notify.Mail{Relay: pf.Addr, From: "mailshift@example.net", To: []string{opsAddr}, TLS: tc, RequireTLS: true, Backoff: 100 * time.Millisecond}
	if err := m.Send(context.Background(), ev); err != nil {
		t.Fatalf("Send() = %v\n%s", err, pf.Log())
	}
	got := waitInbox(t, dc, pf, 1)
	if len(got) != 1 {
		t.Fatalf("INBOX holds %d messages, want 1", len(got))
	}
	body := got[0]
	for _, want := range []string{"Subject: mailshift: plan p7 finished (done 3, cancelled 0, rolled-back 0, needs-attention 1)",
		"X-Mailshift-Event: plan-finished", "X-Mailshift-Event-Id: " + ev.ID, "From: mailshift@example.net",
		"Plan:       p7", "needs-attention  1", "done             3", "1 waiting for an operator"} {
		if !strings.Contains(body, want) {
			t.Errorf("delivered message lacks %q:\n%s", want, body)
		}
	}
	if log := pf.Log(); !strings.Contains(log, "starttls=1") {
		t.Errorf("the relay's log shows no TLS session:\n%s", log)
	}
	// A recipient the relay does not serve: 5xx, no retry.
	bad := *m
	bad.To = []string{"nobody@elsewhere.test"}
	start := time.Now()
	if err := bad.Send(context.Background(), ev); err == nil || !strings.Contains(err.Error(), "rejected") {
		t.Fatalf("Send(to a foreign domain) = %v, want a rejection", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("a rejection took %v: it was retried", time.Since(start))
	}
	// A client that does not trust the relay's certificate does not send.
	untrusted := *m
	untrusted.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	untrusted.Attempts = 1
	if err := untrusted.Send(context.Background(), ev); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send(untrusted relay) = %v, want a STARTTLS error", err)
	}
	if n := len(inboxBodies(t, dc.Addr, opsAddr, opsPW)); n != 1 {
		t.Fatalf("INBOX holds %d messages after the refused sends, want 1", n)
	}
}
