package activities

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"mime"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// AdvanceMarker is the Message-ID of the owner's advance notice: one per
// migration, so a retry finds the one already in the source INBOX, and the
// copy recognises it and leaves it on the source.
func AdvanceMarker(workflowID string) string {
	return "<advance." + strings.NewReplacer(":", ".", "@", ".at.").Replace(workflowID) + "@mailshift.invalid>"
}

// AdvanceInput asks for the owner's advance notice. It carries times and
// names only: the message is built here.
type AdvanceInput struct {
	Address    string
	From       string // source service
	To         string // destination service
	WorkflowID string
	Locale     string
	// Opens is when the cutover starts (the window's opening, or now);
	// Closes when the window ends (zero: no window).
	Opens  time.Time
	Closes time.Time
	// Zone is the window's time zone (IANA name; "" is UTC).
	Zone string
	// LockoutSeconds is the expected time without access (the measured
	// last copy pass plus the cutover's fixed costs).
	LockoutSeconds float64
}

// AdvanceResult says where the notice is on the source, so the copy can
// leave it there.
type AdvanceResult struct {
	Placed mailcopy.Placed `json:"placed"`
	Marker string          `json:"marker"`
	// Minutes is the unavailability the notice announced.
	Minutes int `json:"minutes"`
}

type advanceText struct {
	subject, hello, when, window, lockout, queued, after, password, bye string
	layout                                                              string
}

var advances = map[string]advanceText{
	"en": {
		subject:  "Your mailbox moves soon",
		hello:    "Hello,",
		when:     "Your mailbox %s moves to its new service on %s.",
		window:   "The move happens between %s and %s (%s).",
		lockout:  "For about %d minute(s) during the move you will not be able to read your mail; nothing is lost.",
		queued:   "Mail sent to you meanwhile is kept and delivered as usual.",
		after:    "After the move, every folder and message is on the new service.",
		password: "Your password does not change.",
		bye:      "This message was added by the migration; it stays in the old mailbox only.",
		layout:   "Monday 2 January 2006 at 15:04 (MST)",
	},
	"fr": {
		subject:  "Votre boîte mail va être migrée",
		hello:    "Bonjour,",
		when:     "Votre boîte %s sera déplacée vers son nouveau service le %s.",
		window:   "Le déplacement a lieu entre %s et %s (%s).",
		lockout:  "Pendant environ %d minute(s) vous ne pourrez pas lire vos messages ; rien n'est perdu.",
		queued:   "Les messages qui vous sont envoyés pendant ce temps sont conservés et distribués normalement.",
		after:    "Après le déplacement, tous vos dossiers et messages sont sur le nouveau service.",
		password: "Votre mot de passe ne change pas.",
		bye:      "Ce message a été ajouté par la migration ; il reste dans l'ancienne boîte uniquement.",
		layout:   "02/01/2006 à 15:04 (MST)",
	},
}

// lockoutMinutes rounds the expected lockout up to whole minutes, at least
// one: an owner reads "about 1 minute", never "0".
func lockoutMinutes(s float64) int {
	if math.IsNaN(s) || s <= 0 {
		return 1
	}
	return max(1, int(math.Ceil(s/60)))
}

// Advance builds the owner's advance notice: when the mailbox moves, for
// how long it is unreachable and the new settings, in the owner's
// language (the post-migration notice's rules).
func Advance(in AdvanceInput, sv directory.Service, loc *time.Location, now time.Time) []byte {
	lang := language(in.Locale)
	t, n := advances[lang], notices[lang]
	when := in.Opens.In(loc).Format(t.layout)
	var body bytes.Buffer
	fmt.Fprintf(&body, "%s\r\n\r\n", t.hello)
	fmt.Fprintf(&body, t.when+"\r\n", in.Address, when)
	if !in.Closes.IsZero() {
		fmt.Fprintf(&body, t.window+"\r\n", in.Opens.In(loc).Format("15:04"), in.Closes.In(loc).Format("15:04"), loc.String())
	}
	fmt.Fprintf(&body, t.lockout+"\r\n", lockoutMinutes(in.LockoutSeconds))
	fmt.Fprintf(&body, "%s\r\n\r\n", t.queued)
	fmt.Fprintf(&body, "%s\r\n", t.after)
	writeSettings(&body, n, sv)
	fmt.Fprintf(&body, "\r\n%s\r\n\r\n%s\r\n", t.password, t.bye)

	var msg bytes.Buffer
	fmt.Fprintf(&msg, "From: %s\r\n", "postmaster@"+domainOf(in.Address))
	fmt.Fprintf(&msg, "To: %s\r\n", in.Address)
	fmt.Fprintf(&msg, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", t.subject))
	fmt.Fprintf(&msg, "Date: %s\r\n", now.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&msg, "Message-ID: %s\r\n", AdvanceMarker(in.WorkflowID))
	fmt.Fprintf(&msg, "X-Mailshift-Notice: advance\r\n")
	fmt.Fprintf(&msg, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes()
}

// AdvanceNotice appends the owner's advance notice to the SOURCE INBOX,
// once (a retry finds it by its marker), and says where it is so the copy
// leaves it there.
func (a *Activities) AdvanceNotice(ctx context.Context, in AdvanceInput) (*AdvanceResult, error) {
	if err := checkAddress(in.Address); err != nil {
		return nil, err
	}
	if in.Opens.IsZero() {
		return nil, permanent(ErrTypeBadInput, "advance notice: no cutover time")
	}
	loc := time.UTC
	if in.Zone != "" {
		l, err := time.LoadLocation(in.Zone)
		if err != nil {
			return nil, permanent(ErrTypeBadInput, "advance notice: time zone %q: %v", in.Zone, err)
		}
		loc = l
	}
	_, stop := keepAlive(ctx)
	defer stop()
	src, err := a.Dir.Service(ctx, in.From)
	if err != nil {
		return nil, err
	}
	dst, err := a.Dir.Service(ctx, in.To)
	if err != nil {
		return nil, err
	}
	if err := dst.Validate(); err != nil {
		return nil, permanent(ErrTypeConfig, "%v", err)
	}
	ep, err := a.endpoint(src, in.Address)
	if err != nil {
		return nil, err
	}
	marker := AdvanceMarker(in.WorkflowID)
	p, err := a.Mail.AppendMarked(ctx, ep, "INBOX", marker, Advance(in, dst, loc, time.Now()))
	if err != nil {
		return nil, fromEngine(err)
	}
	a.log(ctx).Info("advance notice in the source INBOX", zap.Bool("added", p.Added), zap.Uint32("uid", p.UID), zap.Time("opens", in.Opens))
	return &AdvanceResult{Placed: p, Marker: marker, Minutes: lockoutMinutes(in.LockoutSeconds)}, nil
}
