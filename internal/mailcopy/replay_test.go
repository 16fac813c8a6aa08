package mailcopy_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/testenv"
)

// replayEnv is a source and a destination account, on go-imap's in-memory
// server or on the lab's Dovecot pair.
type replayEnv struct {
	src, dst string // host:port
	user     string
	// condstore: the source announces CONDSTORE (Dovecot), so flag
	// changes are read with CHANGEDSINCE, not by a scan.
	condstore bool
}

func (e replayEnv) srcEP() mailcopy.Endpoint { return ep(e.src, e.user) }
func (e replayEnv) dstEP() mailcopy.Endpoint { return ep(e.dst, e.user) }

// startMemMove is an in-memory server announcing UIDPLUS and MOVE (as
// Dovecot does).
func startMemMove(t *testing.T, user string) string {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(user, pw)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			// Unwrapped: the strict wrapper hides the session's MOVE.
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}},
		InsecureAuth: true,
		Logger:       tlog{t},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// dovecotPair starts the lab's two Dovecots reading one directory, with
// the given accounts on both (password pw).
func dovecotPair(t testing.TB, users ...string) (src, dst string) {
	t.Helper()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "directory.db")
	dir, err := directory.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	sp, dp := testenv.FreePort(t), testenv.FreePort(t)
	for _, sv := range []directory.Service{
		{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: fmt.Sprintf("127.0.0.1:%d", sp), IMAPSecurity: "plain"},
		{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: fmt.Sprintf("127.0.0.1:%d", dp), IMAPSecurity: "plain"},
	} {
		if err := dir.AddService(ctx, sv); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range users {
		for _, sv := range []string{"mxplan-1", "emailpro-1"} {
			if err := dir.AddAccount(ctx, directory.Account{Address: u, ServiceID: sv}, directory.HashPassword(pw)); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := testenv.StartDovecot(t, testenv.DovecotOptions{Name: "replay-src", Directory: db, Services: []string{"mxplan-1"}, Port: sp})
	d := testenv.StartDovecot(t, testenv.DovecotOptions{Name: "replay-dst", Directory: db, Services: []string{"emailpro-1"}, Port: dp})
	return s.Addr, d.Addr
}

func owner(t testing.TB, addr, user string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Login(user, pw).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

func testMsg(tag string, i int) []byte {
	return []byte(fmt.Sprintf("From: someone@example.org\r\nTo: owner@example.com\r\nSubject: %s %d\r\nMessage-ID: <%s-%d@replay.test>\r\nDate: Mon, 02 Nov 2026 10:%02d:00 +0000\r\n\r\nBody of %s message %d.\r\n", tag, i, tag, i, i%60, tag, i))
}

func put(t *testing.T, c *imapclient.Client, folder string, body []byte, flags ...imap.Flag) {
	t.Helper()
	cmd := c.Append(folder, int64(len(body)), &imap.AppendOptions{Flags: flags, Time: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)})
	if _, err := cmd.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("append to %q: %v", folder, err)
	}
}

// seedReplay lays down the mailbox the owner works in: INBOX 6, Work 4,
// Old 3, Projects 2, Projects/Sub 1.
func seedReplay(t *testing.T, c *imapclient.Client) {
	t.Helper()
	for _, f := range []string{"Work", "Old", "Projects", "Projects/Sub"} {
		if err := c.Create(f, nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, f := range []struct {
		name  string
		count int
	}{{"INBOX", 6}, {"Work", 4}, {"Old", 3}, {"Projects", 2}, {"Projects/Sub", 1}} {
		for i := 0; i < f.count; i++ {
			n++
			var fl []imap.Flag
			if i%2 == 0 {
				fl = append(fl, imap.FlagSeen)
			}
			if i == 1 {
				fl = append(fl, imap.FlagFlagged)
			}
			put(t, c, f.name, testMsg("seed", n), fl...)
		}
	}
}

func sel(t *testing.T, c *imapclient.Client, folder string) {
	t.Helper()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatalf("select %q: %v", folder, err)
	}
}

// nth is the UID of the i-th message (from 1) of the selected folder.
func nth(t *testing.T, c *imapclient.Client, i int) imap.UID {
	t.Helper()
	d, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	all := d.AllUIDs()
	if i > len(all) {
		t.Fatalf("only %d messages", len(all))
	}
	return all[i-1]
}

func expunge(t *testing.T, c *imapclient.Client, folder string, idx ...int) {
	t.Helper()
	sel(t, c, folder)
	var set imap.UIDSet
	for _, i := range idx {
		set.AddNum(nth(t, c, i))
	}
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.UIDExpunge(set).Close(); err != nil {
		t.Fatal(err)
	}
}

func store(t *testing.T, c *imapclient.Client, folder string, i int, op imap.StoreFlagsOp, flags ...imap.Flag) {
	t.Helper()
	sel(t, c, folder)
	if err := c.Store(imap.UIDSetNum(nth(t, c, i)), &imap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close(); err != nil {
		t.Fatal(err)
	}
}

func move(t *testing.T, c *imapclient.Client, from, to string, idx ...int) {
	t.Helper()
	sel(t, c, from)
	var set imap.UIDSet
	for _, i := range idx {
		set.AddNum(nth(t, c, i))
	}
	if _, err := c.Move(set, to).Wait(); err != nil {
		t.Fatalf("move %q -> %q: %v", from, to, err)
	}
}

// replayCase is what the owner does during the pre-copy, and what the
// replay must report for it.
type replayCase struct {
	name string
	// change acts through the owner's login on the source (o) and
	// delivers to the destination (d) what must survive.
	change func(t *testing.T, o, d *imapclient.Client) (delivered map[string][][]byte)
	want   mailcopy.ReplayCounts
	// copied is what the copy after the replay must still copy.
	copied int
	kept   int // folders reported kept
}

var replayCases = []replayCase{
	{name: "expunge", change: func(t *testing.T, o, _ *imapclient.Client) map[string][][]byte {
		expunge(t, o, "INBOX", 2, 5)
		expunge(t, o, "Work", 1)
		return nil
	}, want: mailcopy.ReplayCounts{Expunged: 3}},
	{name: "flags", change: func(t *testing.T, o, _ *imapclient.Client) map[string][][]byte {
		store(t, o, "INBOX", 2, imap.StoreFlagsAdd, imap.FlagSeen)        // was unseen
		store(t, o, "INBOX", 2, imap.StoreFlagsDel, imap.FlagFlagged)     // same message
		store(t, o, "Work", 3, imap.StoreFlagsAdd, imap.Flag("$Label1"))  // keyword
		store(t, o, "Projects/Sub", 1, imap.StoreFlagsDel, imap.FlagSeen) // cleared
		store(t, o, "Old", 2, imap.StoreFlagsAdd, imap.FlagAnswered)      // answered
		store(t, o, "Old", 3, imap.StoreFlagsSet, imap.FlagSeen)          // unchanged: already \Seen only
		return nil
	}, want: mailcopy.ReplayCounts{Flags: 4}},
	{name: "move", change: func(t *testing.T, o, _ *imapclient.Client) map[string][][]byte {
		move(t, o, "INBOX", "Work", 1, 3)
		move(t, o, "Work", "Old", 2)
		store(t, o, "Old", 4, imap.StoreFlagsAdd, imap.FlagAnswered) // the moved one, after the move
		return nil
	}, want: mailcopy.ReplayCounts{Moved: 3, Flags: 1}},
	{name: "folder-create", change: func(t *testing.T, o, _ *imapclient.Client) map[string][][]byte {
		if err := o.Create("New", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		move(t, o, "INBOX", "New", 4)
		put(t, o, "New", testMsg("new", 1))
		return nil
	}, want: mailcopy.ReplayCounts{Moved: 1}, copied: 1},
	{name: "folder-rename", change: func(t *testing.T, o, _ *imapclient.Client) map[string][][]byte {
		if err := o.Rename("Projects", "Clients", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		return nil
	}, want: mailcopy.ReplayCounts{Folders: 1}},
	{name: "folder-delete", change: func(t *testing.T, o, _ *imapclient.Client) map[string][][]byte {
		if err := o.Delete("Old").Wait(); err != nil {
			t.Fatal(err)
		}
		return nil
	}, want: mailcopy.ReplayCounts{Expunged: 3, Folders: 1}},
	{name: "folder-recreate", change: func(t *testing.T, o, _ *imapclient.Client) map[string][][]byte {
		// Deleted and created again: a new UIDVALIDITY. Two of its four
		// messages come back (one with other flags), two do not.
		if err := o.Delete("Work").Wait(); err != nil {
			t.Fatal(err)
		}
		if err := o.Create("Work", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		put(t, o, "Work", testMsg("seed", 7), imap.FlagSeen)
		put(t, o, "Work", testMsg("seed", 8), imap.FlagSeen) // was \Flagged
		return nil
	}, want: mailcopy.ReplayCounts{Expunged: 2, Flags: 1}},
	{name: "mix", change: func(t *testing.T, o, d *imapclient.Client) map[string][][]byte {
		// Mail delivered to the new mailbox (after a switch): never
		// touched, and it keeps the folder the owner deleted.
		late, foreign := testMsg("late", 1), testMsg("foreign", 1)
		put(t, d, "INBOX", late)
		put(t, d, "Work", foreign)
		expunge(t, o, "INBOX", 6)
		store(t, o, "INBOX", 2, imap.StoreFlagsAdd, imap.FlagSeen)
		move(t, o, "Work", "Old", 4)
		move(t, o, "Work", "INBOX", 2)
		sel(t, o, "INBOX")                              // Dovecot drops a session whose selected folder is deleted
		if err := o.Delete("Work").Wait(); err != nil { // with 2 copied messages left
			t.Fatal(err)
		}
		if err := o.Rename("Projects", "Clients", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		if err := o.Create("New", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		move(t, o, "Old", "New", 1)
		put(t, o, "INBOX", testMsg("arrived", 1))
		return map[string][][]byte{"INBOX": {late}, "Work": {foreign}}
	}, want: mailcopy.ReplayCounts{Expunged: 3, Flags: 1, Moved: 3, Folders: 1}, copied: 1, kept: 1},
}

// runReplayCase copies, lets the owner change the source (and mail reach
// the destination), replays, copies what is new, and checks the
// destination is the source as the owner left it plus what was delivered;
// then a rerun changes nothing.
func runReplayCase(t *testing.T, e replayEnv, rc replayCase) {
	ctx := context.Background()
	o := owner(t, e.src, e.user)
	seedReplay(t, o)
	first, err := mailcopy.Copy(ctx, e.srcEP(), e.dstEP(), mailcopy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Copied != 16 {
		t.Fatalf("first copy copied %d, want 16", first.Copied)
	}
	d := owner(t, e.dst, e.user)
	delivered := rc.change(t, o, d)

	rr, err := mailcopy.Replay(ctx, e.srcEP(), e.dstEP(), mailcopy.Options{Checkpoints: first.Checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	if rr.ReplayCounts != rc.want {
		t.Fatalf("Replay() = %+v, want %+v (items %v)", rr.ReplayCounts, rc.want, rr.Items)
	}
	if e.condstore && (rr.ChangedSince == 0 || rr.Scanned != 0) || !e.condstore && (rr.ChangedSince != 0 || rr.Scanned == 0) {
		t.Fatalf("flags read with CHANGEDSINCE in %d folders, scanned in %d (CONDSTORE: %v)", rr.ChangedSince, rr.Scanned, e.condstore)
	}
	kept := 0
	for _, it := range rr.Items {
		if it.Category == mailcopy.CatFolderKept {
			kept++
		}
	}
	if kept != rc.kept || len(rr.Items) != rc.kept {
		t.Fatalf("items %v, want %d folder(s) kept and nothing else", rr.Items, rc.kept)
	}
	second, err := mailcopy.Copy(ctx, e.srcEP(), e.dstEP(), mailcopy.Options{Checkpoints: rr.Checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	if second.Copied != rc.copied {
		t.Fatalf("copy after the replay copied %d, want %d (a moved message copied again?)", second.Copied, rc.copied)
	}
	checkOwnerState(t, e, delivered)

	// A rerun (a retried final delta) finds nothing to do.
	again, err := mailcopy.Replay(ctx, e.srcEP(), e.dstEP(), mailcopy.Options{Checkpoints: second.Checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	if again.Total() != 0 {
		t.Fatalf("rerun replayed %+v, want nothing", again.ReplayCounts)
	}
	third, err := mailcopy.Copy(ctx, e.srcEP(), e.dstEP(), mailcopy.Options{Checkpoints: again.Checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	if third.Copied != 0 {
		t.Fatalf("rerun copied %d, want 0", third.Copied)
	}
	checkOwnerState(t, e, delivered)
}

// checkOwnerState: the destination holds exactly the source's folders and
// messages (flags and dates included), plus the delivered messages.
func checkOwnerState(t *testing.T, e replayEnv, delivered map[string][][]byte) {
	t.Helper()
	src, dst := read(t, e.src, e.user), read(t, e.dst, e.user)
	for f, bodies := range delivered {
		for _, b := range bodies {
			h := testenv.HashOf(b)
			i := sort.Search(len(dst[f]), func(i int) bool { return dst[f][i].Hash >= h })
			if i == len(dst[f]) || dst[f][i].Hash != h {
				t.Fatalf("the message delivered to %q on the destination is gone", f)
			}
			dst[f] = append(dst[f][:i:i], dst[f][i+1:]...)
			if _, onSrc := src[f]; !onSrc && len(dst[f]) == 0 {
				delete(dst, f) // kept for it
			}
		}
	}
	if miss := testenv.Missing(src, dst); len(miss) > 0 {
		t.Fatalf("%d differences, first: %s", len(miss), strings.Join(miss, "; "))
	}
	if dup := testenv.Duplicates(src, dst); len(dup) > 0 {
		t.Fatalf("duplicates: %s", strings.Join(dup, "; "))
	}
	if extra := testenv.Extra(src, dst); len(extra) > 0 {
		t.Fatalf("unexpected on the destination: %s", strings.Join(extra, "; "))
	}
	var sf, df []string
	for f := range src {
		sf = append(sf, f)
	}
	for f := range dst {
		df = append(df, f)
	}
	sort.Strings(sf)
	sort.Strings(df)
	if strings.Join(sf, ",") != strings.Join(df, ",") {
		t.Fatalf("destination folders %v, want the source's %v", df, sf)
	}
}

func TestReplayMemory(t *testing.T) {
	for _, rc := range replayCases {
		t.Run(rc.name, func(t *testing.T) {
			const user = "owner@example.com"
			runReplayCase(t, replayEnv{src: startMemMove(t, user), dst: startMemMove(t, user), user: user}, rc)
		})
	}
}

func TestReplayDovecot(t *testing.T) {
	var users []string
	for i := range replayCases {
		users = append(users, fmt.Sprintf("owner%d@example.com", i))
	}
	src, dst := dovecotPair(t, users...)
	for i, rc := range replayCases {
		t.Run(rc.name, func(t *testing.T) {
			runReplayCase(t, replayEnv{src: src, dst: dst, user: users[i], condstore: true}, rc)
		})
	}
}

type tlog struct{ t *testing.T }

func (l tlog) Printf(f string, a ...interface{}) { l.t.Logf(f, a...) }
