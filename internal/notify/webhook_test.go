package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/notify"
)

type received struct {
	mu     sync.Mutex
	bodies [][]byte
	heads  []http.Header
}

func (r *received) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

func (r *received) add(h http.Header, b []byte) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bodies = append(r.bodies, b)
	r.heads = append(r.heads, h.Clone())
	return len(r.bodies)
}

// The webhook POSTs the event as JSON with its ID and an HMAC signature
// the receiver can check, retries a failing receiver, and stops at once on
// a refusal.
func TestWebhook(t *testing.T) {
	secret := []byte("hook-secret")
	ev := notify.Event{ID: "migrate:alice@example.com/needs-attention/1", Kind: notify.KindNeedsAttention, Account: "alice@example.com",
		Plan: "p1", Stage: "verify", ErrorType: "VerifyMismatch", Error: "1 of 13 messages are not on the destination",
		Counts: map[string]int{"copied": 12}, At: time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)}
	t.Run("delivered after two 503s, signed", func(t *testing.T) {
		var got received
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if n := got.add(r.Header, b); n <= 2 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		wh := &notify.Webhook{URL: srv.URL + "/hook/token123", Secret: secret, Backoff: 10 * time.Millisecond}
		if err := wh.Send(context.Background(), ev); err != nil {
			t.Fatalf("Send() = %v", err)
		}
		if got.count() != 3 {
			t.Fatalf("receiver got %d POSTs, want 3 (two refused, one taken)", got.count())
		}
		last, h := got.bodies[2], got.heads[2]
		var back map[string]any
		if err := json.Unmarshal(last, &back); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"id": ev.ID, "event": "needs-attention", "account": "alice@example.com", "plan": "p1", "stage": "verify",
			"errorType": "VerifyMismatch", "error": ev.Error, "at": "2026-12-07T18:00:00Z"}
		for k, v := range want {
			if back[k] != v {
				t.Errorf("body[%q] = %v, want %v", k, back[k], v)
			}
		}
		if c, _ := back["counts"].(map[string]any); c["copied"] != float64(12) {
			t.Errorf("body counts = %v, want copied 12", back["counts"])
		}
		if h.Get("Content-Type") != "application/json" || h.Get(notify.HeaderID) != ev.ID || h.Get(notify.HeaderEvent) != "needs-attention" {
			t.Errorf("headers = %v", h)
		}
		if sig := h.Get(notify.HeaderSignature); sig != notify.Sign(secret, last) || !strings.HasPrefix(sig, "sha256=") {
			t.Errorf("signature %q does not match the body", sig)
		}
		if notify.Sign([]byte("other"), last) == h.Get(notify.HeaderSignature) {
			t.Errorf("a wrong secret gives the same signature")
		}
	})
	t.Run("a 400 is not retried; the error hides the URL's path", func(t *testing.T) {
		var got received
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got.add(r.Header, nil)
			w.WriteHeader(http.StatusBadRequest)
		}))
		defer srv.Close()
		err := (&notify.Webhook{URL: srv.URL + "/hook/token123", Backoff: time.Millisecond}).Send(context.Background(), ev)
		if !errors.Is(err, notify.ErrRejected) || got.count() != 1 || strings.Contains(err.Error(), "token123") {
			t.Fatalf("Send() = %v after %d POSTs; want a rejection after 1, without the token", err, got.count())
		}
	})
	t.Run("a receiver that hangs times out, every attempt", func(t *testing.T) {
		var got received
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got.add(r.Header, nil)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		start := time.Now()
		err := (&notify.Webhook{URL: srv.URL, Timeout: 100 * time.Millisecond, Attempts: 2, Backoff: time.Millisecond}).Send(context.Background(), ev)
		if err == nil || got.count() != 2 || time.Since(start) > 5*time.Second {
			t.Fatalf("Send() = %v after %d POSTs in %v; want an error after 2 attempts", err, got.count(), time.Since(start))
		}
	})
	t.Run("the notifier skips channels already done", func(t *testing.T) {
		var got received
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.add(r.Header, nil) }))
		defer srv.Close()
		n := &notify.Notifier{Channels: []notify.Channel{&notify.Webhook{URL: srv.URL}}}
		sent, err := n.Send(context.Background(), ev, map[string]bool{"webhook": true})
		if err != nil || len(sent) != 0 || got.count() != 0 {
			t.Fatalf("Send(done webhook) = %v, %v; %d POSTs; want nothing sent", sent, err, got.count())
		}
		sent, err = n.Send(context.Background(), ev, nil)
		if err != nil || len(sent) != 1 || got.count() != 1 {
			t.Fatalf("Send() = %v, %v; %d POSTs; want the webhook once", sent, err, got.count())
		}
		if _, err := n.Send(context.Background(), notify.Event{Kind: "nope"}, nil); !errors.Is(err, notify.ErrRejected) {
			t.Fatalf("Send(bad event) = %v, want a rejection", err)
		}
	})
}
