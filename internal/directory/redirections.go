package directory

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// RemoveRedirection removes the redirections of address with this kind and
// target, with an audit line naming who asked, and returns how many it
// removed (0: there was none). It is the operator's tool on platforms with
// no control panel (dev, lab); a migration blocked by a redirection is then
// retried.
func (s *Store) RemoveRedirection(ctx context.Context, address, kind, target, by string) (int64, error) {
	address = strings.ToLower(address)
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM redirections WHERE address = ? AND kind = ? AND target = ?`, address, kind, target)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("rows removed: %w", err)
		}
		if n == 0 {
			return nil
		}
		return s.audit(ctx, tx, "", "remove-redirection", address, fmt.Sprintf("%s to %s, by %s", kind, target, by))
	})
	if err != nil {
		return 0, fmt.Errorf("remove %s to %s of %q: %w", kind, target, address, err)
	}
	return n, nil
}
