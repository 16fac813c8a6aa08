// Package workflows holds the account-migration workflow: deterministic
// orchestration only. Everything that touches the world is an activity.
package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/address"
	"github.com/mailshift/mailshift/internal/dnscheck"
	"github.com/mailshift/mailshift/internal/limits"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// Names shared by the worker, the starter and the Temporal UI.
const (
	TaskQueue    = "mailshift"
	WorkflowName = "MigrateAccount"

	UpdateConfirm        = "confirm"
	UpdateCancel         = "cancel"
	UpdateRetry          = "retry"
	UpdateRollback       = "rollback"
	UpdateSkipDNS        = "skip-dns"
	UpdateRecheck        = "recheck"
	UpdateApproveSkipped = "approve-skipped"
	UpdateCutoverNow     = "cutover-now"
	UpdateSetWindow      = "set-window"
	QueryProgress        = "progress"

	workflowIDPrefix = "migrate:"
)

// Typed search attributes, upserted at every stage change so the UI can list
// "every account of plan X that needs attention".
var (
	SAPlan   = temporal.NewSearchAttributeKeyKeyword("MigrationPlan")
	SADomain = temporal.NewSearchAttributeKeyKeyword("MigrationDomain")
	SAStage  = temporal.NewSearchAttributeKeyKeyword("MigrationStage")
)

// WorkflowID is the ID of the migration of address: one per account.
func WorkflowID(addr string) string {
	return workflowIDPrefix + address.Key(addr)
}

// AddressOf is the inverse of WorkflowID.
func AddressOf(workflowID string) (string, bool) {
	return strings.CutPrefix(workflowID, workflowIDPrefix)
}

// Stage is a step of the migration.
type Stage string

// The stages, and the terminal outcomes besides done.
const (
	StagePreflight      Stage = "preflight"
	StageWaitingForSlot Stage = "waiting-for-slot"
	StageAwaitConfirm   Stage = "awaiting-confirmation"
	StageAssignSlot     Stage = "assign-slot"
	// StageCopy copies every folder and message while the owner still
	// works (source unlocked, the migrator read-only), in passes until what
	// is left is small. It keeps the name "copy" that dashboards, metrics
	// and saved views already use.
	StageCopy Stage = "copy"
	// StageWaitWindow waits for the cutover window.
	StageWaitWindow Stage = "waiting-for-window"
	StageLockSource Stage = "lock-source"
	// StageFinalDelta copies, under the lock, what changed since the copy.
	StageFinalDelta     Stage = "final-delta"
	StageSwitchRouting  Stage = "switch-routing"
	StageDeltaSync      Stage = "delta-sync"
	StageDNS            Stage = "dns-propagation"
	StageVerify         Stage = "verify"
	StageDone           Stage = "done"
	StageNeedsAttention Stage = "needs-attention"
	StageCancelled      Stage = "cancelled"
	StageRolledBack     Stage = "rolled-back"
	// StageRefused closes a workflow whose start was refused (a bad input):
	// nothing was touched.
	StageRefused Stage = "refused"
)

// Stages is the order in which a migration runs: the copy happens before
// the lock, so the owner's lockout (lock-source to switch-routing) holds
// only the final delta and does not grow with the mailbox.
var Stages = []Stage{StagePreflight, StageWaitingForSlot, StageAwaitConfirm, StageAssignSlot, StageCopy, StageWaitWindow,
	StageLockSource, StageFinalDelta, StageSwitchRouting, StageDeltaSync, StageDNS, StageVerify, StageDone}

// legacyStages is the order of migrations started before the pre-copy
// (State.Order 0): lock, then copy. They finish in that order.
var legacyStages = []Stage{StagePreflight, StageWaitingForSlot, StageAwaitConfirm, StageLockSource, StageAssignSlot,
	StageCopy, StageSwitchRouting, StageDeltaSync, StageDNS, StageVerify, StageDone}

// Orders of stages a State can follow.
const (
	orderLegacy  = 0
	orderPreCopy = 1
)

func stagesOf(order int) []Stage {
	if order == orderPreCopy {
		return Stages
	}
	return legacyStages
}

func indexIn(stages []Stage, s Stage) int {
	for i, x := range stages {
		if x == s {
			return i
		}
	}
	return -1
}

// Input starts a migration. Only Address and To are required, so a person
// can type it into the Temporal UI's Start Workflow form:
//
//	{"address": "alice@example.com", "to": "emailpro-1"}
type Input struct {
	// Address of the MX Plan mailbox to move.
	Address string `json:"address"`
	// To is the ID of the destination service (E-mail Pro or Exchange).
	To string `json:"to"`
	// Plan groups migrations (search attribute MigrationPlan).
	Plan string `json:"plan,omitempty"`
	// AutoConfirm skips the confirmation gate (the plan has been confirmed
	// as a whole).
	AutoConfirm bool `json:"autoConfirm,omitempty"`
	// DNSDeadline bounds the propagation wait (Go duration, default "24h").
	DNSDeadline string `json:"dnsDeadline,omitempty"`
	// DNSInterval is the first wait between DNS checks (default "1m"); it
	// doubles up to DNSMaxInterval (default "15m").
	DNSInterval    string `json:"dnsInterval,omitempty"`
	DNSMaxInterval string `json:"dnsMaxInterval,omitempty"`
	// SlotRecheck is the wait between looks for a free slot (default "5m").
	SlotRecheck string `json:"slotRecheck,omitempty"`
	// NoNotice turns off the owner's notices: the advance notice in the
	// old INBOX and the notice appended to the new one.
	NoNotice bool `json:"noNotice,omitempty"`
	// CutoverWindow is the daily window in which the source is locked and
	// the routing switched: "22:00-06:00 Europe/Paris" (start-end, 24 h
	// clock, an IANA time zone; an end before the start runs past
	// midnight). Empty: as soon as the copy is done.
	CutoverWindow string `json:"cutoverWindow,omitempty"`
	// CutoverAfter is the earliest cutover (RFC 3339, e.g.
	// "2026-12-05T22:00:00+01:00"); with a window, the first window after it.
	CutoverAfter string `json:"cutoverAfter,omitempty"`
	// MaxSkipped is how many messages the copy may skip (refused by the
	// destination) before the migration stops ahead of the routing switch
	// for an operator to approve them or fix the cause (default 0).
	MaxSkipped int `json:"maxSkipped,omitempty"`
	// IncludeFolders / ExcludeFolders are globs on folder paths ("a/b").
	IncludeFolders []string `json:"includeFolders,omitempty"`
	ExcludeFolders []string `json:"excludeFolders,omitempty"`

	// Resume carries the state across continue-as-new. Only a run that the
	// workflow itself continued may carry it: a start that sets it is
	// refused (see setup).
	Resume *State `json:"resume,omitempty"`

	// problem is what strict decoding found wrong (see decode.go).
	problem string
}

// settings are the validated, defaulted durations of an Input.
type settings struct {
	dnsDeadline, dnsInterval, dnsMax, slotRecheck time.Duration
	window                                        *Window
	after                                         time.Time
}

// Validate checks an input and returns its settings; the error names the
// field and the problem.
func (in *Input) validate() (settings, error) {
	var s settings
	if in.problem != "" {
		return s, fmt.Errorf("input: %s", in.problem)
	}
	addr, err := address.Normalize(in.Address)
	if err != nil {
		return s, fmt.Errorf("input: %w", err)
	}
	in.Address = addr
	in.To = strings.TrimSpace(in.To)
	if in.To == "" {
		return s, fmt.Errorf("input: \"to\" (destination service ID) is required")
	}
	if err := limits.Text("to", in.To, limits.ServiceID); err != nil {
		return s, fmt.Errorf("input: %w", err)
	}
	if in.Plan != "" {
		if err := limits.CheckPlanID(in.Plan); err != nil {
			return s, fmt.Errorf("input: \"plan\": %w", err)
		}
	}
	for _, l := range []struct {
		name  string
		globs []string
	}{{"includeFolders", in.IncludeFolders}, {"excludeFolders", in.ExcludeFolders}} {
		if len(l.globs) > limits.Globs {
			return s, fmt.Errorf("input: %q has %d patterns; at most %d", l.name, len(l.globs), limits.Globs)
		}
		for _, g := range l.globs {
			if err := limits.Text(l.name, g, limits.GlobLength); err != nil {
				return s, fmt.Errorf("input: %w", err)
			}
		}
	}
	if s.dnsDeadline, err = dur("dnsDeadline", in.DNSDeadline, 24*time.Hour); err != nil {
		return s, err
	}
	if s.dnsInterval, err = dur("dnsInterval", in.DNSInterval, time.Minute); err != nil {
		return s, err
	}
	if s.dnsMax, err = dur("dnsMaxInterval", in.DNSMaxInterval, 15*time.Minute); err != nil {
		return s, err
	}
	if s.slotRecheck, err = dur("slotRecheck", in.SlotRecheck, 5*time.Minute); err != nil {
		return s, err
	}
	if s.window, err = ParseWindow(in.CutoverWindow); err != nil {
		return s, fmt.Errorf("input: \"cutoverWindow\": %w", err)
	}
	if in.CutoverAfter != "" {
		if len(in.CutoverAfter) > limits.Duration {
			return s, fmt.Errorf("input: \"cutoverAfter\" is too long")
		}
		if s.after, err = time.Parse(time.RFC3339, in.CutoverAfter); err != nil {
			return s, fmt.Errorf("input: \"cutoverAfter\" = %q is not an RFC 3339 time like \"2026-12-05T22:00:00+01:00\"", in.CutoverAfter)
		}
	}
	if in.MaxSkipped < 0 || in.MaxSkipped > limits.MaxSkipped {
		return s, fmt.Errorf("input: \"maxSkipped\" = %d is out of range: between 0 and %d", in.MaxSkipped, limits.MaxSkipped)
	}
	if s.dnsMax < s.dnsInterval {
		s.dnsMax = s.dnsInterval
	}
	mo := mailcopy.MapOptions{Include: in.IncludeFolders, Exclude: in.ExcludeFolders}
	// Validate ranges over the rename map, which an input never sets.
	//workflowcheck:ignore
	if err := mo.Validate(); err != nil {
		return s, fmt.Errorf("input: %w", err)
	}
	return s, nil
}

// Bounds of the durations of an input: below a second a wait loop writes
// history events as fast as it can; past a week a migration holds its
// source locked longer than any owner would accept.
const (
	minDuration = time.Second
	maxDuration = 7 * 24 * time.Hour
)

func dur(field, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	if len(v) > limits.Duration {
		return 0, fmt.Errorf("input: %q is %d bytes long; at most %d", field, len(v), limits.Duration)
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("input: %q = %q is not a positive duration (like \"90s\", \"15m\", \"24h\")", field, v)
	}
	if d < minDuration || d > maxDuration {
		return 0, fmt.Errorf("input: %q = %q is out of range: between %v and %v", field, v, minDuration, maxDuration)
	}
	return d, nil
}

// ValidateAddress checks an address against the platform's policy
// (package address), the one rule the plan, the starter, the workflow and the
// activities share.
func ValidateAddress(s string) error {
	if _, err := address.Normalize(s); err != nil {
		return fmt.Errorf("input: %w", err)
	}
	return nil
}

// DomainOf returns the domain of an address.
func DomainOf(addr string) string {
	return address.DomainOf(addr)
}

// State is the workflow's state, carried across continue-as-new.
type State struct {
	// Order says which list of stages Next indexes (orderLegacy for
	// migrations started before the pre-copy).
	Order       int    `json:"order,omitempty"`
	Stage       Stage  `json:"stage"`
	Next        int    `json:"next"`
	FailedStage Stage  `json:"failedStage,omitempty"`
	LastError   string `json:"lastError,omitempty"`
	ErrorType   string `json:"errorType,omitempty"`
	ConfirmedBy string `json:"confirmedBy,omitempty"`
	Attempts    int    `json:"attempts"`
	// Reenter makes the next stage change record the stage again even if
	// it is the current one (a retried stage); kept across continue-as-new.
	Reenter bool `json:"reenter,omitempty"`
	// WaitingFor says what a waiting stage waits for and how to move it
	// on; NextCheck is when it looks again.
	WaitingFor string    `json:"waitingFor,omitempty"`
	NextCheck  time.Time `json:"nextCheck,omitempty"`
	// Failures are the stages that failed for good, latest last (at most
	// maxFailures), kept after a retry succeeds.
	Failures []Failure `json:"failures,omitempty"`
	// SkipsApproved is how many skipped messages an operator approved with
	// approve-skipped (the migration goes on without them).
	SkipsApproved int `json:"skipsApproved,omitempty"`
	// CopyPasses counts the copy's passes (the first full, then deltas
	// while the owner works); LastPass is when the last one ended.
	CopyPasses int       `json:"copyPasses,omitempty"`
	LastPass   time.Time `json:"lastPass,omitempty"`
	// CutoverNow is set by the cutover-now update; Window is the window in
	// force (the input's, or one an operator set with set-window).
	CutoverNow bool   `json:"cutoverNow,omitempty"`
	Window     string `json:"window,omitempty"`
	// Budget is 1 when copies take leases from the servers' budgets
	// (migrations started before budgets: 0); LeaseSeq numbers leases.
	Budget   int                       `json:"budget,omitempty"`
	LeaseSeq int                       `json:"leaseSeq,omitempty"`
	Budgets  *activities.BudgetsResult `json:"budgets,omitempty"`
	// Carry is 1 when the owner's filters and aliases move with the
	// mailbox (versioned); Filters and Aliases say what moved.
	Carry   int                       `json:"carry,omitempty"`
	Filters *activities.FiltersResult `json:"filters,omitempty"`
	Aliases []string                  `json:"aliases,omitempty"`
	// Notify is 1 when the owner gets an advance notice in the source
	// INBOX and operators get notifications (versioned "notify").
	// Advance is where the notice is (the copy leaves it on the source);
	// PassSeconds the last copy pass's measured time, from which the
	// notice estimates the lockout.
	Notify      int                       `json:"notify,omitempty"`
	Advance     *activities.AdvanceResult `json:"advance,omitempty"`
	PassSeconds float64                   `json:"passSeconds,omitempty"`
	// Lean is 1 when a small first pass ends the pre-copy and verify's
	// last delta shares verify's leases (versioned: fewer lease rounds).
	Lean int `json:"lean,omitempty"`
	// Quick is 1 when the short calls (directory, routing, leases) run as
	// local activities inside the workflow task, and leases are kept from
	// one stage to the next until a stage waits (versioned "quick-steps").
	// Leases are the leases held (or asked for) now.
	Quick  int         `json:"quick,omitempty"`
	Leases []heldLease `json:"leases,omitempty"`
	// Fused is 1 when verify runs its last delta itself and a stage gives
	// back, before it runs, the leases it does not use (version 2 of
	// "quick-steps").
	Fused int `json:"fused,omitempty"`
	// Local is 1 when the preflight, copy and verify passes of a small
	// mailbox run as local activities first (version 3 of "quick-steps"):
	// the stages from the grant of the leases to the DNS wait then run in
	// one workflow task, without a round trip through the server between
	// them.
	Local int `json:"local,omitempty"`
	// Halves is 1 when a small mailbox's verify reads the source, gives
	// the source's lease back, then reads the destination (version 4 of
	// "quick-steps"): the source, the scarcer server, is held for its own
	// half only.
	Halves int `json:"halves,omitempty"`
	// LockedAt and RoutedAt bound the owner's lockout.
	LockedAt time.Time `json:"lockedAt,omitempty"`
	RoutedAt time.Time `json:"routedAt,omitempty"`

	Preflight *activities.PreflightResult    `json:"preflight,omitempty"`
	Slot      *activities.SlotResult         `json:"slot,omitempty"`
	Copy      *activities.CopySummary        `json:"copy,omitempty"`
	Deltas    int                            `json:"deltas"`
	DeltaMsgs int                            `json:"deltaMessages"`
	Checkpts  map[string]mailcopy.Checkpoint `json:"checkpoints,omitempty"`
	Verify    *activities.VerifySummary      `json:"verify,omitempty"`
	DNS       *dnscheck.Diagnostic           `json:"dns,omitempty"`
	DNSStreak int                            `json:"dnsStreak"`
	DNSChecks int                            `json:"dnsChecks"`
	DNSSince  time.Time                      `json:"dnsSince"`
	DNSWait   time.Duration                  `json:"dnsWait"`
	DNSPend   bool                           `json:"dnsPending"`
	History   []StageEvent                   `json:"history,omitempty"`
	Skips     []mailcopy.Skip                `json:"skips,omitempty"`
	// Reported are messages and folders on the destination but reported
	// (preserved, stored altered, keyword dropped, renamed, empty), once
	// each.
	Reported []mailcopy.Skip `json:"reported,omitempty"`
	// Tallies count what the copy passes did per folder (at most
	// activities.MaxFolderRows; TalliesNotListed the folders past it).
	Tallies          []FolderTally            `json:"tallies,omitempty"`
	TalliesNotListed int                      `json:"talliesNotListed,omitempty"`
	Started          time.Time                `json:"started"`
	Updated          time.Time                `json:"updated"`
	Notice           *activities.FinishResult `json:"notice,omitempty"`
	Actions          []OperatorAction         `json:"actions,omitempty"`

	// Replayed counts the owner's changes the final delta carried over.
	Replayed *mailcopy.ReplayCounts `json:"replayed,omitempty"`
}

// check refuses a continued state that could not have been written by this
// workflow: a stage index out of range, or a stage past preflight without
// the preflight's result it depends on.
func (st *State) check() error {
	stages := stagesOf(st.Order)
	if st.Order != orderLegacy && st.Order != orderPreCopy {
		return fmt.Errorf("unknown stage order %d", st.Order)
	}
	if st.Next < 0 || st.Next > len(stages) {
		return fmt.Errorf("next stage %d is out of range", st.Next)
	}
	if st.Next > indexIn(stages, StagePreflight) && st.Preflight == nil {
		return fmt.Errorf("stage %d follows preflight, but there is no preflight result", st.Next)
	}
	return nil
}

// Failure is one time a stage failed for good and parked the migration.
type Failure struct {
	Stage Stage     `json:"stage"`
	Error string    `json:"error"`
	Type  string    `json:"type,omitempty"`
	At    time.Time `json:"at"`
}

const maxFailures = 20

// StageEvent records when a stage started.
type StageEvent struct {
	Stage Stage     `json:"stage"`
	At    time.Time `json:"at"`
}

// OperatorAction records an operator's command.
type OperatorAction struct {
	Action string    `json:"action"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Result is a finished migration.
type Result struct {
	Address     string          `json:"address"`
	To          string          `json:"to"`
	Plan        string          `json:"plan,omitempty"`
	Outcome     Stage           `json:"outcome"`
	ConfirmedBy string          `json:"confirmedBy,omitempty"`
	Folders     int             `json:"folders"`
	Copied      int             `json:"copied"`
	Present     int             `json:"present"`
	Bytes       int64           `json:"bytes"`
	DeltaCopied int             `json:"deltaCopied"`
	Skipped     []mailcopy.Skip `json:"skipped,omitempty"`
	Reported    []mailcopy.Skip `json:"reported,omitempty"`
	// ByReason counts skipped and reported items by category.
	ByReason map[string]int `json:"byReason,omitempty"`
	// FolderRows are the account's folders, one row each (excluded ones
	// with their rule); at most activities.MaxFolderRows, FoldersNotListed
	// counts the rest (the totals above stay exact).
	FolderRows       []FolderRow `json:"folderRows,omitempty"`
	FoldersNotListed int         `json:"foldersNotListed,omitempty"`
	Verified         int         `json:"verified"`
	// LockoutSeconds is how long the owner could not log in.
	LockoutSeconds float64 `json:"lockoutSeconds,omitempty"`
	// Filters are the owner's Sieve filters carried (or why not); Aliases
	// the aliases moved with the mailbox.
	Filters    *activities.FiltersResult `json:"filters,omitempty"`
	Aliases    []string                  `json:"aliases,omitempty"`
	DNSPending bool                      `json:"dnsPending"`
	DNS        *dnscheck.Diagnostic      `json:"dns,omitempty"`
	Stages     []StageEvent              `json:"stages"`
	Actions    []OperatorAction          `json:"actions,omitempty"`
	Started    time.Time                 `json:"started"`
	Finished   time.Time                 `json:"finished"`

	// Replayed counts the owner's changes during the pre-copy that the
	// final delta carried over.
	Replayed *mailcopy.ReplayCounts `json:"replayed,omitempty"`
}

// ActionInput is the argument of every operator update.
type ActionInput struct {
	// By names the operator (recorded in the history and the result); at
	// most limits.Operator bytes.
	By string `json:"by,omitempty"`
	// Reason says why; at most limits.Reason bytes.
	Reason string `json:"reason,omitempty"`
	// Window is the new cutover window of set-window ("" clears it: cut
	// over as soon as the copy is done).
	Window string `json:"window,omitempty"`

	// problem is what strict decoding found wrong (see decode.go).
	problem string
}

// check refuses a payload that did not decode strictly or is too large.
func (in ActionInput) check() error {
	if in.problem != "" {
		return fmt.Errorf("refused: %s", in.problem)
	}
	if err := limits.Text("by", in.By, limits.Operator); err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	if err := limits.Text("reason", in.Reason, limits.Reason); err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	if _, err := ParseWindow(in.Window); err != nil {
		return fmt.Errorf("refused: \"window\": %w", err)
	}
	return nil
}

// ActionResult answers an operator update.
type ActionResult struct {
	Accepted string `json:"accepted"`
	Stage    Stage  `json:"stage"`
}

// Progress answers the progress query.
type Progress struct {
	Address     string   `json:"address"`
	To          string   `json:"to"`
	Plan        string   `json:"plan,omitempty"`
	Stage       Stage    `json:"stage"`
	FailedStage Stage    `json:"failedStage,omitempty"`
	LastError   string   `json:"lastError,omitempty"`
	ErrorType   string   `json:"errorType,omitempty"`
	NextActions []string `json:"nextActions,omitempty"`
	WaitingFor  string   `json:"waitingFor,omitempty"`
	// LockoutSeconds is how long the owner could not log in (lock to
	// routing switch; so far, while it lasts).
	LockoutSeconds float64   `json:"lockoutSeconds,omitempty"`
	NextCheck      time.Time `json:"nextCheck,omitempty"`
	Failures       []Failure `json:"failures,omitempty"`
	ConfirmedBy    string    `json:"confirmedBy,omitempty"`
	FoldersDone    int       `json:"foldersDone"`
	FoldersTotal   int       `json:"foldersTotal"`
	MessagesDone   int       `json:"messagesCopied"`
	MessagesTotal  int       `json:"messagesTotal"`
	BytesDone      int64     `json:"bytesCopied"`
	BytesTotal     int64     `json:"bytesTotal"`
	Skipped        int       `json:"skipped"`
	// ByReason counts skipped and reported items by category.
	ByReason   map[string]int `json:"byReason,omitempty"`
	DeltaSyncs int            `json:"deltaSyncs"`
	DNSChecks  int            `json:"dnsChecks"`
	DNS        string         `json:"dns,omitempty"`
	DNSPending bool           `json:"dnsPending"`
	Started    time.Time      `json:"started"`
	Updated    time.Time      `json:"updated"`

	// Replayed counts the owner's changes during the pre-copy that the
	// final delta carried over (expunged, flags, moved, folders).
	Replayed *mailcopy.ReplayCounts `json:"replayed,omitempty"`
}

// ValidateInput checks an input the way the workflow's first step does, so
// a starter can refuse a bad row before starting anything.
func ValidateInput(in Input) error {
	_, err := in.validate()
	return err
}
