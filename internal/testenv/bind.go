package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/miekg/dns"
)

// BIND is a primary and a secondary named for one zone, both on 127.0.0.1
// with their own ports, started from deploy/lab/bind.
type BIND struct {
	Zone       string
	Port       [2]string
	KeyName    string
	Secret     string
	rndcSecret string
	ctlPort    [2]int
	dirs       [2]string
	mu         sync.Mutex
	procs      [2]*exec.Cmd
}

// PrimaryAddr is where updates go.
func (b *BIND) PrimaryAddr() string { return net.JoinHostPort("127.0.0.1", b.Port[0]) }

// SecondaryAddr is the secondary's address.
func (b *BIND) SecondaryAddr() string { return net.JoinHostPort("127.0.0.1", b.Port[1]) }

// Override maps the zone's nameserver names to the two servers.
func (b *BIND) Override() map[string]string {
	return map[string]string{"ns1." + b.Zone + ".": b.PrimaryAddr(), "ns2." + b.Zone + ".": b.SecondaryAddr()}
}

func secret32() string {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// StartBIND starts the pair and waits until both answer for the zone.
func StartBIND(t testing.TB, zone string) *BIND {
	t.Helper()
	b, stop, err := LaunchBIND(zone)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return b
}

// LaunchBIND starts the pair and returns it with its stop function.
func LaunchBIND(zone string) (*BIND, func(), error) {
	if _, err := exec.LookPath("named"); err != nil {
		return nil, nil, fmt.Errorf("BIND9 is not installed: run deploy/lab/install.sh (make test does)")
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, nil, err
	}
	port := func() string {
		return strconv.Itoa(MustPickPort())
	}
	b := &BIND{Zone: zone, Port: [2]string{port(), port()}, KeyName: "mailshift-lab", Secret: secret32(), rndcSecret: secret32()}
	var stops []func()
	stop := func() {
		for _, f := range stops {
			f()
		}
	}
	for i, role := range []string{"primary", "secondary"} {
		dir, err := os.MkdirTemp("", "mailshift-bind-")
		if err != nil {
			stop()
			return nil, nil, err
		}
		stops = append(stops, func() { os.RemoveAll(dir) })
		b.dirs[i] = dir
		b.ctlPort[i], _ = strconv.Atoi(port())
		data := map[string]string{"Zone": zone, "KeyName": b.KeyName, "Secret": b.Secret, "RNDCSecret": b.rndcSecret,
			"Dir": dir, "Port": b.Port[i], "PrimaryPort": b.Port[0], "CtlPort": strconv.Itoa(b.ctlPort[i]), "IP": "127.0.0.1", "PrimaryIP": "127.0.0.1"}
		if err := renderFile(filepath.Join(root, "deploy/lab/bind/named-"+role+".conf.tmpl"), filepath.Join(dir, "named.conf"), data); err != nil {
			stop()
			return nil, nil, err
		}
		if role == "primary" {
			if err := renderFile(filepath.Join(root, "deploy/lab/bind/lab.zone.tmpl"), filepath.Join(dir, zone+".zone"), data); err != nil {
				stop()
				return nil, nil, err
			}
		}
		// named drops to the bind user when it can; let it write its files.
		_ = exec.Command("chmod", "-R", "a+rwX", dir).Run()
		stops = append([]func(){func() { b.kill(i) }}, stops...)
		if err := b.run(i); err != nil {
			stop()
			return nil, nil, fmt.Errorf("named %s: %v", role, err)
		}
	}
	return b, stop, nil
}

// run starts server i (0 primary, 1 secondary) and waits until it answers.
func (b *BIND) run(i int) error {
	cmd := exec.Command("named", "-g", "-c", filepath.Join(b.dirs[i], "named.conf"))
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	b.mu.Lock()
	b.procs[i] = cmd
	b.mu.Unlock()
	addr := net.JoinHostPort("127.0.0.1", b.Port[i])
	if err := waitSOA(addr, b.Zone, 20*time.Second); err != nil {
		return fmt.Errorf("on %s: %v\n%s", addr, err, log.String())
	}
	return nil
}

func (b *BIND) kill(i int) {
	b.mu.Lock()
	cmd := b.procs[i]
	b.procs[i] = nil
	b.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// StopPrimary kills the primary with SIGKILL, like a crashed or
// unreachable nameserver; its zone and journal stay on disk.
func (b *BIND) StopPrimary() { b.kill(0) }

// StartPrimary starts the primary again on the same port and files.
func (b *BIND) StartPrimary() error { return b.run(0) }

func renderFile(tmpl, out string, data map[string]string) error {
	tp, err := template.ParseFiles(tmpl)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tp.Execute(&buf, data); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// Serial returns the zone's serial on addr.
func Serial(addr, zone string) (uint32, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	m.RecursionDesired = false
	r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, addr)
	if err != nil {
		return 0, err
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, nil
		}
	}
	return 0, fmt.Errorf("no SOA for %s from %s (rcode %s)", zone, addr, dns.RcodeToString[r.Rcode])
}

func waitSOA(addr, zone string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var err error
	for time.Now().Before(deadline) {
		if _, err = Serial(addr, zone); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Retransfer tells the secondary to fetch the zone from the primary now.
func (b *BIND) Retransfer(ctx context.Context) error {
	conf := filepath.Join(b.dirs[1], "rndc.conf")
	text := fmt.Sprintf("key \"rndc-key\" { algorithm hmac-sha256; secret \"%s\"; };\noptions { default-key \"rndc-key\"; default-server 127.0.0.1; default-port %d; };\n", b.rndcSecret, b.ctlPort[1])
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "rndc", "-c", conf, "retransfer", b.Zone).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rndc retransfer: %v: %s", err, out)
	}
	return nil
}

// syncBuffer is a bytes.Buffer safe for a process's output and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
