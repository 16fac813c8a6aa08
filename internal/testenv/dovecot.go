package testenv

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DovecotOptions shape a lab Dovecot.
type DovecotOptions struct {
	Name string
	// Directory is the SQLite file of the mailshift directory, or its
	// postgres:// URL.
	Directory string
	// Services whose accounts this server serves.
	Services []string
	// Separator and Prefix of the personal namespace ("/" and "" by
	// default; "." and "INBOX." give a Courier-style server).
	Separator, Prefix string
	// MasterUser and MasterHash ({SSHA256}) of the migrator.
	MasterUser, MasterHash string
	AppendLimit            int64
	MaxConns               int
	// Port to listen on (0: a free one).
	Port int
	// TLS serves implicit TLS on TLSAddr and STARTTLS on Addr, with a
	// certificate for 127.0.0.1 signed by a fresh CA (CAFile).
	TLS bool
	// MaxMailSize, when > 0, makes the server refuse larger APPENDs with
	// NO [LIMIT] without announcing APPENDLIMIT (the quota plugin's
	// quota_max_mail_size, as real servers do).
	MaxMailSize int64
	// Sieve runs Pigeonhole: ManageSieve on a free port (SieveAddr) and
	// the sieve plugin for dovecot-lda and LMTP deliveries.
	Sieve bool
	// SieveExtensions, with Sieve, is Pigeonhole's sieve_extensions
	// ("-imap4flags": a server that lacks an extension).
	SieveExtensions string
}

// Dovecot is a running lab Dovecot.
type Dovecot struct {
	Addr string
	Dir  string
	// TLSAddr and CAFile are set with DovecotOptions.TLS.
	TLSAddr string
	CAFile  string
	// SieveAddr is the ManageSieve listener (DovecotOptions.Sieve).
	SieveAddr string
}

// StartDovecot starts Dovecot from deploy/lab/dovecot with a private
// configuration; it stops with the test.
func StartDovecot(t testing.TB, o DovecotOptions) *Dovecot {
	t.Helper()
	d, stop, err := LaunchDovecot(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return d
}

// LaunchDovecot starts Dovecot and returns it with its stop function.
func LaunchDovecot(o DovecotOptions) (*Dovecot, func(), error) {
	if _, err := exec.LookPath("dovecot"); err != nil {
		return nil, nil, fmt.Errorf("Dovecot is not installed: run deploy/lab/install.sh (make test does)")
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, nil, err
	}
	if o.Separator == "" {
		o.Separator = "/"
	}
	if o.MaxConns == 0 {
		o.MaxConns = 20
	}
	if o.Port == 0 {
		p, err := PickPort()
		if err != nil {
			return nil, nil, err
		}
		o.Port = p
	}
	dir, err := os.MkdirTemp("", "mailshift-dovecot-")
	if err != nil {
		return nil, nil, err
	}
	// Mail processes run as nobody and write under dir.
	if err := os.Chmod(dir, 0o777); err != nil {
		return nil, nil, err
	}
	var quoted []string
	for _, s := range o.Services {
		quoted = append(quoted, "'"+s+"'")
	}
	data := map[string]string{"Dir": dir, "Name": o.Name, "Services": strings.Join(o.Services, ", "), "Port": strconv.Itoa(o.Port),
		"Separator": o.Separator, "Prefix": o.Prefix, "MaxConns": strconv.Itoa(o.MaxConns), "UID": "65534", "GID": "65534",
		"Driver": "sqlite", "Connect": o.Directory, "ServiceList": strings.Join(quoted, ", ")}
	if u, err := url.Parse(o.Directory); err == nil && strings.HasPrefix(u.Scheme, "postgres") {
		data["Driver"] = "pgsql"
		data["Connect"] = fmt.Sprintf("host=%s port=%s dbname=%s user=%s", u.Hostname(), u.Port(), strings.TrimPrefix(u.Path, "/"), u.User.Username())
	}
	if o.AppendLimit > 0 {
		data["AppendLimit"] = strconv.FormatInt(o.AppendLimit, 10)
	}
	var tlsAddr, caFile string
	if o.TLS {
		p, err := PickPort()
		if err != nil {
			return nil, nil, err
		}
		data["TLSPort"] = strconv.Itoa(p)
		tlsAddr = net.JoinHostPort("127.0.0.1", data["TLSPort"])
		if caFile, err = writeCert(dir); err != nil {
			return nil, nil, err
		}
	}
	var sieveAddr string
	if o.Sieve {
		p, err := PickPort()
		if err != nil {
			return nil, nil, err
		}
		data["SievePort"] = strconv.Itoa(p)
		data["SieveExtensions"] = o.SieveExtensions
		sieveAddr = net.JoinHostPort("127.0.0.1", data["SievePort"])
	}
	if err := renderFile(filepath.Join(root, "deploy/lab/dovecot/dovecot.conf.tmpl"), filepath.Join(dir, "dovecot.conf"), data); err != nil {
		return nil, nil, err
	}
	if o.MaxMailSize > 0 {
		f, err := os.OpenFile(filepath.Join(dir, "dovecot.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return nil, nil, err
		}
		_, err = fmt.Fprintf(f, "\nmail_plugins = $mail_plugins quota\nplugin {\n  quota = maildir:User quota\n  quota_max_mail_size = %d\n}\n", o.MaxMailSize)
		f.Close()
		if err != nil {
			return nil, nil, err
		}
	}
	if err := renderFile(filepath.Join(root, "deploy/lab/dovecot/sql.conf.ext.tmpl"), filepath.Join(dir, "sql.conf.ext"), data); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "master-users"), []byte(o.MasterUser+":"+o.MasterHash+"\n"), 0o644); err != nil {
		return nil, nil, err
	}
	cmd := exec.Command("dovecot", "-F", "-c", filepath.Join(dir, "dovecot.conf"))
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port))
	deadline := time.Now().Add(20 * time.Second)
	greeted := func(addr string, ok func(line string) bool) error {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				r := bufio.NewReader(c)
				for {
					line, rerr := r.ReadString('\n')
					if rerr != nil {
						break
					}
					if ok(line) {
						c.Close()
						return nil
					}
				}
				c.Close()
			}
			if time.Now().After(deadline) {
				dl, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
				stop()
				return fmt.Errorf("Dovecot %s did not greet on %s: %v\n%s\n%s", o.Name, addr, err, log.String(), dl)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := greeted(addr, func(l string) bool { return strings.HasPrefix(l, "* OK") }); err != nil {
		return nil, nil, err
	}
	if sieveAddr != "" {
		// ManageSieve greets with its capabilities, then OK.
		if err := greeted(sieveAddr, func(l string) bool { return strings.HasPrefix(l, "OK") }); err != nil {
			return nil, nil, err
		}
	}
	return &Dovecot{Addr: addr, Dir: dir, TLSAddr: tlsAddr, CAFile: caFile, SieveAddr: sieveAddr}, stop, nil
}

// Log returns the server's log (for failure messages).
func (d *Dovecot) Log() string {
	b, err := os.ReadFile(filepath.Join(d.Dir, "dovecot.log"))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return string(b)
}
