package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Headers of a webhook delivery.
const (
	HeaderEvent     = "X-Mailshift-Event"
	HeaderID        = "X-Mailshift-Event-Id"
	HeaderSignature = "X-Mailshift-Signature"
)

// Webhook POSTs events as JSON to URL.
type Webhook struct {
	URL string
	// Secret, when set, signs the body: HeaderSignature is
	// "sha256=" + hex(HMAC-SHA256(Secret, body)).
	Secret []byte
	// Timeout bounds one attempt (default 10 s); Attempts (default 4) are
	// spaced by Backoff (default 1 s), doubling.
	Timeout  time.Duration
	Attempts int
	Backoff  time.Duration
	Client   *http.Client
}

// Name is "webhook".
func (w *Webhook) Name() string { return "webhook" }

// Sign is the signature of body under secret, as HeaderSignature carries it.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Send POSTs e, retrying network errors, timeouts, 408, 429 and 5xx.
func (w *Webhook) Send(ctx context.Context, e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	timeout, backoff, attempts := w.Timeout, w.Backoff, w.Attempts
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if backoff <= 0 {
		backoff = time.Second
	}
	if attempts <= 0 {
		attempts = 4
	}
	// A hook's path often holds its token: errors name the host only.
	where := "the webhook"
	if u, err := url.Parse(w.URL); err == nil && u.Host != "" {
		where = "the webhook at " + u.Host
	}
	hc := w.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	return retry(ctx, attempts, backoff, func() error {
		actx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(actx, http.MethodPost, w.URL, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("%w: the webhook URL does not parse", ErrRejected)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "mailshift")
		req.Header.Set(HeaderEvent, e.Kind)
		req.Header.Set(HeaderID, e.ID)
		if len(w.Secret) > 0 {
			req.Header.Set(HeaderSignature, Sign(w.Secret, body))
		}
		resp, err := hc.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return fmt.Errorf("POST to %s: %w", where, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return nil
		case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			return fmt.Errorf("POST to %s: %s", where, resp.Status)
		default:
			return fmt.Errorf("%w: POST to %s: %s", ErrRejected, where, resp.Status)
		}
	})
}
