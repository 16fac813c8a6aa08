package reliability

import (
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// faultProxy sits between mailshift's workers and an IMAP server and
// misbehaves like a bad network or load balancer: it refuses some new
// connections outright, cuts others after a random number of bytes from
// the server (mid-FETCH, mid-APPEND), and stalls reads for a few seconds.
// Each connection's fate is drawn from a seeded generator, so a run can be
// repeated.
type faultProxy struct {
	ln     net.Listener
	target string
	// Refuse, Cut and Stall are the chances (0-1) that a new connection is
	// closed at once, cut after up to CutBytes, or stalled for up to
	// StallFor at a random point.
	Refuse, Cut, Stall float64
	CutBytes           int64
	StallFor           time.Duration

	mu  sync.Mutex
	rng *rand.Rand

	conns, refused, cuts, stalls atomic.Int64
	wg                           sync.WaitGroup

	// open and peak count the connections the proxy holds open to the
	// server: what the server sees from the workers, counted at every
	// connect and close, not sampled.
	open, peak atomic.Int64
	// unavailable, while set, answers every new connection itself, as a
	// server whose authentication is overloaded: LOGIN gets NO
	// [UNAVAILABLE]; the server never sees the connection.
	unavailable atomic.Bool
	busy        atomic.Int64 // connections answered NO [UNAVAILABLE]
}

func newFaultProxy(addr, target string, seed uint64) (*faultProxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &faultProxy{ln: ln, target: target, rng: rand.New(rand.NewPCG(seed, 3)),
		Refuse: 0.05, Cut: 0.25, Stall: 0.2, CutBytes: 256 << 10, StallFor: 6 * time.Second}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// fate is what happens to one connection.
type fate struct {
	refuse  bool
	cutAt   int64 // bytes from the server before the cut; 0: never
	stallAt int64 // bytes from the server before the stall; 0: never
	stall   time.Duration
}

func (p *faultProxy) draw() fate {
	p.mu.Lock()
	defer p.mu.Unlock()
	var f fate
	if p.rng.Float64() < p.Refuse {
		f.refuse = true
		return f
	}
	if p.rng.Float64() < p.Cut {
		f.cutAt = 1 + p.rng.Int64N(p.CutBytes)
	}
	if p.rng.Float64() < p.Stall {
		f.stallAt = 1 + p.rng.Int64N(p.CutBytes)
		f.stall = time.Duration(p.rng.Int64N(int64(p.StallFor))) + 500*time.Millisecond
	}
	return f
}

func (p *faultProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		if p.unavailable.Load() {
			p.busy.Add(1)
			go answerUnavailable(c)
			continue
		}
		f := p.draw()
		if f.refuse {
			p.refused.Add(1)
			c.Close()
			continue
		}
		go p.pipe(c, f)
	}
}

func (p *faultProxy) pipe(c net.Conn, f fate) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	n := p.open.Add(1)
	defer p.open.Add(-1)
	for {
		pk := p.peak.Load()
		if n <= pk || p.peak.CompareAndSwap(pk, n) {
			break
		}
	}
	go func() {
		_, _ = io.Copy(s, c)
		s.Close()
	}()
	var sent int64
	buf := make([]byte, 16<<10)
	for {
		n, err := s.Read(buf)
		chunk := buf[:n]
		if f.stallAt > 0 && sent+int64(n) >= f.stallAt {
			p.stalls.Add(1)
			f.stallAt = 0
			time.Sleep(f.stall)
		}
		if f.cutAt > 0 && sent+int64(n) >= f.cutAt {
			_, _ = c.Write(chunk[:f.cutAt-sent])
			p.cuts.Add(1)
			return
		}
		if _, werr := c.Write(chunk); werr != nil {
			return
		}
		sent += int64(n)
		if err != nil {
			return
		}
	}
}

// Addr is where clients connect.
func (p *faultProxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting; open connections end with their peers.
func (p *faultProxy) Close() {
	p.ln.Close()
	p.wg.Wait()
}
