package directory_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/directory"
)

// TestImportValidatesEveryServiceField: a service definition is refused on
// import, naming the service and the field, and nothing of the file is
// written. "spfInclude": "_spf.pro.example +all" once published an SPF
// record that authorized any sender; a quote in it once panicked the
// routing switch.
func TestImportValidatesEveryServiceField(t *testing.T) {
	good := `"id": "pro-9", "kind": "emailpro", "imapAddr": "pro9.example.net:993", "imapSecurity": "tls",
		"smtpAddr": "smtp.pro9.example.net:587", "webmailUrl": "https://webmail.example.net/",
		"mx": "10 mx1.pro.example.net, 20 mx2.pro.example.net", "spfInclude": "_spf.pro.example.net",
		"autodiscover": "autodiscover.pro.example.net", "maxMessageBytes": 62914560`
	stores(t, func(t *testing.T, s *directory.Store) {
		ctx := context.Background()
		for _, tc := range []struct {
			field, override string
		}{
			{"spfInclude", `"spfInclude": "_spf.pro.example +all"`},
			{"spfInclude", `"spfInclude": "bad\"quote"`},
			{"spfInclude", `"spfInclude": "include:_spf.pro.example"`},
			{"spfInclude", `"spfInclude": "-all"`},
			{"mx", `"mx": "mx1.pro.example.net"`},
			{"mx", `"mx": "10 mx1.pro.example.net 20 mx2.pro.example.net"`},
			{"mx", `"mx": "99999 mx1.pro.example.net"`},
			{"mx", `"mx": "10 192.0.2.7"`},
			{"autodiscover", `"autodiscover": "autodiscover.pro.example.net\"; x"`},
			{"id", `"id": ""`},
			{"id", `"id": "pro 9"`},
			{"id", `"id": "pro:9"`},
			{"id", `"id": "` + strings.Repeat("p", 65) + `"`},
			{"kind", `"kind": "imap-box"`},
			{"imapAddr", `"imapAddr": ""`},
			{"imapAddr", `"imapAddr": "pro9.example.net"`},
			{"imapAddr", `"imapAddr": "pro9.example.net:99999"`},
			{"imapAddr", `"imapAddr": "pro 9.example.net:993"`},
			{"imapSecurity", `"imapSecurity": "ssl-please"`},
			{"imapSecurity", `"imapSecurity": ""`},
			{"smtpAddr", `"smtpAddr": "smtp.pro9.example.net"`},
			{"webmailUrl", `"webmailUrl": "javascript:alert(1)"`},
			{"webmailUrl", `"webmailUrl": "https://web mail.example.net"`},
			{"maxMessageBytes", `"maxMessageBytes": -1`},
			{"maxMessageBytes", `"maxMessageBytes": 2199023255552`},
		} {
			// The override comes last: JSON takes the last of a repeated key.
			file := `{"services": [{` + good + `, ` + tc.override + `}],
				"accounts": [{"address": "zoe@example.com", "service": "mxplan-1", "password": "pw"}]}`
			if tc.field == "id" {
				file = strings.Replace(file, `"id": "pro-9", `, "", 1)
			}
			_, err := s.Import(ctx, strings.NewReader(file))
			if err == nil || !errors.Is(err, directory.ErrBadService) || !strings.Contains(err.Error(), "services[0]") ||
				!strings.Contains(err.Error(), " "+tc.field+" ") {
				t.Fatalf("Import(%s) = %v, want a bad-service error naming services[0] and %s", tc.override, err, tc.field)
			}
			if tc.field != "id" && !strings.Contains(err.Error(), `"pro-9"`) {
				t.Fatalf("Import(%s) = %v, want the service named", tc.override, err)
			}
		}
		if svs, err := s.Services(ctx); err != nil || len(svs) != 0 {
			t.Fatalf("Services() after refused imports = %v, %v; want none written", svs, err)
		}
		// The same service, right, is imported.
		if _, err := s.Import(ctx, strings.NewReader(`{"services": [{`+good+`}]}`)); err != nil {
			t.Fatalf("Import(good) = %v", err)
		}
		for _, bad := range []string{
			`{"services": [{` + good + `}, {` + good + `}]}`,
			`{"services": []} {"services": []}`,
		} {
			if _, err := s.Import(ctx, strings.NewReader(bad)); err == nil {
				t.Fatalf("Import(%s) accepted a bad file", bad)
			}
		}
	})
}
