package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
)

// Alias is an address whose mail is delivered to another one (Target),
// provisioned on the service that holds Target's mailbox. The MTA rewrites
// an alias to its target before it looks up the transport (Postfix:
// virtual_alias_maps with "SELECT target FROM aliases WHERE alias =
// lower('%s')"), so the alias's mail follows the target's route; the
// service is where the alias is provisioned, and it moves with the mailbox.
type Alias struct {
	Alias     string `json:"alias"`
	Target    string `json:"target"`
	ServiceID string `json:"serviceId"`
}

// AddAlias records an alias, or moves an existing one to sv's service.
func (s *Store) AddAlias(ctx context.Context, a Alias) error {
	alias, target := strings.ToLower(a.Alias), strings.ToLower(a.Target)
	if alias == "" || target == "" || alias == target {
		return fmt.Errorf("alias %q -> %q: both addresses are needed, and they must differ", a.Alias, a.Target)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `DELETE FROM aliases WHERE alias = ? AND target = ?`, alias, target); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `INSERT INTO aliases (alias, target, service_id) VALUES (?, ?, ?)`, alias, target, a.ServiceID)
		return err
	})
}

// AliasesOf lists the aliases that deliver to address, by alias.
func (s *Store) AliasesOf(ctx context.Context, address string) ([]Alias, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT alias, target, service_id FROM aliases WHERE target = ? ORDER BY alias`), strings.ToLower(address))
	if err != nil {
		return nil, fmt.Errorf("aliases of %q: %w", address, err)
	}
	defer rows.Close()
	var out []Alias
	for rows.Next() {
		var a Alias
		if err := rows.Scan(&a.Alias, &a.Target, &a.ServiceID); err != nil {
			return nil, fmt.Errorf("aliases of %q: %w", address, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// MoveAliases moves every alias that delivers to address to serviceID,
// with one audit line per alias moved, and returns them all. Repeating it
// (a retried activity) moves nothing more and audits nothing twice.
func (s *Store) MoveAliases(ctx context.Context, address, serviceID, wfID string) ([]Alias, error) {
	address = strings.ToLower(address)
	var out []Alias
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, s.q(`SELECT alias, target, service_id FROM aliases WHERE target = ? ORDER BY alias`), address)
		if err != nil {
			return err
		}
		var all []Alias
		for rows.Next() {
			var a Alias
			if err := rows.Scan(&a.Alias, &a.Target, &a.ServiceID); err != nil {
				rows.Close()
				return err
			}
			all = append(all, a)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		for _, a := range all {
			if a.ServiceID != serviceID {
				if _, err := s.exec(ctx, tx, `UPDATE aliases SET service_id = ? WHERE alias = ? AND target = ?`, serviceID, a.Alias, a.Target); err != nil {
					return err
				}
				if err := s.audit(ctx, tx, wfID, "move-alias", address, fmt.Sprintf("%s from %s to %s", a.Alias, a.ServiceID, serviceID)); err != nil {
					return err
				}
				a.ServiceID = serviceID
			}
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("move aliases of %q to %s: %w", address, serviceID, err)
	}
	return out, nil
}

// SetSieveAddr records where a service's ManageSieve server listens
// (host:port; "" for the default, port 4190 of the IMAP host).
func (s *Store) SetSieveAddr(ctx context.Context, serviceID, addr string) error {
	if addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("service %q: ManageSieve address %q: %w", serviceID, addr, err)
		}
	}
	res, err := s.exec(ctx, nil, `UPDATE services SET sieve_addr = ? WHERE id = ?`, addr, serviceID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("service %q: %w", serviceID, ErrNotFound)
	}
	return nil
}

// SieveAddr returns where a service's ManageSieve server listens, as
// recorded with SetSieveAddr; "" when none is: filters are carried only
// between services that say they serve ManageSieve (the dev platform's
// in-memory servers do not).
func (s *Store) SieveAddr(ctx context.Context, serviceID string) (string, error) {
	var addr string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT sieve_addr FROM services WHERE id = ?`), serviceID).Scan(&addr)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("service %q: %w", serviceID, ErrNotFound)
	}
	return addr, err
}
