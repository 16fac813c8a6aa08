package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/corpus"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// realWorldModule ships, as its test data, real messages that mail parsers
// choke on (broken MIME boundaries, bad charsets, 8-bit filenames, header
// lines without a colon, a PNG where a message should be). The Go toolchain
// fetches it at test time; none of it is committed here.
const realWorldModule = "github.com/jhillyerd/enmime/v2@v2.3.0"

// TestRealWorldModuleMessages copies every file of a mail-parsing module's
// test data, laid byte for byte into a lab Dovecot's Maildir (one folder
// per test-data directory), to a second lab Dovecot three times (a first
// copy, a rerun without checkpoints that must find everything by content,
// a rerun with the checkpoints' message map), and checks every message:
// byte-identical on the destination or reported with a reason (altered by
// the destination, preserved, empty), never lost silently, never
// duplicated; verify agrees.
func TestRealWorldModuleMessages(t *testing.T) {
	ctx := context.Background()
	modDir := downloadModule(t, realWorldModule)
	files, byFolder := moduleMessages(t, modDir)

	l := startLab(t)
	l.assignSlot(t, "migrate:alice@example.com")
	root := filepath.Join(l.src.Dir, "mail", "example.com", "alice")
	base := time.Date(2009, 2, 3, 4, 5, 6, 0, time.UTC)
	var folders []string
	for f := range byFolder {
		folders = append(folders, f)
	}
	sort.Strings(folders)
	for fi, f := range folders {
		var msgs []corpus.Message
		for i, mf := range byFolder[f] {
			msgs = append(msgs, corpus.Message{Body: mf.body, Date: base.Add(time.Duration(fi*1000+i) * time.Hour), Flags: []string{"", "S", "FS", "RS"}[i%4]})
		}
		if err := corpus.WriteFolder(root, f, msgs, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{filepath.Join(l.src.Dir, "mail"), filepath.Join(l.src.Dir, "mail", "example.com")} {
		_ = os.Chown(p, 65534, 65534)
	}

	src, dst := l.aliceEndpoints()
	var rows []string
	reported := map[string]mailcopy.Skip{}
	var items []mailcopy.Skip
	var cps map[string]mailcopy.Checkpoint
	var last *mailcopy.VerifyResult
	for run := 1; run <= 3; run++ {
		opts := mailcopy.Options{Locale: "fr"}
		if run == 3 {
			opts.Checkpoints = cps
		}
		res, err := mailcopy.Copy(ctx, src, dst, opts)
		if err != nil {
			t.Fatalf("run %d: Copy() = %v\nsource:\n%s\ndestination:\n%s", run, err, l.src.Log(), l.dst.Log())
		}
		cps = res.Checkpoints
		for _, it := range res.Items() {
			k := fmt.Sprintf("%s\x00%d", it.Folder, it.UID)
			if _, ok := reported[k]; !ok {
				items = append(items, it)
			}
			reported[k] = it
		}
		opts.Reported, opts.Checkpoints = items, cps
		v, err := mailcopy.Verify(ctx, src, dst, opts)
		if err != nil {
			t.Fatalf("run %d: Verify() = %v", run, err)
		}
		last = v
		c := compareCorpus(t, ctx, src, dst, res, reported)
		rows = append(rows, fmt.Sprintf("| %d | %d | %d | %d | %d | %d | %d | %d | %d | %d/%d/%d/%d/%d |", run, c.exact, c.altered, c.preserved, c.reported, c.lost, c.duplicated,
			res.Copied, res.Present, v.Exact, v.Altered, v.Preserved, v.Empty, v.Missing))
		if c.lost != 0 || c.duplicated != 0 || !v.OK() {
			t.Errorf("run %d: %d lost, %d duplicated, verify missing %d duplicated %d: %s; %s", run, c.lost, c.duplicated, v.Missing, v.Duplicates, strings.Join(c.problems, "; "), v.MissingSummary())
		}
		if got := c.exact + c.altered + c.preserved + c.reported + c.lost; got != len(files) {
			t.Errorf("run %d: %d messages classified, want the %d files of the module", run, got, len(files))
		}
		if run > 1 && res.Copied != 0 {
			t.Errorf("run %d: Copy() copied %d messages again, want 0", run, res.Copied)
		}
		if got, want := alteredOf(v), c.alteredList; got != want {
			t.Errorf("run %d: verify calls altered %s, the comparison %s", run, got, want)
		}
	}

	// The module's files themselves, not only what the source serves:
	// every non-empty file is on the destination, in its folder, with its
	// bytes (line endings aside: Dovecot serves a Maildir's LF as CRLF).
	dstInv, err := mailcopy.Inventory(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	onDest := map[string]int{}
	for _, m := range dstInv {
		onDest[m.Folder+"\x00"+m.Norm]++
	}
	filesOnDest, empty := 0, 0
	for f, mfs := range byFolder {
		for _, mf := range mfs {
			k := "INBOX." + strings.ReplaceAll(f, "/", ".") + "\x00" + mf.norm
			switch {
			case len(mf.body) == 0:
				empty++
			case onDest[k] > 0:
				onDest[k]--
				filesOnDest++
			default:
				t.Errorf("%s is not on the destination in %q", mf.rel, f)
			}
		}
	}
	t.Logf("module files on the destination byte for byte: %d of %d (%d empty: nothing to copy)", filesOnDest, len(files), empty)

	// Per folder, from the last verify; every message that is not exact,
	// by file name.
	name := map[string]string{}
	for _, mf := range files {
		name[mf.norm] = mf.rel
	}
	inv, err := mailcopy.Inventory(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	fileOf := map[string]string{}
	for _, m := range inv {
		fileOf[fmt.Sprintf("%s\x00%d", m.Folder, m.UID)] = name[m.Norm]
	}
	var perFolder, notExact []string
	var bytesTotal int64
	for _, mf := range files {
		bytesTotal += int64(len(mf.body))
	}
	for _, f := range last.Folders {
		perFolder = append(perFolder, fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %d |", f.Source, f.SourceCount, f.Exact, len(f.Altered), len(f.Preserved), f.Empty, len(f.Missing)))
		for _, l := range [][]mailcopy.Skip{f.Altered, f.Preserved, f.NotCopied, f.OverLimit, f.Missing} {
			for _, it := range l {
				notExact = append(notExact, fmt.Sprintf("%s (%s uid %d, %d bytes): %s", fileOf[fmt.Sprintf("%s\x00%d", it.Folder, it.UID)], it.Folder, it.UID, it.Size, it.Reason))
			}
		}
	}
	for _, it := range items {
		notExact = append(notExact, fmt.Sprintf("reported by the copy [%s] %s uid %d: %s", it.Category, it.Folder, it.UID, it.Reason))
	}
	t.Logf("%s: %d messages (%d bytes) in %d folders, three runs:\n"+
		"| run | exact | altered by destination | preserved | reported | lost | duplicated | copied | present | verify exact/altered/preserved/empty/missing |\n"+
		"|---|---|---|---|---|---|---|---|---|---|\n%s\n\n"+
		"| folder | messages | exact | altered | preserved | empty | missing |\n|---|---|---|---|---|---|---|\n%s\n\nnot byte for byte, with the reason:\n%s",
		realWorldModule, len(files), bytesTotal, len(folders), strings.Join(rows, "\n"), strings.Join(perFolder, "\n"), strings.Join(notExact, "\n"))
}

// moduleFile is one test-data file of the module.
type moduleFile struct {
	rel  string // path inside the module
	body []byte
	// norm is the hash of the bytes as Inventory normalizes them (line
	// endings to LF, NUL to 0x80): what names the file on a server that
	// serves it with CRLF.
	norm string
}

// moduleMessages reads every regular file under a testdata directory of
// the module: each is a message, however broken. A folder per directory:
// "enmime/mail" for testdata/mail.
func moduleMessages(t *testing.T, modDir string) ([]moduleFile, map[string][]moduleFile) {
	t.Helper()
	var files []moduleFile
	byFolder := map[string][]moduleFile{}
	err := filepath.WalkDir(modDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(modDir, p)
		segs := strings.Split(filepath.ToSlash(filepath.Dir(rel)), "/")
		var keep []string
		inTestdata := false
		for _, s := range segs {
			if s == "testdata" {
				inTestdata = true
				continue
			}
			keep = append(keep, s)
		}
		if !inTestdata {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		folder := "enmime"
		if len(keep) > 0 && keep[0] != "." {
			folder += "/" + strings.Join(keep, "/")
		}
		mf := moduleFile{rel: filepath.ToSlash(rel), body: b, norm: normHash(b)}
		files = append(files, mf)
		byFolder[folder] = append(byFolder[folder], mf)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 100 {
		t.Fatalf("%s holds %d test-data files, want at least 100", realWorldModule, len(files))
	}
	return files, byFolder
}

// normHash hashes b as mailcopy's normalized hash does: CRLF, bare CR and
// bare LF become LF, NUL becomes 0x80.
func normHash(b []byte) string {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte{0}, []byte{0x80})
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// downloadModule fetches module@version into the module cache with the Go
// toolchain (the proxy the machine is set up with) and returns its
// directory there.
func downloadModule(t *testing.T, modVersion string) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", modVersion)
	cmd.Dir = t.TempDir() // outside this module: its go.mod stays as it is
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); err != nil || jerr != nil || info.Error != "" || info.Dir == "" {
		t.Fatalf("go mod download %s: %v %s %s", modVersion, err, info.Error, stderr.String())
	}
	return info.Dir
}
