package reliability

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailshift/mailshift/internal/mailcopy"
)

type quiet struct{}

func (quiet) Printf(string, ...interface{}) {}

// The relay counts the sessions it holds open to the server, and while
// the server is "unavailable" it answers LOGIN NO [UNAVAILABLE] itself,
// which the engine reads as an overload, not a credential problem, and
// which the server never sees.
func TestRelayCountsAndAnswersUnavailable(t *testing.T) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("u@example.com", "pw")
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
		Logger:       quiet{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	fp, err := newFaultProxy("127.0.0.1:0", ln.Addr().String(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fp.Close)
	fp.mu.Lock()
	fp.Refuse, fp.Cut, fp.Stall = 0, 0, 0
	fp.mu.Unlock()

	var clients []*imapclient.Client
	for range 3 {
		c, err := imapclient.DialInsecure(fp.Addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login("u@example.com", "pw").Wait(); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	if open, peak := fp.open.Load(), fp.peak.Load(); open != 3 || peak != 3 {
		t.Fatalf("with 3 sessions: open %d, peak %d", open, peak)
	}
	for _, c := range clients {
		c.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); fp.open.Load() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("open %d after every client closed", fp.open.Load())
		}
	}

	fp.unavailable.Store(true)
	ep := mailcopy.Endpoint{Addr: fp.Addr(), Security: mailcopy.SecurityPlain, User: "u@example.com", Password: "pw"}
	_, err = mailcopy.Measure(context.Background(), ep)
	if got := mailcopy.OverloadKind(err); got != mailcopy.OverloadUnavailable {
		t.Fatalf("Measure() through an unavailable server = %v (kind %q), want NO [UNAVAILABLE]", err, got)
	}
	if _, perm := mailcopy.IsPermanent(err); perm {
		t.Fatalf("Measure() = permanent %v", err)
	}
	if fp.busy.Load() != 1 || fp.peak.Load() != 3 {
		t.Fatalf("busy %d, peak %d: the unavailable answer must not reach the server", fp.busy.Load(), fp.peak.Load())
	}
	fp.unavailable.Store(false)
	if _, err := mailcopy.Measure(context.Background(), ep); err != nil {
		t.Fatalf("Measure() once available again: %v", err)
	}
}
