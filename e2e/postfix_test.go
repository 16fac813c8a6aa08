package e2e

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/testenv"
)

// TestPostfixFollowsRoute: Postfix's transport map, reading the directory,
// sends the address to the destination once the route is switched — on
// SQLite and on PostgreSQL.
func TestPostfixFollowsRoute(t *testing.T) {
	if _, err := exec.LookPath("postmap"); err != nil {
		t.Fatalf("Postfix is not installed: run deploy/lab/install.sh (make test does)")
	}
	root, _ := testenv.RepoRoot()
	for _, kind := range []string{"sqlite", "pgsql"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			dsn := filepath.Join(t.TempDir(), "directory.db")
			if kind == "pgsql" {
				dsn = testenv.StartPostgres(t)
			}
			dir, err := directory.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer dir.Close()
			data := map[string]string{"Directory": dsn}
			if u, err := url.Parse(dsn); err == nil && u.Scheme == "postgres" {
				data = map[string]string{"Host": u.Hostname(), "Port": u.Port(), "User": u.User.Username(), "DBName": strings.TrimPrefix(u.Path, "/")}
			}
			tp := template.Must(template.ParseFiles(filepath.Join(root, "deploy/lab/postfix/transport-"+kind+".cf.tmpl")))
			cf := filepath.Join(t.TempDir(), "transport.cf")
			f, err := os.Create(cf)
			if err != nil {
				t.Fatal(err)
			}
			if err := tp.Execute(f, data); err != nil {
				t.Fatal(err)
			}
			f.Close()
			query := func() string {
				out, _ := exec.Command("postmap", "-q", "Alice@Example.com", kind+":"+cf).Output()
				return strings.TrimSpace(string(out))
			}
			if got := query(); got != "" {
				t.Fatalf("postmap before the switch = %q, want no route (the MX Plan default)", got)
			}
			if err := dir.AddService(ctx, directory.Service{ID: "emailpro-1", Kind: directory.KindEmailPro}); err != nil {
				t.Fatal(err)
			}
			if err := dir.SwitchRoute(ctx, "alice@example.com", "emailpro-1", "migrate:alice@example.com"); err != nil {
				t.Fatal(err)
			}
			if got := query(); got != "lmtp:emailpro-1" {
				t.Fatalf("postmap -q after the switch = %q, want lmtp:emailpro-1", got)
			}
		})
	}
}
