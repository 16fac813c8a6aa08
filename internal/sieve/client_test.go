package sieve

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

// fakeServer is a tiny scripted ManageSieve server: it greets, then answers
// each command line with reply(line, literal).
type fakeServer struct {
	ln    net.Listener
	reply func(cmd, lit string) string
	got   chan string
}

func startFake(t *testing.T, reply func(cmd, lit string) string) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{ln: ln, reply: reply, got: make(chan string, 100)}
	t.Cleanup(func() { ln.Close() })
	go f.serve()
	return f
}

func (f *fakeServer) serve() {
	c, err := f.ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	r := bufio.NewReader(c)
	fmt.Fprint(c, "\"IMPLEMENTATION\" \"fake\"\r\n\"SIEVE\" \"fileinto vacation\"\r\n\"SASL\" \"PLAIN\"\r\n\"VERSION\" \"1.0\"\r\nOK \"ready\"\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		lit := ""
		if i := strings.LastIndexByte(line, '{'); i >= 0 && strings.HasSuffix(line, "+}") {
			n, _ := strconv.Atoi(line[i+1 : len(line)-2])
			b := make([]byte, n+2)
			if _, err := io.ReadFull(r, b); err != nil {
				return
			}
			lit, line = string(b[:n]), line[:i]
		}
		f.got <- line
		fmt.Fprint(c, f.reply(line, lit))
		if line == "LOGOUT" {
			return
		}
	}
}

func TestClient(t *testing.T) {
	stored := map[string]string{}
	f := startFake(t, func(cmd, lit string) string {
		switch {
		case strings.HasPrefix(cmd, "AUTHENTICATE"):
			ir, _ := strconv.Unquote(strings.Fields(cmd)[2])
			b, _ := base64.StdEncoding.DecodeString(ir)
			if string(b) != "\x00alice@example.com*mailshift\x00pw" {
				return "NO \"Authentication failed.\"\r\n"
			}
			return "OK \"Logged in.\"\r\n"
		case cmd == "LISTSCRIPTS":
			return "\"main\" ACTIVE\r\n{5}\r\nother\r\nOK \"Listscripts completed.\"\r\n"
		case cmd == `GETSCRIPT "main"`:
			s := "require \"fileinto\";\r\nfileinto \"A\";\r\n"
			return fmt.Sprintf("{%d}\r\n%s\r\nOK \"Getscript completed.\"\r\n", len(s), s)
		case strings.HasPrefix(cmd, "CHECKSCRIPT"), strings.HasPrefix(cmd, "PUTSCRIPT"):
			if strings.Contains(lit, "imap4flags") {
				msg := "line 1: require command: unknown Sieve capability `imap4flags'.\r\n"
				return fmt.Sprintf("NO {%d}\r\n%s\r\n", len(msg), msg)
			}
			if strings.HasPrefix(cmd, "PUTSCRIPT") {
				stored[strings.Fields(cmd)[1]] = lit
			}
			return "OK (WARNINGS) \"fine\"\r\n"
		case strings.HasPrefix(cmd, "SETACTIVE"):
			return "NO (NONEXISTENT) \"There is no script by that name.\"\r\n"
		case cmd == "LOGOUT":
			return "OK \"Logout completed.\"\r\n"
		}
		return "NO \"unexpected\"\r\n"
	})
	ep := Endpoint{Addr: f.ln.Addr().String(), Security: SecurityPlain, User: "alice@example.com", MasterUser: "mailshift", Password: "pw"}
	c, err := Dial(context.Background(), ep)
	if err != nil {
		t.Fatalf("Dial() = %v", err)
	}
	if got := c.Extensions(); len(got) != 2 || !c.CanCheck() {
		t.Fatalf("Extensions() = %q, CanCheck() = %v", got, c.CanCheck())
	}
	scripts, err := c.ListScripts()
	if err != nil || len(scripts) != 2 || scripts[0] != (Script{Name: "main", Active: true}) || scripts[1] != (Script{Name: "other"}) {
		t.Fatalf("ListScripts() = %+v, %v", scripts, err)
	}
	body, err := c.GetScript("main")
	if err != nil || body != "require \"fileinto\";\r\nfileinto \"A\";\r\n" {
		t.Fatalf("GetScript() = %q, %v", body, err)
	}
	if err := c.PutScript("main", body); err != nil || stored[`"main"`] != body {
		t.Fatalf("PutScript() = %v, stored %q", err, stored)
	}
	err = c.CheckScript("require \"imap4flags\";")
	var se *Error
	if !errors.As(err, &se) || se.Type != "NO" || se.Text != "line 1: require command: unknown Sieve capability `imap4flags'." {
		t.Fatalf("CheckScript() = %#v, want the server's words", err)
	}
	err = c.SetActive("x")
	if !errors.As(err, &se) || se.Code != "NONEXISTENT" {
		t.Fatalf("SetActive() = %v, want code NONEXISTENT", err)
	}
	if err := c.Logout(); err != nil {
		t.Fatalf("Logout() = %v", err)
	}
}

func TestAuthRefused(t *testing.T) {
	f := startFake(t, func(cmd, _ string) string { return "NO \"Authentication failed.\"\r\n" })
	_, err := Dial(context.Background(), Endpoint{Addr: f.ln.Addr().String(), Security: SecurityPlain, User: "a@b.c", Password: "x"})
	if !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "Authentication failed.") {
		t.Fatalf("Dial() = %v, want ErrAuthFailed with the server's words", err)
	}
}

func TestStartTLSRequired(t *testing.T) {
	f := startFake(t, func(cmd, _ string) string { return "OK\r\n" })
	_, err := Dial(context.Background(), Endpoint{Addr: f.ln.Addr().String(), Security: SecurityStartTLS, User: "a@b.c", Password: "x"})
	if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Fatalf("Dial() = %v, want a refusal to go on without TLS", err)
	}
	select {
	case cmd := <-f.got:
		t.Fatalf("the client sent %q to a server without STARTTLS", cmd)
	default:
	}
}
