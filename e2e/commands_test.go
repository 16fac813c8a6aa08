package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/mailgen"
	"github.com/mailshift/mailshift/internal/testenv"
)

// labWithArchive starts the lab with alice's slot assigned, logs in to
// her source mailbox as its owner, with an "Archive" folder created
// beside INBOX, and returns a way to append there.
func labWithArchive(t *testing.T) (*lab, func(folder string, body []byte, flags ...imap.Flag)) {
	t.Helper()
	l := startLab(t)
	l.assignSlot(t, "migrate:alice@example.com")
	c, err := imapclient.DialInsecure(l.src.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("alice@example.com", "alice-pw").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	return l, func(folder string, body []byte, flags ...imap.Flag) {
		t.Helper()
		cmd := c.Append(folder, int64(len(body)), &imap.AppendOptions{Flags: flags})
		if _, err := cmd.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMultiAppend: to a Dovecot that announces MULTIAPPEND the copy sends
// its messages 50 to a command; a MULTIAPPEND the destination refuses
// (one message in it has a keyword Dovecot will not store) is sent again
// message by message: the others arrive with every keyword, the one
// refused alone is copied without its keyword and reported. Verify finds
// every message.
func TestMultiAppend(t *testing.T) {
	l, put := labWithArchive(t)
	ctx := context.Background()
	total := 0
	if err := mailgen.Generate(mailgen.Spec{Seed: 31, Messages: 340, MeanSize: 4 << 10}, func(m mailgen.Message) error {
		folder := "Archive"
		if total%8 == 0 {
			folder = "INBOX"
		}
		put(folder, m.Body, imap.FlagSeen, "$Work")
		total++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Dovecot refuses the keyword in an APPEND too: the message goes into
	// the source's Maildir, as an older server or client left it there.
	long := "Long" + strings.Repeat("k", 80)
	inbox := filepath.Join(l.src.Dir, "mail", "example.com", "alice")
	kw, err := os.ReadFile(filepath.Join(inbox, "dovecot-keywords"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(kw), "0 $Work\n") {
		t.Fatalf("source keywords file %q, want $Work as keyword 0", kw)
	}
	if err := os.WriteFile(filepath.Join(inbox, "dovecot-keywords"), append(kw, []byte("1 "+long+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := filepath.Join(inbox, "cur", "1700000000.M1P1.test:2,Sb")
	if err := os.WriteFile(msg, []byte("From: a@example.com\r\nSubject: long keyword\r\nMessage-ID: <kwlong@example.com>\r\n\r\nkeyword\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{msg, filepath.Join(inbox, "dovecot-keywords")} {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	total++

	// A MULTIAPPEND counts once.
	proxy, appends := testenv.CommandCounter(t, l.dst.Addr, `^\S+ APPEND `)
	src := mailcopy.Endpoint{Addr: l.src.Addr, Security: mailcopy.SecurityPlain, User: "alice@example.com", MasterUser: "mailshift", Password: masterPW}
	dst := src
	dst.Addr = proxy
	res, err := mailcopy.Copy(ctx, src, dst, mailcopy.Options{Connections: 1})
	if err != nil {
		t.Fatalf("copy: %v\n%s", err, l.dst.Log())
	}
	if res.Copied != total {
		t.Fatalf("copied %d of %d", res.Copied, total)
	}
	var dropped []mailcopy.Skip
	for _, it := range res.Items() {
		if it.Category == mailcopy.CatKeywordDropped {
			dropped = append(dropped, it)
		}
	}
	if len(dropped) != 1 || dropped[0].MessageID != "<kwlong@example.com>" {
		t.Fatalf("keyword-dropped items %+v, want the one message with the long keyword", dropped)
	}
	// Archive's 297 messages go in 6 MULTIAPPENDs; INBOX's 44 in one, which
	// the destination refuses, then 44 APPENDs and one without the keyword.
	if n := appends.Load(); n > 60 || n < 7 {
		t.Fatalf("%d APPEND commands for %d messages, want about 52 (6 + 1 MULTIAPPENDs, 45 single retries)", n, total)
	}
	got, err := testenv.Read(l.dst.Addr, "alice@example.com", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	withWork := 0
	for _, msgs := range got {
		for _, m := range msgs {
			if slices.Contains(strings.Fields(m.Flags), "$work") {
				withWork++
			}
			if strings.Contains(m.Flags, strings.ToLower(long)) {
				t.Fatalf("the long keyword arrived: %v", m.Flags)
			}
		}
	}
	if withWork != total-1 {
		t.Fatalf("%d messages with $Work on the destination, want %d: the refused batch's other messages keep their keywords", withWork, total-1)
	}
	v, err := mailcopy.Verify(ctx, src, mailcopy.Endpoint{Addr: l.dst.Addr, Security: mailcopy.SecurityPlain, User: "alice@example.com", MasterUser: "mailshift", Password: masterPW},
		mailcopy.Options{Checkpoints: res.Checkpoints})
	if err != nil || !v.OK() || v.Checked != total {
		t.Fatalf("verify: %+v, %v", v, err)
	}
	t.Logf("%d messages in %d APPEND commands; %s", total, appends.Load(), fmt.Sprint(dropped[0].Reason))
}

// TestVerifyReadsBodiesOnce: verify reads each folder's bodies with one
// FETCH on each server; only a message whose bytes came with 0x80 (where
// Dovecot serves a NUL) is looked at again the binary way, so a folder
// without one costs no BODYSTRUCTURE pass. The message with a NUL byte is
// still checked byte for byte.
func TestVerifyReadsBodiesOnce(t *testing.T) {
	l, put := labWithArchive(t)
	ctx := context.Background()
	total := 0
	for i := range 60 {
		folder := "Archive"
		if i%3 == 0 {
			folder = "INBOX"
		}
		put(folder, fmt.Appendf(nil, "From: a@example.com\r\nSubject: plain %d\r\nMessage-ID: <plain%d@example.com>\r\n\r\n%s\r\n", i, i, strings.Repeat("seven-bit text ", 1+i)))
		total++
	}
	// A message with a NUL byte, as a server that took it left it on disk.
	nul := filepath.Join(l.src.Dir, "mail", "example.com", "alice", "cur", "1700000001.M2P1.test:2,S")
	if err := os.WriteFile(nul, []byte("From: a@example.com\r\nSubject: nul\r\nMessage-ID: <nul@example.com>\r\n\r\nbefore\x00after\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(nul, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	total++
	src := mailcopy.Endpoint{Addr: l.src.Addr, Security: mailcopy.SecurityPlain, User: "alice@example.com", MasterUser: "mailshift", Password: masterPW}
	dst := src
	dst.Addr = l.dst.Addr
	res, err := mailcopy.Copy(ctx, src, dst, mailcopy.Options{Connections: 1})
	if err != nil || res.Copied != total {
		t.Fatalf("copy: %+v, %v", res, err)
	}
	// go-imap asks for the structure as BODY (RFC 3501's short form).
	const structure = `(?i)^\S+ UID FETCH \S+ \(UID BODY(STRUCTURE)?\)`
	sp, srcPasses := testenv.CommandCounter(t, l.src.Addr, structure)
	dp, dstPasses := testenv.CommandCounter(t, l.dst.Addr, structure)
	vs, vd := src, dst
	vs.Addr, vd.Addr = sp, dp
	v, err := mailcopy.Verify(ctx, vs, vd, mailcopy.Options{Checkpoints: res.Checkpoints})
	if err != nil || !v.OK() || v.Checked != total || v.Exact != total {
		t.Fatalf("verify: %+v, %v", v, err)
	}
	// INBOX (with the NUL message) once on each side; Archive never.
	if s, d := srcPasses.Load(), dstPasses.Load(); s != 1 || d != 1 {
		t.Fatalf("BODYSTRUCTURE passes: source %d, destination %d; want one each (INBOX, for its one message with a NUL byte)", s, d)
	}
	// And the check still has teeth for that message: its copy with 0x80
	// where the NUL was (what a copy through BODY[] alone would store) is
	// not the source's.
	matches, err := filepath.Glob(filepath.Join(l.dst.Dir, "mail", "example.com", "alice", "cur", "*"))
	if err != nil {
		t.Fatal(err)
	}
	altered := 0
	for _, f := range matches {
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(b), "<nul@example.com>") {
			continue
		}
		if err := os.WriteFile(f, []byte(strings.ReplaceAll(string(b), "\x00", "\x80")), 0o600); err != nil {
			t.Fatal(err)
		}
		altered++
	}
	if altered != 1 {
		t.Fatalf("found %d destination files of the NUL message, want 1", altered)
	}
	if v, err := mailcopy.Verify(ctx, src, dst, mailcopy.Options{Checkpoints: res.Checkpoints}); err != nil || v.Exact != total-1 {
		t.Fatalf("verify after the NUL became 0x80 on the destination: %+v, %v; want every message exact but that one", v, err)
	}
	t.Logf("%d messages verified exact; BODYSTRUCTURE passes %d and %d", v.Exact, srcPasses.Load(), dstPasses.Load())
}

// TestMultiAppendOverloaded: a server that answers a whole MULTIAPPEND
// "NO [UNAVAILABLE]" (here after storing it, the worst case) stops the
// pass as a transient overload, nothing refused, preserved or reported;
// the next attempt, one message per APPEND, finds what the server did
// store by content and copies the rest: every message once.
func TestMultiAppendOverloaded(t *testing.T) {
	l, put := labWithArchive(t)
	ctx := context.Background()
	total := 0
	if err := mailgen.Generate(mailgen.Spec{Seed: 41, Messages: 150, MeanSize: 3 << 10}, func(m mailgen.Message) error {
		put("Archive", m.Body)
		total++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	proxy, rewritten := testenv.AnswerRewriter(t, l.dst.Addr, `^m\d+ OK \[APPENDUID \d+ \d+:\d+\]`, "NO [UNAVAILABLE] Try again later", 1)
	src := mailcopy.Endpoint{Addr: l.src.Addr, Security: mailcopy.SecurityPlain, User: "alice@example.com", MasterUser: "mailshift", Password: masterPW}
	dst := src
	dst.Addr = proxy
	var cps map[string]mailcopy.Checkpoint
	_, err := mailcopy.Copy(ctx, src, dst, mailcopy.Options{Connections: 1, OnProgress: func(p mailcopy.Progress) { cps = p.Checkpoints }})
	if err == nil {
		t.Fatal("copy succeeded through a NO [UNAVAILABLE] to a MULTIAPPEND")
	}
	if _, perm := mailcopy.IsPermanent(err); perm || mailcopy.OverloadKind(err) != mailcopy.OverloadUnavailable {
		t.Fatalf("copy error %v: want a transient overload (unavailable)", err)
	}
	if rewritten.Load() < 1 {
		t.Fatal("no MULTIAPPEND answer was rewritten")
	}
	res, err := mailcopy.Copy(ctx, src, dst, mailcopy.Options{Connections: 1, Checkpoints: cps, NoMultiAppend: true})
	if err != nil {
		t.Fatal(err)
	}
	if items := res.Items(); len(items) != 0 {
		t.Fatalf("items %+v, want none: an overload is not a refusal", items)
	}
	if res.Copied+res.Present != total || res.Present == 0 {
		t.Fatalf("second attempt: %d copied, %d found already there, want %d in all, some found (the batch the server stored)", res.Copied, res.Present, total)
	}
	before, after := l.mailboxes(t)
	sameMail(t, "after an overloaded MULTIAPPEND and a retry", toCourier(before), after)
	t.Logf("%d messages: %d stored by the MULTIAPPEND answered NO (found by content), %d copied on the retry", total, res.Present, res.Copied)
}
