package address

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: " Alice@Example.COM ", want: "alice@example.com"},
		{in: "a.b_c-d+tag@sub.example.org", want: "a.b_c-d+tag@sub.example.org"},
		{in: "bob@bücher.example", want: "bob@xn--bcher-kva.example"},
		{in: "bob@xn--bcher-kva.example.", want: "bob@xn--bcher-kva.example"},
		{in: "", err: "empty"},
		{in: "alice", err: "no @"},
		{in: "@example.com", err: "no local part"},
		{in: "alice@", err: "no domain"},
		{in: "alice@localhost", err: "single label"},
		{in: "ali\r\nce@example.com", err: "control character"},
		{in: "alice@exa\nmple.com", err: "control character"},
		{in: "alice*admin@example.com", err: `"*"`},
		{in: "jörg@example.com", err: "non-ASCII"},
		{in: "a b@example.com", err: "not allowed"},
		{in: `"a"@example.com`, err: "not allowed"},
		{in: "a'b@example.com", err: "not allowed"},
		{in: ".a@example.com", err: "dot"},
		{in: "a..b@example.com", err: "dot"},
		{in: "a@b@example.com", err: "not allowed"},
		{in: strings.Repeat("a", 65) + "@example.com", err: "at most 64"},
		{in: "a@" + strings.Repeat("b", 64) + ".com", err: "63"},
		{in: "a@-x.example.com", err: "not a valid host name"},
		{in: "a@ex_ample.com", err: "not a valid host name"},
		{in: "a@exa%mple.com", err: "not"},
	} {
		got, err := Normalize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Normalize(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestDomainOfAndKey(t *testing.T) {
	if got := DomainOf("alice@example.com"); got != "example.com" {
		t.Fatalf("DomainOf = %q", got)
	}
	if got := DomainOf("nodomain"); got != "" {
		t.Fatalf("DomainOf(nodomain) = %q", got)
	}
	if got := Key(" Bob@Bücher.Example "); got != "bob@xn--bcher-kva.example" {
		t.Fatalf("Key = %q", got)
	}
	if got := Key(" Not An Address "); got != "not an address" {
		t.Fatalf("Key(invalid) = %q", got)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"alice@example.com", "a*b@x.y", "ü@ü.de", "\r\n@x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Normalize(s)
		if err != nil {
			return
		}
		// The normal form is a fixed point, ASCII, without control characters.
		if again, err := Normalize(n); err != nil || again != n {
			t.Fatalf("Normalize(%q) = %q, then %q, %v", s, n, again, err)
		}
		for i := 0; i < len(n); i++ {
			if n[i] < 0x21 || n[i] > 0x7e || n[i] == '*' {
				t.Fatalf("Normalize(%q) = %q holds byte %#x", s, n, n[i])
			}
		}
	})
}
