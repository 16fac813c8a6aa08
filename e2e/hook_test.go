package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/notify"
)

// hookEvent is an event as a webhook receiver decodes it.
type hookEvent struct {
	notify.Event
	signed bool
}

// hook is the operators' webhook receiver: it keeps what it was sent.
type hook struct {
	url    string
	mu     sync.Mutex
	events []hookEvent
}

func startHook(t *testing.T, secret string) *hook {
	t.Helper()
	h := &hook{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var e notify.Event
		if err != nil || json.Unmarshal(b, &e) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.events = append(h.events, hookEvent{Event: e, signed: r.Header.Get(notify.HeaderSignature) == notify.Sign([]byte(secret), b)})
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// wait returns the first event ok accepts, waiting up to a minute.
func (h *hook) wait(t *testing.T, ok func(hookEvent) bool) hookEvent {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		h.mu.Lock()
		for _, e := range h.events {
			if ok(e) {
				h.mu.Unlock()
				return e
			}
		}
		n := len(h.events)
		h.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no matching webhook event after a minute (%d received)", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
