// Package mailcopy copies every folder and message of one IMAP account to
// another: faithfully (same bytes, flags and internal dates), resumably
// (per-folder checkpoints, fingerprint deduplication) and with constant
// memory (bodies are streamed from FETCH straight into APPEND).
//
// It has no Temporal imports; the activities drive it.
package mailcopy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// Security says how a connection is protected.
type Security string

// Connection security modes. Plain must be chosen explicitly.
const (
	SecurityTLS      Security = "tls"
	SecurityStartTLS Security = "starttls"
	SecurityPlain    Security = "plain"
)

// Endpoint says where and as whom to log in.
type Endpoint struct {
	// Addr is host:port.
	Addr     string
	Security Security
	// InsecureSkipVerify turns off certificate checks (lab use only).
	InsecureSkipVerify bool
	// RootCAs are the authorities trusted for the server's certificate
	// (nil: the system's).
	RootCAs *x509.CertPool
	// User is the account whose mailbox is opened.
	User string
	// MasterUser, when set, logs in as the master user on behalf of User:
	// "User<MasterSep>MasterUser" with LOGIN (Dovecot's convention), or SASL
	// PLAIN with User as the authorization identity when UseSASLAuthz.
	MasterUser   string
	MasterSep    string
	UseSASLAuthz bool
	// Password is the password of MasterUser if set, else of User. It is
	// never logged or returned.
	Password string
}

// LoadCAs returns the system's trusted authorities plus those of a PEM
// file (an internal CA that signs the mail servers' certificates).
func LoadCAs(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// String names the endpoint without its secret.
func (ep Endpoint) String() string {
	if ep.MasterUser != "" {
		return fmt.Sprintf("%s@%s (via %s)", ep.User, ep.Addr, ep.MasterUser)
	}
	return fmt.Sprintf("%s@%s", ep.User, ep.Addr)
}

// PermanentError is an error that retrying cannot fix: bad credentials, over
// quota, a hostile or broken mailbox. Kind is a short machine name.
type PermanentError struct {
	Kind string
	Err  error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent error kinds.
const (
	KindAuthFailed     = "AuthFailed"
	KindOverQuota      = "OverQuota"
	KindVerifyMismatch = "VerifyMismatch"
	KindBadConfig      = "BadConfig"
)

// IsPermanent reports whether err is permanent and returns its kind.
func IsPermanent(err error) (string, bool) {
	var pe *PermanentError
	if errors.As(err, &pe) {
		return pe.Kind, true
	}
	return "", false
}

// classify turns IMAP response codes that no retry can fix into permanent
// errors; everything else stays transient.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		switch ie.Code {
		case imap.ResponseCodeAuthenticationFailed, imap.ResponseCodeAuthorizationFailed:
			return &PermanentError{Kind: KindAuthFailed, Err: fmt.Errorf("%s: %w", what, err)}
		case imap.ResponseCodeOverQuota, imap.ResponseCodeLimit:
			return &PermanentError{Kind: KindOverQuota, Err: fmt.Errorf("%s: %w", what, err)}
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// conn is one logged-in IMAP connection. go-imap has no contexts, so a
// cancelled context closes the connection, which fails the pending command.
//
// The copy loop checks its context between messages and stops cleanly;
// closing a connection under a running FETCH races with go-imap's reader,
// so the hard close is only a fallback for a server that stalls.
type conn struct {
	*imapclient.Client
	stop   func() bool
	closed chan struct{}
	once   sync.Once
	// kept: the connection belongs to a Session, which closes it (shut);
	// close leaves it open for the session's next call.
	kept bool
}

// hardCloseGrace is how long a cancelled copy may take to stop by itself
// before its connections are cut.
const hardCloseGrace = 20 * time.Second

// bind cuts the connection hardCloseGrace after ctx ends, unless it is
// closed first (a session's pair is bound to each call that uses it).
func (c *conn) bind(ctx context.Context) {
	if c.stop != nil {
		c.stop()
	}
	c.stop = context.AfterFunc(ctx, func() {
		select {
		case <-time.After(hardCloseGrace):
			_ = c.Client.Close()
		case <-c.closed:
		}
	})
}

func (c *conn) close() {
	if c.kept {
		return
	}
	c.shut()
}

func (c *conn) shut() {
	c.stop()
	c.once.Do(func() { close(c.closed) })
	_ = c.Client.Close()
}

func (ep Endpoint) tlsConfig() *tls.Config {
	return &tls.Config{InsecureSkipVerify: ep.InsecureSkipVerify, ServerName: hostOf(ep.Addr), RootCAs: ep.RootCAs, MinVersion: tls.VersionTLS12}
}

// connectError names a failed connection. A certificate the worker does not
// trust will not become trusted by retrying: it is a permanent
// configuration error that says what to fix.
func connectError(ep Endpoint, err error) error {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	if errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) || errors.As(err, &verify) {
		return &PermanentError{Kind: KindBadConfig, Err: fmt.Errorf("connect %s: the server's TLS certificate is not trusted (%v): fix the certificate, or give the worker its CA (imapCAFile)", ep.Addr, err)}
	}
	// go-imap sends STARTTLS without looking for it in the capabilities;
	// a server that does not announce it answers NO or BAD. A BYE (a full
	// server) or a cut connection stays transient.
	var ie *imap.Error
	if ep.Security == SecurityStartTLS && errors.As(err, &ie) && (ie.Type == imap.StatusResponseTypeNo || ie.Type == imap.StatusResponseTypeBad) {
		return startTLSRefused(ep, ie.Text)
	}
	return fmt.Errorf("connect %s: %w", ep.Addr, err)
}

// startTLSRefused is the error for a server that will not start TLS on a
// connection configured for STARTTLS (it refuses the command, or does not
// announce it). Retrying cannot give the server TLS, and going on in
// plaintext would hand the password to whoever stripped STARTTLS, so it is
// a permanent configuration error that says what to change. reply is the
// server's answer.
func startTLSRefused(ep Endpoint, reply string) error {
	return &PermanentError{Kind: KindBadConfig, Err: fmt.Errorf("connect %s: the server refuses STARTTLS (%q): enable TLS on the server, or set the service's imapSecurity to tls (implicit TLS, usually port 993) or to plain (the worker then needs \"imapPlain\": true)", ep.Addr, reply)}
}

func dial(ctx context.Context, ep Endpoint) (*conn, error) {
	opts := &imapclient.Options{
		TLSConfig: ep.tlsConfig(),
		Dialer:    &net.Dialer{Timeout: 30 * time.Second},
	}
	// dialClient (wire.go) puts a sanitizer under go-imap's parser.
	c, err := dialClient(ep, opts)
	if err != nil {
		if _, perm := IsPermanent(err); perm {
			return nil, err
		}
		return nil, connectError(ep, err)
	}
	cn := &conn{Client: c, closed: make(chan struct{})}
	cn.bind(ctx)
	if err := login(cn, ep); err != nil {
		cn.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return cn, nil
}

func login(c *conn, ep Endpoint) error {
	var err error
	switch {
	case ep.MasterUser != "" && ep.UseSASLAuthz:
		err = c.Authenticate(sasl.NewPlainClient(ep.User, ep.MasterUser, ep.Password))
	case ep.MasterUser != "":
		sep := ep.MasterSep
		if sep == "" {
			sep = "*"
		}
		err = c.Login(ep.User+sep+ep.MasterUser, ep.Password).Wait()
	default:
		err = c.Login(ep.User, ep.Password).Wait()
	}
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			if ie.Code == imap.ResponseCodeUnavailable || ie.Code == imap.ResponseCodeServerBug || OverloadKind(ie) != "" {
				// "Temporary authentication failure": the server's user
				// database is unreachable, or the server is overloaded
				// (RFC 5530 UNAVAILABLE, LIMIT, "try again later"); retry
				// later. The answer is kept whole: its code shrinks the
				// server's share of its budget.
				return fmt.Errorf("log in to %s: %w", ep, ie)
			}
			// Any other NO to LOGIN is a credential problem.
			return &PermanentError{Kind: KindAuthFailed, Err: fmt.Errorf("log in to %s: %s", ep, ie.Text)}
		}
		return classify(err, "log in to "+ep.String())
	}
	return nil
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// withoutRecent drops \Recent, which no server accepts in APPEND.
func withoutRecent(flags []imap.Flag) []imap.Flag {
	out := flags[:0:0]
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		out = append(out, f)
	}
	return out
}
