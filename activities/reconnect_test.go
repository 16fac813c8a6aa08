package activities

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/mailcopy"
)

func TestReconnecting(t *testing.T) {
	reconnectWait = time.Millisecond
	cut := errors.New("read: connection reset by peer")
	perm := &mailcopy.PermanentError{Kind: mailcopy.KindAuthFailed, Err: errors.New("bad password")}
	for _, tc := range []struct {
		name string
		// outcomes of successive tries: error (nil = success) and progress
		errs     []error
		progress []bool
		tries    int
		wantErr  error
	}{
		{"cut twice then done", []error{cut, cut, nil}, []bool{false, false, true}, 3, nil},
		{"cut three times without progress gives up", []error{cut, cut, cut, nil}, []bool{false, false, false, true}, 3, cut},
		{"progress resets the count", []error{cut, cut, cut, cut, cut, nil}, []bool{false, true, false, true, false, true}, 6, nil},
		{"a permanent error is not retried", []error{perm, nil}, []bool{false, true}, 1, perm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			err := reconnecting(context.Background(), zap.NewNop(), "test", func() (bool, error) {
				n++
				return tc.progress[n-1], tc.errs[n-1]
			})
			if n != tc.tries || !errors.Is(err, tc.wantErr) {
				t.Fatalf("tries = %d, err = %v; want %d tries and %v", n, err, tc.tries, tc.wantErr)
			}
		})
	}
	t.Run("a cancelled activity stops at once", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n := 0
		err := reconnecting(ctx, zap.NewNop(), "test", func() (bool, error) { n++; return false, cut })
		if n != 1 || err == nil {
			t.Fatalf("tries = %d, err = %v; want one try and the error", n, err)
		}
	})
}
