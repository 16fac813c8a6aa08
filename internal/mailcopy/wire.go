package mailcopy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2/imapclient"
)

// Real mailboxes hold what go-imap's parser refuses: a keyword with 8-bit
// bytes (Dovecot sends it raw in FLAGS and PERMANENTFLAGS; bytes 0x80-0x9f
// stop the parser), a folder whose on-disk name is not valid modified UTF-7
// (the whole LIST fails to decode). One such item must not kill the
// connection, so every go-imap connection reads through cleanConn, which
// rewrites them outside literals before the parser sees them. Literals
// (message bodies) pass through untouched.

// An 8-bit byte outside a literal becomes "=XX" (the byte in hex): '=' is
// an atom character, so an escaped keyword still parses, and
// keywordHas8Bit recognises it.

// cleanConn is a net.Conn whose reads are sanitized for go-imap.
type cleanConn struct {
	net.Conn
	br     *bufio.Reader
	out    []byte // sanitized bytes not yet returned
	lit    int64  // bytes of the current literal still to pass through
	prefix []byte // a synthetic greeting (after a STARTTLS done by hand)
}

func newCleanConn(c net.Conn, prefix string) *cleanConn {
	return &cleanConn{Conn: c, br: bufio.NewReaderSize(c, 32<<10), prefix: []byte(prefix)}
}

func (c *cleanConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	for len(c.out) == 0 {
		if c.lit > 0 {
			if int64(len(p)) > c.lit {
				p = p[:c.lit]
			}
			n, err := c.br.Read(p)
			c.lit -= int64(n)
			return n, err
		}
		line, err := c.br.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			return 0, err
		}
		c.out = c.cleanLine(line)
		if err != nil && len(c.out) == 0 {
			return 0, err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// cleanLine sanitizes one response line (outside literals) and notes a
// literal that follows it.
func (c *cleanConn) cleanLine(line []byte) []byte {
	body := bytes.TrimRight(line, "\r\n")
	if n, ok := literalSize(body); ok {
		c.lit = n
		if isListLine(body) && n < 4096 {
			// A mailbox name as a literal: read it now, so it can be
			// checked and re-announced with its new length.
			name := make([]byte, n)
			if _, err := io.ReadFull(c.br, name); err == nil {
				c.lit = 0
				fixed := validMailboxName(string(name))
				head := body[:bytes.LastIndexByte(body, '{')]
				head = bytes.TrimSuffix(head, []byte("~"))
				out := escape8Bit(head)
				out = append(out, fmt.Sprintf("{%d}\r\n", len(fixed))...)
				return append(out, fixed...)
			}
		}
		return append(escape8Bit(body), "\r\n"...)
	}
	if isListLine(body) {
		body = fixListName(body)
	}
	return append(escape8Bit(body), "\r\n"...)
}

// literalSize reports the size of the literal a line announces ("{n}",
// "{n+}" or "~{n}" at its end).
func literalSize(line []byte) (int64, bool) {
	if !bytes.HasSuffix(line, []byte("}")) {
		return 0, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(string(line[i+1:len(line)-1]), "+"), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

func isListLine(line []byte) bool {
	return bytes.HasPrefix(line, []byte("* LIST ")) || bytes.HasPrefix(line, []byte("* LSUB "))
}

// fixListName makes the mailbox name at the end of a LIST line (an atom
// or a quoted string) valid modified UTF-7.
func fixListName(line []byte) []byte {
	s := string(line)
	var head, name string
	if strings.HasSuffix(s, `"`) {
		i := len(s) - 2
		for i >= 0 && !(s[i] == '"' && (i == 0 || s[i-1] != '\\')) {
			i--
		}
		if i < 0 {
			return line
		}
		head = s[:i]
		name = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(s[i+1 : len(s)-1])
	} else {
		i := strings.LastIndexByte(s, ' ')
		if i < 0 {
			return line
		}
		head, name = s[:i+1], s[i+1:]
	}
	fixed := validMailboxName(name)
	if fixed == name {
		return line
	}
	return []byte(head + strconv.Quote(fixed))
}

// validMailboxName returns name if it is valid modified UTF-7; otherwise
// the encoding of its bytes read as text, so the folder is still listed
// under a unique, printable name (opening it then fails, and the folder is
// reported).
func validMailboxName(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return name
	}
	if _, err := utf7Decode(name); err == nil {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if ch < 0x20 || ch >= 0x7f {
			fmt.Fprintf(&b, "=%02X", ch)
			continue
		}
		b.WriteByte(ch)
	}
	return utf7Encode(b.String())
}

// escape8Bit replaces every byte >= 0x80 by "=XX", the byte in
// upper-case hex.
func escape8Bit(b []byte) []byte {
	clean := true
	for _, ch := range b {
		if ch >= 0x80 {
			clean = false
			break
		}
	}
	if clean {
		return append([]byte(nil), b...)
	}
	out := make([]byte, 0, len(b)+8)
	for _, ch := range b {
		if ch >= 0x80 {
			out = append(out, fmt.Sprintf("=%02X", ch)...)
			continue
		}
		out = append(out, ch)
	}
	return out
}

// keywordHas8Bit reports whether a keyword arrived with 8-bit bytes
// (escaped by cleanConn).
func keywordHas8Bit(k string) bool {
	for i := 0; i+2 < len(k); i++ {
		if k[i] == '=' && (k[i+1] == '8' || k[i+1] == '9' || k[i+1] >= 'A' && k[i+1] <= 'F') && isHex(k[i+2]) {
			return true
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'F'
}

// utf7Decode decodes IMAP's modified UTF-7 (RFC 3501 5.1.3), refusing
// anything invalid.
func utf7Decode(s string) (string, error) {
	errBad := fmt.Errorf("invalid modified UTF-7 %q", s)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < 0x20 || ch > 0x7e {
			return "", errBad
		}
		if ch != '&' {
			b.WriteByte(ch)
			continue
		}
		j := strings.IndexByte(s[i+1:], '-')
		if j < 0 {
			return "", errBad
		}
		enc := s[i+1 : i+1+j]
		i += j + 1
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := b64.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", errBad
		}
		u := make([]uint16, len(raw)/2)
		for k := range u {
			u[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for _, r := range utf16.Decode(u) {
			if r == utf8.RuneError || (r >= 0x20 && r <= 0x7e) {
				return "", errBad
			}
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

// dialClient connects a go-imap client whose reads go through cleanConn.
// With STARTTLS the upgrade is done here (go-imap would put TLS on top of
// the sanitizer), and go-imap gets a synthetic greeting.
func dialClient(ep Endpoint, opts *imapclient.Options) (*imapclient.Client, error) {
	d := &net.Dialer{Timeout: 30 * time.Second}
	switch ep.Security {
	case SecurityTLS, "":
		cfg := ep.tlsConfig()
		cfg.NextProtos = []string{"imap"}
		c, err := tls.DialWithDialer(d, "tcp", ep.Addr, cfg)
		if err != nil {
			return nil, err
		}
		return imapclient.New(newCleanConn(c, ""), opts), nil
	case SecurityPlain:
		c, err := d.Dial("tcp", ep.Addr)
		if err != nil {
			return nil, err
		}
		return imapclient.New(newCleanConn(c, ""), opts), nil
	case SecurityStartTLS:
		c, err := d.Dial("tcp", ep.Addr)
		if err != nil {
			return nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReaderSize(c, 16<<10)
		greet, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(greet, "* OK") {
			c.Close()
			return nil, fmt.Errorf("greeting from %s: %q %v", ep.Addr, greet, err)
		}
		tc, err := startTLS(c, r, ep)
		if err != nil {
			return nil, err
		}
		_ = tc.SetReadDeadline(time.Time{})
		return imapclient.New(newCleanConn(tc, "* OK greeted before STARTTLS\r\n"), opts), nil
	}
	return nil, &PermanentError{Kind: KindBadConfig, Err: fmt.Errorf("%s: unknown security %q (tls, starttls or plain)", ep.Addr, ep.Security)}
}
