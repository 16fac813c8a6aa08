// Package devstack runs the embedded platform used by the demo and the
// tests: go-imap in-memory IMAP servers whose logins obey the directory
// (like Dovecot's SQL passdb), a SQLite directory seeded with an MX Plan
// service, an E-mail Pro and an Exchange service with free slots, and an
// authoritative DNS server for the demo domains that accepts TSIG updates.
package devstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/dnscheck"
	"github.com/mailshift/mailshift/internal/mailgen"
)

// Service IDs of the embedded platform.
const (
	SourceService   = "mxplan-1"
	EmailProService = "emailpro-1"
	ExchangeService = "exchange-1"
)

// DemoPassword is the password of every generated demo mailbox (the demo
// logs in as an owner to show the result; it is no secret).
const DemoPassword = "demo-password"

// Stack is the running embedded platform.
type Stack struct {
	Dir      *directory.Store
	Source   *IMAPServer
	EmailPro *IMAPServer
	Exchange *IMAPServer
	DNS      *dnscheck.Server
	// Master is the migrator's master login on every IMAP server.
	MasterUser     string
	MasterPassword string
	TSIG           dnscheck.TSIGKey
	Zones          []string
}

// Options shape the stack.
type Options struct {
	// DirectoryDSN is where the directory lives (default: in the given dir).
	DirectoryDSN string
	// Domains get a zone each (default example.com and example.org).
	Domains []string
}

// Start starts the embedded platform and seeds the directory (services and
// slots; accounts are added with AddAccount).
func Start(ctx context.Context, opts Options) (*Stack, error) {
	if len(opts.Domains) == 0 {
		opts.Domains = []string{"example.com", "example.org"}
	}
	dir, err := directory.Open(ctx, opts.DirectoryDSN)
	if err != nil {
		return nil, err
	}
	s := &Stack{Dir: dir, MasterUser: "mailshift", MasterPassword: randomString(18),
		TSIG: dnscheck.TSIGKey{Name: "mailshift-dev.", Secret: base64.StdEncoding.EncodeToString([]byte(randomString(32)))}}
	if s.Source, err = s.startIMAP(); err != nil {
		return nil, err
	}
	if s.EmailPro, err = s.startIMAP(); err != nil {
		return nil, err
	}
	if s.Exchange, err = s.startIMAP(); err != nil {
		return nil, err
	}
	zones := map[string]string{}
	for _, d := range opts.Domains {
		zones[d] = zoneText(d)
		s.Zones = append(s.Zones, d)
	}
	if s.DNS, err = dnscheck.NewServer(zones, map[string]string{s.TSIG.Name: s.TSIG.Secret}); err != nil {
		return nil, err
	}
	if err := s.DNS.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	services := []directory.Service{
		{ID: SourceService, Kind: directory.KindMXPlan, IMAPAddr: s.Source.Addr, IMAPSecurity: "plain",
			SMTPAddr: "smtp.mxplan.mailshift.test:465", MX: "10 mx1.mxplan.mailshift.test", SPFInclude: "_spf.mxplan.mailshift.test"},
		{ID: EmailProService, Kind: directory.KindEmailPro, IMAPAddr: s.EmailPro.Addr, IMAPSecurity: "plain",
			SMTPAddr: "pro1.mail.mailshift.test:587", WebmailURL: "https://webmail.pro.mailshift.test",
			MX: "10 mx1.pro.mailshift.test, 20 mx2.pro.mailshift.test", SPFInclude: "_spf.pro.mailshift.test",
			Autodiscover: "autodiscover.pro.mailshift.test", MaxMessageBytes: 60 << 20},
		{ID: ExchangeService, Kind: directory.KindExchange, IMAPAddr: s.Exchange.Addr, IMAPSecurity: "plain",
			SMTPAddr: "ex1.mail.mailshift.test:587", WebmailURL: "https://outlook.exchange.mailshift.test/owa",
			MX: "0 mx.exchange.mailshift.test", SPFInclude: "_spf.exchange.mailshift.test",
			Autodiscover: "autodiscover.exchange.mailshift.test", MaxMessageBytes: 150 << 20},
	}
	for _, sv := range services {
		if err := dir.AddService(ctx, sv); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// AddSlots adds n free slots of quota bytes to a service.
func (s *Stack) AddSlots(ctx context.Context, service string, n int, quota int64) error {
	for i := 0; i < n; i++ {
		ph := fmt.Sprintf("%s@configureme.me", randomString(6))
		if err := s.Dir.AddSlot(ctx, service, ph, quota); err != nil {
			return err
		}
	}
	return nil
}

// AddAccount creates an MX Plan account with DemoPassword and fills its
// mailbox from spec.
func (s *Stack) AddAccount(ctx context.Context, address, locale string, spec mailgen.Spec) (int, error) {
	address = strings.ToLower(address)
	if err := s.Dir.AddAccount(ctx, directory.Account{Address: address, ServiceID: SourceService, State: directory.StateActive,
		QuotaBytes: 5 << 30, Locale: locale}, directory.HashPassword(DemoPassword)); err != nil {
		return 0, err
	}
	u := s.Source.user(address)
	for _, p := range mailgen.Parents {
		_ = u.Create(p, nil)
	}
	for _, f := range mailgen.Folders {
		if err := u.Create(f, nil); err != nil && !isExists(err) {
			return 0, err
		}
	}
	spec.Address = address
	n := 0
	err := mailgen.Generate(spec, func(m mailgen.Message) error {
		n++
		_, err := u.Append(m.Folder, bytes.NewReader(m.Body), &imap.AppendOptions{Flags: m.Flags, Time: m.Date})
		return err
	})
	return n, err
}

// Deliver hands a message to the platform for address: it lands on
// whichever service the address's route points to (the source until the
// routing switch), as the MTA's transport map would decide.
func (s *Stack) Deliver(ctx context.Context, address string, msg []byte) error {
	srv := s.Source
	if r, err := s.Dir.Route(ctx, address); err == nil {
		switch r.ServiceID {
		case EmailProService:
			srv = s.EmailPro
		case ExchangeService:
			srv = s.Exchange
		}
	} else if !errors.Is(err, directory.ErrNotFound) {
		return err
	}
	_, err := srv.user(address).Append("INBOX", bytes.NewReader(msg), &imap.AppendOptions{})
	return err
}

// Close stops everything.
func (s *Stack) Close() {
	for _, srv := range []*IMAPServer{s.Source, s.EmailPro, s.Exchange} {
		if srv != nil {
			srv.Close()
		}
	}
	if s.DNS != nil {
		s.DNS.Close()
	}
	if s.Dir != nil {
		s.Dir.Close()
	}
}

func zoneText(domain string) string {
	return fmt.Sprintf(`$ORIGIN %[1]s.
$TTL 300
@ IN SOA ns1.%[1]s. hostmaster.%[1]s. 1 3600 600 86400 300
@ IN NS ns1.%[1]s.
@ IN NS ns2.%[1]s.
ns1 IN A 127.0.0.1
ns2 IN A 127.0.0.1
@ IN MX 10 mx1.mxplan.mailshift.test.
@ IN TXT "v=spf1 include:_spf.mxplan.mailshift.test ~all"
`, domain)
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func isExists(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists
}

// IMAPServer is an in-memory IMAP server for the accounts of one service.
type IMAPServer struct {
	Addr  string
	stack *Stack
	mem   *imapmemserver.Server
	srv   *imapserver.Server
	ln    net.Listener

	mu       sync.Mutex
	users    map[string]*imapmemserver.User
	internal string

	// open and peak count connections as the server sees them, so tests
	// can check a budget at the server, not by trusting the client.
	open, peak atomic.Int64
	// accepted counts every connection the server took.
	accepted atomic.Int64
	// appendDelay is how long each APPEND takes at least (SlowAppends).
	appendDelay atomic.Int64
}

// SlowAppends makes each APPEND take at least d, like a loaded server's
// disk: a test can watch a copy that the in-memory server would otherwise
// finish between two looks.
func (is *IMAPServer) SlowAppends(d time.Duration) { is.appendDelay.Store(int64(d)) }

// Connections returns the connections open now and the most open at once
// since the last ResetPeak.
func (is *IMAPServer) Connections() (open, peak int64) { return is.open.Load(), is.peak.Load() }

// Accepted returns how many connections the server has taken.
func (is *IMAPServer) Accepted() int64 { return is.accepted.Load() }

// ResetPeak starts a new peak count from the connections open now.
func (is *IMAPServer) ResetPeak() { is.peak.Store(is.open.Load()) }

func (s *Stack) startIMAP() (*IMAPServer, error) {
	is := &IMAPServer{stack: s, mem: imapmemserver.New(), users: map[string]*imapmemserver.User{}, internal: randomString(24)}
	is.srv = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			n := is.open.Add(1)
			is.accepted.Add(1)
			for p := is.peak.Load(); n > p && !is.peak.CompareAndSwap(p, n); p = is.peak.Load() {
			}
			return &session{Session: StrictSession(is.mem.NewSession()), srv: is}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
		Logger:       nopLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	is.ln = ln
	is.Addr = ln.Addr().String()
	go func() { _ = is.srv.Serve(ln) }()
	return is, nil
}

// Close stops the server.
func (is *IMAPServer) Close() { _ = is.srv.Close() }

// User returns the in-memory mailbox of address (created on first use).
func (is *IMAPServer) user(address string) *imapmemserver.User {
	is.mu.Lock()
	defer is.mu.Unlock()
	address = strings.ToLower(address)
	u, ok := is.users[address]
	if !ok {
		u = imapmemserver.NewUser(address, is.internal)
		_ = u.Create("INBOX", nil)
		is.mem.AddUser(u)
		is.users[address] = u
	}
	return u
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...interface{}) {}

// session authenticates against the directory, like Dovecot's SQL passdb:
// the owner logs in with the account's password while the account is
// active; the master user logs in as "address*master" whatever the state
// (a locked or migrated source stays readable for the migrator).
type session struct {
	imapserver.Session
	srv *IMAPServer
}

func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	if d := time.Duration(s.srv.appendDelay.Load()); d > 0 {
		time.Sleep(d)
	}
	return s.Session.Append(mailbox, r, options)
}

// Close counts the connection's end.
func (s *session) Close() error {
	s.srv.open.Add(-1)
	return s.Session.Close()
}

func (s *session) Login(username, password string) error {
	user, master := username, false
	if u, mu, ok := strings.Cut(username, "*"); ok {
		if mu != s.srv.stack.MasterUser || password != s.srv.stack.MasterPassword {
			return imapserver.ErrAuthFailed
		}
		user, master = u, true
	}
	user = strings.ToLower(user)
	// The server serves every service whose IMAP address is its own, as a
	// platform's shared server does.
	services, err := s.srv.stack.Dir.Services(context.Background())
	if err != nil {
		return imapserver.ErrAuthFailed
	}
	for _, sv := range services {
		if sv.IMAPAddr != s.srv.Addr {
			continue
		}
		hash, state, err := s.srv.stack.Dir.PasswordHash(context.Background(), sv.ID, user)
		if err != nil {
			continue
		}
		if !master && (state != directory.StateActive || !directory.VerifyPassword(hash, password)) {
			return imapserver.ErrAuthFailed
		}
		s.srv.user(user)
		return s.Session.Login(user, s.srv.internal)
	}
	return imapserver.ErrAuthFailed
}

// strictAppend is a session whose APPEND refuses a literal that ends before
// its announced size (a client that disconnected mid-message), as Dovecot
// does; go-imap's in-memory server would store the truncated message.
type strictAppend struct {
	imapserver.Session
}

// StrictSession wraps a session so truncated APPENDs are refused.
func StrictSession(s imapserver.Session) imapserver.Session { return &strictAppend{Session: s} }

func (s *strictAppend) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	buf := make([]byte, 0, r.Size())
	b := bytes.NewBuffer(buf)
	n, err := b.ReadFrom(r)
	if err != nil {
		return nil, err
	}
	if n != r.Size() {
		return nil, fmt.Errorf("literal ended after %d of %d bytes", n, r.Size())
	}
	return s.Session.Append(mailbox, bytes.NewReader(b.Bytes()), options)
}
