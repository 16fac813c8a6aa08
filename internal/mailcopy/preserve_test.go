package mailcopy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// formRefusingSession refuses, without a response code, every APPEND of a
// message holding a NUL byte, as a destination that checks a message's
// form does (Dovecot 2.3 takes anything, so the lab cannot refuse one).
type formRefusingSession struct {
	imapserver.Session
	refusals *refusalCount
}

type refusalCount struct {
	mu sync.Mutex
	n  int
}

func (s *formRefusingSession) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		return nil, err
	}
	if bytes.IndexByte(b.Bytes(), 0) >= 0 {
		s.refusals.mu.Lock()
		s.refusals.n++
		s.refusals.mu.Unlock()
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Message contains NUL characters"}
	}
	return s.Session.Append(mailbox, &sizedReader{bytes.NewReader(b.Bytes()), int64(b.Len())}, options)
}

type sizedReader struct {
	*bytes.Reader
	n int64
}

func (r *sizedReader) Size() int64 { return r.n }

// TestRefusedMessagePreservedOnce: a message the destination refuses for
// its form (a NUL byte, no response code) is retried once on a fresh
// connection, then kept as an attachment of a well-formed message in the
// problems folder named in the owner's language, byte for byte; it is
// reported once, as preserved; verify counts it preserved, not missing;
// reruns, with or without checkpoints, neither refuse it again nor keep it
// twice, and copy nothing else again.
func TestRefusedMessagePreservedOnce(t *testing.T) {
	src := startMem(t, "a@x.test")
	mem := imapmemserver.New()
	du := imapmemserver.NewUser("a@x.test", pw)
	if err := du.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(du)
	refusals := &refusalCount{}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &formRefusingSession{Session: devstack.StrictSession(mem.NewSession()), refusals: refusals}, nil, nil
		},
		Caps: imap.CapSet{imap.CapIMAP4rev1: {}}, InsecureAuth: true, Logger: silent{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	date := time.Date(2016, 5, 4, 3, 2, 1, 0, time.UTC)
	nul := []byte("From: old@example.org\r\nSubject: =?utf-8?q?R=C3=A9sum=C3=A9?=\r\nMessage-ID: <nul@x.test>\r\n\r\nbefore\x00after\r\n")
	good := []string{"one", "two", "three"}
	msgs := [][]byte{nul}
	for _, g := range good {
		msgs = append(msgs, []byte("From: old@example.org\r\nSubject: "+g+"\r\nMessage-ID: <"+g+"@x.test>\r\n\r\n"+g+"\r\n"))
	}
	for _, msg := range msgs {
		if _, err := src.user.Append("INBOX", bytes.NewReader(msg), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}, Time: date}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	sEP, dEP := ep(src.addr, "a@x.test"), ep(ln.Addr().String(), "a@x.test")
	const problems = "Migrationsprobleme" // the owner's language: de

	var cps map[string]mailcopy.Checkpoint
	var reported []mailcopy.Skip
	for run := 1; run <= 3; run++ {
		opts := mailcopy.Options{Locale: "de"}
		if run == 3 {
			opts.Checkpoints = cps
		}
		res, err := mailcopy.Copy(ctx, sEP, dEP, opts)
		if err != nil {
			t.Fatalf("run %d: Copy() = %v", run, err)
		}
		cps = res.Checkpoints
		items := res.Items()
		if run == 1 {
			reported = items
			if res.Copied != len(good) {
				t.Errorf("run 1: Copy() copied %d, want %d", res.Copied, len(good))
			}
			if len(items) != 1 || items[0].Category != mailcopy.CatPreserved || items[0].UID != 1 ||
				!strings.Contains(items[0].Reason, "NUL characters") || !strings.Contains(items[0].Reason, problems) || items[0].MessageID != "<nul@x.test>" {
				t.Fatalf("run 1: items = %+v, want one preserved item for UID 1 with the server's words and %q", items, problems)
			}
		} else {
			if res.Copied != 0 {
				t.Errorf("run %d: Copy() copied %d again, want 0", run, res.Copied)
			}
			for _, it := range items {
				if it.Category != mailcopy.CatPreserved || it.UID != 1 {
					t.Errorf("run %d: unexpected item %+v", run, it)
				}
			}
		}
		// First run: the APPEND and its one retry on a fresh connection.
		if refusals.n != 2 {
			t.Errorf("after run %d: the destination refused %d APPENDs, want 2 (no more after run 1)", run, refusals.n)
		}
		kept := read(t, dEP.Addr, "a@x.test")[problems]
		if len(kept) != 1 {
			t.Fatalf("run %d: %q holds %d messages, want 1", run, problems, len(kept))
		}
		checkWrapper(t, fetchFirst(t, dEP.Addr, problems), nul)

		opts.Reported, opts.Checkpoints = reported, cps
		v, err := mailcopy.Verify(ctx, sEP, dEP, opts)
		if err != nil {
			t.Fatalf("run %d: Verify() = %v", run, err)
		}
		if v.Exact != len(good) || v.Preserved != 1 || v.Missing != 0 || v.Duplicates != 0 || !v.OK() {
			t.Errorf("run %d: Verify() = exact %d preserved %d missing %d duplicates %d, want %d/1/0/0", run, v.Exact, v.Preserved, v.Missing, v.Duplicates, len(good))
		}
	}
	if n := len(read(t, dEP.Addr, "a@x.test")["INBOX"]); n != len(good) {
		t.Errorf("destination INBOX holds %d messages, want %d", n, len(good))
	}
}

// fetchFirst reads the first message of a folder.
func fetchFirst(t *testing.T, addr, folder string) []byte {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("a@x.test", pw).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch the first message of %q: %v", folder, err)
	}
	for _, b := range msgs[0].BodySection {
		return b.Bytes
	}
	t.Fatalf("no body in %q", folder)
	return nil
}

// checkWrapper checks a preserved message: a well-formed message in the
// owner's language whose attachment is the original, byte for byte.
func checkWrapper(t *testing.T, wrapper, original []byte) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(wrapper))
	if err != nil {
		t.Fatalf("the wrapper is not a well-formed message: %v", err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if !strings.HasPrefix(subject, "Aus Ihrem alten Postfach übernommen") || !strings.Contains(subject, "Résumé") {
		t.Errorf("wrapper Subject = %q, want the German note and the original subject", subject)
	}
	if m.Header.Get("X-Mailshift-Preserved") == "" {
		t.Errorf("wrapper has no X-Mailshift-Preserved header")
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var parts int
	for {
		p, err := mr.NextRawPart()
		if err != nil {
			break
		}
		parts++
		if p.Header.Get("Content-Disposition") == "" {
			continue
		}
		var enc bytes.Buffer
		if _, err := enc.ReadFrom(p); err != nil {
			t.Fatal(err)
		}
		got, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(enc.String()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, original) {
			t.Errorf("attachment = %q, want the original %q", got, original)
		}
		return
	}
	t.Errorf("wrapper has %d parts and no attachment", parts)
}
