package directory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/directory"
)

const importJSON = `{
  "services": [
    {"id": "mxplan-1", "kind": "mxplan", "imapAddr": "imap.old.test:993", "imapSecurity": "tls"},
    {"id": "pro-9", "kind": "emailpro", "imapAddr": "pro9.test:993", "imapSecurity": "tls", "mx": "10 mx1.pro.test"}
  ],
  "slots": [
    {"service": "pro-9", "placeholder": "x1@configureme.me", "quotaBytes": 5000000000},
    {"service": "pro-9", "placeholder": "x2@configureme.me", "quotaBytes": 5000000000}
  ],
  "accounts": [
    {"address": "Zoe@Example.com", "service": "mxplan-1", "password": "zoe-pw", "locale": "fr"},
    {"address": "yann@example.com", "service": "mxplan-1", "passwordHash": "{SSHA256}aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2hzYWx0c2FsdA=="}
  ],
  "redirections": [{"address": "yann@example.com", "kind": "auto-responder", "target": "on holiday"}]
}`

func TestImport(t *testing.T) {
	stores(t, func(t *testing.T, s *directory.Store) {
		ctx := context.Background()
		rep, err := s.Import(ctx, strings.NewReader(importJSON))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Services != 2 || rep.Slots != 2 || rep.Accounts != 2 || rep.Redirections != 1 || len(rep.Skipped) != 0 {
			t.Fatalf("first import = %+v", rep)
		}
		rep, err = s.Import(ctx, strings.NewReader(importJSON))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Slots != 0 || rep.Accounts != 0 || rep.Redirections != 0 || len(rep.Skipped) != 5 {
			t.Fatalf("second import = %+v, want everything skipped", rep)
		}
		hash, _, err := s.PasswordHash(ctx, "mxplan-1", "zoe@example.com")
		if err != nil || !directory.VerifyPassword(hash, "zoe-pw") || strings.Contains(hash, "zoe-pw") {
			t.Fatalf("imported password not hashed: %q, %v", hash, err)
		}
		free, _ := s.FreeSlots(ctx, "pro-9", 0)
		if len(free) != 2 {
			t.Fatalf("%d free slots, want 2", len(free))
		}
		for _, bad := range []string{
			`{"accounts": [{"address": "a@b.test", "service": "mxplan-1"}]}`,
			`{"accounts": [{"address": "a@b.test", "service": "nope", "password": "x"}]}`,
			`{"slots": [{"service": "pro-9", "placeholder": "z@c.me"}]}`,
			`{"servics": []}`,
		} {
			if _, err := s.Import(ctx, strings.NewReader(bad)); err == nil {
				t.Fatalf("Import(%s) accepted a bad file", bad)
			}
		}
	})
}
