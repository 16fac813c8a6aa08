package mailcopy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// retryRefused retries a refused APPEND once on a fresh connection (without
// its keywords when the refusal was about one); refused again, the message
// is preserved as an attachment of a well-formed message in the problems
// folder, or reported with the server's words when even that fails.
func retryRefused(s *conn, raw *rawConn, m Mapping, r refusal, tr *tracker, fr *FolderResult, cp *Checkpoint) error {
	body, date, err := fetchOne(s, r.p.uid, tr.binary)
	if err != nil {
		return classify(err, fmt.Sprintf("read message %d of %q again", r.p.uid, m.Source))
	}
	item := Skip{Folder: m.Source, UID: uint32(r.p.uid), Size: int64(len(body)), Date: date, MessageID: headerValue(headerBlock(body), "Message-Id")}
	flags := r.p.flags
	var destUID imap.UID
	// Part of a refused MULTIAPPEND: first alone, as it is, on the
	// connection it went out on (the folder is still selected there). A
	// refusal of this message then goes the way of any other below; any
	// other answer (stored, a failure, over quota, too big) settles it.
	settled := r.p.batched() && raw != nil
	if settled {
		destUID, err = appendOn(raw, m.Dest, body, flags, date, tr.binary)
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code != imap.ResponseCodeOverQuota && ie.Code != imap.ResponseCodeLimit && ie.Code != imap.ResponseCodeTooBig {
			r.err, settled = ie, false
		}
	}
	var dropped []string
	if !settled {
		if t := strings.ToLower(r.err.Text); strings.Contains(t, "keyword") {
			// "Keyword length too long": only the long ones go (Dovecot's
			// mail_max_keyword_length is 50); otherwise every keyword.
			if strings.Contains(t, "length") || strings.Contains(t, "long") {
				flags, dropped = keywordsUpTo(flags, 50)
			}
			if len(dropped) == 0 {
				flags, dropped = systemFlagsOnly(flags)
			}
		}
		destUID, err = appendBytes(tr, m.Dest, body, flags, date)
	}
	if err == nil {
		fr.Copied++
		fr.Bytes += int64(len(body))
		cp.Map = addToMap(cp.Map, uint32(r.p.uid), uint32(destUID))
		if len(dropped) > 0 {
			item.Category = CatKeywordDropped
			item.Reason = fmt.Sprintf("the destination refused keyword(s) %s (%s): copied without them", strings.Join(dropped, " "), r.err.Text)
			fr.Reported = append(fr.Reported, item)
		}
		return nil
	}
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code == imap.ResponseCodeOverQuota {
		return classify(err, fmt.Sprintf("append to %q", m.Dest))
	}
	if ie.Code == imap.ResponseCodeLimit || ie.Code == imap.ResponseCodeTooBig {
		item.Category, item.Reason = CatTooBig, "refused by the destination: "+errText(err)
		fr.Skipped = append(fr.Skipped, item)
		return nil
	}
	words := errText(err)
	perr := preserve(tr, m.Source, fr.UIDValidity, r.p.uid, body, date, words)
	if perr == nil {
		item.Category = CatPreserved
		item.Reason = fmt.Sprintf("refused by the destination (%s): kept as an attachment of a message in %q", words, tr.problems.name)
		fr.Reported = append(fr.Reported, item)
		return nil
	}
	if !isNo(perr) {
		return classify(perr, "preserve a refused message")
	}
	item.Category = CatRefused
	item.Reason = "refused by the destination: " + words
	fr.Skipped = append(fr.Skipped, item)
	return nil
}

// fetchOne reads one message of the selected source folder.
func fetchOne(s *conn, uid imap.UID, binary bool) ([]byte, time.Time, error) {
	if binary {
		safe, err := binarySafe(s, imap.UIDSetNum(uid))
		if err != nil {
			return nil, time.Time{}, err
		}
		binary = safe[uid]
	}
	fo := &imap.FetchOptions{UID: true, InternalDate: true}
	if binary {
		fo.BinarySection = []*imap.FetchItemBinarySection{{Peek: true}}
	} else {
		fo.BodySection = []*imap.FetchItemBodySection{{Peek: true}}
	}
	msgs, err := s.Fetch(imap.UIDSetNum(uid), fo).Collect()
	if err != nil {
		return nil, time.Time{}, err
	}
	if len(msgs) == 0 {
		return nil, time.Time{}, fmt.Errorf("message %d is gone", uid)
	}
	var body []byte
	for _, b := range msgs[0].BodySection {
		body = b.Bytes
	}
	for _, b := range msgs[0].BinarySection {
		body = b.Bytes
	}
	return body, msgs[0].InternalDate, nil
}

func keywordsUpTo(flags []imap.Flag, n int) ([]imap.Flag, []string) {
	var out []imap.Flag
	var dropped []string
	for _, f := range flags {
		if !strings.HasPrefix(string(f), `\`) && len(f) > n {
			dropped = append(dropped, string(f))
		} else {
			out = append(out, f)
		}
	}
	return out, dropped
}

func systemFlagsOnly(flags []imap.Flag) ([]imap.Flag, []string) {
	var out []imap.Flag
	var dropped []string
	for _, f := range flags {
		if strings.HasPrefix(string(f), `\`) {
			out = append(out, f)
		} else {
			dropped = append(dropped, string(f))
		}
	}
	return out, dropped
}

// appendBytes APPENDs one message on a fresh destination connection.
func appendBytes(tr *tracker, folder string, body []byte, flags []imap.Flag, date time.Time) (imap.UID, error) {
	if tr.useRaw {
		rc, err := dialRaw(tr.dst)
		if err != nil {
			return 0, err
		}
		defer rc.close()
		return appendOn(rc, folder, body, flags, date, tr.binary)
	}
	c, err := dial(context.Background(), tr.dst)
	if err != nil {
		return 0, err
	}
	defer c.close()
	cmd := c.Append(folder, int64(len(body)), &imap.AppendOptions{Flags: flags, Time: date})
	if _, err := cmd.Write(body); err != nil {
		return 0, err
	}
	if err := cmd.Close(); err != nil {
		return 0, err
	}
	data, err := cmd.Wait()
	if err != nil {
		return 0, err
	}
	return data.UID, nil
}

// preservedHeader names a preserved message's origin in its wrapper, so
// reruns do not preserve it twice and verify finds it.
const preservedHeader = "X-Mailshift-Preserved"

func preservedID(folder string, uidValidity uint32, uid imap.UID, sum []byte) string {
	return fmt.Sprintf("folder=%s; uidvalidity=%d; uid=%d; sha256=%s", utf7Encode(folder), uidValidity, uid, hex.EncodeToString(sum))
}

// preserve stores body as the attachment of a small well-formed message in
// the problems folder, once.
func preserve(tr *tracker, folder string, uidValidity uint32, uid imap.UID, body []byte, date time.Time, words string) error {
	sum := sha256.Sum256(body)
	id := preservedID(folder, uidValidity, uid, sum[:])
	c, err := dial(context.Background(), tr.dst)
	if err != nil {
		return err
	}
	defer c.close()
	if err := tr.problems.ensure(c); err != nil {
		return err
	}
	if _, err := c.Select(tr.problems.name, nil).Wait(); err != nil {
		return err
	}
	found, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: preservedHeader, Value: "sha256=" + hex.EncodeToString(sum[:])}}}, nil).Wait()
	if err != nil {
		return err
	}
	if len(found.AllUIDs()) > 0 {
		return nil
	}
	msg := wrapPreserved(tr.opts.Locale, tr.dst.User, folder, uid, id, body, date, words)
	cmd := c.Append(tr.problems.name, int64(len(msg)), &imap.AppendOptions{Time: date})
	if _, err := cmd.Write(msg); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err = cmd.Wait()
	return err
}

var preservedTexts = map[string][2]string{
	"en": {"Kept from your old mailbox", "The new mail server refused to store this message from folder %q as it was (%s). The original is attached, exactly as it was in your old mailbox."},
	"fr": {"Conservé de votre ancienne boîte", "Le nouveau serveur a refusé d'enregistrer tel quel ce message du dossier %q (%s). L'original est joint, exactement tel qu'il était dans votre ancienne boîte."},
	"de": {"Aus Ihrem alten Postfach übernommen", "Der neue Server hat diese Nachricht aus dem Ordner %q so nicht gespeichert (%s). Das Original ist unverändert angehängt."},
	"es": {"Conservado de su antiguo buzón", "El nuevo servidor rechazó guardar este mensaje de la carpeta %q tal cual (%s). El original va adjunto, exactamente como estaba."},
	"it": {"Conservato dalla vecchia casella", "Il nuovo server ha rifiutato di salvare così com'era questo messaggio della cartella %q (%s). L'originale è allegato, esattamente com'era."},
}

// wrapPreserved builds the wrapper: a short note in the owner's language
// and the original as an application/octet-stream attachment (base64: the
// original may be anything but a well-formed message).
func wrapPreserved(locale, owner, folder string, uid imap.UID, id string, body []byte, date time.Time, words string) []byte {
	lang := strings.ToLower(locale)
	if i := strings.IndexAny(lang, "-_"); i > 0 {
		lang = lang[:i]
	}
	txt, ok := preservedTexts[lang]
	if !ok {
		txt = preservedTexts["en"]
	}
	subject := txt[0]
	if orig := headerValue(headerBlock(body), "Subject"); orig != "" {
		// The original's encoded words are decoded, or the owner would
		// read "=?utf-8?q?...?=" once the note's subject is encoded.
		if dec, err := new(mime.WordDecoder).DecodeHeader(orig); err == nil {
			orig = dec
		}
		if utf8.ValidString(orig) {
			subject += ": " + sanitizeText(orig)
		}
	}
	sum := sha256.Sum256(body)
	boundary := "mailshift-" + hex.EncodeToString(sum[:8])
	var b bytes.Buffer
	if date.IsZero() {
		date = time.Now()
	}
	fmt.Fprintf(&b, "From: Mailshift <mailshift@invalid>\r\n")
	if owner != "" && !strings.ContainsAny(owner, "\r\n<>") {
		fmt.Fprintf(&b, "To: <%s>\r\n", owner)
	}
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <preserved.%s@mailshift.invalid>\r\n", hex.EncodeToString(sum[:12]))
	fmt.Fprintf(&b, "%s: %s\r\n", preservedHeader, id)
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=%q\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", boundary)
	qp := quotedprintable.NewWriter(&b)
	_, _ = fmt.Fprintf(qp, txt[1], folder, sanitizeText(words))
	_ = qp.Close()
	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: application/octet-stream; name=\"message-%d.eml\"\r\n", boundary, uid)
	fmt.Fprintf(&b, "Content-Disposition: attachment; filename=\"message-%d.eml\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", uid)
	enc := base64.StdEncoding.EncodeToString(body)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--" + boundary + "--\r\n")
	return b.Bytes()
}

func sanitizeText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
}

// headerBlock is the header of a message (up to the first empty line).
func headerBlock(body []byte) []byte {
	for _, sep := range [][]byte{[]byte("\r\n\r\n"), []byte("\n\n")} {
		if i := bytes.Index(body, sep); i >= 0 {
			return body[:i+len(sep)]
		}
	}
	return body
}

// preservedOrigins reads the origins of the messages preserved in the
// problems folder: "folder\x00uidvalidity\x00uid" -> sha256 hex.
func preservedOrigins(d *conn, name string) (map[string][]string, error) {
	out := map[string][]string{}
	sel, err := d.Select(name, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		if isNo(err) {
			return out, nil
		}
		return nil, err
	}
	if sel.NumMessages == 0 {
		return out, nil
	}
	sec := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{preservedHeader}, Peek: true}
	cmd := d.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}})
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			if it, ok := item.(imapclient.FetchItemDataBodySection); ok && it.Literal != nil {
				b, _ := io.ReadAll(it.Literal)
				v := headerValue(b, preservedHeader)
				f := map[string]string{}
				for _, kv := range strings.Split(v, ";") {
					k, val, _ := strings.Cut(strings.TrimSpace(kv), "=")
					f[k] = val
				}
				if _, err := strconv.ParseUint(f["uid"], 10, 32); err == nil {
					k := f["folder"] + "\x00" + f["uidvalidity"] + "\x00" + f["uid"]
					out[k] = append(out[k], f["sha256"])
				}
			}
		}
	}
	return out, cmd.Close()
}
