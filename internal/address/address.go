// Package address owns the platform's rule for a mailbox address: what is
// accepted, its one normal form, and the domain derived from it. The plan,
// the starter, the workflow and the activities all call it, so an address
// that passes a plan check can always be started, and one that is refused
// is refused everywhere with the same words.
//
// The policy:
//   - the local part is ASCII: letters, digits and ". _ - +", lower-cased,
//     no leading, trailing or doubled dot, at most 64 bytes. "*" is refused:
//     it separates the user from the master user in the migrator's logins.
//     Quotes, spaces, control characters (CR, LF) and non-ASCII are refused:
//     the platform's mailboxes cannot hold them, and a Temporal workflow ID
//     and its headers must stay plain ASCII.
//   - the domain is a DNS host name of at least two labels; an IDN domain is
//     accepted in Unicode and stored as its A-labels ("xn--...").
//   - the whole address is at most 254 bytes (RFC 5321's path limit).
package address

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits of an address.
const (
	MaxLocal  = 64
	MaxLength = 254
	MaxDomain = 253
)

// ErrEmpty is returned for an empty address.
var ErrEmpty = errors.New("address is empty")

// Normalize checks s against the policy and returns its normal form:
// trimmed, lower-cased, domain in A-labels. The error says what is wrong in
// words an operator can act on; it quotes the input with %q, so a control
// character is shown escaped, never printed raw.
func Normalize(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ErrEmpty
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("address %q is not valid UTF-8", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("address %q contains a control character", s)
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", fmt.Errorf("address %q has no @", s)
	}
	local, domain := strings.ToLower(s[:at]), s[at+1:]
	if err := checkLocal(local); err != nil {
		return "", fmt.Errorf("address %q: %w", s, err)
	}
	d, err := Domain(domain)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", s, err)
	}
	out := local + "@" + d
	if len(out) > MaxLength {
		return "", fmt.Errorf("address %q is %d bytes long; at most %d", s, len(out), MaxLength)
	}
	return out, nil
}

func checkLocal(local string) error {
	switch {
	case local == "":
		return errors.New("no local part before @")
	case len(local) > MaxLocal:
		return fmt.Errorf("local part is %d bytes long; at most %d", len(local), MaxLocal)
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return errors.New("local part begins or ends with a dot or has two dots in a row")
	}
	for _, r := range local {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-', r == '+':
		case r == '*':
			return errors.New(`"*" is not allowed in a local part (it separates the master user in logins)`)
		case r > 0x7f:
			return fmt.Errorf("non-ASCII character %q in the local part; the platform's mailboxes are ASCII", r)
		default:
			return fmt.Errorf("character %q is not allowed in a local part (letters, digits and . _ - + are)", r)
		}
	}
	return nil
}

// Domain checks a mail domain and returns it lower-cased in A-labels,
// without a trailing dot.
func Domain(d string) (string, error) {
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	if d == "" {
		return "", errors.New("no domain after @")
	}
	if !utf8.ValidString(d) {
		return "", fmt.Errorf("domain %q is not valid UTF-8", d)
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("domain %q is not a valid host name: %v", d, err)
	}
	a = strings.ToLower(a)
	if _, err := idna.Lookup.ToUnicode(a); err != nil {
		return "", fmt.Errorf("domain %q is not a valid host name: %v", d, err)
	}
	if len(a) > MaxDomain {
		return "", fmt.Errorf("domain %q is %d bytes long; at most %d", d, len(a), MaxDomain)
	}
	labels := strings.Split(a, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("domain %q has a single label; want a name like example.com", d)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", fmt.Errorf("domain %q has an empty label or one over 63 bytes", d)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("domain %q: label %q begins or ends with a hyphen", d, l)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return "", fmt.Errorf("domain %q: character %q is not allowed in a host name", d, r)
			}
		}
	}
	return a, nil
}

// DomainOf returns the domain of a normalized address ("" when it has none).
func DomainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return addr[at+1:]
}

// Key is the form used in identifiers (workflow IDs) for any input, valid or
// not: the normal form when s is valid, else s trimmed and lower-cased, so
// an invalid address still gets a stable ID to report the refusal under.
func Key(s string) string {
	if n, err := Normalize(s); err == nil {
		return n
	}
	return strings.ToLower(strings.TrimSpace(s))
}
