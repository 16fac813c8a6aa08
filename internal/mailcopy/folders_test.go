package mailcopy

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

func names(ms []Mapping) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		out[m.Source] = m.Dest
	}
	return out
}

func TestMapFolders(t *testing.T) {
	dot := Namespace{Prefix: "INBOX.", Delim: '.'}
	slash := Namespace{Delim: '/'}
	cases := []struct {
		name     string
		src      []Folder
		srcNS    Namespace
		dst      []Folder
		dstNS    Namespace
		opts     MapOptions
		want     map[string]string
		wantNote string
	}{
		{
			name:  "Courier prefix and dots to slashes",
			src:   []Folder{{Name: "INBOX", Delim: '.'}, {Name: "INBOX.Archives", Delim: '.'}, {Name: "INBOX.Archives.2024", Delim: '.'}},
			srcNS: dot, dstNS: slash,
			want: map[string]string{"INBOX": "INBOX", "INBOX.Archives": "Archives", "INBOX.Archives.2024": "Archives/2024"},
		},
		{
			name:  "slashes to a dotted namespace",
			src:   []Folder{{Name: "INBOX", Delim: '/'}, {Name: "Projets/Été 2025", Delim: '/'}},
			srcNS: slash, dstNS: dot,
			want: map[string]string{"INBOX": "INBOX", "Projets/Été 2025": "INBOX.Projets.Été 2025"},
		},
		{
			name: "special-use by attribute first, then by name in five languages",
			src: []Folder{{Name: "Éléments envoyés", Delim: '/'}, {Name: "Papierkorb", Delim: '/'}, {Name: "Borradores", Delim: '/'},
				{Name: "Posta indesiderata", Delim: '/'}, {Name: "Mes envois", Delim: '/', Attrs: []imap.MailboxAttr{imap.MailboxAttrArchive}}},
			srcNS: slash,
			dst: []Folder{{Name: "Sent Items", Delim: '/'}, {Name: "Deleted Items", Delim: '/', Attrs: []imap.MailboxAttr{imap.MailboxAttrTrash}},
				{Name: "Drafts", Delim: '/'}, {Name: "Junk E-mail", Delim: '/'}, {Name: "Archive", Delim: '/', Attrs: []imap.MailboxAttr{imap.MailboxAttrArchive}}},
			dstNS: slash,
			want: map[string]string{"Éléments envoyés": "Sent Items", "Papierkorb": "Deleted Items", "Borradores": "Drafts",
				"Posta indesiderata": "Junk E-mail", "Mes envois": "Archive"},
		},
		{
			name:  "a second folder of a role keeps its name",
			src:   []Folder{{Name: "Sent", Delim: '/'}, {Name: "Gesendet", Delim: '/'}},
			srcNS: slash, dst: []Folder{{Name: "Sent Items", Delim: '/', Attrs: []imap.MailboxAttr{imap.MailboxAttrSent}}}, dstNS: slash,
			want: map[string]string{"Sent": "Sent Items", "Gesendet": "Gesendet"},
		},
		{
			name:  "include, exclude and rename on logical paths",
			src:   []Folder{{Name: "INBOX", Delim: '/'}, {Name: "Work", Delim: '/'}, {Name: "Work/Old", Delim: '/'}, {Name: "Spam-archive", Delim: '/'}, {Name: "Perso", Delim: '/'}},
			srcNS: slash, dstNS: slash,
			opts: MapOptions{Include: []string{"Work*", "Perso"}, Exclude: []string{"Work/Old"}, Rename: map[string]string{"Perso": "Personal/2019"}},
			want: map[string]string{"INBOX": "INBOX", "Work": "Work", "Perso": "Personal/2019"},
		},
		{
			name:  "a destination separator inside a name",
			src:   []Folder{{Name: "Q1.2024/Reports", Delim: '/'}},
			srcNS: slash, dstNS: dot,
			want:     map[string]string{"Q1.2024/Reports": "INBOX.Q1_2024.Reports"},
			wantNote: "separator",
		},
		{
			name:  "a slash inside a dotted name survives",
			src:   []Folder{{Name: "INBOX.a/b", Delim: '.'}},
			srcNS: dot, dstNS: dot,
			want: map[string]string{"INBOX.a/b": "INBOX.a/b"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MapFolders(tc.src, tc.srcNS, tc.dst, tc.dstNS, tc.opts)
			if err != nil {
				t.Fatalf("MapFolders() error: %v", err)
			}
			g := names(got)
			if len(g) != len(tc.want) {
				t.Fatalf("MapFolders() = %v, want %v", g, tc.want)
			}
			for s, d := range tc.want {
				if g[s] != d {
					t.Fatalf("MapFolders()[%q] = %q, want %q (all: %v)", s, g[s], d, g)
				}
			}
			if tc.wantNote != "" {
				found := false
				for _, m := range got {
					found = found || strings.Contains(m.Note, tc.wantNote)
				}
				if !found {
					t.Fatalf("no mapping note mentions %q", tc.wantNote)
				}
			}
		})
	}
}

func TestMapFoldersCollision(t *testing.T) {
	tests := []struct {
		name     string
		src, dst []Folder
		want     map[string]string
	}{
		{"translated names", []Folder{{Name: "a.b", Delim: '/'}, {Name: "a_b", Delim: '/'}}, nil,
			map[string]string{"a.b": "a_b", "a_b": "a_b (2)"}},
		{"special-use without SPECIAL-USE", []Folder{{Name: "Éléments envoyés", Delim: '/'}, {Name: "Sent", Delim: '/'}},
			[]Folder{{Name: "Sent", Delim: '.', Attrs: []imap.MailboxAttr{imap.MailboxAttrSent}}},
			map[string]string{"Éléments envoyés": "Sent", "Sent": "Sent (2)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := MapFolders(tt.src, Namespace{Delim: '/'}, tt.dst, Namespace{Delim: '.'}, MapOptions{})
			if err != nil {
				t.Fatalf("MapFolders() error = %v, want none: a collision never aborts", err)
			}
			if got := names(ms); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("MapFolders() = %v, want %v", got, tt.want)
			}
			renamed := 0
			for _, m := range ms {
				if m.Renamed {
					renamed++
					if !strings.Contains(m.Note, "kept as") {
						t.Fatalf("renamed mapping note = %q, want it to say what it was kept as", m.Note)
					}
				}
			}
			if renamed != 1 {
				t.Fatalf("%d mappings renamed, want 1", renamed)
			}
		})
	}
	if _, err := MapFolders(nil, Namespace{}, nil, Namespace{}, MapOptions{Exclude: []string{"[oops"}}); err == nil {
		t.Fatalf("bad glob accepted")
	}
}

// FuzzFolderRoundTrip: a folder name moved to a server with another
// separator and back comes out unchanged, unless the name holds the other
// server's separator (then the mapping must say so).
func FuzzFolderRoundTrip(f *testing.F) {
	for _, s := range []string{"Archives/2024", "Projets/Été 2025", "Factures & Reçus", "a.b/c", "Спам", "x//y", "INBOX"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !utf8.ValidString(name) || name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") || strings.ContainsRune(name, '∕') {
			return
		}
		if strings.EqualFold(name, "inbox") {
			return
		}
		slash := Namespace{Delim: '/'}
		dot := Namespace{Prefix: "INBOX.", Delim: '.'}
		lp := logicalPath(name, slash, '/')
		onDot, note := serverName(lp, dot)
		if strings.Contains(name, ".") {
			if note == "" {
				t.Fatalf("%q holds the destination separator but no note was given", name)
			}
			return
		}
		back, _ := serverName(logicalPath(onDot, dot, '.'), slash)
		if back != name {
			t.Fatalf("round trip %q -> %q -> %q", name, onDot, back)
		}
	})
}
