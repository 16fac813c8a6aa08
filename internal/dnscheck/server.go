package dnscheck

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Server is a small in-process authoritative DNS server for the embedded
// stack and tests: it answers for its zones over UDP and TCP and accepts
// TSIG-signed RFC 2136 updates.
type Server struct {
	mu    sync.Mutex
	zones map[string]*zoneData
	keys  map[string]string
	udp   *dns.Server
	tcp   *dns.Server
	// Addr is host:port once started (same port for UDP and TCP).
	Addr string
	// errs are the failures no client saw: a listener that stopped
	// serving, an answer that could not be written, a failed shutdown.
	errMu sync.Mutex
	errs  []error
}

// fail records a failure for Err.
func (s *Server) fail(err error) {
	if err == nil {
		return
	}
	s.errMu.Lock()
	defer s.errMu.Unlock()
	s.errs = append(s.errs, err)
}

// Err returns what went wrong out of any client's sight (nil when nothing
// did): a listener that stopped before Close, an answer that could not be
// written, a failed shutdown.
func (s *Server) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return errors.Join(s.errs...)
}

// reply writes m, recording a failure to do so.
func (s *Server) reply(w dns.ResponseWriter, m *dns.Msg) {
	if err := w.WriteMsg(m); err != nil {
		s.fail(fmt.Errorf("dns server: answer %v: %w", m.Question, err))
	}
}

type zoneData struct {
	serial uint32
	rrs    []dns.RR
}

// NewServer returns a server for the given zone files (zone apex → zone text
// in RFC 1035 master format) accepting updates signed by keys (name →
// base64 secret, hmac-sha256).
func NewServer(zones map[string]string, keys map[string]string) (*Server, error) {
	s := &Server{zones: map[string]*zoneData{}, keys: map[string]string{}}
	for k, v := range keys {
		s.keys[dns.Fqdn(k)] = v
	}
	for origin, text := range zones {
		origin = dns.Fqdn(strings.ToLower(origin))
		zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
		zd := &zoneData{}
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			if soa, ok := rr.(*dns.SOA); ok {
				zd.serial = soa.Serial
			}
			zd.rrs = append(zd.rrs, rr)
		}
		if err := zp.Err(); err != nil {
			return nil, fmt.Errorf("zone %s: %w", origin, err)
		}
		s.zones[origin] = zd
	}
	return s, nil
}

// Start listens on addr ("127.0.0.1:0" picks a port).
func (s *Server) Start(addr string) error {
	pc, ln, err := listenPair(addr)
	if err != nil {
		return err
	}
	s.Addr = pc.LocalAddr().String()
	mux := dns.NewServeMux()
	mux.HandleFunc(".", s.handle)
	s.udp = &dns.Server{PacketConn: pc, Handler: mux, TsigSecret: s.keys, MsgAcceptFunc: acceptUpdates}
	s.tcp = &dns.Server{Listener: ln, Handler: mux, TsigSecret: s.keys, MsgAcceptFunc: acceptUpdates}
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	// ActivateAndServe returns nil after Shutdown; anything else stopped
	// the server early.
	go func() { s.fail(wrap("udp", s.udp.ActivateAndServe())) }()
	go func() { s.fail(wrap("tcp", s.tcp.ActivateAndServe())) }()
	<-started
	<-started
	return nil
}

// listenPair opens UDP and TCP on the same port. With port 0 the kernel
// picks a free UDP port whose TCP twin may be taken by another process, so
// the pick is tried again a few times before giving up.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	for i := 0; ; i++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if i+1 >= tries {
			return nil, nil, fmt.Errorf("dns server: tcp %s: %w", pc.LocalAddr(), err)
		}
	}
}

// acceptUpdates lets RFC 2136 updates through (the library's default
// accepts queries and notifies only).
func acceptUpdates(dh dns.Header) dns.MsgAcceptAction {
	if int(dh.Bits>>11)&0xF == dns.OpcodeUpdate {
		return dns.MsgAccept
	}
	return dns.DefaultMsgAcceptFunc(dh)
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("dns server: %s: %w", what, err)
}

// Close stops the server; a failure to stop is kept for Err.
func (s *Server) Close() {
	if s.udp != nil {
		s.fail(wrap("udp shutdown", s.udp.Shutdown()))
	}
	if s.tcp != nil {
		s.fail(wrap("tcp shutdown", s.tcp.Shutdown()))
	}
}

// Set replaces the RRset of rr's name and type (a test or the demo changing
// the zone out of band).
func (s *Server) Set(zone string, rrs ...dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	zd := s.zones[dns.Fqdn(zone)]
	if zd == nil {
		return
	}
	for _, rr := range rrs {
		zd.remove(rr.Header().Name, rr.Header().Rrtype, nil)
	}
	zd.rrs = append(zd.rrs, rrs...)
	zd.bump()
}

func (zd *zoneData) bump() {
	zd.serial++
	for _, rr := range zd.rrs {
		if soa, ok := rr.(*dns.SOA); ok {
			soa.Serial = zd.serial
		}
	}
}

// remove deletes RRs of name and type (dns.TypeANY: all types); if exact is
// set, only RRs equal to it.
func (zd *zoneData) remove(name string, t uint16, exact dns.RR) {
	kept := zd.rrs[:0]
	for _, rr := range zd.rrs {
		h := rr.Header()
		match := strings.EqualFold(h.Name, name) && (t == dns.TypeANY || h.Rrtype == t) && h.Rrtype != dns.TypeSOA
		if match && exact != nil {
			e := dns.Copy(exact)
			e.Header().Class = dns.ClassINET
			e.Header().Ttl = h.Ttl
			match = dns.IsDuplicate(rr, e)
		}
		if !match {
			kept = append(kept, rr)
		}
	}
	zd.rrs = kept
}

func (s *Server) zoneOf(name string) (string, *zoneData) {
	name = strings.ToLower(name)
	for n := name; ; {
		if zd, ok := s.zones[n]; ok {
			return n, zd
		}
		i, end := dns.NextLabel(n, 0)
		if end {
			return "", nil
		}
		n = n[i:]
	}
}

func (s *Server) handle(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		s.reply(w, m)
		return
	}
	q := r.Question[0]
	s.mu.Lock()
	origin, zd := s.zoneOf(q.Name)
	if zd == nil {
		s.mu.Unlock()
		m.Rcode = dns.RcodeRefused
		s.reply(w, m)
		return
	}
	if r.Opcode == dns.OpcodeUpdate {
		m.Rcode = s.update(w, r, origin, zd)
		s.mu.Unlock()
		// Sign the answer only when the request's signature was good; an
		// unknown key or bad signature gets an unsigned refusal, as BIND does.
		if t := r.IsTsig(); t != nil && w.TsigStatus() == nil {
			m.SetTsig(t.Hdr.Name, t.Algorithm, 300, int64(t.TimeSigned))
		}
		s.reply(w, m)
		return
	}
	m.Authoritative = true
	var soa dns.RR
	found := false
	for _, rr := range zd.rrs {
		h := rr.Header()
		if h.Rrtype == dns.TypeSOA {
			soa = dns.Copy(rr)
		}
		if !strings.EqualFold(h.Name, q.Name) {
			continue
		}
		found = true
		if h.Rrtype == q.Qtype || q.Qtype == dns.TypeANY || (h.Rrtype == dns.TypeCNAME && q.Qtype != dns.TypeCNAME) {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	s.mu.Unlock()
	if len(m.Answer) == 0 {
		if !found {
			m.Rcode = dns.RcodeNameError
		}
		if soa != nil {
			m.Ns = append(m.Ns, soa)
		}
	}
	s.reply(w, m)
}

// update applies an RFC 2136 update; s.mu is held.
func (s *Server) update(w dns.ResponseWriter, r *dns.Msg, origin string, zd *zoneData) int {
	if len(s.keys) > 0 {
		if r.IsTsig() == nil || w.TsigStatus() != nil {
			return dns.RcodeRefused
		}
	}
	if !strings.EqualFold(r.Question[0].Name, origin) {
		return dns.RcodeNotAuth
	}
	for _, rr := range r.Answer { // prerequisites
		h := rr.Header()
		if h.Class == dns.ClassANY {
			exists := false
			for _, z := range zd.rrs {
				if strings.EqualFold(z.Header().Name, h.Name) && (h.Rrtype == dns.TypeANY || z.Header().Rrtype == h.Rrtype) {
					exists = true
				}
			}
			if !exists {
				return dns.RcodeNXRrset
			}
		}
	}
	for _, rr := range r.Ns {
		h := rr.Header()
		if _, z := s.zoneOf(h.Name); z != zd {
			return dns.RcodeNotZone
		}
	}
	for _, rr := range r.Ns {
		h := rr.Header()
		switch h.Class {
		case dns.ClassANY:
			zd.remove(h.Name, h.Rrtype, nil)
		case dns.ClassNONE:
			zd.remove(h.Name, h.Rrtype, rr)
		default:
			dup := false
			for _, z := range zd.rrs {
				if dns.IsDuplicate(z, rr) {
					dup = true
				}
			}
			if !dup {
				zd.rrs = append(zd.rrs, dns.Copy(rr))
			}
		}
	}
	zd.bump()
	return dns.RcodeSuccess
}
