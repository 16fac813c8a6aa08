package mailcopy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailshift/mailshift/internal/mailcopy"
)

// busySession is a real in-memory session whose LOGIN gets the answer a
// busy server gives.
type busySession struct {
	imapserver.Session
	answer *imap.Error
}

func (s busySession) Login(string, string) error { return s.answer }

// startBusy runs a go-imap server that answers every LOGIN with answer.
func startBusy(t *testing.T, answer *imap.Error) string {
	t.Helper()
	mem := imapmemserver.New()
	mem.AddUser(imapmemserver.NewUser("u@example.com", pw))
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return busySession{Session: mem.NewSession(), answer: answer}, nil, nil
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
	return ln.Addr().String()
}

// Every way a server says "not now" is read as its kind of overload, over
// the wire, and none of them parks the migration as a credential problem.
func TestOverloadAnswersAtLogin(t *testing.T) {
	no := func(code imap.ResponseCode, text string) *imap.Error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	for _, tc := range []struct {
		answer *imap.Error
		want   string
	}{
		{no(imap.ResponseCodeUnavailable, "Temporary authentication failure"), mailcopy.OverloadUnavailable},
		{no(imap.ResponseCodeLimit, "Too many concurrent sessions"), mailcopy.OverloadLimit},
		{no("", "Request throttled, slow down"), mailcopy.OverloadThrottled},
		{no("", "Server busy, try again later"), mailcopy.OverloadTryLater},
		{no("", "Maximum number of connections from user+IP exceeded"), mailcopy.OverloadTooMany},
	} {
		t.Run(tc.want, func(t *testing.T) {
			addr := startBusy(t, tc.answer)
			_, err := mailcopy.Measure(context.Background(), mailcopy.Endpoint{Addr: addr, Security: mailcopy.SecurityPlain, User: "u@example.com", Password: pw})
			if err == nil {
				t.Fatalf("Measure() succeeded against a server answering %v", tc.answer)
			}
			if got := mailcopy.OverloadKind(err); got != tc.want {
				t.Fatalf("OverloadKind(%v) = %q, want %q", err, got, tc.want)
			}
			if kind, perm := mailcopy.IsPermanent(err); perm {
				t.Fatalf("Measure() = permanent %s (%v): an overloaded server is not a credential problem", kind, err)
			}
		})
	}
	// A wrong password is still a credential problem, not an overload.
	addr := startBusy(t, no(imap.ResponseCodeAuthenticationFailed, "Authentication failed."))
	_, err := mailcopy.Measure(context.Background(), mailcopy.Endpoint{Addr: addr, Security: mailcopy.SecurityPlain, User: "u@example.com", Password: pw})
	if got := mailcopy.OverloadKind(err); got != "" {
		t.Fatalf("OverloadKind(%v) = %q, want none", err, got)
	}
	if _, perm := mailcopy.IsPermanent(err); !perm {
		t.Fatalf("Measure() = %v, want a permanent authentication failure", err)
	}
}

// A server that refuses the TCP connection is overloaded too; the kind
// survives wrapping and stringification.
func TestOverloadConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more: the kernel refuses
	_, err = mailcopy.Measure(context.Background(), mailcopy.Endpoint{Addr: addr, Security: mailcopy.SecurityPlain, User: "u@example.com", Password: pw})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Measure() = %v, want a refused connection", err)
	}
	if got := mailcopy.OverloadKind(err); got != mailcopy.OverloadRefused {
		t.Fatalf("OverloadKind(%v) = %q, want %q", err, got, mailcopy.OverloadRefused)
	}
	if got := mailcopy.OverloadKind(errors.New(fmt.Sprint("copy: ", err))); got != mailcopy.OverloadRefused {
		t.Fatalf("OverloadKind(text of %v) = %q, want %q", err, got, mailcopy.OverloadRefused)
	}
}

func TestOverloadKindOfOtherErrors(t *testing.T) {
	for _, err := range []error{nil, errors.New("read: connection reset by peer"), &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "Quota exceeded"},
		&imap.Error{Type: imap.StatusResponseTypeNo, Text: "Mailbox doesn't exist"}} {
		if got := mailcopy.OverloadKind(err); got != "" {
			t.Fatalf("OverloadKind(%v) = %q, want none", err, got)
		}
	}
}
