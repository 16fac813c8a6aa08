// Package sieve is a small ManageSieve client (RFC 5804): enough to read an
// account's Sieve scripts from one server and install them on another, on
// behalf of the account, logged in as the migrator's master user.
//
// It has no Temporal imports; the activities drive it.
package sieve

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Security says how a ManageSieve connection is protected. ManageSieve has
// no implicit-TLS port: TLS always starts with STARTTLS.
type Security string

// Connection security modes. Plain must be chosen explicitly.
const (
	SecurityStartTLS Security = "starttls"
	SecurityPlain    Security = "plain"
)

// Endpoint says where and as whom to log in.
type Endpoint struct {
	// Addr is host:port of the ManageSieve server (4190 by convention).
	Addr      string
	Security  Security
	TLSConfig *tls.Config
	// User is the account whose scripts are read or written.
	User string
	// MasterUser, when set, logs in on behalf of User: SASL PLAIN with
	// authentication identity "User<MasterSep>MasterUser" (Dovecot's
	// convention, as the copy engine's IMAP LOGIN), or with User as the
	// authorization identity when UseSASLAuthz.
	MasterUser   string
	MasterSep    string
	UseSASLAuthz bool
	// Password is MasterUser's if set, else User's. Never logged.
	Password string
}

// String names the endpoint without its secret.
func (ep Endpoint) String() string {
	if ep.MasterUser != "" {
		return fmt.Sprintf("%s@%s (via %s)", ep.User, ep.Addr, ep.MasterUser)
	}
	return fmt.Sprintf("%s@%s", ep.User, ep.Addr)
}

// Error is a NO or BYE answer: the server's own words.
type Error struct {
	// Type is "NO" or "BYE".
	Type string
	// Code is the response code without its parentheses ("QUOTA",
	// "AUTH-TOO-WEAK", "TRYLATER", ...), empty if none.
	Code string
	Text string
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s (%s) %s", e.Type, e.Code, e.Text)
	}
	return e.Type + " " + e.Text
}

// ErrAuthFailed wraps a refused login: retrying with the same credentials
// cannot succeed.
var ErrAuthFailed = errors.New("authentication refused")

// Script is one stored script.
type Script struct {
	Name   string
	Active bool
}

// Client is one logged-in (or about to be) ManageSieve connection. It is
// not safe for concurrent use.
type Client struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	caps map[string]string
	stop func() bool
}

// Timeouts of one exchange with the server.
const (
	dialTimeout  = 30 * time.Second
	replyTimeout = 60 * time.Second
	// maxLiteral bounds what the client accepts in one string: Dovecot's
	// default sieve_max_script_size is 1 MiB.
	maxLiteral = 8 << 20
)

// Dial connects, reads the greeting, starts TLS when asked and logs in. A
// cancelled ctx closes the connection, which fails the pending command.
func Dial(ctx context.Context, ep Endpoint) (*Client, error) {
	d := &net.Dialer{Timeout: dialTimeout}
	nc, err := d.DialContext(ctx, "tcp", ep.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", ep.Addr, err)
	}
	c := newClient(nc)
	c.stop = context.AfterFunc(ctx, func() { _ = c.conn.Close() })
	if err := c.start(ep); err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return c, nil
}

func newClient(nc net.Conn) *Client {
	return &Client{conn: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
}

func (c *Client) start(ep Endpoint) error {
	caps, err := c.readCapabilities()
	if err != nil {
		return fmt.Errorf("connect %s: greeting: %w", ep.Addr, err)
	}
	c.caps = caps
	if ep.Security != SecurityPlain {
		if err := c.startTLS(ep); err != nil {
			return err
		}
	}
	if err := c.authenticate(ep); err != nil {
		return err
	}
	return nil
}

func (c *Client) startTLS(ep Endpoint) error {
	if _, ok := c.caps["STARTTLS"]; !ok {
		// Going on in plaintext would hand the password to whoever
		// stripped STARTTLS.
		return fmt.Errorf("connect %s: the ManageSieve server does not offer STARTTLS", ep.Addr)
	}
	if _, err := c.cmd("STARTTLS"); err != nil {
		return fmt.Errorf("connect %s: STARTTLS: %w", ep.Addr, err)
	}
	cfg := ep.TLSConfig
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		if h, _, err := net.SplitHostPort(ep.Addr); err == nil {
			cfg.ServerName = h
		}
	}
	tc := tls.Client(c.conn, cfg)
	_ = tc.SetDeadline(time.Now().Add(dialTimeout))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("connect %s: TLS: %w", ep.Addr, err)
	}
	_ = tc.SetDeadline(time.Time{})
	c.conn, c.r, c.w = tc, bufio.NewReader(tc), bufio.NewWriter(tc)
	// RFC 5804 2.2: the server sends its capabilities again after TLS.
	caps, err := c.readCapabilities()
	if err != nil {
		return fmt.Errorf("connect %s: capabilities after STARTTLS: %w", ep.Addr, err)
	}
	c.caps = caps
	return nil
}

func (c *Client) authenticate(ep Endpoint) error {
	if sasl, ok := c.caps["SASL"]; ok && !hasWord(sasl, "PLAIN") {
		return fmt.Errorf("log in to %s: the server offers no SASL PLAIN (%q)", ep, sasl)
	}
	authz, authn := "", ep.User
	if ep.MasterUser != "" {
		if ep.UseSASLAuthz {
			authz, authn = ep.User, ep.MasterUser
		} else {
			sep := ep.MasterSep
			if sep == "" {
				sep = "*"
			}
			authn = ep.User + sep + ep.MasterUser
		}
	}
	ir := base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + authn + "\x00" + ep.Password))
	if _, err := c.cmd("AUTHENTICATE", `"PLAIN"`, quote(ir)); err != nil {
		var se *Error
		if errors.As(err, &se) && se.Type == "NO" && se.Code != "TRYLATER" {
			return fmt.Errorf("log in to %s: %w: %s", ep, ErrAuthFailed, se.Text)
		}
		return fmt.Errorf("log in to %s: %w", ep, err)
	}
	return nil
}

func hasWord(list, w string) bool {
	for _, f := range strings.Fields(list) {
		if strings.EqualFold(f, w) {
			return true
		}
	}
	return false
}

// Capability returns the value of a capability ("SIEVE" lists the
// extensions) and whether the server announced it.
func (c *Client) Capability(name string) (string, bool) {
	v, ok := c.caps[strings.ToUpper(name)]
	return v, ok
}

// Extensions lists the Sieve extensions the server supports.
func (c *Client) Extensions() []string {
	return strings.Fields(c.caps["SIEVE"])
}

// ListScripts lists the account's scripts; at most one is active.
func (c *Client) ListScripts() ([]Script, error) {
	lines, err := c.cmd("LISTSCRIPTS")
	if err != nil {
		return nil, fmt.Errorf("LISTSCRIPTS: %w", err)
	}
	var out []Script
	for _, l := range lines {
		if len(l) == 0 {
			continue
		}
		s := Script{Name: l[0]}
		if len(l) > 1 && strings.EqualFold(l[1], "ACTIVE") {
			s.Active = true
		}
		out = append(out, s)
	}
	return out, nil
}

// GetScript returns a script's content.
func (c *Client) GetScript(name string) (string, error) {
	lines, err := c.cmd("GETSCRIPT", quote(name))
	if err != nil {
		return "", fmt.Errorf("GETSCRIPT %q: %w", name, err)
	}
	if len(lines) == 0 || len(lines[0]) == 0 {
		return "", fmt.Errorf("GETSCRIPT %q: no script in the answer", name)
	}
	return lines[0][0], nil
}

// PutScript stores (or replaces) a script. A script the server refuses
// (a syntax error, an extension it lacks, over quota) is an *Error with
// the server's words.
func (c *Client) PutScript(name, content string) error {
	if _, err := c.cmd("PUTSCRIPT", quote(name), literal(content)); err != nil {
		return fmt.Errorf("PUTSCRIPT %q: %w", name, err)
	}
	return nil
}

// CheckScript asks the server whether it would accept a script, without
// storing it (RFC 5804 2.12; servers announcing VERSION).
func (c *Client) CheckScript(content string) error {
	if _, err := c.cmd("CHECKSCRIPT", literal(content)); err != nil {
		return fmt.Errorf("CHECKSCRIPT: %w", err)
	}
	return nil
}

// CanCheck reports whether the server has CHECKSCRIPT.
func (c *Client) CanCheck() bool {
	_, ok := c.caps["VERSION"]
	return ok
}

// SetActive makes a script the active one ("" deactivates all).
func (c *Client) SetActive(name string) error {
	if _, err := c.cmd("SETACTIVE", quote(name)); err != nil {
		return fmt.Errorf("SETACTIVE %q: %w", name, err)
	}
	return nil
}

// Logout ends the session politely and closes the connection.
func (c *Client) Logout() error {
	_, err := c.cmd("LOGOUT")
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close closes the connection.
func (c *Client) Close() error {
	if c.stop != nil {
		c.stop()
	}
	return c.conn.Close()
}

// cmd sends one command and returns the data lines before its OK, each as
// its strings and atoms. A NO or BYE is an *Error.
func (c *Client) cmd(name string, args ...string) ([][]string, error) {
	_ = c.conn.SetDeadline(time.Now().Add(replyTimeout))
	defer func() { _ = c.conn.SetDeadline(time.Time{}) }()
	c.w.WriteString(name)
	for _, a := range args {
		c.w.WriteByte(' ')
		c.w.WriteString(a)
	}
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	return c.readResponse()
}

func (c *Client) readCapabilities() (map[string]string, error) {
	_ = c.conn.SetDeadline(time.Now().Add(replyTimeout))
	defer func() { _ = c.conn.SetDeadline(time.Time{}) }()
	lines, err := c.readResponse()
	if err != nil {
		return nil, err
	}
	caps := map[string]string{}
	for _, l := range lines {
		if len(l) == 0 {
			continue
		}
		v := ""
		if len(l) > 1 {
			v = l[1]
		}
		caps[strings.ToUpper(l[0])] = v
	}
	return caps, nil
}

// readResponse reads lines until OK, NO or BYE.
func (c *Client) readResponse() ([][]string, error) {
	var data [][]string
	for {
		toks, err := c.readLine()
		if err != nil {
			return nil, err
		}
		if len(toks) > 0 && toks[0].atom {
			switch w := strings.ToUpper(toks[0].s); w {
			case "OK", "NO", "BYE":
				if w == "OK" {
					return data, nil
				}
				e := &Error{Type: w}
				for _, t := range toks[1:] {
					switch {
					case t.code:
						e.Code = t.s
					case !t.atom:
						e.Text = strings.TrimSpace(t.s)
					}
				}
				return nil, e
			}
		}
		line := make([]string, len(toks))
		for i, t := range toks {
			line[i] = t.s
		}
		data = append(data, line)
	}
}

type token struct {
	s    string
	atom bool // an atom (not a quoted string or literal)
	code bool // a response code in parentheses
}

// readLine reads one response line: atoms, quoted strings, literals
// ({n} or {n+} then n bytes) and a parenthesized response code.
func (c *Client) readLine() ([]token, error) {
	var out []token
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			return nil, err
		}
		switch {
		case b == ' ':
		case b == '\r':
		case b == '\n':
			return out, nil
		case b == '"':
			s, err := c.readQuoted()
			if err != nil {
				return nil, err
			}
			out = append(out, token{s: s})
		case b == '{':
			s, err := c.readLiteral()
			if err != nil {
				return nil, err
			}
			out = append(out, token{s: s})
		case b == '(':
			s, err := c.r.ReadString(')')
			if err != nil {
				return nil, err
			}
			s = strings.TrimSuffix(s, ")")
			// A code may carry an argument: (TAG "x"), (QUOTA/MAXSIZE).
			if i := strings.IndexByte(s, ' '); i >= 0 {
				s = s[:i]
			}
			out = append(out, token{s: strings.ToUpper(s), code: true})
		default:
			var sb strings.Builder
			sb.WriteByte(b)
			for {
				nb, err := c.r.ReadByte()
				if err != nil {
					return nil, err
				}
				if nb == ' ' || nb == '\r' || nb == '\n' {
					_ = c.r.UnreadByte()
					break
				}
				sb.WriteByte(nb)
			}
			out = append(out, token{s: sb.String(), atom: true})
		}
	}
}

func (c *Client) readQuoted() (string, error) {
	var sb strings.Builder
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			return "", err
		}
		switch b {
		case '"':
			return sb.String(), nil
		case '\\':
			nb, err := c.r.ReadByte()
			if err != nil {
				return "", err
			}
			sb.WriteByte(nb)
		case '\r', '\n':
			return "", fmt.Errorf("line break inside a quoted string")
		default:
			sb.WriteByte(b)
		}
	}
}

func (c *Client) readLiteral() (string, error) {
	spec, err := c.r.ReadString('}')
	if err != nil {
		return "", err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSuffix(spec, "}"), "+"))
	if err != nil || n < 0 || n > maxLiteral {
		return "", fmt.Errorf("bad literal {%s", spec)
	}
	if crlf, err := c.r.ReadString('\n'); err != nil || strings.TrimRight(crlf, "\r\n") != "" {
		return "", fmt.Errorf("bad literal {%s: no line break after it", spec)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return "", err
	}
	return string(buf), nil
}

// quote makes a quoted string; a name with a line break or NUL cannot be
// quoted and is sent as a literal.
func quote(s string) string {
	if strings.ContainsAny(s, "\r\n\x00") {
		return literal(s)
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// literal is a non-synchronizing literal, which every ManageSieve server
// accepts (RFC 5804 4).
func literal(s string) string {
	return "{" + strconv.Itoa(len(s)) + "+}\r\n" + s
}
