package mailcopy

import "context"

// Session keeps one logged-in connection to each server across the
// engine's calls of one activity: a delta that first replays the owner's
// changes and then copies, a verify that first copies what arrived. Each
// call would otherwise log in to both servers again, and a login costs the
// server a process and a directory lookup (about 9 ms on the lab Dovecot,
// several times that under a plan's load). The pair is the first pair of
// each call; a call that fails closes it and the next one dials again, so
// a connection left mid-command is never reused. One call at a time; the
// zero value and nil are ready (nil: every call dials its own).
type Session struct {
	src, dst Endpoint
	s, d     *conn
}

// Close logs out of both servers.
func (ss *Session) Close() {
	if ss != nil {
		ss.drop()
	}
}

// Renew readies a kept pair for a call on ctx: each connection answers a
// NOOP and is cut hardCloseGrace after ctx ends (no longer after the call
// that opened it). A pair that does not answer is closed, and false
// returned: the session then dials again on first use.
func (ss *Session) Renew(ctx context.Context) bool {
	if ss == nil {
		return false
	}
	for _, c := range []*conn{ss.s, ss.d} {
		if c == nil {
			continue
		}
		if err := c.Noop().Wait(); err != nil {
			ss.drop()
			return false
		}
	}
	for _, c := range []*conn{ss.s, ss.d} {
		if c != nil {
			c.bind(ctx)
		}
	}
	return true
}

// drop closes the pair after a failure.
func (ss *Session) drop() {
	if ss == nil {
		return
	}
	for _, c := range []*conn{ss.s, ss.d} {
		if c != nil {
			c.shut()
		}
	}
	ss.s, ss.d = nil, nil
}

// pair returns a logged-in source and destination connection: the
// session's, dialled on first use (both servers at once), or a fresh pair
// that the caller closes when the session is nil or serves other
// accounts.
func (ss *Session) pair(ctx context.Context, src, dst Endpoint) (*conn, *conn, error) {
	if ss == nil || (ss.s != nil && (!sameAccount(ss.src, src) || !sameAccount(ss.dst, dst))) {
		return dialBoth(ctx, src, dst)
	}
	if ss.s != nil && ss.d != nil {
		return ss.s, ss.d, nil
	}
	ss.drop()
	s, d, err := dialBoth(ctx, src, dst)
	if err != nil {
		return nil, nil, err
	}
	s.kept, d.kept = true, true
	ss.src, ss.dst, ss.s, ss.d = src, dst, s, d
	return s, d, nil
}

// failed closes the session's pair when a call ends with err: whatever
// state the connections are in, the next call starts clean.
func (ss *Session) failed(err error) {
	if err != nil {
		ss.drop()
	}
}

// done ends a call that used s and d from pair: they close unless the
// session keeps them, and the session's close too when the call failed.
func (ss *Session) done(s, d *conn, err error) {
	ss.failed(err)
	s.close()
	d.close()
}

// meanwhile runs f on its own goroutine and returns what waits for it: the
// destination's half of a step while the source does its own.
func meanwhile(f func()) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	return func() { <-done }
}

func sameAccount(a, b Endpoint) bool {
	return a.Addr == b.Addr && a.User == b.User && a.MasterUser == b.MasterUser && a.Security == b.Security
}

// dialBoth logs in to the source and the destination at the same time:
// two servers, half the wait. A source error is the one returned when
// both fail, as when they were dialled one after the other.
func dialBoth(ctx context.Context, src, dst Endpoint) (*conn, *conn, error) {
	var d *conn
	var derr error
	wait := meanwhile(func() { d, derr = dial(ctx, dst) })
	s, serr := dial(ctx, src)
	wait()
	if serr != nil || derr != nil {
		if s != nil {
			s.close()
		}
		if d != nil {
			d.close()
		}
		if serr != nil {
			return nil, nil, serr
		}
		return nil, nil, derr
	}
	return s, d, nil
}
