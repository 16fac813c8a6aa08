package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"strings"
	"time"
)

// Notify configures operator notifications: a webhook, e-mail through an
// SMTP relay, or both; neither set means no notification is sent.
type Notify struct {
	// WebhookURL receives a POST with a JSON body per event
	// (MAILSHIFT_NOTIFY_WEBHOOK_URL). Its path may hold a token: it is
	// never logged.
	WebhookURL string `json:"webhookURL"`
	// WebhookSecretFile holds the HMAC-SHA256 key that signs the body
	// (header X-Mailshift-Signature); MAILSHIFT_NOTIFY_WEBHOOK_SECRET may
	// give it instead.
	WebhookSecretFile string `json:"webhookSecretFile"`
	WebhookSecret     string `json:"-"`
	// WebhookTimeout bounds one POST (Go duration, default "10s");
	// WebhookAttempts (default 4) are spaced 1 s, 2 s, 4 s...
	WebhookTimeout  string `json:"webhookTimeout"`
	WebhookAttempts int    `json:"webhookAttempts"`

	// SMTPRelay is the relay's host:port; From and To the envelope and
	// header addresses. STARTTLS is used whenever the relay offers it;
	// SMTPRequireTLS refuses a relay that does not.
	SMTPRelay      string   `json:"smtpRelay"`
	From           string   `json:"from"`
	To             []string `json:"to"`
	SMTPRequireTLS bool     `json:"smtpRequireTLS"`
	// SMTPCAFile adds authorities for the relay's certificate.
	SMTPCAFile string `json:"smtpCAFile"`
	// SMTPUser and SMTPPasswordFile authenticate (PLAIN, over TLS only);
	// MAILSHIFT_NOTIFY_SMTP_PASSWORD may give the password instead.
	SMTPUser         string `json:"smtpUser"`
	SMTPPasswordFile string `json:"smtpPasswordFile"`
	SMTPPassword     string `json:"-"`
}

// Enabled reports whether any channel is configured.
func (n Notify) Enabled() bool { return n.WebhookURL != "" || n.SMTPRelay != "" }

func (n *Notify) readSecrets() error {
	read := func(file string, dst *string, what string) error {
		if *dst != "" || file == "" {
			return nil
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("notify %s file: %w", what, err)
		}
		*dst = strings.TrimSpace(string(b))
		return nil
	}
	if err := read(n.WebhookSecretFile, &n.WebhookSecret, "webhook secret"); err != nil {
		return err
	}
	return read(n.SMTPPasswordFile, &n.SMTPPassword, "SMTP password")
}

func (n Notify) validate() []error {
	var errs []error
	if n.WebhookURL != "" {
		u, err := url.Parse(n.WebhookURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			// The URL itself is not repeated: it may hold a token.
			errs = append(errs, fmt.Errorf("notify.webhookURL: want an http:// or https:// URL"))
		}
	}
	if n.WebhookAttempts < 0 || n.WebhookAttempts > 10 {
		errs = append(errs, fmt.Errorf("notify.webhookAttempts = %d: want 0 (default 4) to 10", n.WebhookAttempts))
	}
	if n.WebhookTimeout != "" {
		if _, err := parsePositive(n.WebhookTimeout); err != nil {
			errs = append(errs, fmt.Errorf("notify.webhookTimeout %q: %v", n.WebhookTimeout, err))
		}
	}
	if n.SMTPRelay != "" {
		if _, _, err := net.SplitHostPort(n.SMTPRelay); err != nil {
			errs = append(errs, fmt.Errorf("notify.smtpRelay %q: want host:port", n.SMTPRelay))
		}
		if _, err := mail.ParseAddress(n.From); err != nil || strings.ContainsAny(n.From, "<>\r\n ") {
			errs = append(errs, fmt.Errorf("notify.from %q: want a bare address like mailshift@example.net", n.From))
		}
		if len(n.To) == 0 {
			errs = append(errs, fmt.Errorf("notify.to: at least one address with smtpRelay"))
		}
		for _, to := range n.To {
			if _, err := mail.ParseAddress(to); err != nil || strings.ContainsAny(to, "<>\r\n ") {
				errs = append(errs, fmt.Errorf("notify.to %q: want a bare address", to))
			}
		}
		if n.SMTPUser != "" && n.SMTPPassword == "" {
			errs = append(errs, fmt.Errorf("notify.smtpUser needs smtpPasswordFile or MAILSHIFT_NOTIFY_SMTP_PASSWORD"))
		}
	} else if n.From != "" || len(n.To) > 0 {
		errs = append(errs, fmt.Errorf("notify.from/to need notify.smtpRelay"))
	}
	return errs
}

func parsePositive(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive duration like \"10s\"")
	}
	return d, nil
}

// Timeout is the webhook's per-attempt timeout (0: the default).
func (n Notify) Timeout() time.Duration {
	d, _ := parsePositive(n.WebhookTimeout)
	return d
}
