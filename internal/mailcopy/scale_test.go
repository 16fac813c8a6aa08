package mailcopy_test

import (
	"bytes"
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// countingServer is a go-imap in-memory server that counts, at the server,
// the connections it accepted and the SELECT/EXAMINE commands it served.
type countingServer struct {
	*memServer
	accepted, selects atomic.Int64
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

type countingSession struct {
	imapserver.Session
	n *atomic.Int64
}

func (s countingSession) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.n.Add(1)
	return s.Session.Select(mailbox, options)
}

func startCounting(t *testing.T, username string, caps ...imap.Cap) *countingServer {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(username, pw)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	cs := &countingServer{}
	capSet := imap.CapSet{imap.CapIMAP4rev1: {}}
	for _, c := range caps {
		capSet[c] = struct{}{}
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return countingSession{Session: devstack.StrictSession(mem.NewSession()), n: &cs.selects}, nil, nil
		},
		Caps:         capSet,
		InsecureAuth: true,
		Logger:       silent{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(countingListener{Listener: ln, n: &cs.accepted}) }()
	t.Cleanup(func() { _ = srv.Close() })
	cs.memServer = &memServer{addr: ln.Addr().String(), user: u}
	return cs
}

func (s *countingServer) reset() {
	s.accepted.Store(0)
	s.selects.Store(0)
}

// TestConnectionsScaleWithMailbox: a small mailbox is copied on one
// connection pair although more are allowed; one more pair per
// MessagesPerPair messages, never more than Connections.
func TestConnectionsScaleWithMailbox(t *testing.T) {
	for _, tc := range []struct {
		name     string
		perPair  int
		conns    int
		wantSide int64
	}{
		{"small mailbox, default", 0, 2, 1},
		{"100 messages a pair, capped at 2", 100, 2, 2},
		{"100 messages a pair, up to 3", 100, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := startCounting(t, "a@x.test"), startCounting(t, "a@x.test")
			n := src.seed(t, spec)
			res, err := mailcopy.Copy(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"),
				mailcopy.Options{Connections: tc.conns, MessagesPerPair: tc.perPair})
			if err != nil {
				t.Fatal(err)
			}
			if res.Copied != n {
				t.Fatalf("Copy() copied %d, want %d", res.Copied, n)
			}
			if got := src.accepted.Load(); got != tc.wantSide {
				t.Fatalf("source accepted %d connections, want %d", got, tc.wantSide)
			}
			if got := dst.accepted.Load(); got != tc.wantSide {
				t.Fatalf("destination accepted %d connections, want %d", got, tc.wantSide)
			}
			assertSame(t, read(t, src.addr, "a@x.test"), read(t, dst.addr, "a@x.test"))
		})
	}
}

// TestDeltaSkipsUnchangedFolders: a delta pass opens no folder whose
// UIDNEXT says nothing arrived past its checkpoint, copies what arrived in
// the others, and keeps every folder in its result; a new UIDVALIDITY is
// never taken for "unchanged".
func TestDeltaSkipsUnchangedFolders(t *testing.T) {
	ctx := context.Background()
	src, dst := startCounting(t, "a@x.test"), startCounting(t, "a@x.test")
	n := src.seed(t, spec)
	from, to := ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test")
	res, err := mailcopy.Copy(ctx, from, to, mailcopy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != n {
		t.Fatalf("Copy() copied %d, want %d", res.Copied, n)
	}
	folders := len(res.Folders)

	// Nothing new: no SELECT on either side, nothing copied.
	src.reset()
	dst.reset()
	delta, err := mailcopy.Copy(ctx, from, to, mailcopy.Options{Checkpoints: res.Checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	if delta.Copied != 0 || delta.Present != 0 {
		t.Fatalf("delta copied %d, present %d; want 0, 0", delta.Copied, delta.Present)
	}
	if s, d := src.selects.Load(), dst.selects.Load(); s != 0 || d != 0 {
		t.Fatalf("delta with nothing new selected %d source and %d destination folders, want 0 and 0", s, d)
	}
	if len(delta.Folders) != folders {
		t.Fatalf("delta lists %d folders, want %d", len(delta.Folders), folders)
	}
	for f, cp := range res.Checkpoints {
		if got := delta.Checkpoints[f]; got.LastUID != cp.LastUID || got.UIDValidity != cp.UIDValidity {
			t.Fatalf("checkpoint of %q = %+v after an empty delta, want %+v", f, got, cp)
		}
	}

	// One message arrives in Sent: only Sent is opened, on each side.
	msg := []byte("From: b@x.test\r\nTo: a@x.test\r\nSubject: late\r\nMessage-ID: <late@x.test>\r\n\r\nlate\r\n")
	if _, err := src.user.Append("Sent", bytes.NewReader(msg), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	src.reset()
	dst.reset()
	delta, err = mailcopy.Copy(ctx, from, to, mailcopy.Options{Checkpoints: delta.Checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	if delta.Copied != 1 {
		t.Fatalf("delta copied %d, want 1", delta.Copied)
	}
	if s, d := src.selects.Load(), dst.selects.Load(); s != 1 || d != 1 {
		t.Fatalf("delta selected %d source and %d destination folders, want 1 and 1 (Sent)", s, d)
	}
	assertSame(t, read(t, src.addr, "a@x.test"), read(t, dst.addr, "a@x.test"))

	// A checkpoint under another UIDVALIDITY is not "unchanged": the
	// folder is opened and matched by content, nothing copied twice.
	cps := map[string]mailcopy.Checkpoint{}
	for f, cp := range delta.Checkpoints {
		cp.UIDValidity++
		cps[f] = cp
	}
	src.reset()
	again, err := mailcopy.Copy(ctx, from, to, mailcopy.Options{Checkpoints: cps})
	if err != nil {
		t.Fatal(err)
	}
	if again.Copied != 0 || again.Present != n+1 {
		t.Fatalf("copy after a UIDVALIDITY change copied %d, present %d; want 0, %d", again.Copied, again.Present, n+1)
	}
	if src.selects.Load() == 0 {
		t.Fatal("no source folder opened although every UIDVALIDITY changed")
	}
	assertSame(t, read(t, src.addr, "a@x.test"), read(t, dst.addr, "a@x.test"))
}

// TestMeasureByStatusSize: a server with STATUS=SIZE is measured without
// opening a folder, to the same totals as one measured folder by folder.
func TestMeasureByStatusSize(t *testing.T) {
	ctx := context.Background()
	fast, slow := startCounting(t, "a@x.test", imap.CapStatusSize), startCounting(t, "a@x.test")
	n := fast.seed(t, spec)
	slow.seed(t, spec)
	got, err := mailcopy.Measure(ctx, ep(fast.addr, "a@x.test"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := mailcopy.Measure(ctx, ep(slow.addr, "a@x.test"))
	if err != nil {
		t.Fatal(err)
	}
	if *got != *want || got.Messages != n || got.Bytes == 0 {
		t.Fatalf("Measure() with STATUS=SIZE = %+v, folder by folder = %+v; want equal, %d messages", *got, *want, n)
	}
	if s := fast.selects.Load(); s != 0 {
		t.Fatalf("Measure() with STATUS=SIZE selected %d folders, want 0", s)
	}
	if s := slow.selects.Load(); s == 0 {
		t.Fatal("Measure() without STATUS=SIZE selected no folder: the comparison measures nothing")
	}
}
