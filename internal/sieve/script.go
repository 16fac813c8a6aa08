package sieve

import (
	"fmt"
	"strings"
)

// Folder names live in a script as string arguments of fileinto (RFC 5228
// 4.1). A migration that changes folder names must change them there too,
// and nowhere else: the rewrite below touches only those strings and keeps
// every other byte (comments, layout, other rules) as the owner wrote it.

// Target is one fileinto of a script.
type Target struct {
	// Folder is the mailbox name as written (escapes resolved).
	Folder string
	// Line is where the fileinto starts (1-based).
	Line       int
	start, end int // byte offsets of the string token
	multiline  bool
}

// Scan is what a script holds that a migration cares about.
type Scan struct {
	Targets []Target
	// Vacation is set when the script sends automatic replies (vacation,
	// RFC 5230): an auto-responder, which the platform refuses.
	Vacation bool
	// VacationLine is the line of the first vacation action.
	VacationLine int
	// Require lists the extensions the script requires.
	Require []string
}

type tok struct {
	kind       byte // 'i' identifier, ':' tag, 's' string, 'n' number, else the punctuation itself
	text       string
	start, end int
	line       int
	multiline  bool
}

// lex splits a script into tokens, skipping comments and white space.
func lex(src string) ([]tok, error) {
	var out []tok
	line := 1
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && strings.HasPrefix(src[i:], "/*"):
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return nil, fmt.Errorf("line %d: unterminated comment", line)
			}
			line += strings.Count(src[i:i+2+j+2], "\n")
			i += 2 + j + 2
		case c == '"':
			var sb strings.Builder
			j := i + 1
			startLine := line
			for ; j < len(src) && src[j] != '"'; j++ {
				if src[j] == '\\' && j+1 < len(src) {
					j++
				}
				if src[j] == '\n' {
					line++
				}
				sb.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, fmt.Errorf("line %d: unterminated string", startLine)
			}
			out = append(out, tok{kind: 's', text: sb.String(), start: i, end: j + 1, line: startLine})
			i = j + 1
		case strings.HasPrefix(strings.ToLower(src[i:]), "text:"):
			// Multi-line string: "text:" to the end of the line, then lines
			// up to a lone ".", with ".." standing for a leading dot.
			startLine := line
			nl := strings.IndexByte(src[i:], '\n')
			if nl < 0 {
				return nil, fmt.Errorf("line %d: unterminated multi-line string", line)
			}
			j := i + nl + 1
			line++
			var sb strings.Builder
			for {
				e := strings.IndexByte(src[j:], '\n')
				if e < 0 {
					return nil, fmt.Errorf("line %d: unterminated multi-line string", startLine)
				}
				l := strings.TrimSuffix(src[j:j+e], "\r")
				j += e + 1
				line++
				if l == "." {
					break
				}
				sb.WriteString(strings.TrimPrefix(l, "."))
				sb.WriteString("\r\n")
			}
			out = append(out, tok{kind: 's', text: sb.String(), start: i, end: j, line: startLine, multiline: true})
			i = j
		case c == ':' || isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdent(src[j]) {
				j++
			}
			k := byte('i')
			if c == ':' {
				k = ':'
			}
			out = append(out, tok{kind: k, text: strings.ToLower(src[i:j]), start: i, end: j, line: line})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || strings.IndexByte("KMGkmg", src[j]) >= 0) {
				j++
			}
			out = append(out, tok{kind: 'n', text: src[i:j], start: i, end: j, line: line})
			i = j
		case strings.IndexByte(";,{}[]()", c) >= 0:
			out = append(out, tok{kind: c, start: i, end: i + 1, line: line})
			i++
		default:
			return nil, fmt.Errorf("line %d: unexpected character %q", line, c)
		}
	}
	return out, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// fileinto's tagged arguments that take a value (RFC 5232 :flags, RFC 8579
// :specialuse, RFC 9042 :mailboxid); :copy and :create take none.
var taggedWithValue = map[string]bool{":flags": true, ":specialuse": true, ":mailboxid": true}

// Parse finds the fileinto targets, the required extensions and any
// vacation action of a script.
func Parse(src string) (*Scan, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	sc := &Scan{}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.kind != 'i' {
			continue
		}
		// A command starts a script, or follows ";", "{" or "}".
		if i > 0 && toks[i-1].kind != ';' && toks[i-1].kind != '{' && toks[i-1].kind != '}' {
			continue
		}
		switch t.text {
		case "require":
			for j := i + 1; j < len(toks) && toks[j].kind != ';'; j++ {
				if toks[j].kind == 's' {
					sc.Require = append(sc.Require, toks[j].text)
				}
			}
		case "vacation":
			if !sc.Vacation {
				sc.Vacation, sc.VacationLine = true, t.line
			}
		case "fileinto":
			j := i + 1
			for j < len(toks) && toks[j].kind == ':' {
				if taggedWithValue[toks[j].text] {
					j = skipValue(toks, j+1)
				} else {
					j++
				}
			}
			if j >= len(toks) || toks[j].kind != 's' {
				return nil, fmt.Errorf("line %d: fileinto without a folder name", t.line)
			}
			sc.Targets = append(sc.Targets, Target{Folder: toks[j].text, Line: t.line, start: toks[j].start, end: toks[j].end, multiline: toks[j].multiline})
		}
	}
	return sc, nil
}

// skipValue skips a string or a string list starting at j.
func skipValue(toks []tok, j int) int {
	if j < len(toks) && toks[j].kind == '[' {
		for j < len(toks) && toks[j].kind != ']' {
			j++
		}
		return j + 1
	}
	return j + 1
}

// Rewrite replaces the folder of every fileinto by rename(folder); a
// folder for which rename returns ok=false is kept as written. It returns
// the new script and the folders kept as written, once each.
func Rewrite(src string, rename func(folder string) (string, bool)) (string, []string, error) {
	sc, err := Parse(src)
	if err != nil {
		return "", nil, err
	}
	var b strings.Builder
	var kept []string
	seen := map[string]bool{}
	last := 0
	for _, t := range sc.Targets {
		to, ok := rename(t.Folder)
		if !ok {
			if !seen[t.Folder] {
				seen[t.Folder] = true
				kept = append(kept, t.Folder)
			}
			continue
		}
		if to == t.Folder {
			continue
		}
		b.WriteString(src[last:t.start])
		b.WriteString(QuoteString(to))
		last = t.end
	}
	b.WriteString(src[last:])
	return b.String(), kept, nil
}

// QuoteString writes s as a Sieve quoted string.
func QuoteString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
