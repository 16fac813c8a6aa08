package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// A mail server is shared: the MX Plan servers serve every other customer
// while a plan runs. Each IMAP service therefore has a connection budget,
// kept by one long-lived workflow per service (ID budget:<service>) that
// grants leases in the order they were asked for. Leases are held by
// migration workflows, not by worker processes, so a worker killed in the
// middle of a copy gives nothing back and leaks nothing: the retried
// activity runs under the same lease. A holder that closes without
// releasing (terminated by hand) is found by a periodic sweep.
//
// Admission is first come, first served: a plan starts its accounts in
// plan order, so they copy in plan order, which is what an operator who
// ordered the plan expects and what "n ahead" in status can explain.

// Names of the budget workflow and its signals and query.
const (
	BudgetWorkflowName = "ServerBudget"
	SignalAcquire      = "acquire"
	SignalRelease      = "release"
	SignalThrottle     = "throttle"
	SignalGranted      = "granted"
	QueryBudget        = "budget"
	// SignalQueued tells a waiting holder its place in the queue
	// (LeaseQueued); SignalPause and SignalResume stop and restart the
	// admission of a plan's accounts (PlanAdmission).
	SignalQueued = "queued"
	SignalPause  = "pause"
	SignalResume = "resume"

	budgetIDPrefix = "budget:"
	// budgetSweep is how often the budget looks for holders that closed
	// without releasing.
	budgetSweep = 5 * time.Minute
	// budgetRecover: after a throttle, the share grows back by one
	// connection per this long without another (additive increase).
	budgetRecover = time.Minute
)

// BudgetWorkflowID is the ID of service's budget workflow.
func BudgetWorkflowID(service string) string { return budgetIDPrefix + service }

// LeaseRequest asks a service's budget for connections (the activity that
// delivers it declares the type).
type LeaseRequest = activities.Lease

// LeaseGrant answers a request. Forwarded says the budget handed the
// request's Then on to the next budget.
type LeaseGrant struct {
	Lease     string `json:"lease"`
	Service   string `json:"service"`
	Forwarded bool   `json:"forwarded,omitempty"`
}

// BudgetState is the budget workflow's state, carried across
// continue-as-new; the budget query returns it.
type BudgetState struct {
	Service string `json:"service"`
	Limit   int    `json:"limit"`
	// Share is the connections granted at most now: the limit, or less
	// for a while after the server said it was overloaded.
	Share     float64        `json:"share"`
	Throttled time.Time      `json:"throttled,omitempty"`
	Held      []LeaseRequest `json:"held,omitempty"`
	Queue     []LeaseRequest `json:"queue,omitempty"`
	// Peak is the most connections held at once; Granted counts leases.
	Peak    int `json:"peak"`
	Granted int `json:"granted"`
	// Throttles counts the halvings of the share (one a minute at most),
	// Overloads every overload answer reported.
	Throttles int `json:"throttles,omitempty"`
	Overloads int `json:"overloads,omitempty"`
	// Paused are the plans whose accounts are not admitted to the copy
	// now (starter pause --plan); their queued requests keep their place
	// and hold nothing. Told is the place last told to each waiting
	// lease (-1: told it is paused).
	Paused []string       `json:"paused,omitempty"`
	Told   map[string]int `json:"told,omitempty"`
}

// PlanAdmission names the plan a pause or resume signal is about.
type PlanAdmission struct {
	Plan string `json:"plan"`
}

// LeaseQueued tells a holder where its request waits: Ahead requests
// will be granted before it; Paused when its plan is paused.
type LeaseQueued struct {
	Lease   string `json:"lease"`
	Service string `json:"service"`
	Ahead   int    `json:"ahead"`
	Paused  bool   `json:"paused,omitempty"`
	Plan    string `json:"plan,omitempty"`
}

// IsPaused tells whether plan's admission is paused.
func (b *BudgetState) IsPaused(plan string) bool {
	return plan != "" && slices.Contains(b.Paused, plan)
}

// held tells whether r waits because its plan is paused.
func (b *BudgetState) held(r LeaseRequest) bool {
	return r.Admission && b.IsPaused(r.Plan)
}

// Ahead is how many requests will be granted before holder's (-1: not
// queued) and whether holder's request waits for its plan's resume. The
// requests of paused plans are not counted ahead of others: they let
// the others pass.
func (b *BudgetState) Ahead(holder string) (ahead int, paused bool) {
	for _, q := range b.Queue {
		if q.Holder == holder {
			return ahead, b.held(q)
		}
		if !b.held(q) {
			ahead++
		}
	}
	return -1, false
}

func (b *BudgetState) used() int {
	n := 0
	for _, l := range b.Held {
		n += l.Connections
	}
	return n
}

// Position is how many requests are ahead of holder's in the queue (-1:
// not queued).
func (b *BudgetState) Position(holder string) int {
	for i, q := range b.Queue {
		if q.Holder == holder {
			return i
		}
	}
	return -1
}

// ServerBudget keeps one service's connection budget.
func ServerBudget(ctx workflow.Context, st BudgetState) error {
	b := &budget{st: st, log: workflow.GetLogger(ctx)}
	if b.st.Service == "" {
		b.st.Service = workflow.GetInfo(ctx).WorkflowExecution.ID[len(budgetIDPrefix):]
	}
	if err := workflow.SetQueryHandler(ctx, QueryBudget, func() (BudgetState, error) { return b.st, nil }); err != nil {
		return err
	}
	b.acquire = workflow.GetSignalChannel(ctx, SignalAcquire)
	b.release = workflow.GetSignalChannel(ctx, SignalRelease)
	b.throttle = workflow.GetSignalChannel(ctx, SignalThrottle)
	b.pause = workflow.GetSignalChannel(ctx, SignalPause)
	b.resume = workflow.GetSignalChannel(ctx, SignalResume)
	// Versioned: a budget started before queue notices replays without
	// sending them, and sends them from its next run on.
	b.notices = workflow.GetVersion(ctx, "budget-queue-notices", workflow.DefaultVersion, 1) == 1
	// Versioned: grants sent together in one workflow task, waiters told
	// only when their place halves (version 2: or doubles; and a granted
	// request's Then handed on to the next budget; version 3: nothing
	// waits for a signal's delivery, and places are told less often;
	// version 4: a place closer than one turn of the share is not told).
	v := workflow.GetVersion(ctx, "budget-batch-grants", workflow.DefaultVersion, 4)
	b.batch, b.calm, b.async, b.quiet = v >= 1, v >= 2, v >= 3, v >= 4
	sweepAt := workflow.Now(ctx).Add(budgetSweep)
	for {
		b.grant(ctx)
		now := workflow.Now(ctx)
		wait := sweepAt.Sub(now)
		if b.st.Share < float64(b.st.Limit) {
			wait = min(wait, budgetRecover)
		}
		tctx, cancel := workflow.WithCancel(ctx)
		s := workflow.NewSelector(ctx)
		s.AddReceive(b.acquire, func(c workflow.ReceiveChannel, _ bool) {
			var r LeaseRequest
			c.Receive(ctx, &r)
			b.onAcquire(r)
		})
		s.AddReceive(b.release, func(c workflow.ReceiveChannel, _ bool) {
			var lease string
			c.Receive(ctx, &lease)
			b.onRelease(lease)
		})
		s.AddReceive(b.throttle, func(c workflow.ReceiveChannel, _ bool) {
			var why string
			c.Receive(ctx, &why)
			b.onThrottle(ctx, why)
		})
		s.AddReceive(b.pause, func(c workflow.ReceiveChannel, _ bool) {
			var p PlanAdmission
			c.Receive(ctx, &p)
			b.onPause(p.Plan, true)
		})
		s.AddReceive(b.resume, func(c workflow.ReceiveChannel, _ bool) {
			var p PlanAdmission
			c.Receive(ctx, &p)
			b.onPause(p.Plan, false)
		})
		for _, p := range b.pending {
			s.AddFuture(p.f, func(f workflow.Future) { b.settle(ctx, p, f) })
		}
		s.AddFuture(workflow.NewTimerWithOptions(tctx, max(wait, time.Second),
			workflow.TimerOptions{Summary: "budget: grow the share back, look for closed holders"}), func(workflow.Future) {})
		s.Select(ctx)
		cancel()
		now = workflow.Now(ctx)
		if b.st.Share < float64(b.st.Limit) && now.Sub(b.st.Throttled) >= budgetRecover {
			b.st.Share = min(float64(b.st.Limit), b.st.Share+1) // additive increase
		}
		if !now.Before(sweepAt) {
			sweepAt = now.Add(budgetSweep)
			b.sweep(ctx)
		}
		b.drain(ctx)
		if b.idle() {
			// Nothing held or asked for: the workflow ends; the next request
			// starts it again (signal-with-start). Signals sent and not yet
			// delivered are waited for first, and what arrived meanwhile is
			// taken in: a signal left in a channel would be lost.
			if len(b.pending) == 0 {
				return nil
			}
			b.settleAll(ctx)
			b.drain(ctx)
			if b.idle() && len(b.pending) == 0 {
				return nil
			}
			continue
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			for {
				b.grant(ctx)
				b.drain(ctx)
				if len(b.pending) == 0 {
					break
				}
				b.settleAll(ctx)
			}
			return workflow.NewContinueAsNewError(ctx, BudgetWorkflowName, b.st)
		}
	}
}

type budget struct {
	st                                        BudgetState
	log                                       interface{ Warn(string, ...interface{}) }
	acquire, release, throttle, pause, resume workflow.ReceiveChannel
	notices, batch, calm, async, quiet        bool
	// pending are the signals sent and not yet delivered (async): the
	// budget goes on granting and releasing meanwhile.
	pending []sentSignal
}

// drain handles every signal already delivered, so none is lost when the
// run ends or continues as new.
func (b *budget) drain(ctx workflow.Context) {
	for {
		var r LeaseRequest
		var lease, why string
		var p PlanAdmission
		switch {
		case b.acquire.ReceiveAsync(&r):
			b.onAcquire(r)
		case b.release.ReceiveAsync(&lease):
			b.onRelease(lease)
		case b.throttle.ReceiveAsync(&why):
			b.onThrottle(ctx, why)
		case b.pause.ReceiveAsync(&p):
			b.onPause(p.Plan, true)
		case b.resume.ReceiveAsync(&p):
			b.onPause(p.Plan, false)
		default:
			return
		}
	}
}

func (b *budget) onAcquire(r LeaseRequest) {
	if r.Limit > 0 && r.Limit != b.st.Limit {
		if b.st.Share == float64(b.st.Limit) || b.st.Share > float64(r.Limit) {
			b.st.Share = float64(r.Limit)
		}
		b.st.Limit = r.Limit
	}
	for _, l := range append(append([]LeaseRequest{}, b.st.Held...), b.st.Queue...) {
		if l.Lease == r.Lease {
			return // asked again by a retried activity: once is enough
		}
	}
	if b.batch {
		b.st.Queue = enqueueInFlight(b.st.Queue, r)
		return
	}
	b.st.Queue = enqueue(b.st.Queue, r)
}

// enqueueInFlight places r like enqueue, and a request that does not
// admit an account (a pass of an account already admitted: verify, a
// delta, a rollback) ahead of every admitting one: a plan finishes the
// accounts it started before it starts more, so fewer owners wait half
// moved and the plan's end is not a tail of verifies queued behind
// admissions. Budgets with batch grants.
func enqueueInFlight(q []LeaseRequest, r LeaseRequest) []LeaseRequest {
	if r.Urgent {
		return enqueue(q, r)
	}
	if r.Admission {
		return append(q, r)
	}
	i := 0
	for i < len(q) && !q[i].Admission {
		i++
	}
	return slices.Insert(q, i, r)
}

// enqueue places r at the end of the queue, or, when it is urgent, after
// the urgent requests already queued and before every other one: a
// locked-out owner's final delta does not wait behind the plan's
// pre-copy passes. Requests without the mark (every request of a budget
// recorded before it existed) keep plan order.
func enqueue(q []LeaseRequest, r LeaseRequest) []LeaseRequest {
	if !r.Urgent {
		return append(q, r)
	}
	i := 0
	for i < len(q) && q[i].Urgent {
		i++
	}
	return slices.Insert(q, i, r)
}

func (b *budget) onRelease(lease string) {
	b.st.Held = keep(b.st.Held, func(l LeaseRequest) bool { return l.Lease != lease })
	b.st.Queue = keep(b.st.Queue, func(l LeaseRequest) bool { return l.Lease != lease })
	delete(b.st.Told, lease)
}

// onPause pauses or resumes plan's admission. Idempotent: pausing twice
// is one pause.
func (b *budget) onPause(plan string, paused bool) {
	if plan == "" {
		return
	}
	b.st.Paused = slices.DeleteFunc(b.st.Paused, func(p string) bool { return p == plan })
	if paused {
		b.st.Paused = append(b.st.Paused, plan)
	}
}

// onThrottle halves the share (multiplicative decrease), at most once a
// minute: one overloaded moment seen by several copies counts once.
func (b *budget) onThrottle(ctx workflow.Context, why string) {
	now := workflow.Now(ctx)
	b.st.Overloads++
	if now.Sub(b.st.Throttled) >= budgetRecover {
		b.st.Throttles++
		b.st.Share = max(1, b.st.Share/2)
		b.log.Warn("server overloaded: share halved", "service", b.st.Service, "share", b.st.Share, "why", why)
	}
	b.st.Throttled = now
}

// grant admits queued requests in order while they fit in the share; a
// request larger than the whole share runs alone rather than never. The
// requests of a paused plan keep their place and let the others pass.
// Then each waiter whose place changed enough is told.
func (b *budget) grant(ctx workflow.Context) {
	defer b.tell(ctx)
	// With batch, every grant of this round is sent before any answer is
	// awaited: one workflow task for all of them, not one each.
	var sent []granted
	defer func() {
		if b.async {
			for _, g := range sent {
				b.pending = append(b.pending, sentSignal{r: g.r, f: g.f, grant: true})
			}
			return
		}
		for _, g := range sent {
			if err := g.f.Get(ctx, nil); err != nil {
				// The holder is gone (closed): its lease lapses.
				b.log.Warn("lease holder gone", "holder", g.r.Holder, "error", err)
				b.st.Held = keep(b.st.Held, func(l LeaseRequest) bool { return l.Lease != g.r.Lease })
			}
		}
	}()
	// With calm, a granted request's Then is handed on first (a local
	// activity each, all at once), and its grant says whether it was.
	type handOff struct {
		r LeaseRequest
		f workflow.Future
	}
	var handOffs []handOff
	defer func() {
		for _, h := range handOffs {
			forwarded := true
			if err := h.f.Get(ctx, nil); err != nil {
				// The holder asks for it itself when it hears of the grant.
				b.log.Warn("hand a request on to the next budget", "holder", h.r.Holder, "error", err)
				forwarded = false
			}
			sent = append(sent, granted{h.r, workflow.SignalExternalWorkflow(ctx, h.r.Holder, "", SignalGranted,
				LeaseGrant{Lease: h.r.Lease, Service: b.st.Service, Forwarded: forwarded})})
		}
	}()
	for i := 0; i < len(b.st.Queue); {
		r := b.st.Queue[i]
		if b.st.held(r) {
			i++
			continue
		}
		used := b.st.used()
		if used > 0 && used+r.Connections > int(b.st.Share) {
			return
		}
		b.st.Queue = slices.Delete(b.st.Queue, i, i+1)
		delete(b.st.Told, r.Lease)
		if b.batch {
			then := r.Then
			r.Then = nil // held leases keep no request to hand on
			b.st.Held = append(b.st.Held, r)
			b.st.Granted++
			b.st.Peak = max(b.st.Peak, b.st.used())
			if then != nil && b.calm {
				// One try, briefly: a budget never waits on another.
				hctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
					Summary:             "budget: hand " + r.Holder + "'s next request on to " + then.WorkflowID,
					StartToCloseTimeout: 10 * time.Second, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
				handOffs = append(handOffs, handOff{r, workflow.ExecuteLocalActivity(hctx, a.RequestLease, *then)})
				continue
			}
			sent = append(sent, granted{r, workflow.SignalExternalWorkflow(ctx, r.Holder, "", SignalGranted, LeaseGrant{Lease: r.Lease, Service: b.st.Service})})
			continue
		}
		err := workflow.SignalExternalWorkflow(ctx, r.Holder, "", SignalGranted, LeaseGrant{Lease: r.Lease, Service: b.st.Service}).Get(ctx, nil)
		if err != nil {
			// The holder is gone (closed): its request lapses.
			b.log.Warn("lease holder gone", "holder", r.Holder, "error", err)
			continue
		}
		b.st.Held = append(b.st.Held, r)
		b.st.Granted++
		b.st.Peak = max(b.st.Peak, b.st.used())
	}
}

// granted is a grant sent and its answer to come.
type granted struct {
	r LeaseRequest
	f workflow.Future
}

// tell sends each waiting holder its place when it first waits, when its
// plan is paused or resumed, and each time its place halves (budgets
// before batch: at every place under five too): a holder of a queue of n
// hears about log2(n) times, not n, and its status says "queued for
// <service> (n ahead)".
func (b *budget) tell(ctx workflow.Context) {
	if !b.notices || len(b.st.Queue) == 0 {
		return
	}
	// Keep only the waiters' places (a holder the sweep found closed
	// leaves none behind).
	told := make(map[string]int, len(b.st.Queue))
	for _, q := range b.st.Queue {
		if v, ok := b.st.Told[q.Lease]; ok {
			told[q.Lease] = v
		}
	}
	b.st.Told = told
	halvesFrom := 5
	if b.batch {
		halvesFrom = 0
	}
	var sent []workflow.Future
	ahead := 0
	for _, q := range b.st.Queue {
		place, paused := ahead, b.st.held(q)
		if paused {
			place = -1
		} else {
			ahead++
		}
		told, ok := b.st.Told[q.Lease]
		if ok && told == place {
			continue
		}
		// Told again once the place has halved (budgets before batch: and
		// at every place under five); calm budgets also wait until a place
		// that grows (accounts in flight queue ahead of admissions) has
		// doubled: a place told is within a factor of two of the true one.
		if ok && told >= 0 && place >= halvesFrom && place > told/2 && place < told {
			continue
		}
		if b.calm && !b.async && ok && told >= 0 && place > told && place < 2*told+1 {
			continue
		}
		// Quieter (async budgets): told again once the place has fallen
		// to a quarter, or grown past twice and four more (a few verifies
		// of accounts in flight queued ahead of it do not make a notice).
		if b.async && ok && told >= 0 && place >= 0 && place > told/4 && place <= 2*told+4 {
			continue
		}
		// Quiet budgets: a waiter with fewer ahead than the share holds
		// is granted within one turn (a second or so in a busy plan). One
		// that was never told hears nothing (its own "queued for
		// <service>" says enough meanwhile); one told a larger place hears
		// the first place under the share, then nothing more; one told it
		// was paused hears that it no longer is.
		if share := int(b.st.Share); b.quiet && place >= 0 && place < share && (!ok || (told >= 0 && told < share)) {
			continue
		}
		b.st.Told[q.Lease] = place
		f := workflow.SignalExternalWorkflow(ctx, q.Holder, "", SignalQueued,
			LeaseQueued{Lease: q.Lease, Service: b.st.Service, Ahead: max(place, 0), Paused: paused, Plan: q.Plan})
		if b.async {
			b.pending = append(b.pending, sentSignal{r: q, f: f})
			continue
		}
		sent = append(sent, f)
	}
	for _, f := range sent {
		if err := f.Get(ctx, nil); err != nil {
			// A holder that closed: the sweep takes its request out.
			b.log.Warn("tell a waiting holder its place", "error", err)
		}
	}
}

// idle says whether nothing is held or asked for and the share is whole.
func (b *budget) idle() bool {
	return len(b.st.Held)+len(b.st.Queue)+len(b.st.Paused) == 0 && b.st.Share >= float64(b.st.Limit)
}

// sentSignal is a grant or a place sent to a holder, to be delivered.
type sentSignal struct {
	r     LeaseRequest
	f     workflow.Future
	grant bool
}

// settle handles a sent signal's delivery: a grant that could not be
// delivered (the holder closed) lapses; a place that could not is
// dropped (the sweep takes a closed holder's request out).
func (b *budget) settle(ctx workflow.Context, p sentSignal, f workflow.Future) {
	b.pending = keep(b.pending, func(q sentSignal) bool { return q.f != p.f })
	if err := f.Get(ctx, nil); err != nil {
		if p.grant {
			b.log.Warn("lease holder gone", "holder", p.r.Holder, "error", err)
			b.st.Held = keep(b.st.Held, func(l LeaseRequest) bool { return l.Lease != p.r.Lease })
			return
		}
		b.log.Warn("tell a waiting holder its place", "error", err)
	}
}

// settleAll waits for every sent signal's delivery (before the run ends
// or continues as new).
func (b *budget) settleAll(ctx workflow.Context) {
	for len(b.pending) > 0 {
		p := b.pending[0]
		b.settle(ctx, p, p.f)
	}
}

// sweep releases the leases of holders that closed without releasing.
func (b *budget) sweep(ctx workflow.Context) {
	seen := map[string]bool{}
	var ids []string
	for _, l := range append(append([]LeaseRequest{}, b.st.Held...), b.st.Queue...) {
		if !seen[l.Holder] {
			seen[l.Holder] = true
			ids = append(ids, l.Holder)
		}
	}
	if len(ids) == 0 {
		return
	}
	var closed []string
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, Summary: "budget: look for closed holders",
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3}})
	if err := workflow.ExecuteActivity(actx, a.ClosedWorkflows, ids).Get(ctx, &closed); err != nil {
		b.log.Warn("sweep failed; the next one retries", "error", err)
		return
	}
	gone := map[string]bool{}
	for _, c := range closed {
		gone[c] = true
	}
	b.st.Held = keep(b.st.Held, func(l LeaseRequest) bool { return !gone[l.Holder] })
	b.st.Queue = keep(b.st.Queue, func(l LeaseRequest) bool { return !gone[l.Holder] })
}

func keep[T any](ls []T, ok func(T) bool) []T {
	out := ls[:0:0]
	for _, l := range ls {
		if ok(l) {
			out = append(out, l)
		}
	}
	return out
}

// share is one service's part of a lease a migration needs.
type share struct {
	service     string
	connections int
	limit       int
}

// withBudget runs f holding leases on every service it names, asked for
// in order (sources before destinations, so two migrations never wait on
// each other), released when f returns. Versioned: migrations started
// before budgets run without them; migrations with State.Quick keep their
// leases from one stage to the next (withKeptLeases).
func (m *migration) withBudget(ctx workflow.Context, shares []share, f func(workflow.Context) error) error {
	if m.st.Budget == 0 {
		return f(ctx)
	}
	if m.st.Quick == 1 {
		return m.withKeptLeases(ctx, shares, f)
	}
	var held []LeaseGrant // granted, and a request still queued
	defer func() {
		// Released even when f failed or the stage was cancelled.
		rctx, _ := workflow.NewDisconnectedContext(ctx)
		for _, g := range held {
			if err := workflow.SignalExternalWorkflow(rctx, BudgetWorkflowID(g.Service), "", SignalRelease, g.Lease).Get(rctx, nil); err != nil {
				m.log.Warn("release lease", "service", g.Service, "error", err)
			}
		}
		m.st.WaitingFor = ""
	}()
	for _, sh := range shares {
		if sh.service == "" || sh.limit <= 0 {
			continue
		}
		if err := m.askLease(ctx, []share{sh}, len(held) == 0, func(sh share, l string) { held = append(held, LeaseGrant{Lease: l, Service: sh.service}) }); err != nil {
			return err
		}
	}
	return f(ctx)
}

// heldLease is a lease a migration holds (State.Leases).
type heldLease struct {
	Service     string `json:"service"`
	Lease       string `json:"lease"`
	Connections int    `json:"connections"`
}

// keepsLeases tells whether a stage goes on holding the leases its last
// pass took: the stages that follow one another without waiting, from
// preflight to the copy and from the copy to the delta-sync, and verify
// to done. A stage that waits (a slot, a confirmation, the window, DNS,
// an operator) holds no copy budget.
func keepsLeases(s Stage) bool {
	switch s {
	case StagePreflight, StageAssignSlot, StageCopy, StageLockSource, StageFinalDelta, StageSwitchRouting, StageDeltaSync, StageVerify, StageDone:
		return true
	}
	return false
}

// withKeptLeases runs f under leases on every service it names, reusing
// those the migration already holds when they are large enough. A share
// that needs a new lease gives back first what is held on its service and
// on every service after it in the order (sources before destinations),
// so no migration waits while holding a later lease than the one it asks
// for. After f the leases are kept while the stage keeps them
// (keepsLeases), and given back when f failed: a parked migration holds
// nothing.
func (m *migration) withKeptLeases(ctx workflow.Context, shares []share, f func(workflow.Context) error) error {
	if m.st.Fused == 1 {
		// What f does not use goes back first: verify's source lease is
		// not held while the owner's notice is written.
		var unused []string
		for _, l := range m.st.Leases {
			if !slices.ContainsFunc(shares, func(sh share) bool { return sh.service == l.Service && sh.limit > 0 }) {
				unused = append(unused, l.Service)
			}
		}
		if len(unused) > 0 {
			m.releaseLeases(ctx, unused)
		}
	}
	for i, sh := range shares {
		if sh.service == "" || sh.limit <= 0 {
			continue
		}
		if l := m.leaseOn(sh.service); l != nil && l.Connections >= sh.connections {
			continue
		}
		var later []string
		for _, x := range shares[i:] {
			later = append(later, x.service)
		}
		m.releaseLeases(ctx, later)
		// The next share needs a new lease too (its old one, if any, just
		// went back): with State.Fused this budget hands that request on
		// to the next when it grants, so the destination's grant does not
		// wait for a workflow task of this migration in between, the
		// source's connection idle meanwhile.
		ask := []share{sh}
		if m.st.Fused == 1 && i+1 < len(shares) && shares[i+1].service != "" && shares[i+1].limit > 0 {
			ask = append(ask, shares[i+1])
		}
		if err := m.askLease(ctx, ask, len(m.st.Leases) == 0, func(sh share, l string) {
			m.st.Leases = append(m.st.Leases, heldLease{Service: sh.service, Lease: l, Connections: sh.connections})
		}); err != nil {
			m.releaseLeases(ctx, nil)
			m.st.WaitingFor = ""
			return err
		}
	}
	err := f(ctx)
	if err != nil || !keepsLeases(m.st.Stage) {
		m.releaseLeases(ctx, nil)
	}
	return err
}

// leaseOn is the lease held on service (nil: none).
func (m *migration) leaseOn(service string) *heldLease {
	for i := range m.st.Leases {
		if m.st.Leases[i].Service == service {
			return &m.st.Leases[i]
		}
	}
	return nil
}

// releaseLeases gives back the leases held on services (nil: all), in
// one local activity, even when ctx is cancelled.
func (m *migration) releaseLeases(ctx workflow.Context, services []string) {
	if len(m.st.Leases) == 0 {
		return
	}
	var give []activities.LeaseRelease
	m.st.Leases = slices.DeleteFunc(m.st.Leases, func(l heldLease) bool {
		if services != nil && !slices.Contains(services, l.Service) {
			return false
		}
		give = append(give, activities.LeaseRelease{WorkflowID: BudgetWorkflowID(l.Service), Signal: SignalRelease, Lease: l.Lease})
		return true
	})
	if len(give) == 0 {
		return
	}
	rctx, _ := workflow.NewDisconnectedContext(ctx)
	if err := workflow.ExecuteLocalActivity(quick(rctx, "budget: give leases back"), a.ReleaseLeases, give).Get(rctx, nil); err != nil {
		// The budget's sweep takes them back once this migration closes.
		m.log.Warn("release leases", "error", err)
	}
}

// askLease asks shs[0]'s budget for a lease and waits for the grant; with
// a second share, that budget hands the second request on to its budget
// when it grants the first (LeaseRequest.Then), and askLease waits for
// both grants (a budget from before hand-offs says it did not, and the
// second request is then sent from here). Each request is handed to asked
// before the wait, so a stop (rollback, cancel) withdraws it. admits: the
// first request may admit the account to the copy (the first lease of a
// pass); a handed-on one never does (a pass granted its source share is
// admitted, and its destination request is never held by a pause: it
// would hold the source share meanwhile).
func (m *migration) askLease(ctx workflow.Context, shs []share, admits bool, asked func(sh share, lease string)) error {
	reqs := make([]LeaseRequest, len(shs))
	for i, sh := range shs {
		m.st.LeaseSeq++
		reqs[i] = LeaseRequest{Holder: m.wid, Lease: fmt.Sprintf("%s#%d", m.wid, m.st.LeaseSeq), Connections: sh.connections, Limit: sh.limit,
			Plan: m.in.Plan, Admission: i == 0 && admits && m.admission(), Urgent: m.lockedOut()}
	}
	input := func(i int) activities.LeaseInput {
		return activities.LeaseInput{WorkflowID: BudgetWorkflowID(shs[i].service), Workflow: BudgetWorkflowName, Signal: SignalAcquire, Request: reqs[i]}
	}
	first := reqs[0]
	if len(shs) > 1 {
		then := input(1)
		first.Then = &then
	}
	if err := m.call(ctx, "budget: ask "+shs[0].service+" for "+fmt.Sprint(shs[0].connections)+" connections",
		a.RequestLease, activities.LeaseInput{WorkflowID: BudgetWorkflowID(shs[0].service), Workflow: BudgetWorkflowName,
			Signal: SignalAcquire, Request: first}).Get(ctx, nil); err != nil {
		return err
	}
	for i, sh := range shs {
		asked(sh, reqs[i].Lease)
	}
	m.st.WaitingFor = "queued for " + shs[0].service
	m.details(ctx)
	ch := workflow.GetSignalChannel(ctx, SignalGranted)
	queued := workflow.GetSignalChannel(ctx, SignalQueued)
	got := make([]bool, len(shs))
	for slices.Contains(got, false) {
		var g LeaseGrant
		var q LeaseQueued
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &g) })
		sel.AddReceive(queued, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &q) })
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		sel.Select(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if q.Lease != "" {
			if slices.ContainsFunc(reqs, func(r LeaseRequest) bool { return r.Lease == q.Lease }) {
				m.st.WaitingFor = queuedFor(q)
				m.details(ctx)
			}
			continue
		}
		i := slices.IndexFunc(reqs, func(r LeaseRequest) bool { return r.Lease == g.Lease })
		if i < 0 {
			// A grant for a lease this run no longer waits for (asked
			// before a retry): give it back at once.
			if err := workflow.SignalExternalWorkflow(ctx, BudgetWorkflowID(g.Service), "", SignalRelease, g.Lease).Get(ctx, nil); err != nil {
				m.log.Warn("release stale lease", "error", err)
			}
			continue
		}
		got[i] = true
		if i == 0 && len(shs) > 1 && !got[1] {
			if !g.Forwarded {
				// The budget did not hand the next request on: ask for it.
				if err := m.call(ctx, "budget: ask "+shs[1].service+" for "+fmt.Sprint(shs[1].connections)+" connections",
					a.RequestLease, input(1)).Get(ctx, nil); err != nil {
					return err
				}
			}
			m.st.WaitingFor = "queued for " + shs[1].service
			m.details(ctx)
		}
	}
	m.st.WaitingFor = ""
	return nil
}

// admission tells whether a lease asked for now admits the account to
// the copy (preflight and the pre-copy passes, while the owner still
// works): a paused plan holds those back. Once the source is locked,
// nothing waits for a resume: the owner's lockout must not grow.
func (m *migration) admission() bool {
	if m.rollback || m.cancelled {
		return false // undoing, not admitting
	}
	switch m.st.Stage {
	case StagePreflight:
		return true
	case StageCopy:
		return m.before(StageLockSource)
	}
	return false
}

// lockedOut tells whether the owner cannot reach the mailbox now: the
// source is locked and mail is not yet routed to the destination. Leases
// asked for then are urgent.
func (m *migration) lockedOut() bool {
	return !m.st.LockedAt.IsZero() && m.st.RoutedAt.IsZero()
}

// queuedFor is what a waiting migration says of its place in a queue.
func queuedFor(q LeaseQueued) string {
	s := fmt.Sprintf("queued for %s (%d ahead)", q.Service, q.Ahead)
	if q.Paused {
		s = fmt.Sprintf("queued for %s, paused: plan %s is paused (starter resume --plan %s)", q.Service, q.Plan, q.Plan)
	}
	return s
}

// budgets looks the servers' budgets up once (before preflight, whose
// measuring connection counts too).
func (m *migration) budgets(ctx workflow.Context) error {
	if m.st.Budget == 0 || m.st.Budgets != nil {
		return nil
	}
	var b activities.BudgetsResult
	if err := m.call(ctx, "budget: look up the servers' connection budgets", a.ServerBudgets,
		activities.BudgetsInput{Address: m.in.Address, To: m.in.To}).Get(ctx, &b); err != nil {
		return err
	}
	m.st.Budgets = &b
	return nil
}

// copyShares are the leases a copy, delta or verify pass of pairs
// connection pairs needs: a connection of the source per pair, and of
// the destination one per pair, or two where the copy pipelines its
// APPENDs on a second session.
func (m *migration) copyShares(pairs int) []share {
	b := m.st.Budgets
	if b == nil {
		return nil
	}
	dest := b.Connections
	if b.DestConnections > 0 {
		dest = b.DestConnections
	}
	if m.st.Quick == 1 && pairs < b.Connections {
		dest = dest * pairs / max(b.Connections, 1)
		return []share{{b.SourceService, pairs, b.SourceBudget}, {m.in.To, max(dest, pairs), b.DestBudget}}
	}
	return []share{{b.SourceService, b.Connections, b.SourceBudget}, {m.in.To, dest, b.DestBudget}}
}

// passPairs is how many connection pairs a pass leases and opens
// (migrations with State.Quick; before, the worker's setting): the engine
// opens a pair per mailcopy.DefaultMessagesPerPair messages to copy, up to
// the worker's setting, so the first pass of a small mailbox, a delta and
// verify take one. A delta that finds more than that copies on one pair,
// slower, never past its lease.
func (m *migration) passPairs(full bool) int {
	b := m.st.Budgets
	if b == nil {
		return 0
	}
	n := max(b.Connections, 1)
	if m.st.Quick == 0 {
		return n
	}
	if !full {
		return 1
	}
	if m.st.Preflight == nil {
		return n
	}
	per := mailcopy.DefaultMessagesPerPair
	return max(1, min(n, (m.st.Preflight.Messages+per-1)/per))
}

// sourceShare is what preflight takes: one connection on the source for
// its measure; with kept leases (State.Quick) the leases of a one-pair
// copy on both servers, so the copy of a mailbox that needs one pair (the
// most common) goes on under them without asking again, and never waits
// for the destination while it holds the source.
func (m *migration) sourceShare() []share {
	b := m.st.Budgets
	if b == nil {
		return nil
	}
	if m.st.Quick == 1 {
		return m.copyShares(1)
	}
	return []share{{b.SourceService, 1, b.SourceBudget}}
}

// destShare is n connections on the destination (the notice, a rollback).
func (m *migration) destShare(n int) []share {
	b := m.st.Budgets
	if b == nil {
		return nil
	}
	return []share{{m.in.To, n, b.DestBudget}}
}
