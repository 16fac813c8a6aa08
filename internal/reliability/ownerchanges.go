package reliability

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

// The owner-changes scenario (Options.OwnerChanges): the migrations are
// held before the lock (a cutover far ahead), the owner then works in the
// mailbox through his own login on the source — flags and keywords,
// deletions, moves, a new folder, a renamed folder, a deleted one — while
// mail keeps arriving; then each migration is told to cut over now, and the
// worker running its final delta is killed with SIGKILL. The destination
// must then be the source as the owner left it, plus what was delivered,
// nothing else: no folder, message or flag more or less.

// heldStart starts each migration with its cutover a day ahead: the
// pre-copy runs, then the migration waits before the lock.
func (p *platform) heldStart(ctx context.Context, addrs []string) error {
	after := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	for _, a := range addrs {
		if _, err := cli.StartMigration(ctx, p.c, workflows.Input{Address: a, To: "emailpro-1", Plan: "reliability",
			AutoConfirm: true, DNSInterval: "1s", NoNotice: true, CutoverAfter: after}); err != nil {
			return fmt.Errorf("start %s: %w", a, err)
		}
	}
	return nil
}

// describe returns a migration's stage and, if its running activity is a
// started CopyMailbox, the identity of the worker running it.
func (p *platform) describe(ctx context.Context, addr string) (stage, copier string, closed bool, err error) {
	d, err := p.c.DescribeWorkflowExecution(ctx, workflows.WorkflowID(addr), "")
	if err != nil {
		return "", "", false, err
	}
	info := d.GetWorkflowExecutionInfo()
	if pl, ok := info.GetSearchAttributes().GetIndexedFields()[workflows.SAStage.GetName()]; ok {
		_ = converter.GetDefaultDataConverter().FromPayload(pl, &stage)
	}
	for _, pa := range d.GetPendingActivities() {
		if pa.GetActivityType().GetName() == "CopyMailbox" && pa.GetState() == enums.PENDING_ACTIVITY_STATE_STARTED {
			copier = pa.GetLastWorkerIdentity()
		}
	}
	return stage, copier, info.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}

// ownerPhase waits for every migration to hold before the lock, lets each
// owner change the mailbox, records the source as the owner left it (in
// before), then cuts each migration over and kills the worker that runs
// its final delta.
func (p *platform) ownerPhase(ctx context.Context, o Options, addrs []string, workers []*worker, before map[string]testenv.Mailbox, rep *Report) error {
	for _, a := range addrs {
		for {
			stage, _, closed, err := p.describe(ctx, a)
			if err != nil {
				return err
			}
			if closed {
				return fmt.Errorf("%s closed before the cutover", a)
			}
			if stage == string(workflows.StageWaitWindow) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s never reached %s: %w", a, workflows.StageWaitWindow, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	p.logf(o, "every migration holds before the lock; the owners change their mailboxes")
	for i, a := range addrs {
		if err := changeMailbox(p.src.Addr, a, i); err != nil {
			return fmt.Errorf("%s: the owner's changes: %w", a, err)
		}
		mb, err := testenv.Read(p.src.Addr, a, ownerPW)
		if err != nil {
			return err
		}
		before[a] = mb
	}
	env := &cli.Env{Out: io.Discard, Client: p.c, DirectoryDSN: p.dsn}
	for _, a := range addrs {
		if err := p.cutOverAndKill(ctx, o, env, a, workers, rep); err != nil {
			return err
		}
	}
	return nil
}

// cutOverAndKill tells addr's migration to cut over now and kills the
// worker that runs its final delta, while it runs. A large mailbox's final
// delta is an activity: its worker is named. A small mailbox's is a local
// activity inside the workflow task that locked the source, which no
// activity and no stage shows until the task ends; the source locked by
// the migration while its mail still goes to the source is that window
// (a fraction of a second), watched in the directory from before the
// cutover is sent, and every worker is killed in it (the one running the
// final delta among them).
func (p *platform) cutOverAndKill(ctx context.Context, o Options, env *cli.Env, a string, workers []*worker, rep *Report) error {
	acted := make(chan error, 1)
	go func() {
		acted <- env.Act(ctx, workflows.UpdateCutoverNow, "", []string{a}, "reliability", "the owner is done")
	}()
	restart := func(ws []*worker) error {
		time.Sleep(300 * time.Millisecond)
		for _, w := range ws {
			if err := w.start(); err != nil {
				return err
			}
		}
		return nil
	}
	sent := false
	for i := 0; ; i++ {
		if p.betweenLockAndSwitch(ctx, a) {
			for _, w := range workers {
				w.kill()
			}
			rep.Kills++
			p.lockKills[a] = true
			p.logf(o, "%s: every worker killed between the lock and the switch", a)
			if err := restart(workers); err != nil {
				return err
			}
			break
		}
		if !sent {
			select {
			case err := <-acted:
				sent = true
				if err != nil {
					return fmt.Errorf("cutover-now %s: %w", a, err)
				}
			default:
			}
		}
		if sent && i%10 == 0 {
			stage, copier, closed, err := p.describe(ctx, a)
			if err != nil {
				return err
			}
			if stage == string(workflows.StageFinalDelta) && copier != "" {
				w := workerOf(workers, copier)
				w.kill()
				rep.Kills++
				p.logf(o, "%s: worker %s killed during the final delta", a, copier)
				if err := restart([]*worker{w}); err != nil {
					return err
				}
				break
			}
			if closed || indexOfStage(stage) > indexOfStage(string(workflows.StageFinalDelta)) {
				p.logf(o, "%s: the final delta ended before a kill (stage %s)", a, stage)
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	if !sent {
		if err := <-acted; err != nil {
			return fmt.Errorf("cutover-now %s: %w", a, err)
		}
	}
	return nil
}

func indexOfStage(s string) int {
	for i, x := range workflows.Stages {
		if string(x) == s {
			return i
		}
	}
	return -1
}

// workerOf finds the worker process by the SDK's identity ("pid@host@");
// failing that, the first.
func workerOf(ws []*worker, identity string) *worker {
	pid, _ := strconv.Atoi(strings.SplitN(identity, "@", 2)[0])
	for _, w := range ws {
		w.mu.Lock()
		match := w.cmd != nil && w.cmd.Process != nil && w.cmd.Process.Pid == pid
		w.mu.Unlock()
		if match {
			return w
		}
	}
	return ws[0]
}

// changeMailbox works in the mailbox as its owner does, through his own
// login: flags and keywords, deletions, moves, a new folder with mail
// moved and written into it, a folder renamed, a folder deleted (its first
// message moved out first). Small folders simply get fewer changes.
func changeMailbox(addr, user string, seed int) error {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(user, ownerPW).Wait(); err != nil {
		return err
	}
	uids := func(folder string) ([]imap.UID, error) {
		if _, err := c.Select(folder, nil).Wait(); err != nil {
			return nil, fmt.Errorf("select %q: %w", folder, err)
		}
		d, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			return nil, err
		}
		return d.AllUIDs(), nil
	}
	set := func(us []imap.UID) imap.UIDSet {
		var s imap.UIDSet
		for _, u := range us {
			s.AddNum(u)
		}
		return s
	}
	pick := func(us []imap.UID, from, n int) []imap.UID {
		if from >= len(us) {
			return nil
		}
		return us[from:min(from+n, len(us))]
	}
	store := func(us []imap.UID, op imap.StoreFlagsOp, flags ...imap.Flag) error {
		if len(us) == 0 {
			return nil
		}
		return c.Store(set(us), &imap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close()
	}
	expunge := func(us []imap.UID) error {
		if len(us) == 0 {
			return nil
		}
		if err := store(us, imap.StoreFlagsAdd, imap.FlagDeleted); err != nil {
			return err
		}
		return c.UIDExpunge(set(us)).Close()
	}
	move := func(us []imap.UID, to string) error {
		if len(us) == 0 {
			return nil
		}
		_, err := c.Move(set(us), to).Wait()
		return err
	}

	inbox, err := uids("INBOX")
	if err != nil {
		return err
	}
	steps := []func() error{
		func() error {
			return store(pick(inbox, 0, 3), imap.StoreFlagsAdd, imap.FlagFlagged, imap.Flag("$Reliability"))
		},
		func() error { return store(pick(inbox, 3, 3), imap.StoreFlagsSet, imap.FlagAnswered) },
		func() error { return store(pick(inbox, 6, 2), imap.StoreFlagsDel, imap.FlagSeen) },
		func() error { return expunge(pick(inbox, 8, 2)) },
		func() error { return move(pick(inbox, 10, 4), "Archives") },
		func() error {
			// A folder already there (seen once in CI, cause not found) is
			// the owner's folder all the same: the moves into it follow.
			err := c.Create("Clients", nil).Wait()
			var ie *imap.Error
			if errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists {
				return nil
			}
			return err
		},
		func() error { return move(pick(inbox, 14, 2), "Clients") },
		func() error {
			msg := fmt.Sprintf("From: owner <%s>\r\nTo: acme@partner.example\r\nSubject: draft %d\r\nMessage-ID: <owner.%d.%s>\r\n\r\nwritten during the pre-copy\r\n", user, seed, seed, user)
			cmd := c.Append("Clients", int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
			if _, err := cmd.Write([]byte(msg)); err != nil {
				return err
			}
			if err := cmd.Close(); err != nil {
				return err
			}
			_, err := cmd.Wait()
			return err
		},
		func() error {
			sent, err := uids("Sent")
			if err != nil {
				return err
			}
			if err := expunge(pick(sent, 0, 1)); err != nil {
				return err
			}
			return move(pick(sent, 1, 1), "Trash")
		},
		func() error {
			old, err := uids("Archives/2024")
			if err != nil {
				return err
			}
			if err := move(pick(old, 0, 1), "INBOX"); err != nil {
				return err
			}
			// Dovecot drops a session whose selected folder is deleted.
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				return err
			}
			return c.Delete("Archives/2024").Wait()
		},
		func() error { return c.Rename("Archives/2023", "Archives/Ancien 2023", nil).Wait() },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
	}
	return nil
}

// ownerChecks are the scenario's own invariants: the destination has the
// source's folders as the owner left them, no more, no fewer; each
// migration's final delta was interrupted by a kill and retried (its
// history says so); and the replayed changes are counted. It returns the
// delivered messages the source snapshot does not hold yet (the others
// are in it, and counting them twice would hide a duplicate).
func (p *platform) ownerChecks(ctx context.Context, addrs []string, before map[string]testenv.Mailbox, delivered map[string][][]byte, rep *Report) ([]string, map[string][][]byte) {
	var v []string
	later := map[string][][]byte{}
	for _, a := range addrs {
		in := map[string]int{}
		for _, m := range before[a]["INBOX"] {
			in[m.Hash]++
		}
		for _, m := range delivered[a] {
			if h := testenv.HashOf(m); in[h] > 0 {
				in[h]--
				continue
			}
			later[a] = append(later[a], m)
		}
		after, err := testenv.Read(p.dst.Addr, a, ownerPW)
		if err != nil {
			v = append(v, fmt.Sprintf("%s: cannot read the destination: %v", a, err))
			continue
		}
		var want, got []string
		for f := range before[a] {
			want = append(want, f)
		}
		for f := range after {
			got = append(got, f)
		}
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(want, "|") != strings.Join(got, "|") {
			v = append(v, fmt.Sprintf("%s: destination folders %q, the owner left %q", a, got, want))
		}
		var r workflows.Result
		if err := p.c.GetWorkflow(ctx, workflows.WorkflowID(a), "").Get(ctx, &r); err == nil && r.Replayed != nil {
			rep.Replayed.Add(*r.Replayed)
		}
		if p.finalDeltaRetried(ctx, a) {
			rep.FinalDeltaKills++
		}
	}
	return v, later
}

// betweenLockAndSwitch says whether addr's source is locked by its
// migration and its mail not yet routed to the destination.
func (p *platform) betweenLockAndSwitch(ctx context.Context, addr string) bool {
	acct, err := p.dir.SourceAccount(ctx, addr)
	if err != nil || acct.State != directory.StateLocked || acct.LockHolder != workflows.WorkflowID(addr) {
		return false
	}
	r, err := p.dir.Route(ctx, addr)
	if errors.Is(err, directory.ErrNotFound) {
		return true // never routed elsewhere: delivered to the source
	}
	return err == nil && r.ServiceID == acct.ServiceID
}

// finalDeltaRetried tells whether the migration's final delta (the
// CopyMailbox that replays) ran more than one attempt: as an activity, a
// second attempt; as a local activity, a workflow task lost to a kill
// between the lock and the switch (a timed-out task, run again).
func (p *platform) finalDeltaRetried(ctx context.Context, addr string) bool {
	replaying := map[int64]bool{}
	iter := p.c.GetWorkflowHistory(ctx, workflows.WorkflowID(addr), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			return false
		}
		if s := e.GetActivityTaskScheduledEventAttributes(); s != nil && s.GetActivityType().GetName() == "CopyMailbox" {
			for _, pl := range s.GetInput().GetPayloads() {
				if strings.Contains(string(pl.GetData()), `"Replay":true`) {
					replaying[e.GetEventId()] = true
				}
			}
		}
		if st := e.GetActivityTaskStartedEventAttributes(); st != nil && replaying[st.GetScheduledEventId()] && st.GetAttempt() > 1 {
			return true
		}
		if p.lockKills[addr] && e.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT {
			return true
		}
	}
	return false
}
