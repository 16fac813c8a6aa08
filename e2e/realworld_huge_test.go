package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/corpus"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// TestRealWorldHugeMessages copies two 40 MB messages (a base64
// attachment; 8-bit windows-1252 text, whose euro signs are 0x80 bytes,
// what BODY[] also serves for a NUL) and two small ones with
// mailshift-copy three times
// to a lab Dovecot without a size limit: byte for byte, copied once, and
// the copier's memory stays flat (the bodies stream, nothing holds one
// whole).
func TestRealWorldHugeMessages(t *testing.T) {
	const huge = 40 << 20
	l := startRealWorldLab(t, 0)
	r := rand.New(rand.NewPCG(40, 40))
	attach := make([]byte, huge*3/4)
	for i := range attach {
		attach[i] = byte(r.Uint32())
	}
	var withAttachment bytes.Buffer
	withAttachment.WriteString("From: a@example.org\r\nTo: alice@example.com\r\nSubject: 40 MB attachment\r\nMessage-ID: <huge-attach@x.test>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(attach)
	for len(enc) > 76 {
		withAttachment.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	withAttachment.WriteString(enc + "\r\n--b--\r\n")
	var text bytes.Buffer
	text.WriteString("From: b@example.org\r\nTo: alice@example.com\r\nSubject: 40 MB of 8-bit text\r\nMessage-ID: <huge-text@x.test>\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\n")
	for text.Len() < huge {
		fmt.Fprintf(&text, "ligne %d: caf\xe9 cr\xe8me br\xfbl\xe9e \xe0 3 \x80, \xe0 la fa\xe7on d'autrefois\r\n", text.Len())
	}
	date := time.Date(2019, 9, 9, 9, 9, 9, 0, time.UTC)
	msgs := []corpus.Message{
		{Body: []byte("From: c@example.org\r\nSubject: small\r\nMessage-ID: <s1@x.test>\r\n\r\nsmall\r\n"), Date: date, Flags: "S"},
		{Body: withAttachment.Bytes(), Date: date.Add(time.Hour), Flags: "S"},
		{Body: text.Bytes(), Date: date.Add(2 * time.Hour)},
		{Body: []byte("From: d@example.org\r\nSubject: small 2\r\nMessage-ID: <s2@x.test>\r\n\r\nsmall 2\r\n"), Date: date.Add(3 * time.Hour), Flags: "FS"},
	}
	root := filepath.Join(l.src.Dir, "mail", "example.com", "alice")
	if err := corpus.WriteFolder(root, "INBOX", msgs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(l.src.Dir, "mail"), filepath.Join(l.src.Dir, "mail", "example.com")} {
		_ = os.Chown(p, 65534, 65534)
	}

	bin := buildCopy(t)
	rss := regexp.MustCompile(`peak RSS (\d+) MB`)
	var rows []string
	for run := 1; run <= 3; run++ {
		jsonPath := filepath.Join(t.TempDir(), "result.json")
		cmd := exec.Command(bin, "--from", l.src.Addr, "--from-user", "alice@example.com", "--from-master", "mailshift", "--from-security", "plain",
			"--to", l.dst.Addr, "--to-user", "alice@example.com", "--to-master", "mailshift", "--to-security", "plain",
			"--verify", "--json", jsonPath)
		cmd.Env = append(os.Environ(), "MAILSHIFT_FROM_PASSWORD="+masterPW, "MAILSHIFT_TO_PASSWORD="+masterPW)
		start := time.Now()
		output, err := cmd.CombinedOutput()
		el := time.Since(start)
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		var out struct {
			mailcopy.Result
			Verify *mailcopy.VerifyResult `json:"verify"`
		}
		b, rerr := os.ReadFile(jsonPath)
		if err != nil || rerr != nil || json.Unmarshal(b, &out) != nil || out.Verify == nil {
			t.Fatalf("run %d: mailshift-copy: %v %v\n%s\n%s", run, err, rerr, output, l.dst.Log())
		}
		v := out.Verify
		peak := 0
		if m := rss.FindSubmatch(output); m != nil {
			peak, _ = strconv.Atoi(string(m[1]))
		}
		rows = append(rows, fmt.Sprintf("| %d | %d | %d | %d | %d | %d | %.1f s | %.1f s | %d MB |", run, out.Copied, out.Present, v.Exact, v.Missing, v.Duplicates, el.Seconds(), v.Duration.Seconds(), peak))
		wantCopied := 0
		if run == 1 {
			wantCopied = len(msgs)
		}
		if out.Copied != wantCopied || v.Exact != len(msgs) || !v.OK() || len(out.Items()) != 0 {
			t.Errorf("run %d: copied %d (want %d), verify exact %d of %d, missing %d, duplicated %d, items %v\n%s", run, out.Copied, wantCopied, v.Exact, len(msgs), v.Missing, v.Duplicates, out.Items(), output)
		}
		if peak == 0 || peak > 32 {
			t.Errorf("run %d: peak RSS %d MB, want at most 32 (the bodies stream)\n%s", run, peak, output)
		}
	}
	// The destination's bytes, independently of the engine.
	src, dst := inventoryOf(t, l.src.Addr), inventoryOf(t, l.dst.Addr)
	for k, n := range src {
		if dst[k] != n {
			t.Errorf("message %s: %d on the source, %d on the destination", k, n, dst[k])
		}
	}
	t.Logf("two 40 MB messages and two small ones, mailshift-copy three times:\n| run | copied | present | verify exact | missing | duplicated | run | verify | peak RSS |\n|---|---|---|---|---|---|---|---|---|\n%s", strings.Join(rows, "\n"))
}

// inventoryOf counts alice's messages by folder (without namespace) and
// content hash, flags and date.
func inventoryOf(t *testing.T, addr string) map[string]int {
	t.Helper()
	inv, err := mailcopy.Inventory(t.Context(), mailcopy.Endpoint{Addr: addr, Security: mailcopy.SecurityPlain, User: "alice@example.com", MasterUser: "mailshift", Password: masterPW})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, m := range inv {
		out[fmt.Sprintf("%s %s %v %s", strings.TrimPrefix(m.Folder, "INBOX."), m.SHA256[:12], sorted(m.Flags), m.Date.UTC().Format(time.RFC3339))]++
	}
	return out
}
