// Package mailgen generates realistic, reproducible mailboxes for the demo,
// the tests and the benchmark: nested and non-ASCII folders, heavy-tailed
// sizes, flags, old dates, messages without Message-ID and messages that
// share one.
package mailgen

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Folders are the folders of a generated mailbox, "/" separated. INBOX
// takes most of the mail, as in real mailboxes.
var Folders = []string{"INBOX", "Sent", "Drafts", "Trash", "Archives", "Archives/2023", "Archives/2024",
	"Projets/Été 2025", "Factures & Reçus", "Спам-фильтр"}

// Parents are folders that exist only to hold others.
var Parents = []string{"Projets"}

var weights = []float64{0.61, 0.12, 0.02, 0.04, 0.03, 0.06, 0.06, 0.03, 0.02, 0.01}

// Message is one generated message.
type Message struct {
	Folder string
	Body   []byte
	Flags  []imap.Flag
	Date   time.Time
}

// Spec says what to generate.
type Spec struct {
	Seed     uint64
	Messages int
	// MeanSize is the mean message size in bytes (heavy-tailed around it).
	MeanSize int
	// NoIDPercent of messages have no Message-ID header.
	NoIDPercent int
	// DupPercent of messages reuse an earlier Message-ID (list copies,
	// re-sent mail).
	DupPercent int
	// Huge, when > 0, adds one message of this many bytes to INBOX.
	Huge int
	// Address is the mailbox owner.
	Address string
}

// Generate calls f for every message of the spec, in order. Bodies are
// built one at a time, so a large corpus never sits in memory.
func Generate(s Spec, f func(Message) error) error {
	if s.MeanSize <= 0 {
		s.MeanSize = 30 << 10
	}
	if s.Address == "" {
		s.Address = "owner@example.com"
	}
	r := rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	base := time.Date(2019, 1, 1, 8, 0, 0, 0, time.UTC)
	var ids []string
	for i := 0; i < s.Messages; i++ {
		folder := pick(r)
		date := base.Add(time.Duration(r.Int64N(int64(6 * 365 * 24 * time.Hour)))).Truncate(time.Second)
		size := heavyTail(r, s.MeanSize)
		var id string
		switch {
		case r.IntN(100) < s.NoIDPercent:
		case len(ids) > 0 && r.IntN(100) < s.DupPercent:
			id = ids[r.IntN(len(ids))]
		default:
			id = fmt.Sprintf("<%d.%d.%x@gen.mailshift.test>", s.Seed, i, r.Uint32())
			ids = append(ids, id)
		}
		m := Message{Folder: folder, Date: date, Flags: flags(r, folder), Body: build(r, s.Address, id, date, i, size)}
		if err := f(m); err != nil {
			return err
		}
	}
	if s.Huge > 0 {
		date := base.Add(-time.Hour)
		id := fmt.Sprintf("<huge.%d@gen.mailshift.test>", s.Seed)
		if err := f(Message{Folder: "INBOX", Date: date, Flags: []imap.Flag{imap.FlagSeen}, Body: build(r, s.Address, id, date, -1, s.Huge)}); err != nil {
			return err
		}
	}
	return nil
}

func pick(r *rand.Rand) string {
	x := r.Float64()
	for i, w := range weights {
		if x < w {
			return Folders[i]
		}
		x -= w
	}
	return Folders[0]
}

// heavyTail draws a log-normal size with the given mean (σ = 1.2).
func heavyTail(r *rand.Rand, mean int) int {
	const sigma = 1.2
	mu := math.Log(float64(mean)) - sigma*sigma/2
	v := int(math.Exp(mu + sigma*r.NormFloat64()))
	return max(v, 400)
}

func flags(r *rand.Rand, folder string) []imap.Flag {
	var fl []imap.Flag
	if folder != "INBOX" || r.IntN(10) < 7 {
		fl = append(fl, imap.FlagSeen)
	}
	if r.IntN(20) == 0 {
		fl = append(fl, imap.FlagFlagged)
	}
	if r.IntN(8) == 0 {
		fl = append(fl, imap.FlagAnswered)
	}
	if folder == "Drafts" {
		fl = append(fl, imap.FlagDraft)
	}
	if r.IntN(30) == 0 {
		fl = append(fl, "$Forwarded")
	}
	return fl
}

var words = strings.Fields(`meeting invoice project report budget schedule review draft contract
	delivery payment order client offer update planning équipe réunion facture projet rapport
	Grüße Angebot Rechnung presupuesto factura progetto riunione`)

func build(r *rand.Rand, to, id string, date time.Time, n, size int) []byte {
	var b bytes.Buffer
	subj := words[r.IntN(len(words))] + " " + words[r.IntN(len(words))]
	fmt.Fprintf(&b, "From: sender%d@partner.example\r\nTo: %s\r\n", r.IntN(50), to)
	fmt.Fprintf(&b, "Subject: =?utf-8?q?%s_%d?=\r\n", strings.ReplaceAll(qp(subj), " ", "_"), n)
	fmt.Fprintf(&b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	if id != "" {
		fmt.Fprintf(&b, "Message-ID: %s\r\n", id)
	}
	fmt.Fprintf(&b, "X-Gen: %d-%x\r\n", n, r.Uint64())
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	line := 0
	for b.Len() < size {
		b.WriteString(words[r.IntN(len(words))])
		line++
		if line%12 == 0 {
			b.WriteString("\r\n")
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func qp(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c < 0x80 && c != '=' && c != '?' && c != '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}
