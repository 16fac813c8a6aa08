package testenv

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailshift/mailshift/internal/mailgen"
)

// Seed fills a mailbox through IMAP APPEND, as mail clients would: the
// generated folders, then every message of spec. It returns the number of
// messages and their bytes.
func Seed(addr, user, password string, spec mailgen.Spec) (int, int64, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return 0, 0, err
	}
	for _, f := range append(append([]string{}, mailgen.Parents...), mailgen.Folders...) {
		if err := c.Create(f, nil).Wait(); err != nil && !strings.Contains(err.Error(), "exists") {
			return 0, 0, err
		}
	}
	n, size := 0, int64(0)
	err = mailgen.Generate(spec, func(m mailgen.Message) error {
		n++
		size += int64(len(m.Body))
		return appendMsg(c, m.Folder, m.Body, &imap.AppendOptions{Flags: m.Flags, Time: m.Date})
	})
	return n, size, err
}

// Deliver appends msg to user's INBOX the way the platform's delivery
// agent does: logged in as user (for a master login, "addr*master").
func Deliver(addr, user, password string, msg []byte) error {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return err
	}
	return appendMsg(c, "INBOX", msg, nil)
}

func appendMsg(c *imapclient.Client, folder string, body []byte, opts *imap.AppendOptions) error {
	cmd := c.Append(folder, int64(len(body)), opts)
	if _, err := bytes.NewReader(body).WriteTo(cmd); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

// CuttingProxy forwards to target and cuts every connection after budget
// bytes from the server, like a network that drops connections. It
// reports how many it cut.
func CuttingProxy(t testing.TB, target string, budget int64) (string, *atomic.Int64) {
	t.Helper()
	drops := &atomic.Int64{}
	addr := relay(t, target, func(c, s net.Conn) {
		go func() { _, _ = io.Copy(s, c) }()
		if n, _ := io.CopyN(c, s, budget); n == budget {
			drops.Add(1)
		}
	})
	return addr, drops
}

// CommandCounter forwards to target and counts the lines clients send
// that match pattern (an IMAP command: "^\\S+ APPEND "). Literal bodies
// are read as lines too: the caller's messages must not hold a line that
// matches.
func CommandCounter(t testing.TB, target, pattern string) (string, *atomic.Int64) {
	t.Helper()
	n := &atomic.Int64{}
	cmd := regexp.MustCompile(pattern)
	addr := relay(t, target, func(c, s net.Conn) {
		go func() { _, _ = io.Copy(c, s) }()
		r := bufio.NewReaderSize(io.TeeReader(c, s), 64<<10)
		for {
			line, err := r.ReadSlice('\n')
			if cmd.Match(line) {
				n.Add(1)
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				return
			}
		}
	})
	return addr, n
}

// AnswerRewriter forwards to target and replaces, in the first times
// lines the server sends that match pattern, what follows the tag with
// answer (without its CRLF): a server that says "not now" to a command
// it in fact carried out. It reports how many it replaced.
func AnswerRewriter(t testing.TB, target, pattern, answer string, times int64) (string, *atomic.Int64) {
	t.Helper()
	n := &atomic.Int64{}
	re := regexp.MustCompile(pattern)
	addr := relay(t, target, func(c, s net.Conn) {
		go func() {
			_, _ = io.Copy(s, c)
			_ = s.Close() // the client left: so does the server's side
		}()
		r := bufio.NewReaderSize(s, 64<<10)
		whole := true // the chunk read starts a line
		for {
			line, err := r.ReadSlice('\n')
			out := line
			if whole && re.Match(line) && n.Add(1) <= times {
				tag, _, _ := bytes.Cut(line, []byte(" "))
				out = []byte(string(tag) + " " + answer + "\r\n")
			}
			if _, werr := c.Write(out); werr != nil {
				return
			}
			whole = err == nil
			if err != nil && err != bufio.ErrBufferFull {
				return
			}
		}
	})
	return addr, n
}

// relay listens for the test, connects each client to target and hands
// both connections to serve, closing them when it returns.
func relay(t testing.TB, target string, serve func(client, server net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				serve(c, s)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}
