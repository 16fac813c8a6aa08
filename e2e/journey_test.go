package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/app"
	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/dnscheck"
	"github.com/mailshift/mailshift/internal/mailgen"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

// TestOwnerJourney is the control-panel migration guide as one scenario on
// the real stack (Temporal dev server, a Dovecot pair reading the
// directory on PostgreSQL, BIND9), driven through the starter: prerequisites refused and
// fixed, no free account then one ordered, confirmation, mail arriving
// during the move, DNS fixed by the owner, the new mailbox checked.
func TestOwnerJourney(t *testing.T) {
	ctx := context.Background()
	const owner = "alice@example.com"
	l := startLabSlots(t, 0)
	b := testenv.StartBIND(t, "example.com")
	if err := l.dir.AddService(ctx, directory.Service{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: l.dst.Addr, IMAPSecurity: "plain",
		SMTPAddr: "pro1.mail.example.net:587", WebmailURL: "https://webmail.example.net", MX: "10 mx1.pro.example.net, 20 mx2.pro.example.net",
		SPFInclude: "_spf.pro.example.net", Autodiscover: "autodiscover.pro.example.net", MaxMessageBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	n := seedOverIMAP(t, l.src.Addr, owner, "alice-pw", mailgen.Spec{Seed: 77, Messages: 300, MeanSize: 8 << 10, NoIDPercent: 3, DupPercent: 3})
	before, err := testenv.Read(l.src.Addr, owner, "alice-pw")
	if err != nil {
		t.Fatal(err)
	}

	_, c := testenv.StartTemporal(t, "")
	cfg := config.Defaults()
	cfg.MasterUser, cfg.MasterPassword, cfg.IMAPPlain = "mailshift", masterPW, true
	cfg.DNSResolver, cfg.DNSOverride = b.PrimaryAddr(), b.Override()
	acts, err := app.Activities(ctx, cfg, l.dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	w := app.NewWorker(c, workflows.TaskQueue, acts, worker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	out := &bytes.Buffer{}
	env := &cli.Env{Out: out, Client: c, DirectoryDSN: l.dbPath,
		Checker: &dnscheck.Checker{Resolver: b.PrimaryAddr(), Override: b.Override(), Timeout: 2 * time.Second}}
	step := func(title string) {
		t.Logf("== %s\n%s", title, out.String())
		out.Reset()
	}

	// 1. A redirection on the address: preflight refuses, naming it.
	if err := l.dir.AddRedirection(ctx, directory.Redirection{Address: owner, Kind: "redirection", Target: "alice@gmail.example"}); err != nil {
		t.Fatal(err)
	}
	if err := env.Start(ctx, cli.StartArgs{Address: owner, To: "emailpro-1", DNSInterval: "1s", SlotRecheck: "1s"}); err != nil {
		t.Fatal(err)
	}
	p := waitStage(t, c, owner, workflows.StageNeedsAttention)
	if _, err := env.Status(ctx, "", []string{owner}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "alice@gmail.example") || p.ErrorType != "RedirectionPresent" {
		t.Fatalf("status does not name the redirection:\n%s", out.String())
	}
	step("the address has a redirection: preflight refuses")
	if err := l.dir.RemoveRedirections(ctx, owner); err != nil {
		t.Fatal(err)
	}
	if err := env.Act(ctx, workflows.UpdateRetry, "", []string{owner}, "alice", "redirection removed"); err != nil {
		t.Fatal(err)
	}

	// 2. No free account on the destination: it waits; one is ordered.
	waitStage(t, c, owner, workflows.StageWaitingForSlot)
	step("redirection removed, retry: waiting for a free E-mail Pro account")
	if err := l.dir.AddSlot(ctx, "emailpro-1", "ab12@configureme.me", 5<<30); err != nil {
		t.Fatal(err)
	}

	// 3. It waits for confirmation; the owner still uses the old mailbox.
	waitStage(t, c, owner, workflows.StageAwaitConfirm)
	if err := login(l.src.Addr, owner, "alice-pw"); err != nil {
		t.Fatalf("owner locked out before confirming: %v", err)
	}
	if _, err := env.Status(ctx, "", []string{owner}); err != nil {
		t.Fatal(err)
	}
	step("an account was ordered: awaiting confirmation")

	// Mail keeps arriving while the move runs: to the source until the
	// route switches, to the destination after.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var delivered [][]byte
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(40 * time.Millisecond):
			}
			msg := []byte(fmt.Sprintf("From: friend@partner.example\r\nTo: %s\r\nSubject: during the move %d\r\nMessage-ID: <live%d@partner.example>\r\n\r\nhello %d\r\n", owner, i, i, i))
			target := l.src.Addr
			if r, err := l.dir.Route(ctx, owner); err == nil && r.ServiceID == "emailpro-1" {
				target = l.dst.Addr
			}
			if err := testenv.Deliver(target, owner+"*mailshift", masterPW, msg); err != nil {
				t.Errorf("deliver: %v", err)
				return
			}
			mu.Lock()
			delivered = append(delivered, msg)
			mu.Unlock()
		}
	}()
	if err := env.Act(ctx, workflows.UpdateConfirm, "", []string{owner}, "alice", "I understand it cannot be undone"); err != nil {
		t.Fatal(err)
	}
	step("confirmed by the owner")

	// 4. The domain's records are wrong: the diagnostic names what to set.
	waitStage(t, c, owner, workflows.StageDNS)
	if err := login(l.src.Addr, owner, "alice-pw"); err == nil {
		t.Fatalf("owner can still log in to the old mailbox after confirming")
	}
	if err := env.DNS(ctx, "example.com", "emailpro-1"); err == nil {
		t.Fatalf("DNS reported OK before the records were set")
	}
	if !strings.Contains(out.String(), "set: example.com. 3600 IN MX 10 mx1.pro.example.net.") {
		t.Fatalf("diagnostic does not name the MX to set:\n%s", out.String())
	}
	step("mail routed to the new service; the domain's DNS is not right yet")
	time.Sleep(300 * time.Millisecond) // let a few messages arrive after the switch
	close(stop)
	wg.Wait()

	// The owner sets the records (here on the BIND9 primary) and the
	// secondary picks them up.
	want, _ := dnscheck.Expected("example.com", dnscheck.Requirements{MX: "10 mx1.pro.example.net, 20 mx2.pro.example.net",
		SPFInclude: "_spf.pro.example.net", Autodiscover: "autodiscover.pro.example.net"})
	u := &dnscheck.Updater{Primary: b.PrimaryAddr(), Key: dnscheck.TSIGKey{Name: b.KeyName, Secret: b.Secret}}
	if _, err := u.Apply(ctx, "example.com", want); err != nil {
		t.Fatal(err)
	}
	if err := b.Retransfer(ctx); err != nil {
		t.Fatal(err)
	}
	r := result(t, c, owner)
	if r.Outcome != workflows.StageDone || r.DNSPending {
		t.Fatalf("outcome %s, dnsPending %v", r.Outcome, r.DNSPending)
	}
	if err := env.DNS(ctx, "example.com", "emailpro-1"); err != nil {
		t.Fatalf("DNS after the fix: %v\n%s", err, out.String())
	}
	if _, err := env.Status(ctx, "", []string{owner}); err != nil {
		t.Fatal(err)
	}
	step("records set: the diagnostic is green and the migration is done")

	// 5. The owner logs in to the new account with the old password and
	// finds every folder, every message, the mail of the move and the notice.
	after, err := testenv.Read(l.dst.Addr, owner, "alice-pw")
	if err != nil {
		t.Fatalf("owner login on the new account: %v", err)
	}
	mapped := toCourier(before)
	if miss := testenv.Missing(mapped, after); len(miss) > 0 {
		t.Fatalf("%d problems in the new mailbox, first: %s", len(miss), miss[0])
	}
	inbox := map[string]bool{}
	for _, m := range after["INBOX"] {
		inbox[m.Hash] = true
	}
	for _, msg := range delivered {
		if !inbox[testenv.HashOf(msg)] {
			t.Fatalf("a message delivered during the move is missing: %q", strings.SplitN(string(msg), "\r\n", 4)[2])
		}
	}
	notice := findSubject(t, l.dst.Addr, owner, "alice-pw", "migr")
	if !strings.Contains(notice, "pro1.mail.example.net:587") || !strings.Contains(notice, "webmail.example.net") {
		t.Fatalf("notice lacks the new settings:\n%s", notice)
	}
	t.Logf("%d messages before, %d delivered during the move, %d in the new mailbox (+1 notice, in French)", n, len(delivered), after.Count())
}

// startLabSlots is the lab on a PostgreSQL directory (as in production)
// with a given number of free slots.
func startLabSlots(t *testing.T, slots int) *lab {
	l := startLabOn(t, testenv.StartPostgres(t))
	if slots == 0 {
		free, _ := l.dir.FreeSlots(context.Background(), "emailpro-1", 0)
		for range free {
			// Take the lab's slot away by claiming it for a placeholder.
			if _, err := l.dir.ClaimSlot(context.Background(), "emailpro-1", "reserved@example.org", "migrate:reserved", 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	return l
}

func findSubject(t *testing.T, addr, user, pw, word string) string {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pw).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	found, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "notice."}}}, nil).Wait()
	if err != nil || len(found.AllUIDs()) != 1 {
		t.Fatalf("notice search: %v, %d found, want exactly one", err, len(found.AllUIDs()))
	}
	msgs, err := c.Fetch(imap.UIDSetNum(found.AllUIDs()...), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch notice: %v", err)
	}
	body := string(msgs[0].BodySection[0].Bytes)
	if !strings.Contains(strings.ToLower(body), word) {
		t.Fatalf("notice does not mention %q:\n%s", word, body)
	}
	return body
}
