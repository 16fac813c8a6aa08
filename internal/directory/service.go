package directory

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/mailshift/mailshift/internal/dnscheck"
	"github.com/mailshift/mailshift/internal/limits"
)

// IMAP security settings of a service.
const (
	SecurityTLS      = "tls"
	SecurityStartTLS = "starttls"
	SecurityPlain    = "plain"
)

// Bounds of a service definition.
const (
	// MaxMessageBytesLimit is far above any service's message size limit.
	MaxMessageBytesLimit = 1 << 40
	maxURL               = 2048
)

// ErrBadService marks a service definition that cannot be used as it is.
// It is dnscheck's sentinel, so a bad DNS field found by either package is
// the same error.
var ErrBadService = dnscheck.ErrBadService

// Requirements are the DNS records the service's domains need.
func (sv Service) Requirements() dnscheck.Requirements {
	return dnscheck.Requirements{MX: sv.MX, SPFInclude: sv.SPFInclude, Autodiscover: sv.Autodiscover}
}

// Validate checks every field of a service definition. The error names the
// service and the field as spelled in an import file, and wraps
// ErrBadService.
func (sv Service) Validate() error {
	if err := sv.validate(); err != nil {
		return &dnscheck.ServiceError{Service: sv.ID, Err: err}
	}
	return nil
}

func (sv Service) validate() error {
	bad := func(field, value, format string, args ...any) error {
		return &dnscheck.FieldError{Field: field, Value: value, Reason: fmt.Sprintf(format, args...)}
	}
	if err := checkServiceID(sv.ID); err != nil {
		return bad("id", sv.ID, "%v", err)
	}
	if err := validKind(sv.Kind); err != nil {
		return bad("kind", sv.Kind, "must be %s, %s or %s", KindMXPlan, KindEmailPro, KindExchange)
	}
	if sv.IMAPAddr == "" {
		return bad("imapAddr", sv.IMAPAddr, "required: host:port of the service's IMAP server")
	}
	if err := checkHostPort(sv.IMAPAddr); err != nil {
		return bad("imapAddr", sv.IMAPAddr, "%v", err)
	}
	switch sv.IMAPSecurity {
	case SecurityTLS, SecurityStartTLS, SecurityPlain:
	default:
		return bad("imapSecurity", sv.IMAPSecurity, "must be %s, %s or %s", SecurityTLS, SecurityStartTLS, SecurityPlain)
	}
	if sv.SMTPAddr != "" {
		if err := checkHostPort(sv.SMTPAddr); err != nil {
			return bad("smtpAddr", sv.SMTPAddr, "%v", err)
		}
	}
	if sv.WebmailURL != "" {
		if err := checkURL(sv.WebmailURL); err != nil {
			return bad("webmailUrl", sv.WebmailURL, "%v", err)
		}
	}
	if err := sv.Requirements().Validate(); err != nil {
		return err
	}
	if sv.MaxMessageBytes < 0 || sv.MaxMessageBytes > MaxMessageBytesLimit {
		return bad("maxMessageBytes", strconv.FormatInt(sv.MaxMessageBytes, 10), "must be 0 (no limit) to %d", int64(MaxMessageBytesLimit))
	}
	return nil
}

// checkServiceID: a service ID goes into routes' transports ("lmtp:ID"),
// workflow inputs and search queries, so it is 1 to limits.ServiceID bytes
// of letters, digits and ". _ -", beginning with a letter or digit.
func checkServiceID(id string) error {
	if id == "" {
		return errors.New("required")
	}
	if len(id) > limits.ServiceID {
		return fmt.Errorf("%d bytes long; at most %d", len(id), limits.ServiceID)
	}
	for i, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '.' || r == '_' || r == '-'):
		default:
			return fmt.Errorf("character %q is not allowed (letters, digits, and . _ - after the first)", r)
		}
	}
	return nil
}

// checkHostPort checks a server address: a host name or IP address, and a
// port from 1 to 65535.
func checkHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("want host:port: %v", err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q: want a number from 1 to 65535", port)
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if host == "" || len(host) > 253 {
		return fmt.Errorf("host %q: want a host name or an IP address", host)
	}
	for _, l := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("host %q: an empty label, one over 63 bytes, or one beginning or ending with a hyphen", host)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("host %q: character %q is not allowed in a host name", host, r)
			}
		}
	}
	return nil
}

// checkURL checks a web address shown to mailbox owners: http or https, a
// host, no spaces, quotes or control characters.
func checkURL(s string) error {
	if len(s) > maxURL {
		return fmt.Errorf("%d bytes long; at most %d", len(s), maxURL)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '"' || r == '<' || r == '>' || r == '\\' {
			return fmt.Errorf("character %q is not allowed in a web address", r)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return errors.New("want an http or https address with a host and no user")
	}
	return nil
}
