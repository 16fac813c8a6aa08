package directory

import (
	"context"
	"database/sql"
	"fmt"
	"time"
	"unicode/utf8"
)

// ReportItem is the subject and sender of one message a migration
// reported, keyed by the workflow's ID, the source folder and the UID.
type ReportItem struct {
	Folder  string
	UID     uint32
	Subject string
	From    string
}

// Bounds of what a report item stores, in bytes: a header decoded by the
// engine is already cut shorter, this protects the table from any caller.
const (
	maxReportFolder = 1000
	maxReportText   = 1000
)

// RecordReportItems stores (or replaces) the subject and sender of
// reported messages of the migration wfID. Idempotent: a copy pass that
// meets the same message again writes the same row.
func (s *Store) RecordReportItems(ctx context.Context, wfID string, items []ReportItem) error {
	if wfID == "" {
		return fmt.Errorf("record report items: no workflow ID")
	}
	for _, it := range items {
		if it.Folder == "" || it.UID == 0 || len(it.Folder) > maxReportFolder {
			return fmt.Errorf("record report items: bad key (folder %d bytes, UID %d)", len(it.Folder), it.UID)
		}
	}
	now := time.Now().UTC().Format(time.RFC3339)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, it := range items {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO report_items (workflow_id, folder, uid, subject, sender, recorded_at)
				VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (workflow_id, folder, uid) DO UPDATE SET subject = excluded.subject, sender = excluded.sender, recorded_at = excluded.recorded_at`),
				wfID, it.Folder, int64(it.UID), cut(it.Subject, maxReportText), cut(it.From, maxReportText), now); err != nil {
				return fmt.Errorf("record report item: %w", err)
			}
		}
		return nil
	})
}

// ReportItems returns what RecordReportItems stored for wfID, by folder
// and UID.
func (s *Store) ReportItems(ctx context.Context, wfID string) ([]ReportItem, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT folder, uid, subject, sender FROM report_items WHERE workflow_id = ? ORDER BY folder, uid`), wfID)
	if err != nil {
		return nil, fmt.Errorf("report items: %w", err)
	}
	defer rows.Close()
	var out []ReportItem
	for rows.Next() {
		var it ReportItem
		var uid int64
		if err := rows.Scan(&it.Folder, &uid, &it.Subject, &it.From); err != nil {
			return nil, fmt.Errorf("report items: %w", err)
		}
		it.UID = uint32(uid)
		out = append(out, it)
	}
	return out, rows.Err()
}

// cut shortens s to at most n bytes on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
