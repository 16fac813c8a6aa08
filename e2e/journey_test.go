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
	for sv, addr := range map[string]string{"mxplan-1": l.src.SieveAddr, "emailpro-1": l.dst.SieveAddr} {
		if err := l.dir.SetSieveAddr(ctx, sv, addr); err != nil {
			t.Fatal(err)
		}
	}
	n := seedOverIMAP(t, l.src.Addr, owner, "alice-pw", mailgen.Spec{Seed: 77, Messages: 300, MeanSize: 8 << 10, NoIDPercent: 3, DupPercent: 3})
	// The owner files mailing-list mail into a folder with a filter.
	seed := imapLogin(t, l.src.Addr, owner, "alice-pw")
	if err := seed.Create("Listes/Débats", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	seed.Close()
	sc := ownerSieve(t, l.src.SieveAddr)
	if err := sc.PutScript("principal", mainScript); err != nil {
		t.Fatal(err)
	}
	if err := sc.SetActive("principal"); err != nil {
		t.Fatal(err)
	}
	before, err := testenv.Read(l.src.Addr, owner, "alice-pw")
	if err != nil {
		t.Fatal(err)
	}

	_, c := testenv.StartTemporal(t, "")
	cfg := config.Defaults()
	cfg.MasterUser, cfg.MasterPassword, cfg.IMAPPlain = "mailshift", masterPW, true
	cfg.DNSResolver, cfg.DNSOverride = b.PrimaryAddr(), b.Override()
	// Operators listen on a webhook (the receiving end of a real POST).
	hook := startHook(t, "hook-secret")
	cfg.Notify.WebhookURL, cfg.Notify.WebhookSecret = hook.url+"/ops/token", "hook-secret"
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
	ev := hook.wait(t, func(e hookEvent) bool { return e.Kind == "needs-attention" && e.Account == owner })
	if ev.ErrorType != "RedirectionPresent" || ev.Stage != string(workflows.StagePreflight) || !strings.Contains(ev.Error, "alice@gmail.example") || !ev.signed {
		t.Fatalf("operators were told %+v, want a signed needs-attention at preflight naming the redirection", ev)
	}
	t.Logf("webhook: %s %s at %s (%s)", ev.Kind, ev.Account, ev.Stage, ev.ErrorType)
	step("the address has a redirection: preflight refuses, operators are notified")
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

	// The cutover goes in a window that opens one to two minutes from
	// now (minutes are the window's grain).
	opens := time.Now().UTC().Truncate(time.Minute).Add(2 * time.Minute)
	window := opens.Format("15:04") + "-" + opens.Add(time.Hour).Format("15:04") + " UTC"
	if err := env.ActWith(ctx, workflows.UpdateSetWindow, "", []string{owner}, workflows.ActionInput{By: "alice", Reason: "tonight", Window: window}); err != nil {
		t.Fatal(err)
	}
	step("cutover window set to " + window)

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
			// Four a second: the window's wait (one to two minutes) lets
			// a few hundred arrive for the final delta.
			case <-time.After(250 * time.Millisecond):
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

	// The copy is done before the window: the owner still works, and
	// finds the advance notice in the old INBOX, once.
	waitStage(t, c, owner, workflows.StageWaitWindow)
	if time.Now().After(opens) {
		t.Fatalf("the copy ended after the window opened (%v): the test's window is too close", opens)
	}
	if err := login(l.src.Addr, owner, "alice-pw"); err != nil {
		t.Fatalf("owner locked out while waiting for the window: %v", err)
	}
	// The stage is entered before its first step (the notice) runs.
	waitFor(t, "the advance notice", func() bool {
		ids, _ := markedBodies(t, l.src.Addr, owner+"*mailshift", masterPW, "advance.")
		return len(ids) > 0
	})
	ids, advance := markedBodies(t, l.src.Addr, owner+"*mailshift", masterPW, "advance.")
	if len(ids) != 1 || !strings.Contains(advance, opens.Format("15:04")) || !strings.Contains(advance, "pro1.mail.example.net:587") || !strings.Contains(advance, "minute(s)") {
		t.Fatalf("source INBOX holds %d advance notices, want 1 with the window and the new settings:\n%s", len(ids), advance)
	}
	if _, err := env.Status(ctx, "", []string{owner}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "window") {
		t.Fatalf("status does not say the migration waits for the window:\n%s", out.String())
	}
	step("copied while the owner works; waiting for the window; advance notice in the old INBOX")

	// 4. The window opens (a real clock: the test waits for it); the lock,
	// the final delta and the switch follow. The domain's records are
	// wrong: the diagnostic names what to set.
	time.Sleep(time.Until(opens))
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
	time.Sleep(time.Second) // let a few messages arrive after the switch
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
	// The filters are on the new server, active, with the folder as the
	// copy named it, and delivery there files list mail into it.
	if r.Filters == nil || r.Filters.Active != "principal" || r.Filters.Installed != 1 {
		t.Fatalf("filters carried = %+v, want principal installed and active", r.Filters)
	}
	dsc := ownerSieve(t, l.dst.SieveAddr)
	if scripts, err := dsc.ListScripts(); err != nil || len(scripts) != 1 || scripts[0].Name != "principal" || !scripts[0].Active {
		t.Fatalf("destination scripts = %+v, %v; want principal, active", scripts, err)
	}
	if body, err := dsc.GetScript("principal"); err != nil || !strings.Contains(body, `fileinto "INBOX.Listes.Débats"`) {
		t.Fatalf("destination script = %q, %v; want the folder as the copy mapped it", body, err)
	}
	deliverLDA(t, l.dst, owner, "From: bob@example.org\r\nTo: "+owner+"\r\nSubject: ordre du jour\r\nList-Id: <debats.example.org>\r\nMessage-ID: <debat-1@example.org>\r\n\r\nBonjour.\r\n")
	lc := imapLogin(t, l.dst.Addr, owner, "alice-pw")
	if _, err := lc.Select("INBOX.Listes.Débats", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if res, err := lc.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "debat-1@example.org"}}}, nil).Wait(); err != nil || len(res.AllUIDs()) != 1 {
		t.Fatalf("the list message is not in INBOX.Listes.Débats on the new server: %v\n%s", err, l.dst.Log())
	}
	lc.Close()
	t.Logf("filters: %s active on the new server; a list message delivered there lands in INBOX.Listes.Débats", r.Filters.Active)

	// The advance notice stayed in the old mailbox, once; the copy, the
	// final delta and verify left it there.
	if ids, _ := markedBodies(t, l.src.Addr, owner+"*mailshift", masterPW, "advance."); len(ids) != 1 {
		t.Fatalf("the old INBOX holds %d advance notices at the end, want 1", len(ids))
	}
	if ids, _ := markedBodies(t, l.dst.Addr, owner, "alice-pw", "advance."); len(ids) != 0 {
		t.Fatalf("the new mailbox holds %d advance notices, want none", len(ids))
	}
	if locked := stageTime(&r, workflows.StageLockSource); locked.Before(opens) {
		t.Fatalf("locked at %v, before the window opened at %v", locked, opens)
	}
	t.Logf("%d messages before, %d delivered during the move, %d in the new mailbox (+1 notice, in French); lockout %.1f s", n, len(delivered), after.Count(), r.LockoutSeconds)
}

// startLabSlots is the lab on a PostgreSQL directory (as in production)
// with a given number of free slots.
func startLabSlots(t *testing.T, slots int) *lab {
	// Both servers run ManageSieve: the owner's filters move too.
	l := startLabOpts(t, testenv.StartPostgres(t), false, true)
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

// markedBodies returns the UIDs and the first body of the INBOX messages
// whose Message-ID holds marker.
func markedBodies(t *testing.T, addr, user, pw, marker string) ([]imap.UID, string) {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pw).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	found, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: marker}}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	uids := found.AllUIDs()
	if len(uids) == 0 {
		return nil, ""
	}
	msgs, err := c.Fetch(imap.UIDSetNum(uids[0]), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch marked message: %v", err)
	}
	return uids, string(msgs[0].BodySection[0].Bytes)
}

func stageTime(r *workflows.Result, s workflows.Stage) time.Time {
	for _, e := range r.Stages {
		if e.Stage == s {
			return e.At
		}
	}
	return time.Time{}
}
