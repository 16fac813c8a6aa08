package directory

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"fmt"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	_ "modernc.org/sqlite"             // pure-Go SQLite driver "sqlite"
)

// migrations are applied in order, each once; their index+1 is the schema
// version recorded in schema_migrations. Never edit one that has shipped:
// append a new one.
var migrations = []string{
	`CREATE TABLE services (
		id TEXT PRIMARY KEY,
		kind TEXT NOT NULL,
		imap_addr TEXT NOT NULL DEFAULT '',
		imap_security TEXT NOT NULL DEFAULT 'tls',
		smtp_addr TEXT NOT NULL DEFAULT '',
		webmail_url TEXT NOT NULL DEFAULT '',
		mx TEXT NOT NULL DEFAULT '',
		spf_include TEXT NOT NULL DEFAULT '',
		autodiscover TEXT NOT NULL DEFAULT '',
		max_message_bytes BIGINT NOT NULL DEFAULT 0
	);
	CREATE TABLE accounts (
		address TEXT NOT NULL,
		service_id TEXT NOT NULL REFERENCES services(id),
		state TEXT NOT NULL,
		password_hash TEXT NOT NULL,
		quota_bytes BIGINT NOT NULL DEFAULT 0,
		usage_bytes BIGINT NOT NULL DEFAULT 0,
		locale TEXT NOT NULL DEFAULT '',
		lock_holder TEXT NOT NULL DEFAULT '',
		locked_at TEXT,
		slot_id BIGINT,
		PRIMARY KEY (address, service_id)
	);
	CREATE TABLE redirections (
		id INTEGER PRIMARY KEY,
		address TEXT NOT NULL,
		kind TEXT NOT NULL,
		target TEXT NOT NULL
	);
	CREATE TABLE slots (
		id INTEGER PRIMARY KEY,
		service_id TEXT NOT NULL REFERENCES services(id),
		placeholder TEXT NOT NULL,
		quota_bytes BIGINT NOT NULL,
		claimed_by TEXT NOT NULL DEFAULT '',
		address TEXT NOT NULL DEFAULT '',
		claimed_at TEXT
	);
	CREATE INDEX slots_claimed ON slots (claimed_by);
	CREATE TABLE routes (
		address TEXT PRIMARY KEY,
		service_id TEXT NOT NULL,
		transport TEXT NOT NULL
	);
	CREATE TABLE audit (
		id INTEGER PRIMARY KEY,
		at TEXT NOT NULL,
		workflow_id TEXT NOT NULL,
		action TEXT NOT NULL,
		address TEXT NOT NULL,
		detail TEXT NOT NULL
	);`,
	// 2: aliases that deliver to an address (they move with it), and the
	// ManageSieve server of a service ('' : the IMAP host, port 4190).
	`ALTER TABLE services ADD COLUMN sieve_addr TEXT NOT NULL DEFAULT '';
	CREATE TABLE aliases (
		alias TEXT NOT NULL,
		target TEXT NOT NULL,
		service_id TEXT NOT NULL REFERENCES services(id),
		PRIMARY KEY (alias, target)
	);
	CREATE INDEX aliases_target ON aliases (target);`,
	// 3: the subject and sender of each message a migration reported
	// (skipped, preserved, altered), for the operator's report only: they
	// are message content and never enter a workflow's history.
	`CREATE TABLE report_items (
		workflow_id TEXT NOT NULL,
		folder TEXT NOT NULL,
		uid BIGINT NOT NULL,
		subject TEXT NOT NULL DEFAULT '',
		sender TEXT NOT NULL DEFAULT '',
		recorded_at TEXT NOT NULL,
		PRIMARY KEY (workflow_id, folder, uid)
	);`,
}

// Open opens (and migrates) a directory. dsn is a file path or
// "sqlite:PATH" for SQLite, or a "postgres://" URL for PostgreSQL.
func Open(ctx context.Context, dsn string) (*Store, error) {
	var s *Store
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open directory: %w", err)
		}
		s = &Store{db: db, dialect: "postgres"}
	default:
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return nil, fmt.Errorf("open directory: empty path")
		}
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
		if err != nil {
			return nil, fmt.Errorf("open directory %q: %w", path, err)
		}
		// One writer at a time is SQLite's rule; one connection makes the
		// Go side obey it instead of spinning on SQLITE_BUSY.
		db.SetMaxOpenConns(1)
		s = &Store{db: db, dialect: "sqlite"}
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("migrate directory: %w", err)
	}
	var have int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("migrate directory: %w", err)
	}
	for v := have + 1; v <= len(migrations); v++ {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			body := migrations[v-1]
			if s.dialect == "postgres" {
				body = strings.ReplaceAll(body, "INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY")
			}
			for _, stmt := range strings.Split(body, ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version) VALUES (?)`), v)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate directory to version %d: %w", v, err)
		}
	}
	return nil
}

// SchemaVersion returns the applied schema version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// HashPassword hashes a password in Dovecot's {SSHA256} scheme, which the
// platform's passdb verifies.
func HashPassword(password string) string {
	salt := make([]byte, 8)
	// crypto/rand.Read never fails: it crashes the program rather than
	// return a short read (Go 1.24).
	_, _ = rand.Read(salt)
	sum := sha256.Sum256(append([]byte(password), salt...))
	return "{SSHA256}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...))
}

// VerifyPassword checks a password against a {SSHA256} hash.
func VerifyPassword(hash, password string) bool {
	enc, ok := strings.CutPrefix(hash, "{SSHA256}")
	if !ok {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(raw) <= sha256.Size {
		return false
	}
	salt := raw[sha256.Size:]
	sum := sha256.Sum256(append([]byte(password), salt...))
	return subtle.ConstantTimeCompare(sum[:], raw[:sha256.Size]) == 1
}
