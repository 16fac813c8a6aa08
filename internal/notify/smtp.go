package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"net/textproto"
	"sort"
	"strings"
	"time"
)

// Mail sends events as plain-text e-mail through an SMTP relay.
type Mail struct {
	// Relay is host:port.
	Relay string
	From  string
	To    []string
	// TLS is used for STARTTLS, which Send uses whenever the relay offers
	// it; RequireTLS refuses a relay that does not.
	TLS        *tls.Config
	RequireTLS bool
	// Username and Password authenticate (PLAIN, only over TLS or to
	// localhost); empty: no AUTH.
	Username, Password string
	// HeloName is the name said in EHLO (default "localhost").
	HeloName string
	// Timeout bounds one attempt (default 30 s); Attempts (default 3) are
	// spaced by Backoff (default 2 s), doubling.
	Timeout  time.Duration
	Attempts int
	Backoff  time.Duration
}

// Name is "email".
func (m *Mail) Name() string { return "email" }

// Send mails e to every recipient, retrying network errors and 4xx
// replies; a 5xx reply is a rejection.
func (m *Mail) Send(ctx context.Context, e Event) error {
	if m.Relay == "" || m.From == "" || len(m.To) == 0 {
		return fmt.Errorf("%w: e-mail needs a relay, a sender and recipients", ErrRejected)
	}
	msg := m.message(e)
	timeout, backoff, attempts := m.Timeout, m.Backoff, m.Attempts
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if backoff <= 0 {
		backoff = 2 * time.Second
	}
	if attempts <= 0 {
		attempts = 3
	}
	return retry(ctx, attempts, backoff, func() error {
		err := m.once(ctx, timeout, msg)
		var pe *textproto.Error
		if errors.As(err, &pe) && pe.Code >= 500 {
			return fmt.Errorf("%w: relay %s: %v", ErrRejected, m.Relay, err)
		}
		if err != nil {
			return fmt.Errorf("relay %s: %w", m.Relay, err)
		}
		return nil
	})
}

func (m *Mail) once(ctx context.Context, timeout time.Duration, msg []byte) error {
	host, _, err := net.SplitHostPort(m.Relay)
	if err != nil {
		return fmt.Errorf("%w: relay %q: want host:port", ErrRejected, m.Relay)
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", m.Relay)
	if err != nil {
		return err
	}
	// net/smtp has no context: the deadline bounds the whole exchange and
	// a cancelled ctx closes the connection.
	_ = conn.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	helo := m.HeloName
	if helo == "" {
		helo = "localhost"
	}
	if err := c.Hello(helo); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if m.TLS != nil {
			cfg = m.TLS.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName = host
			}
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	} else if m.RequireTLS {
		return fmt.Errorf("%w: the relay does not offer STARTTLS and TLS is required", ErrRejected)
	}
	if m.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.Username, m.Password, host)); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(m.From); err != nil {
		return err
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// message is the e-mail of e. Its Message-ID comes from the event ID, so
// a mailbox that gets it twice (a retry after a lost answer) holds two
// copies a client shows as one.
func (m *Mail) message(e Event) []byte {
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", m.From)
	h("To", strings.Join(m.To, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", e.Title()))
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	h("Date", at.UTC().Format(time.RFC1123Z))
	h("Message-ID", "<"+strings.NewReplacer("<", "", ">", "", "@", ".at.", " ", "_", ":", ".", "/", ".").Replace(e.ID)+"@mailshift.invalid>")
	h(HeaderEvent, e.Kind)
	h(HeaderID, e.ID)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-11s %s\r\n", k+":", strings.ReplaceAll(v, "\n", "\r\n            "))
		}
	}
	line("Event", e.Kind)
	line("Account", e.Account)
	line("Plan", e.Plan)
	line("Stage", e.Stage)
	line("Error type", e.ErrorType)
	line("Error", e.Error)
	line("Summary", e.Summary)
	if len(e.Counts) > 0 {
		keys := make([]string, 0, len(e.Counts))
		for k := range e.Counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("Counts:\r\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "  %-16s %d\r\n", k, e.Counts[k])
		}
	}
	line("At", at.UTC().Format(time.RFC3339))
	line("Event ID", e.ID)
	return b.Bytes()
}
