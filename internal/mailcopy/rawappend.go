package mailcopy

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/emersion/go-imap/v2"
)

// rawConn is a destination connection that only APPENDs, with LITERAL+
// (RFC 7888) non-synchronizing literals, so APPENDs stream back to back
// instead of waiting one round trip each for the server's "+" (go-imap
// always waits for it). It is used when the destination announces
// LITERAL+; everything else goes through go-imap.
type rawConn struct {
	c      net.Conn
	w      *bufio.Writer
	r      *bufio.Reader
	mu     sync.Mutex
	next   int
	done   map[string]chan rawResult
	err    error
	closed chan struct{}
}

type rawResult struct {
	ok   bool
	code string
	args string // the response code's arguments
	text string
}

// appendUID is the destination UID of an APPEND answered with APPENDUID
// (UIDPLUS), or 0.
func (r rawResult) appendUID() imap.UID {
	if u := r.appendUIDs(1); u != nil {
		return u[0]
	}
	return 0
}

// err is the refusal an answer other than OK says (nil for OK).
func (r rawResult) err() error {
	if r.ok {
		return nil
	}
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCode(r.code), Text: r.text}
}

// appendOn APPENDs one message on rc and returns its destination UID (0:
// not named); a refusal is an *imap.Error.
func appendOn(rc *rawConn, folder string, body []byte, flags []imap.Flag, date time.Time, binary bool) (imap.UID, error) {
	res, err := rc.do(appendCmd(folder, flags, date, int64(len(body)), binary) + string(body))
	if err != nil {
		return 0, err
	}
	return res.appendUID(), res.err()
}

// appendUIDs are the destination UIDs of a MULTIAPPEND of n messages, in
// the order they were sent (RFC 4315: the set lists them in that order), or
// nil when the answer does not name n of them.
func (r rawResult) appendUIDs(n int) []imap.UID {
	if r.code != "APPENDUID" {
		return nil
	}
	f := strings.Fields(r.args)
	if len(f) != 2 {
		return nil
	}
	set, err := parseUIDSet(f[1])
	if err != nil {
		return nil
	}
	var out []imap.UID
	for _, rg := range set {
		if rg.Stop < rg.Start || rg.Stop-rg.Start >= imap.UID(n) {
			return nil
		}
		for u := rg.Start; u <= rg.Stop; u++ {
			out = append(out, u)
		}
		if len(out) > n {
			return nil
		}
	}
	if len(out) != n {
		return nil
	}
	return out
}

// parseUIDSet parses "5", "5:9" and comma lists of them ("*" is not
// an answer a server gives here).
func parseUIDSet(s string) ([]imap.UIDRange, error) {
	var out []imap.UIDRange
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil || a == 0 {
			return nil, fmt.Errorf("uid set %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil || b == 0 {
				return nil, fmt.Errorf("uid set %q", s)
			}
			if b < a {
				a, b = b, a
			}
		}
		out = append(out, imap.UIDRange{Start: imap.UID(a), Stop: imap.UID(b)})
	}
	return out, nil
}

func dialRaw(ep Endpoint) (*rawConn, error) {
	d := &net.Dialer{Timeout: 30 * time.Second}
	var c net.Conn
	var err error
	switch ep.Security {
	case SecurityTLS, "":
		c, err = tls.DialWithDialer(d, "tcp", ep.Addr, ep.tlsConfig())
	case SecurityPlain, SecurityStartTLS:
		c, err = d.Dial("tcp", ep.Addr)
	default:
		return nil, fmt.Errorf("raw append: security %q not supported", ep.Security)
	}
	if err != nil {
		return nil, connectError(ep, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReaderSize(c, 16<<10)
	greet, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(greet, "* OK") {
		c.Close()
		return nil, fmt.Errorf("greeting from %s: %q %v", ep.Addr, greet, err)
	}
	if ep.Security == SecurityStartTLS {
		if c, err = startTLS(c, r, ep); err != nil {
			return nil, err
		}
		r = bufio.NewReaderSize(c, 16<<10)
	}
	_ = c.SetReadDeadline(time.Time{})
	rc := &rawConn{c: c, w: bufio.NewWriterSize(c, 64<<10), r: r, done: map[string]chan rawResult{}, closed: make(chan struct{})}
	go rc.read()
	user := ep.User
	if ep.MasterUser != "" {
		sep := ep.MasterSep
		if sep == "" {
			sep = "*"
		}
		user = ep.User + sep + ep.MasterUser
	}
	res, err := rc.do("LOGIN " + literal(user) + " " + literal(ep.Password))
	if err != nil {
		rc.close()
		return nil, err
	}
	if !res.ok {
		rc.close()
		if res.code == "UNAVAILABLE" || res.code == "SERVERBUG" {
			return nil, fmt.Errorf("log in to %s: %s", ep, res.text)
		}
		return nil, &PermanentError{Kind: KindAuthFailed, Err: fmt.Errorf("log in to %s: %s", ep, res.text)}
	}
	return rc, nil
}

// startTLS upgrades a connection that has just been greeted. Nothing is
// read past the server's answer, so r holds no plaintext that could be
// mistaken for protected data afterwards.
func startTLS(c net.Conn, r *bufio.Reader, ep Endpoint) (net.Conn, error) {
	if _, err := io.WriteString(c, "s0 STARTTLS\r\n"); err != nil {
		c.Close()
		return nil, connectError(ep, err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, connectError(ep, err)
		}
		if strings.HasPrefix(line, "s0 ") {
			if !strings.HasPrefix(line, "s0 OK") {
				c.Close()
				_, reply, _ := strings.Cut(strings.TrimSpace(line), " ")
				_, reply, _ = strings.Cut(reply, " ")
				return nil, startTLSRefused(ep, reply)
			}
			break
		}
	}
	if r.Buffered() > 0 {
		c.Close()
		return nil, fmt.Errorf("%s sent data after its STARTTLS answer", ep.Addr)
	}
	tc := tls.Client(c, ep.tlsConfig())
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, connectError(ep, err)
	}
	return tc, nil
}

// literal encodes s as a LITERAL+ literal: no quoting rules to get wrong.
func literal(s string) string { return fmt.Sprintf("{%d+}\r\n%s", len(s), s) }

func (rc *rawConn) read() {
	defer close(rc.closed)
	for {
		line, err := rc.r.ReadString('\n')
		if err != nil {
			rc.fail(err)
			return
		}
		line = strings.TrimRight(line, "\r\n")
		// Responses to APPEND and SELECT carry no literals; skip any that
		// arrive anyway so the stream stays in sync.
		if n, ok := trailingLiteral(line); ok {
			if _, err := io.CopyN(io.Discard, rc.r, n); err != nil {
				rc.fail(err)
				return
			}
			continue
		}
		if strings.HasPrefix(line, "*") || strings.HasPrefix(line, "+") {
			continue
		}
		tag, rest, _ := strings.Cut(line, " ")
		status, text, _ := strings.Cut(rest, " ")
		res := rawResult{ok: status == "OK", text: text}
		if strings.HasPrefix(text, "[") {
			if i := strings.IndexByte(text, ']'); i > 1 {
				code, args, _ := strings.Cut(text[1:i], " ")
				res.code, res.args = strings.ToUpper(code), args
			}
		}
		rc.mu.Lock()
		ch := rc.done[tag]
		delete(rc.done, tag)
		rc.mu.Unlock()
		if ch != nil {
			ch <- res
		}
	}
}

func trailingLiteral(line string) (int64, bool) {
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	var n int64
	if _, err := fmt.Sscanf(strings.TrimSuffix(line[i+1:], "+}"), "%d", &n); err != nil {
		return 0, false
	}
	return n, true
}

func (rc *rawConn) fail(err error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.err == nil {
		rc.err = err
	}
	for tag, ch := range rc.done {
		close(ch)
		delete(rc.done, tag)
	}
}

// start writes a command (its text may hold LITERAL+ literals) and returns
// the channel its tagged response arrives on.
func (rc *rawConn) start(cmd string, body io.Reader) (chan rawResult, error) {
	ch, err := rc.begin(cmd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		if _, err := io.Copy(rc.w, body); err != nil {
			return nil, err
		}
	}
	if err := rc.end(); err != nil {
		return nil, err
	}
	return ch, nil
}

// begin writes the start of a command whose end comes later (a
// MULTIAPPEND, one message at a time: part, then end) and returns the
// channel its tagged response arrives on.
func (rc *rawConn) begin(head string) (chan rawResult, error) {
	rc.mu.Lock()
	if rc.err != nil {
		err := rc.err
		rc.mu.Unlock()
		return nil, err
	}
	rc.next++
	tag := fmt.Sprintf("m%d", rc.next)
	ch := make(chan rawResult, 1)
	rc.done[tag] = ch
	rc.mu.Unlock()
	if _, err := rc.w.WriteString(tag + " " + head); err != nil {
		return nil, err
	}
	return ch, nil
}

// part writes more of a begun command: text, then body.
func (rc *rawConn) part(text string, body io.Reader) error {
	if _, err := rc.w.WriteString(text); err != nil {
		return err
	}
	_, err := io.Copy(rc.w, body)
	return err
}

// end ends a begun command.
func (rc *rawConn) end() error {
	_, err := rc.w.WriteString("\r\n")
	return err
}

func (rc *rawConn) flush() error { return rc.w.Flush() }

func (rc *rawConn) wait(ch chan rawResult) (rawResult, error) {
	res, ok := <-ch
	if !ok {
		rc.mu.Lock()
		err := rc.err
		rc.mu.Unlock()
		if err == nil {
			err = errors.New("connection closed")
		}
		return res, err
	}
	return res, nil
}

func (rc *rawConn) do(cmd string) (rawResult, error) {
	ch, err := rc.start(cmd, nil)
	if err != nil {
		return rawResult{}, err
	}
	if err := rc.flush(); err != nil {
		return rawResult{}, err
	}
	return rc.wait(ch)
}

func (rc *rawConn) close() {
	_ = rc.c.Close()
	<-rc.closed
}

// selectFolder selects the destination folder: Dovecot then keeps it open
// instead of opening it for every APPEND.
func (rc *rawConn) selectFolder(name string) error {
	res, err := rc.do("SELECT " + literal(utf7Encode(name)))
	if err != nil {
		return err
	}
	if !res.ok {
		return fmt.Errorf("select %q: %s", name, res.text)
	}
	return nil
}

// appendCmd is the APPEND command line up to its body.
// With binary the body goes out as a literal8 (RFC 3516), so NUL bytes are
// stored as they are.
func appendCmd(folder string, flags []imap.Flag, date time.Time, size int64, binary bool) string {
	return "APPEND " + literal(utf7Encode(folder)) + appendItem(flags, date, size, binary)
}

// appendItem is one message's part of an APPEND or MULTIAPPEND (RFC 3502)
// up to its body: flags, date, literal header.
func appendItem(flags []imap.Flag, date time.Time, size int64, binary bool) string {
	var b strings.Builder
	if len(flags) > 0 {
		parts := make([]string, len(flags))
		for i, f := range flags {
			parts[i] = string(f)
		}
		b.WriteString(" (" + strings.Join(parts, " ") + ")")
	}
	if !date.IsZero() {
		b.WriteString(" \"" + date.Format("02-Jan-2006 15:04:05 -0700") + "\"")
	}
	if binary {
		b.WriteString(" ~")
	} else {
		b.WriteString(" ")
	}
	fmt.Fprintf(&b, "{%d+}\r\n", size)
	return b.String()
}

var b64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// utf7Encode encodes a mailbox name in IMAP's modified UTF-7 (RFC 3501).
func utf7Encode(s string) string {
	var b strings.Builder
	var pending []rune
	flush := func() {
		if len(pending) == 0 {
			return
		}
		u := utf16.Encode(pending)
		raw := make([]byte, 0, len(u)*2)
		for _, c := range u {
			raw = append(raw, byte(c>>8), byte(c))
		}
		b.WriteString("&" + b64.EncodeToString(raw) + "-")
		pending = pending[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		pending = append(pending, r)
	}
	flush()
	return b.String()
}
