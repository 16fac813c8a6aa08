package eligibility_test

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/eligibility"
)

func TestCheck(t *testing.T) {
	ctx := context.Background()
	dir, err := directory.Open(ctx, filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	for _, sv := range []directory.Service{
		{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: "127.0.0.1:1", IMAPSecurity: "plain"},
		{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: "127.0.0.1:2", IMAPSecurity: "plain"},
	} {
		if err := dir.AddService(ctx, sv); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"ok@example.com", "held@example.com", "mine@example.com", "done@example.com", "fwd@example.com", "all@example.com"} {
		if err := dir.AddAccount(ctx, directory.Account{Address: a, ServiceID: "mxplan-1"}, directory.HashPassword("pw")); err != nil {
			t.Fatal(err)
		}
	}
	if err := dir.AddAccount(ctx, directory.Account{Address: "off@example.com", ServiceID: "mxplan-1", State: "suspended"}, directory.HashPassword("pw")); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(dir.Lock(ctx, "held@example.com", "migrate:someone-else"))
	must(dir.Lock(ctx, "mine@example.com", "migrate:mine@example.com"))
	must(dir.Lock(ctx, "done@example.com", "migrate:done@example.com"))
	must(dir.MarkMigrated(ctx, "done@example.com", "migrate:done@example.com"))
	must(dir.AddRedirection(ctx, directory.Redirection{Address: "fwd@example.com", Kind: "forward", Target: "f@elsewhere.test"}))
	must(dir.Lock(ctx, "all@example.com", "migrate:other"))
	must(dir.MarkMigrated(ctx, "all@example.com", "migrate:other"))
	must(dir.AddRedirection(ctx, directory.Redirection{Address: "all@example.com", Kind: "auto-responder", Target: "on holiday"}))

	for _, tc := range []struct {
		addr, to string
		want     []eligibility.Kind
		words    string
	}{
		{addr: "ok@example.com", to: "emailpro-1"},
		{addr: "mine@example.com", to: "emailpro-1"},
		{addr: "zed@example.com", to: "emailpro-1", want: []eligibility.Kind{eligibility.AccountMissing}, words: `no MX Plan account "zed@example.com"`},
		{addr: "held@example.com", to: "emailpro-1", want: []eligibility.Kind{eligibility.HeldByAnother}, words: "held by another migration (migrate:someone-else)"},
		{addr: "done@example.com", to: "emailpro-1", want: []eligibility.Kind{eligibility.AlreadyMigrated}, words: "already migrated"},
		{addr: "off@example.com", to: "emailpro-1", want: []eligibility.Kind{eligibility.NotActive}, words: "is suspended, not active"},
		{addr: "fwd@example.com", to: "emailpro-1", want: []eligibility.Kind{eligibility.Redirection}, words: "has forward to f@elsewhere.test"},
		{addr: "ok@example.com", to: "nosuch-1", want: []eligibility.Kind{eligibility.UnknownService}, words: `unknown destination service "nosuch-1"`},
		{addr: "ok@example.com", to: "mxplan-1", want: []eligibility.Kind{eligibility.WrongServiceKind}, words: `destination service "mxplan-1" is mxplan`},
		// Every reason is listed, in the documented order.
		{addr: "all@example.com", to: "nosuch-1", want: []eligibility.Kind{eligibility.HeldByAnother, eligibility.AlreadyMigrated,
			eligibility.Redirection, eligibility.UnknownService}, words: "has auto-responder to on holiday"},
		{addr: "zed@example.com", to: "mxplan-1", want: []eligibility.Kind{eligibility.AccountMissing, eligibility.WrongServiceKind}},
	} {
		v, err := eligibility.Check(ctx, dir, tc.addr, tc.to, "migrate:"+tc.addr)
		if err != nil {
			t.Fatalf("Check(%s, %s) error %v", tc.addr, tc.to, err)
		}
		var kinds []eligibility.Kind
		var words []string
		for _, r := range v.Reasons {
			kinds = append(kinds, r.Kind)
			words = append(words, r.Message)
		}
		if !reflect.DeepEqual(kinds, tc.want) || v.OK() != (len(tc.want) == 0) || !strings.Contains(strings.Join(words, "; "), tc.words) {
			t.Fatalf("Check(%s, %s) = %v %q, want %v naming %q", tc.addr, tc.to, kinds, words, tc.want, tc.words)
		}
		if (v.Account == nil) != (tc.addr == "zed@example.com") || (v.Service == nil) != (tc.to == "nosuch-1") {
			t.Fatalf("Check(%s, %s): account %v, service %v", tc.addr, tc.to, v.Account, v.Service)
		}
	}
}
