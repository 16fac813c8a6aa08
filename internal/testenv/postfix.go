package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PostfixOptions shape a lab Postfix: an SMTP relay on loopback that
// delivers its virtual mailboxes into a lab Dovecot's Maildirs.
type PostfixOptions struct {
	// Mailboxes are the addresses it delivers, into MailDir/<domain>/<user>/
	// (the lab Dovecot's mail_location is maildir:DIR/mail/%d/%n).
	Mailboxes []string
	MailDir   string
	// TLS offers STARTTLS with a certificate for 127.0.0.1 signed by a
	// fresh CA (Postfix.CAFile).
	TLS bool
}

// Postfix is a running lab Postfix.
type Postfix struct {
	Addr   string
	Dir    string
	CAFile string
}

// StartPostfix starts a private Postfix instance; it stops with the test.
func StartPostfix(t testing.TB, o PostfixOptions) *Postfix {
	t.Helper()
	p, stop, err := LaunchPostfix(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return p
}

// LaunchPostfix starts Postfix with its own configuration, queue and log
// directory, and returns it with its stop function.
func LaunchPostfix(o PostfixOptions) (*Postfix, func(), error) {
	if _, err := exec.LookPath("postfix"); err != nil {
		return nil, nil, fmt.Errorf("Postfix is not installed: run deploy/lab/install.sh (make test does)")
	}
	port, err := PickPort()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "mailshift-postfix-")
	if err != nil {
		return nil, nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, nil, err
	}
	for _, d := range []string{"queue", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, nil, err
		}
	}
	if err := exec.Command("chown", "postfix", filepath.Join(dir, "data")).Run(); err != nil {
		return nil, nil, fmt.Errorf("chown data directory: %w", err)
	}
	var maps, domains []string
	seen := map[string]bool{}
	for _, a := range o.Mailboxes {
		user, domain, ok := strings.Cut(strings.ToLower(a), "@")
		if !ok {
			return nil, nil, fmt.Errorf("mailbox %q: not an address", a)
		}
		maps = append(maps, fmt.Sprintf("%s=%s/%s/", strings.ToLower(a), domain, user))
		if !seen[domain] {
			seen[domain] = true
			domains = append(domains, domain)
		}
	}
	sort.Strings(domains)
	main := []string{
		"compatibility_level = 3.6",
		"queue_directory = " + filepath.Join(dir, "queue"),
		"data_directory = " + filepath.Join(dir, "data"),
		"maillog_file = " + filepath.Join(dir, "maillog"),
		"maillog_file_prefixes = " + dir,
		"inet_interfaces = 127.0.0.1",
		"inet_protocols = ipv4",
		"myhostname = mx.lab.test",
		"mydestination =",
		"mynetworks = 127.0.0.0/8",
		"relay_domains =",
		"smtputf8_enable = no",
		"biff = no",
		// A relay for its own mailboxes only: any other recipient is
		// refused (554), as a relay refuses a recipient it does not serve.
		"smtpd_relay_restrictions = reject_unauth_destination",
		"smtpd_recipient_restrictions = reject_unauth_destination",
		"virtual_mailbox_domains = " + strings.Join(domains, " "),
		"virtual_mailbox_base = " + o.MailDir,
		"virtual_mailbox_maps = inline:{ " + strings.Join(maps, ", ") + " }",
		"virtual_minimum_uid = 100",
		"virtual_uid_maps = static:65534",
		"virtual_gid_maps = static:65534",
	}
	var caFile string
	if o.TLS {
		if caFile, err = writeCert(dir); err != nil {
			return nil, nil, err
		}
		main = append(main, "smtpd_tls_security_level = may",
			"smtpd_tls_cert_file = "+filepath.Join(dir, "cert.pem"), "smtpd_tls_key_file = "+filepath.Join(dir, "key.pem"))
	}
	master := []string{
		"127.0.0.1:" + strconv.Itoa(port) + " inet n - n - - smtpd",
		"pickup unix n - n 60 1 pickup",
		"cleanup unix n - n - 0 cleanup",
		"qmgr unix n - n 300 1 qmgr",
		"tlsmgr unix - - n 1000? 1 tlsmgr",
		"rewrite unix - - n - - trivial-rewrite",
		"bounce unix - - n - 0 bounce",
		"defer unix - - n - 0 bounce",
		"trace unix - - n - 0 bounce",
		"verify unix - - n - 1 verify",
		"flush unix n - n 1000? 0 flush",
		"proxymap unix - - n - - proxymap",
		"smtp unix - - n - - smtp",
		"relay unix - - n - - smtp",
		"showq unix n - n - - showq",
		"error unix - - n - - error",
		"retry unix - - n - - error",
		"discard unix - - n - - discard",
		"local unix - n n - - local",
		"virtual unix - n n - - virtual",
		"lmtp unix - - n - - lmtp",
		"anvil unix - - n - 1 anvil",
		"scache unix - - n - 1 scache",
		"postlog unix-dgram n - n - 1 postlogd",
	}
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(strings.Join(main, "\n")+"\n"), 0o644); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), []byte(strings.Join(master, "\n")+"\n"), 0o644); err != nil {
		return nil, nil, err
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command("postfix", append([]string{"-c", dir}, args...)...)
		cmd.Env = append(os.Environ(), "MAIL_CONFIG="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	stop := func() {
		_, _ = run("stop")
		// master exits a moment after "stop"; wait for its pid file to go.
		for i := 0; i < 50; i++ {
			if _, err := os.Stat(filepath.Join(dir, "queue", "pid", "master.pid")); err != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		os.RemoveAll(dir)
	}
	if out, err := run("start"); err != nil {
		logb, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		chk, _ := run("check")
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("postfix start: %v\n%s\n%s\n%s", err, out, logb, chk)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "220") {
				break
			}
		}
		if time.Now().After(deadline) {
			logb, _ := os.ReadFile(filepath.Join(dir, "maillog"))
			stop()
			return nil, nil, fmt.Errorf("Postfix did not greet on %s: %v\n%s", addr, err, logb)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &Postfix{Addr: addr, Dir: dir, CAFile: caFile}, stop, nil
}

// Log returns the instance's mail log (for failure messages).
func (p *Postfix) Log() string {
	b, err := os.ReadFile(filepath.Join(p.Dir, "maillog"))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return string(b)
}
