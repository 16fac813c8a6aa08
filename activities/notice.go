package activities

import (
	"bytes"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/mailshift/mailshift/internal/directory"
)

// noticeMarker is the Message-ID of the owner's notice: one per migration,
// so appending it again is recognised and skipped.
func noticeMarker(workflowID string) string {
	return "<notice." + strings.NewReplacer(":", ".", "@", ".at.").Replace(workflowID) + "@mailshift.invalid>"
}

type noticeText struct {
	subject, hello, moved, settings, imap, smtp, webmail, autodiscover, closed, dnsPending, bye string
}

var notices = map[string]noticeText{
	"en": {
		subject:      "Your mailbox has moved",
		hello:        "Hello,",
		moved:        "Your mailbox %s has been moved to its new service. Every folder and message is here.",
		settings:     "Settings for your mail programs:",
		imap:         "Incoming mail (IMAP, SSL/TLS)",
		smtp:         "Outgoing mail (SMTP)",
		webmail:      "Webmail",
		autodiscover: "Automatic configuration",
		closed:       "Access to the old mailbox is closed. Your password is unchanged.",
		dnsPending:   "Your domain's DNS records are not yet updated everywhere: %s",
		bye:          "This message was added by the migration; you may delete it.",
	},
	"fr": {
		subject:      "Votre boîte mail a été migrée",
		hello:        "Bonjour,",
		moved:        "Votre boîte %s a été déplacée vers son nouveau service. Tous les dossiers et messages sont ici.",
		settings:     "Paramètres pour vos logiciels de messagerie :",
		imap:         "Courrier entrant (IMAP, SSL/TLS)",
		smtp:         "Courrier sortant (SMTP)",
		webmail:      "Webmail",
		autodiscover: "Configuration automatique",
		closed:       "L'accès à l'ancienne boîte est fermé. Votre mot de passe ne change pas.",
		dnsPending:   "Les enregistrements DNS de votre domaine ne sont pas encore à jour partout : %s",
		bye:          "Ce message a été ajouté par la migration ; vous pouvez le supprimer.",
	},
}

// Notice builds the message appended to the new INBOX when a migration
// finishes: the new connection settings, in the account's language.
func Notice(address string, sv directory.Service, locale, dnsPending, workflowID string) []byte {
	t := notices[language(locale)]
	var body bytes.Buffer
	fmt.Fprintf(&body, "%s\r\n\r\n", t.hello)
	fmt.Fprintf(&body, t.moved+"\r\n\r\n", address)
	writeSettings(&body, t, sv)
	fmt.Fprintf(&body, "\r\n%s\r\n", t.closed)
	if dnsPending != "" {
		fmt.Fprintf(&body, "\r\n"+t.dnsPending+"\r\n", dnsPending)
	}
	fmt.Fprintf(&body, "\r\n%s\r\n", t.bye)

	var msg bytes.Buffer
	fmt.Fprintf(&msg, "From: %s\r\n", "postmaster@"+domainOf(address))
	fmt.Fprintf(&msg, "To: %s\r\n", address)
	fmt.Fprintf(&msg, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", t.subject))
	fmt.Fprintf(&msg, "Date: %s\r\n", time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&msg, "Message-ID: %s\r\n", noticeMarker(workflowID))
	fmt.Fprintf(&msg, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes()
}

// language is the notices' language for an account's locale ("fr_FR" is
// French); English when there is no text in that language.
func language(locale string) string {
	lang := strings.ToLower(locale)
	if len(lang) > 2 {
		lang = lang[:2]
	}
	if _, ok := notices[lang]; !ok {
		return "en"
	}
	return lang
}

// writeSettings lists the destination's settings for mail programs, as
// both notices give them.
func writeSettings(body *bytes.Buffer, t noticeText, sv directory.Service) {
	fmt.Fprintf(body, "%s\r\n", t.settings)
	fmt.Fprintf(body, "  %s: %s\r\n", t.imap, sv.IMAPAddr)
	if sv.SMTPAddr != "" {
		fmt.Fprintf(body, "  %s: %s\r\n", t.smtp, sv.SMTPAddr)
	}
	if sv.WebmailURL != "" {
		fmt.Fprintf(body, "  %s: %s\r\n", t.webmail, sv.WebmailURL)
	}
	if sv.Autodiscover != "" {
		fmt.Fprintf(body, "  %s: %s\r\n", t.autodiscover, strings.TrimSuffix(sv.Autodiscover, "."))
	}
}
