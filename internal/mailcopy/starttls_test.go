package mailcopy_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/mailcopy"
)

// scriptedServer greets every connection with greeting, then answers each
// tagged command with reply; an empty reply closes the connection after the
// greeting.
func scriptedServer(t *testing.T, greeting, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\r\n", greeting)
				if reply == "" {
					return
				}
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					tag, _, _ := strings.Cut(line, " ")
					fmt.Fprintf(c, "%s %s\r\n", tag, reply)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestStartTLSRefusedIsPermanent checks that a server that will not start
// TLS on a connection configured for STARTTLS is a permanent configuration
// error naming the fix, not a transient error retried for hours, while a
// server too busy to talk stays transient.
func TestStartTLSRefusedIsPermanent(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
		// permanent: want a BadConfig naming the fix and quoting the reply.
		permanent bool
		reply     string
	}{
		{"go-imap server without TLS (NO, not announced)", func(t *testing.T) string { return startMem(t, "a@x.test").addr }, true, "STARTTLS not supported"},
		{"server that does not know STARTTLS (BAD)", func(t *testing.T) string {
			return scriptedServer(t, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready", "BAD Unknown command STARTTLS")
		}, true, "Unknown command STARTTLS"},
		{"full server (BYE)", func(t *testing.T) string { return scriptedServer(t, "* BYE Too many connections", "") }, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := mailcopy.Endpoint{Addr: tc.addr(t), Security: mailcopy.SecurityStartTLS, User: "a@x.test", Password: pw}
			_, err := mailcopy.Measure(context.Background(), ep)
			if err == nil {
				t.Fatalf("Measure() over STARTTLS = nil error, want one")
			}
			kind, perm := mailcopy.IsPermanent(err)
			if perm != tc.permanent {
				t.Fatalf("Measure() = %v (permanent %v, kind %q), want permanent %v", err, perm, kind, tc.permanent)
			}
			if !tc.permanent {
				return
			}
			if kind != mailcopy.KindBadConfig {
				t.Fatalf("Measure() = %v (kind %q), want kind %q", err, kind, mailcopy.KindBadConfig)
			}
			for _, want := range []string{ep.Addr, "refuses STARTTLS", tc.reply, "enable TLS on the server", "imapSecurity", `"imapPlain": true`} {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("Measure() = %q, want it to contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), pw) {
				t.Fatalf("Measure() = %q shows the password", err)
			}
		})
	}
}
