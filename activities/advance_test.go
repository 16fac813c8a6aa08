package activities

import (
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/directory"
)

func TestAdvanceText(t *testing.T) {
	sv := directory.Service{IMAPAddr: "imap.pro.example.net:993", SMTPAddr: "smtp.pro.example.net:587", WebmailURL: "https://webmail.pro.example.net"}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	opens := time.Date(2026, 12, 8, 21, 0, 0, 0, time.UTC) // 22:00 in Paris
	in := AdvanceInput{Address: "alice@example.com", WorkflowID: "migrate:alice@example.com", Opens: opens, Closes: opens.Add(8 * time.Hour),
		Zone: "Europe/Paris", LockoutSeconds: 61}
	for _, tc := range []struct {
		locale string
		want   []string
	}{
		{"en", []string{"Subject: Your mailbox moves soon", "on Tuesday 8 December 2026 at 22:00 (CET)", "between 22:00 and 06:00 (Europe/Paris)",
			"about 2 minute(s)", "imap.pro.example.net:993", "smtp.pro.example.net:587", "https://webmail.pro.example.net", "password does not change"}},
		{"fr_FR", []string{"Subject: =?utf-8?q?Votre_bo=C3=AEte_mail_va_=C3=AAtre_migr=C3=A9e?=", "le 08/12/2026 à 22:00 (CET)", "entre 22:00 et 06:00 (Europe/Paris)",
			"environ 2 minute(s)", "Courrier entrant (IMAP, SSL/TLS): imap.pro.example.net:993"}},
		{"xx", []string{"Your mailbox alice@example.com moves"}},
	} {
		msg := string(Advance(AdvanceInput{Address: in.Address, WorkflowID: in.WorkflowID, Opens: in.Opens, Closes: in.Closes, Zone: in.Zone,
			LockoutSeconds: in.LockoutSeconds, Locale: tc.locale}, sv, paris, opens.Add(-3*time.Hour)))
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: notice lacks %q:\n%s", tc.locale, w, msg)
			}
		}
		if !strings.Contains(msg, "Message-ID: <advance.migrate.alice.at.example.com@mailshift.invalid>\r\n") || !strings.Contains(msg, "X-Mailshift-Notice: advance\r\n") {
			t.Errorf("%s: notice lacks its marker:\n%s", tc.locale, msg)
		}
	}
	// Without a window: no window line.
	msg := string(Advance(AdvanceInput{Address: "alice@example.com", WorkflowID: "w", Opens: opens, Locale: "en"}, sv, time.UTC, opens))
	if strings.Contains(msg, "between") || !strings.Contains(msg, "about 1 minute(s)") {
		t.Errorf("no-window notice:\n%s", msg)
	}
	for s, want := range map[float64]int{0: 1, 12: 1, 60: 1, 61: 2, 600: 10} {
		if got := lockoutMinutes(s); got != want {
			t.Errorf("lockoutMinutes(%v) = %d, want %d", s, got, want)
		}
	}
}
