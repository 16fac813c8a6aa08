// Package directory is the platform's system of record: services, accounts,
// redirections, free slots of destination services, mail routes and an
// audit log. The mail servers read the same tables (Dovecot's passdb and
// userdb, the MTA's transport map), so a lock or a route switch written here
// is obeyed by the platform.
//
// Every mutation used by a migration is idempotent and keyed by the
// migration's workflow ID: repeating it after a retry changes nothing.
package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Service kinds.
const (
	KindMXPlan   = "mxplan"
	KindEmailPro = "emailpro"
	KindExchange = "exchange"
)

// Account states.
const (
	StateActive   = "active"
	StateLocked   = "locked"
	StateMigrated = "migrated"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound   = errors.New("not found")
	ErrConflict   = errors.New("held by another migration")
	ErrNoFreeSlot = errors.New("no free slot")
)

// Service is a hosted mail offer: where its IMAP server is, and what DNS
// records the domains of its accounts need.
type Service struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// IMAPAddr is host:port of the service's IMAP server.
	IMAPAddr string `json:"imapAddr"`
	// IMAPSecurity is "tls", "starttls" or "plain".
	IMAPSecurity string `json:"imapSecurity"`
	SMTPAddr     string `json:"smtpAddr,omitempty"`
	WebmailURL   string `json:"webmailUrl,omitempty"`
	// MX is the service's MX set, "pref host" pairs separated by commas.
	MX string `json:"mx,omitempty"`
	// SPFInclude is the domain the SPF record must include.
	SPFInclude string `json:"spfInclude,omitempty"`
	// Autodiscover is the CNAME target of autodiscover.<domain>, if any.
	Autodiscover string `json:"autodiscover,omitempty"`
	// MaxMessageBytes is the largest message the service accepts (0: no limit).
	MaxMessageBytes int64 `json:"maxMessageBytes,omitempty"`
}

// Account is one mailbox address on one service.
type Account struct {
	Address    string
	ServiceID  string
	State      string
	QuotaBytes int64
	UsageBytes int64
	Locale     string
	LockHolder string
}

// Redirection is a redirection, forward or auto-responder set on an address.
type Redirection struct {
	ID      int64  `json:"-"`
	Address string `json:"address"`
	Kind    string `json:"kind"`
	Target  string `json:"target"`
}

// Slot is a free (or claimed) account of a destination service.
type Slot struct {
	ID          int64
	ServiceID   string
	Placeholder string
	QuotaBytes  int64
	ClaimedBy   string
	Address     string
}

// Route says which service receives the mail of an address.
type Route struct {
	Address   string
	ServiceID string
	Transport string
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	At         time.Time
	WorkflowID string
	Action     string
	Address    string
	Detail     string
}

// Store is the directory on a SQL database.
type Store struct {
	db      *sql.DB
	dialect string // "sqlite" or "postgres"
}

// DB returns the underlying database handle.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// q rewrites the portable '?' placeholders for the store's dialect.
func (s *Store) q(query string) string {
	if s.dialect != "postgres" {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *Store) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if tx != nil {
		return tx.ExecContext(ctx, s.q(query), args...)
	}
	return s.db.ExecContext(ctx, s.q(query), args...)
}

func (s *Store) audit(ctx context.Context, tx *sql.Tx, wfID, action, address, detail string) error {
	_, err := s.exec(ctx, tx, `INSERT INTO audit (at, workflow_id, action, address, detail) VALUES (?, ?, ?, ?, ?)`,
		time.Now().UTC().Format(time.RFC3339Nano), wfID, action, address, detail)
	return err
}

func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			return errors.Join(err, fmt.Errorf("roll back: %w", rerr))
		}
		return err
	}
	return tx.Commit()
}

// AddService creates a service definition, or updates it in place (slots
// and accounts keep pointing at it).
func (s *Store) AddService(ctx context.Context, sv Service) error {
	if err := validKind(sv.Kind); err != nil {
		return err
	}
	_, err := s.exec(ctx, nil, `INSERT INTO services (id, kind, imap_addr, imap_security, smtp_addr, webmail_url, mx, spf_include, autodiscover, max_message_bytes)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, imap_addr = excluded.imap_addr, imap_security = excluded.imap_security,
		smtp_addr = excluded.smtp_addr, webmail_url = excluded.webmail_url, mx = excluded.mx, spf_include = excluded.spf_include,
		autodiscover = excluded.autodiscover, max_message_bytes = excluded.max_message_bytes`,
		sv.ID, sv.Kind, sv.IMAPAddr, sv.IMAPSecurity, sv.SMTPAddr, sv.WebmailURL, sv.MX, sv.SPFInclude, sv.Autodiscover, sv.MaxMessageBytes)
	if err != nil {
		return fmt.Errorf("add service %q: %w", sv.ID, err)
	}
	return nil
}

func validKind(k string) error {
	switch k {
	case KindMXPlan, KindEmailPro, KindExchange:
		return nil
	}
	return fmt.Errorf("service kind %q: must be %s, %s or %s", k, KindMXPlan, KindEmailPro, KindExchange)
}

const serviceCols = `id, kind, imap_addr, imap_security, smtp_addr, webmail_url, mx, spf_include, autodiscover, max_message_bytes`

func scanService(row interface{ Scan(...any) error }) (Service, error) {
	var sv Service
	err := row.Scan(&sv.ID, &sv.Kind, &sv.IMAPAddr, &sv.IMAPSecurity, &sv.SMTPAddr, &sv.WebmailURL, &sv.MX, &sv.SPFInclude, &sv.Autodiscover, &sv.MaxMessageBytes)
	return sv, err
}

// Service returns one service.
func (s *Store) Service(ctx context.Context, id string) (Service, error) {
	sv, err := scanService(s.db.QueryRowContext(ctx, s.q(`SELECT `+serviceCols+` FROM services WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Service{}, fmt.Errorf("service %q: %w", id, ErrNotFound)
	}
	return sv, err
}

// Services lists every service.
func (s *Store) Services(ctx context.Context) ([]Service, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+serviceCols+` FROM services ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Service
	for rows.Next() {
		sv, err := scanService(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sv)
	}
	return out, rows.Err()
}

// AddAccount creates an account with an already hashed password.
func (s *Store) AddAccount(ctx context.Context, a Account, passwordHash string) error {
	if a.State == "" {
		a.State = StateActive
	}
	_, err := s.exec(ctx, nil, `INSERT INTO accounts (address, service_id, state, password_hash, quota_bytes, usage_bytes, locale, lock_holder)
		VALUES (?, ?, ?, ?, ?, ?, ?, '')`,
		strings.ToLower(a.Address), a.ServiceID, a.State, passwordHash, a.QuotaBytes, a.UsageBytes, a.Locale)
	if err != nil {
		return fmt.Errorf("add account %q: %w", a.Address, err)
	}
	return nil
}

const accountCols = `address, service_id, state, quota_bytes, usage_bytes, locale, lock_holder`

func scanAccount(row interface{ Scan(...any) error }) (Account, error) {
	var a Account
	err := row.Scan(&a.Address, &a.ServiceID, &a.State, &a.QuotaBytes, &a.UsageBytes, &a.Locale, &a.LockHolder)
	return a, err
}

// Account returns the account of address on service.
func (s *Store) Account(ctx context.Context, serviceID, address string) (Account, error) {
	a, err := scanAccount(s.db.QueryRowContext(ctx, s.q(`SELECT `+accountCols+` FROM accounts WHERE service_id = ? AND address = ?`), serviceID, strings.ToLower(address)))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("account %q on service %q: %w", address, serviceID, ErrNotFound)
	}
	return a, err
}

// SourceAccount returns the account of address on an MX Plan service: the
// mailbox a migration moves away from.
func (s *Store) SourceAccount(ctx context.Context, address string) (Account, error) {
	a, err := scanAccount(s.db.QueryRowContext(ctx, s.q(`SELECT a.address, a.service_id, a.state, a.quota_bytes, a.usage_bytes, a.locale, a.lock_holder
		FROM accounts a JOIN services s ON s.id = a.service_id WHERE a.address = ? AND s.kind = ?`), strings.ToLower(address), KindMXPlan))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("no MX Plan account %q: %w", address, ErrNotFound)
	}
	return a, err
}

// AccountsOfDomain lists the MX Plan accounts of a domain. The domain is
// matched literally: "%" and "_" in it are not wildcards.
func (s *Store) AccountsOfDomain(ctx context.Context, domain string) ([]Account, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT a.address, a.service_id, a.state, a.quota_bytes, a.usage_bytes, a.locale, a.lock_holder
		FROM accounts a JOIN services s ON s.id = a.service_id WHERE a.address LIKE ? ESCAPE '\' AND s.kind = ? ORDER BY a.address`),
		"%@"+likeEscaper.Replace(strings.ToLower(domain)), KindMXPlan)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// likeEscaper makes a string match itself in a LIKE pattern with ESCAPE '\'
// (the same on SQLite and PostgreSQL).
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// PasswordHash returns the stored hash of an account's password. Only the
// directory and the mail servers' passdb ever read it.
func (s *Store) PasswordHash(ctx context.Context, serviceID, address string) (string, string, error) {
	var h, state string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT password_hash, state FROM accounts WHERE service_id = ? AND address = ?`), serviceID, strings.ToLower(address)).Scan(&h, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("account %q on service %q: %w", address, serviceID, ErrNotFound)
	}
	return h, state, err
}

// AddRedirection records a redirection, forward or auto-responder.
func (s *Store) AddRedirection(ctx context.Context, r Redirection) error {
	_, err := s.exec(ctx, nil, `INSERT INTO redirections (address, kind, target) VALUES (?, ?, ?)`, strings.ToLower(r.Address), r.Kind, r.Target)
	return err
}

// RemoveRedirections removes every redirection of an address.
func (s *Store) RemoveRedirections(ctx context.Context, address string) error {
	_, err := s.exec(ctx, nil, `DELETE FROM redirections WHERE address = ?`, strings.ToLower(address))
	return err
}

// Redirections lists the redirections, forwards and auto-responders of an address.
func (s *Store) Redirections(ctx context.Context, address string) ([]Redirection, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, address, kind, target FROM redirections WHERE address = ? ORDER BY id`), strings.ToLower(address))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Redirection
	for rows.Next() {
		var r Redirection
		if err := rows.Scan(&r.ID, &r.Address, &r.Kind, &r.Target); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// AddSlot adds a free account to a destination service.
func (s *Store) AddSlot(ctx context.Context, serviceID, placeholder string, quota int64) error {
	_, err := s.exec(ctx, nil, `INSERT INTO slots (service_id, placeholder, quota_bytes, claimed_by, address) VALUES (?, ?, ?, '', '')`, serviceID, placeholder, quota)
	return err
}

// FreeSlots lists the unclaimed slots of a service with at least minQuota bytes.
func (s *Store) FreeSlots(ctx context.Context, serviceID string, minQuota int64) ([]Slot, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, service_id, placeholder, quota_bytes, claimed_by, address FROM slots
		WHERE service_id = ? AND claimed_by = '' AND quota_bytes >= ? ORDER BY id`), serviceID, minQuota)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Slot
	for rows.Next() {
		var sl Slot
		if err := rows.Scan(&sl.ID, &sl.ServiceID, &sl.Placeholder, &sl.QuotaBytes, &sl.ClaimedBy, &sl.Address); err != nil {
			return nil, err
		}
		out = append(out, sl)
	}
	return out, rows.Err()
}

// HoldsSlot says whether the workflow wfID has claimed a slot of the
// service with at least minQuota bytes (a preflight run again after its
// migration's assign-slot finds the slot it will get back).
func (s *Store) HoldsSlot(ctx context.Context, serviceID, wfID string, minQuota int64) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM slots WHERE service_id = ? AND claimed_by = ? AND quota_bytes >= ?`), serviceID, wfID, minQuota).Scan(&n)
	return n > 0, err
}

func (s *Store) slotOf(ctx context.Context, tx *sql.Tx, wfID string) (Slot, error) {
	var sl Slot
	err := tx.QueryRowContext(ctx, s.q(`SELECT id, service_id, placeholder, quota_bytes, claimed_by, address FROM slots WHERE claimed_by = ?`), wfID).
		Scan(&sl.ID, &sl.ServiceID, &sl.Placeholder, &sl.QuotaBytes, &sl.ClaimedBy, &sl.Address)
	if errors.Is(err, sql.ErrNoRows) {
		return Slot{}, ErrNotFound
	}
	return sl, err
}

// Lock blocks the owner's logins to the source account; delivery goes on.
// Locking again by the same workflow is a no-op; a lock held by another
// workflow is ErrConflict.
func (s *Store) Lock(ctx context.Context, address, wfID string) error {
	address = strings.ToLower(address)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var state, holder string
		err := tx.QueryRowContext(ctx, s.q(`SELECT a.state, a.lock_holder FROM accounts a JOIN services s ON s.id = a.service_id WHERE a.address = ? AND s.kind = ?`), address, KindMXPlan).Scan(&state, &holder)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("lock %q: %w", address, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if holder == wfID {
			return nil
		}
		if holder != "" {
			return fmt.Errorf("lock %q: %w %q", address, ErrConflict, holder)
		}
		if state != StateActive {
			return fmt.Errorf("lock %q: account is %s, not active", address, state)
		}
		if _, err := s.exec(ctx, tx, `UPDATE accounts SET state = ?, lock_holder = ?, locked_at = ? WHERE address = ? AND service_id IN (SELECT id FROM services WHERE kind = ?)`,
			StateLocked, wfID, time.Now().UTC().Format(time.RFC3339), address, KindMXPlan); err != nil {
			return err
		}
		return s.audit(ctx, tx, wfID, "lock", address, "")
	})
}

// Unlock gives the owner access back. Only the holder unlocks; unlocking an
// account that this workflow does not hold is a no-op.
func (s *Store) Unlock(ctx context.Context, address, wfID string) error {
	address = strings.ToLower(address)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE accounts SET state = ?, lock_holder = '' WHERE address = ? AND lock_holder = ? AND state = ?`, StateActive, address, wfID, StateLocked)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return nil
		}
		return s.audit(ctx, tx, wfID, "unlock", address, "")
	})
}

// ClaimSlot claims a free slot of serviceID with at least minQuota bytes for
// address. A second claim by the same workflow returns the same slot; two
// workflows never get the same slot.
func (s *Store) ClaimSlot(ctx context.Context, serviceID, address, wfID string, minQuota int64) (Slot, error) {
	address = strings.ToLower(address)
	for attempt := 0; attempt < 20; attempt++ {
		var got Slot
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if sl, err := s.slotOf(ctx, tx, wfID); err == nil {
				got = sl
				return nil
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
			var id int64
			err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM slots WHERE service_id = ? AND claimed_by = '' AND quota_bytes >= ? ORDER BY id LIMIT 1`), serviceID, minQuota).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNoFreeSlot
			}
			if err != nil {
				return err
			}
			res, err := s.exec(ctx, tx, `UPDATE slots SET claimed_by = ?, address = ?, claimed_at = ? WHERE id = ? AND claimed_by = ''`, wfID, address, time.Now().UTC().Format(time.RFC3339), id)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return errRaced
			}
			if err := s.audit(ctx, tx, wfID, "claim-slot", address, fmt.Sprintf("slot %d of %s", id, serviceID)); err != nil {
				return err
			}
			got, err = s.slotOf(ctx, tx, wfID)
			return err
		})
		if errors.Is(err, errRaced) {
			continue
		}
		if errors.Is(err, ErrNoFreeSlot) {
			return Slot{}, fmt.Errorf("claim slot on %q for %q (quota >= %d bytes): %w", serviceID, address, minQuota, ErrNoFreeSlot)
		}
		return got, err
	}
	return Slot{}, fmt.Errorf("claim slot on %q: too much contention", serviceID)
}

var errRaced = errors.New("raced")

// ConfigureSlot turns the slot claimed by wfID into the account address on
// its service, with the password hash copied from the source account (so the
// owner keeps the password) and the slot's quota.
func (s *Store) ConfigureSlot(ctx context.Context, wfID string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		sl, err := s.slotOf(ctx, tx, wfID)
		if err != nil {
			return fmt.Errorf("configure slot of %q: %w", wfID, err)
		}
		var hash, locale string
		err = tx.QueryRowContext(ctx, s.q(`SELECT a.password_hash, a.locale FROM accounts a JOIN services s ON s.id = a.service_id WHERE a.address = ? AND s.kind = ?`), sl.Address, KindMXPlan).Scan(&hash, &locale)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("configure slot for %q: source account: %w", sl.Address, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM accounts WHERE address = ? AND service_id = ?`, sl.Address, sl.ServiceID); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO accounts (address, service_id, state, password_hash, quota_bytes, usage_bytes, locale, lock_holder, slot_id)
			VALUES (?, ?, ?, ?, ?, 0, ?, '', ?)`, sl.Address, sl.ServiceID, StateActive, hash, sl.QuotaBytes, locale, sl.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, wfID, "configure-slot", sl.Address, fmt.Sprintf("slot %d of %s", sl.ID, sl.ServiceID))
	})
}

// ReleaseSlot gives the slot claimed by wfID back, removing the account it
// configured. Releasing nothing is a no-op.
func (s *Store) ReleaseSlot(ctx context.Context, wfID string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		sl, err := s.slotOf(ctx, tx, wfID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM accounts WHERE slot_id = ?`, sl.ID); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE slots SET claimed_by = '', address = '' WHERE id = ?`, sl.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, wfID, "release-slot", sl.Address, fmt.Sprintf("slot %d of %s", sl.ID, sl.ServiceID))
	})
}

// SwitchRoute makes deliveries for address go to serviceID.
func (s *Store) SwitchRoute(ctx context.Context, address, serviceID, wfID string) error {
	address = strings.ToLower(address)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var cur string
		err := tx.QueryRowContext(ctx, s.q(`SELECT service_id FROM routes WHERE address = ?`), address).Scan(&cur)
		if err == nil && cur == serviceID {
			return nil
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM routes WHERE address = ?`, address); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO routes (address, service_id, transport) VALUES (?, ?, ?)`, address, serviceID, "lmtp:"+serviceID); err != nil {
			return err
		}
		return s.audit(ctx, tx, wfID, "switch-route", address, "to "+serviceID)
	})
}

// Route returns the route of an address.
func (s *Store) Route(ctx context.Context, address string) (Route, error) {
	var r Route
	err := s.db.QueryRowContext(ctx, s.q(`SELECT address, service_id, transport FROM routes WHERE address = ?`), strings.ToLower(address)).Scan(&r.Address, &r.ServiceID, &r.Transport)
	if errors.Is(err, sql.ErrNoRows) {
		return Route{}, fmt.Errorf("route of %q: %w", address, ErrNotFound)
	}
	return r, err
}

// MarkMigrated marks the source account migrated: it stays read-only for its
// retention period and is never deleted here.
func (s *Store) MarkMigrated(ctx context.Context, address, wfID string) error {
	address = strings.ToLower(address)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE accounts SET state = ? WHERE address = ? AND lock_holder = ? AND state = ?`, StateMigrated, address, wfID, StateLocked)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			var state, holder string
			err := tx.QueryRowContext(ctx, s.q(`SELECT a.state, a.lock_holder FROM accounts a JOIN services s ON s.id = a.service_id WHERE a.address = ? AND s.kind = ?`), address, KindMXPlan).Scan(&state, &holder)
			if err != nil {
				return fmt.Errorf("mark %q migrated: %w", address, err)
			}
			if state == StateMigrated && holder == wfID {
				return nil
			}
			return fmt.Errorf("mark %q migrated: account is %s, held by %q", address, state, holder)
		}
		return s.audit(ctx, tx, wfID, "mark-migrated", address, "")
	})
}

// Audit returns the audit log of an address, oldest first.
func (s *Store) Audit(ctx context.Context, address string) ([]AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT at, workflow_id, action, address, detail FROM audit WHERE address = ? ORDER BY id`), strings.ToLower(address))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at string
		if err := rows.Scan(&at, &e.WorkflowID, &e.Action, &e.Address, &e.Detail); err != nil {
			return nil, err
		}
		if e.At, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return nil, fmt.Errorf("audit of %q: time %q: %w", address, at, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
