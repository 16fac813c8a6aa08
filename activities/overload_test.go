package activities

import (
	"errors"
	"slices"
	"testing"
)

// An overload is charged to the server that said it: the engine's
// "source:"/"destination:" prefix or the address a refused dial names, and
// both servers only when the error does not say which.
func TestOverloadSides(t *testing.T) {
	const from, to, fromAddr, toAddr = "mxplan-1", "emailpro-1", "10.0.0.1:143", "10.0.0.2:143"
	for _, tc := range []struct {
		err  string
		want []string
	}{
		{"source: imap: NO [UNAVAILABLE] busy", []string{from}},
		{"destination: append to \"INBOX\": imap: NO [LIMIT] slow down", []string{to}},
		{"connect 10.0.0.2:143: dial tcp 10.0.0.2:143: connect: connection refused", []string{to}},
		{"log in to u@example.com at 10.0.0.1:143: imap: NO [UNAVAILABLE] try again later", []string{from}},
		{"throttled", []string{from, to}},
	} {
		if got := overloadSides(errors.New(tc.err), from, to, fromAddr, toAddr); !slices.Equal(got, tc.want) {
			t.Fatalf("overloadSides(%q) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
