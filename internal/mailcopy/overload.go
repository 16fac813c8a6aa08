package mailcopy

import (
	"errors"
	"strings"
	"syscall"

	"github.com/emersion/go-imap/v2"
)

// Kinds of answer by which a server says it is overloaded. Each one halves
// that server's share of its connection budget for a while (the budget
// workflow's multiplicative decrease); the share grows back by one
// connection a minute without another. None is a credential problem: a
// LOGIN refused with one of them is retried, not parked.
const (
	OverloadUnavailable = "unavailable"        // NO [UNAVAILABLE] (RFC 5530)
	OverloadLimit       = "limit"              // NO [LIMIT]
	OverloadThrottled   = "throttled"          // "throttled", "rate limit"
	OverloadTryLater    = "try-again-later"    // "try again later"
	OverloadTooMany     = "too-many-conns"     // "too many connections", Dovecot's "Maximum number of connections"
	OverloadRefused     = "connection-refused" // the server refused the TCP connection
)

// OverloadKinds lists every kind, in the order the metric documents them.
var OverloadKinds = []string{OverloadUnavailable, OverloadLimit, OverloadThrottled, OverloadTryLater, OverloadTooMany, OverloadRefused}

// overloadWords are what servers write when they mean "not now": matched
// in lower case against errors that lost their type on the way (an engine
// that formatted a server's answer with %v, a retried activity's failure).
var overloadWords = []struct{ word, kind string }{
	{"[unavailable]", OverloadUnavailable},
	{"[limit]", OverloadLimit},
	{"throttl", OverloadThrottled},
	{"rate limit", OverloadThrottled},
	{"try again later", OverloadTryLater},
	{"too many connections", OverloadTooMany},
	{"maximum number of connections", OverloadTooMany},
	{"connection refused", OverloadRefused},
}

// OverloadKind tells how err says the server is overloaded ("": it does
// not). A typed IMAP answer is read by its response code first, a refused
// connection by its errno; text is the fallback.
func OverloadKind(err error) string {
	if err == nil {
		return ""
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		switch ie.Code {
		case imap.ResponseCodeUnavailable:
			return OverloadUnavailable
		case imap.ResponseCodeLimit:
			return OverloadLimit
		}
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return OverloadRefused
	}
	s := strings.ToLower(err.Error())
	for _, w := range overloadWords {
		if strings.Contains(s, w.word) {
			return w.kind
		}
	}
	return ""
}
