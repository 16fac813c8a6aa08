package directory_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/mailshift/mailshift/internal/directory"
)

// TestAccountsOfDomainMatchesLiterally: "%" and "_" in a domain are
// characters, not LIKE wildcards (plan --domain '%' once listed every
// account of the platform).
func TestAccountsOfDomainMatchesLiterally(t *testing.T) {
	stores(t, func(t *testing.T, s *directory.Store) {
		ctx := context.Background()
		if err := s.AddService(ctx, directory.Service{ID: "mx", Kind: directory.KindMXPlan, IMAPAddr: "127.0.0.1:1", IMAPSecurity: "plain"}); err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"a@example.com", "b@example.com", "c@exam_le.com", "d@examxle.com", `e@ex\ample.com`, "f@sub.example.com"} {
			if err := s.AddAccount(ctx, directory.Account{Address: a, ServiceID: "mx"}, "x"); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			domain string
			want   []string
		}{
			{"example.com", []string{"a@example.com", "b@example.com"}},
			{"EXAMPLE.com", []string{"a@example.com", "b@example.com"}},
			{"%", nil},
			{"%.com", nil},
			{"_xample.com", nil},
			{"exam_le.com", []string{"c@exam_le.com"}},
			{`ex\ample.com`, []string{`e@ex\ample.com`}},
			{`ex\`, nil},
			{"", nil},
		} {
			accts, err := s.AccountsOfDomain(ctx, tc.domain)
			if err != nil {
				t.Fatalf("AccountsOfDomain(%q) error %v", tc.domain, err)
			}
			var got []string
			for _, a := range accts {
				got = append(got, a.Address)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("AccountsOfDomain(%q) = %v, want %v", tc.domain, got, tc.want)
			}
		}
	})
}
