package directory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/directory"
)

// TestReportItems: subjects and senders of reported messages are stored
// per workflow, folder and UID, replaced when a later pass records the
// same message, kept apart between workflows, cut to the table's bound,
// and a bad key is refused.
func TestReportItems(t *testing.T) {
	stores(t, func(t *testing.T, s *directory.Store) {
		ctx := context.Background()
		w1, w2 := "migrate:alice@example.com", "migrate:bob@example.com"
		if err := s.RecordReportItems(ctx, w1, []directory.ReportItem{
			{Folder: "INBOX", UID: 7, Subject: "Café", From: "Zoé <zoe@example.com>"},
			{Folder: "Archives/2023", UID: 3, Subject: strings.Repeat("é", 800), From: "x@example.com"},
		}); err != nil {
			t.Fatal(err)
		}
		// The same message met again by a delta pass: one row, the latest.
		if err := s.RecordReportItems(ctx, w1, []directory.ReportItem{{Folder: "INBOX", UID: 7, Subject: "Café (2)", From: "zoe@example.com"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordReportItems(ctx, w2, []directory.ReportItem{{Folder: "INBOX", UID: 7, Subject: "other", From: "b@example.com"}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ReportItems(ctx, w1)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Folder != "Archives/2023" || got[1] != (directory.ReportItem{Folder: "INBOX", UID: 7, Subject: "Café (2)", From: "zoe@example.com"}) {
			t.Fatalf("ReportItems() = %+v", got)
		}
		if n := len(got[0].Subject); n > 1000 || n < 990 || !strings.HasPrefix(got[0].Subject, "éé") {
			t.Fatalf("a 1,600-byte subject is stored as %d bytes", n)
		}
		if err := s.RecordReportItems(ctx, w1, []directory.ReportItem{{Folder: "INBOX", UID: 0}}); err == nil {
			t.Fatalf("RecordReportItems() with UID 0 succeeded")
		}
		if got, err := s.ReportItems(ctx, "migrate:nobody@example.com"); err != nil || len(got) != 0 {
			t.Fatalf("ReportItems() of another workflow = %v, %v", got, err)
		}
	})
}
