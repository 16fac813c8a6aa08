// Package notify tells operators what needs them: a webhook (an HTTP POST
// with a JSON body, optionally signed) and e-mail through an SMTP relay.
// An event carries names, stages and counts only: never a secret, never a
// message's content. It has no Temporal imports; the activities drive it.
package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kinds of events.
const (
	// KindNeedsAttention: an account parked, waiting for an operator.
	KindNeedsAttention = "needs-attention"
	// KindSkippedOverLimit: an account parked because the copy skipped
	// more messages than allowed (approve-skipped or retry moves it on).
	KindSkippedOverLimit = "skipped-over-limit"
	// KindPlanFinished: no account of a plan is moving any more.
	KindPlanFinished = "plan-finished"
)

// Event is one notification. ID is stable for the event (the same on
// every retry), so a receiver can drop a second delivery.
type Event struct {
	ID        string         `json:"id"`
	Kind      string         `json:"event"`
	Account   string         `json:"account,omitempty"`
	Plan      string         `json:"plan,omitempty"`
	Stage     string         `json:"stage,omitempty"`
	ErrorType string         `json:"errorType,omitempty"`
	Error     string         `json:"error,omitempty"`
	Summary   string         `json:"summary,omitempty"`
	Counts    map[string]int `json:"counts,omitempty"`
	At        time.Time      `json:"at"`
}

// Bounds of an event's free text: an error can quote a server's answer at
// length, a receiver (a chat hook, a pager) wants a line.
const (
	maxText = 2000
	maxID   = 300
)

// Check refuses an event no receiver should get.
func (e Event) Check() error {
	switch {
	case e.ID == "" || len(e.ID) > maxID:
		return fmt.Errorf("event id: want 1 to %d bytes", maxID)
	case e.Kind != KindNeedsAttention && e.Kind != KindSkippedOverLimit && e.Kind != KindPlanFinished:
		return fmt.Errorf("event kind %q: unknown", e.Kind)
	case strings.ContainsAny(e.ID, "\r\n"):
		return errors.New("event id: holds a line break")
	}
	return nil
}

// clip bounds free text.
func (e Event) clip() Event {
	cut := func(s string) string {
		if len(s) <= maxText {
			return s
		}
		s = s[:maxText]
		for len(s) > 0 && !validTail(s) {
			s = s[:len(s)-1]
		}
		return s + "…"
	}
	e.Error, e.Summary = cut(e.Error), cut(e.Summary)
	return e
}

// validTail reports whether s does not end inside a UTF-8 sequence.
func validTail(s string) bool {
	return strings.ToValidUTF8(s[max(0, len(s)-4):], "\x00") == s[max(0, len(s)-4):]
}

// Title is the event in one line (the e-mail's subject).
func (e Event) Title() string {
	switch e.Kind {
	case KindPlanFinished:
		return fmt.Sprintf("mailshift: plan %s finished (%s)", e.Plan, countsLine(e.Counts))
	case KindSkippedOverLimit:
		return fmt.Sprintf("mailshift: %s needs attention: skipped messages over the limit", e.Account)
	default:
		return fmt.Sprintf("mailshift: %s needs attention at %s (%s)", e.Account, e.Stage, e.ErrorType)
	}
}

// countsLine writes counts in a fixed order: the outcomes first.
func countsLine(c map[string]int) string {
	var parts []string
	for _, k := range []string{"done", "cancelled", "rolled-back", "needs-attention"} {
		parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
	}
	return strings.Join(parts, ", ")
}

// Channel delivers events.
type Channel interface {
	// Name identifies the channel in results ("webhook", "email").
	Name() string
	Send(ctx context.Context, e Event) error
}

// ErrRejected marks a refusal that a retry cannot change (a 4xx answer,
// a 5xx SMTP reply).
var ErrRejected = errors.New("rejected")

// Notifier sends each event on every configured channel.
type Notifier struct {
	Channels []Channel
}

// Send delivers e on every channel whose name done does not hold, and
// returns the names delivered now; the error joins the channels' errors.
// The caller keeps done across its own retries, so a channel that
// succeeded is not sent to twice.
func (n *Notifier) Send(ctx context.Context, e Event, done map[string]bool) ([]string, error) {
	if err := e.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	e = e.clip()
	var sent []string
	var errs []error
	for _, c := range n.Channels {
		if done[c.Name()] {
			continue
		}
		if err := c.Send(ctx, e); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name(), err))
			continue
		}
		sent = append(sent, c.Name())
	}
	return sent, errors.Join(errs...)
}

// retry runs f up to attempts times, waiting backoff, then twice that,
// between attempts; a rejection or ctx's end stops it.
func retry(ctx context.Context, attempts int, backoff time.Duration, f func() error) error {
	var err error
	for i := 0; i < max(1, attempts); i++ {
		if i > 0 {
			t := time.NewTimer(backoff << (i - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
		}
		if err = f(); err == nil || errors.Is(err, ErrRejected) {
			return err
		}
	}
	return err
}
