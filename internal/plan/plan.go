// Package plan reads and validates migration plans: CSV or YAML files of
// accounts to move, one row per account. Files are read strictly (a column
// or key given twice, a second YAML document, an unreadable CSV record are
// refused), every field is bounded (package limits) and checked where it
// enters, addresses take their normal form (package address), and every
// problem is reported with its line number; a row with a problem is never
// started.
package plan

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mailshift/mailshift/internal/address"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/eligibility"
	"github.com/mailshift/mailshift/internal/limits"
	"github.com/mailshift/mailshift/workflows"
)

// Row is one account of a plan.
type Row struct {
	Line  int
	Input workflows.Input
}

// Problem is a row that cannot be started.
type Problem struct {
	Line    int
	Address string
	Reason  string
}

func (p Problem) String() string {
	if p.Address != "" {
		return fmt.Sprintf("line %d (%s): %s", p.Line, shown(p.Address), p.Reason)
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.Reason)
}

// shown is an address as a problem names it: as written when it is short
// printable ASCII, else quoted (control characters escaped) and cut.
func shown(addr string) string {
	const max = 80
	plain := len(addr) <= max
	for i := 0; plain && i < len(addr); i++ {
		plain = addr[i] > 0x20 && addr[i] < 0x7f
	}
	if plain {
		return addr
	}
	if len(addr) > max {
		return fmt.Sprintf("%q…", addr[:max])
	}
	return fmt.Sprintf("%q", addr)
}

// Defaults apply to rows that leave a column empty.
type Defaults struct {
	Plan        string
	To          string
	AutoConfirm bool
	DNSInterval string
	DNSDeadline string
}

var known = map[string]bool{"address": true, "to": true, "plan": true, "auto_confirm": true, "dns_interval": true,
	"dns_deadline": true, "exclude_folders": true, "include_folders": true, "no_notice": true}

const knownList = "address, to, plan, auto_confirm, dns_interval, dns_deadline, include_folders, exclude_folders, no_notice"

// entry is one account as written in a plan file, before validation.
type entry struct {
	line   int
	fields map[string]string
	lists  map[string][]string
}

// Parse reads a plan in the format its name says: YAML for .yaml and
// .yml, CSV otherwise.
func Parse(name string, r io.Reader, def Defaults) ([]Row, []Problem, error) {
	if IsYAML(name) {
		return ParseYAML(r, def)
	}
	return ParseCSV(r, def)
}

// IsYAML tells whether a plan file name is a YAML plan.
func IsYAML(name string) bool {
	n := strings.ToLower(name)
	return strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")
}

// ParseCSV reads a plan. The header names the columns, each once;
// "address" is required, "to" unless a default is given. Folder lists are
// separated by "|". A row that cannot be read (a stray quote, more fields
// than the header) is a problem on its line.
func ParseCSV(r io.Reader, def Defaults) ([]Row, []Problem, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, errors.New("plan is empty: want a header line (address,to,...) and one row per account")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("plan header: %s", csvProblem(err))
	}
	headerLine, _ := cr.FieldPos(0)
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !known[h] {
			return nil, nil, fmt.Errorf("plan header (line %d): unknown column %q (known: %s)", headerLine, h, knownList)
		}
		if j, dup := col[h]; dup {
			return nil, nil, fmt.Errorf("plan header (line %d): column %q appears twice (columns %d and %d)", headerLine, h, j+1, i+1)
		}
		col[h] = i
	}
	if _, ok := col["address"]; !ok {
		return nil, nil, errors.New("plan header: no \"address\" column")
	}
	if _, ok := col["to"]; !ok && def.To == "" {
		return nil, nil, errors.New("plan header: no \"to\" column and no --to default")
	}
	var entries []entry
	var problems []Problem
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// FieldPos is only defined after a successful Read: the
			// line comes from the error.
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, nil, err
			}
			problems = append(problems, Problem{Line: pe.StartLine, Reason: csvProblem(pe)})
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(rec) > len(header) {
			problems = append(problems, Problem{Line: line, Reason: fmt.Sprintf("%d fields, but the header names %d columns (a comma too many, or a field to quote?)", len(rec), len(header))})
			continue
		}
		e := entry{line: line, fields: map[string]string{}, lists: map[string][]string{}}
		for name, i := range col {
			if i >= len(rec) {
				continue
			}
			v := strings.TrimSpace(rec[i])
			if strings.HasSuffix(name, "_folders") {
				e.lists[name] = splitList(v)
			} else {
				e.fields[name] = v
			}
		}
		entries = append(entries, e)
	}
	rows, more := build(entries, def)
	return rows, append(problems, more...), nil
}

// csvProblem says what is wrong with a CSV record in an operator's words.
func csvProblem(err error) string {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	switch {
	case errors.Is(pe.Err, csv.ErrBareQuote):
		return fmt.Sprintf("column %d: a quote (\") inside a field that does not start with one; quote the whole field and double the quote inside it (\"a\"\"b\")", pe.Column)
	case errors.Is(pe.Err, csv.ErrQuote) && pe.Line > pe.StartLine:
		return fmt.Sprintf("a quoted field opened on this line runs to line %d without closing properly; lines %d to %d are not read", pe.Line, pe.StartLine, pe.Line)
	case errors.Is(pe.Err, csv.ErrQuote):
		return fmt.Sprintf("column %d: text after a closing quote, or a quote inside a quoted field that is not doubled (\"\")", pe.Column)
	}
	return fmt.Sprintf("line %d, column %d: %v", pe.Line, pe.Column, pe.Err)
}

// build turns entries into rows: defaults filled in, every value checked,
// duplicates refused.
func build(entries []entry, def Defaults) ([]Row, []Problem) {
	var rows []Row
	var problems []Problem
	seen := map[string]int{}
	for _, e := range entries {
		get := func(name string) string { return e.fields[name] }
		line := e.line
		in := workflows.Input{Address: get("address"), To: get("to"), Plan: get("plan"),
			DNSInterval: get("dns_interval"), DNSDeadline: get("dns_deadline"), AutoConfirm: def.AutoConfirm}
		if in.To == "" {
			in.To = def.To
		}
		if in.Plan == "" {
			in.Plan = def.Plan
		}
		if in.DNSInterval == "" {
			in.DNSInterval = def.DNSInterval
		}
		if in.DNSDeadline == "" {
			in.DNSDeadline = def.DNSDeadline
		}
		if v := get("auto_confirm"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				problems = append(problems, Problem{Line: line, Address: in.Address, Reason: fmt.Sprintf("auto_confirm %q: want true or false", v)})
				continue
			}
			in.AutoConfirm = b
		}
		if v := get("no_notice"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				problems = append(problems, Problem{Line: line, Address: in.Address, Reason: fmt.Sprintf("no_notice %q: want true or false", v)})
				continue
			}
			in.NoNotice = b
		}
		in.IncludeFolders = e.lists["include_folders"]
		in.ExcludeFolders = e.lists["exclude_folders"]
		if len(in.Address) > address.MaxLength {
			// Refused before Normalize, whose words would quote it whole.
			problems = append(problems, Problem{Line: line, Address: in.Address, Reason: fmt.Sprintf("address is %d bytes long; at most %d", len(in.Address), address.MaxLength)})
			continue
		}
		addr, err := address.Normalize(in.Address)
		if err != nil {
			problems = append(problems, Problem{Line: line, Address: in.Address, Reason: err.Error()})
			continue
		}
		in.Address = addr
		if err := bounds(in); err != nil {
			problems = append(problems, Problem{Line: line, Address: in.Address, Reason: err.Error()})
			continue
		}
		if err := workflows.ValidateInput(in); err != nil {
			problems = append(problems, Problem{Line: line, Address: in.Address, Reason: strings.TrimPrefix(err.Error(), "input: ")})
			continue
		}
		if prev, dup := seen[in.Address]; dup {
			problems = append(problems, Problem{Line: line, Address: in.Address, Reason: fmt.Sprintf("duplicate of line %d", prev)})
			continue
		}
		seen[in.Address] = line
		rows = append(rows, Row{Line: line, Input: in})
	}
	return rows, problems
}

// bounds refuses a field too large to reach a workflow, with the limits
// the workflow enforces too (package limits), before anything parses it.
func bounds(in workflows.Input) error {
	if in.Plan != "" {
		if err := limits.CheckPlanID(in.Plan); err != nil {
			return fmt.Errorf("plan: %w", err)
		}
	}
	if err := limits.Text("to", in.To, limits.ServiceID); err != nil {
		return err
	}
	for _, d := range []struct{ name, v string }{{"dns_interval", in.DNSInterval}, {"dns_deadline", in.DNSDeadline}} {
		if len(d.v) > limits.Duration {
			return fmt.Errorf("%s is %d bytes long; at most %d", d.name, len(d.v), limits.Duration)
		}
	}
	for _, l := range []struct {
		name  string
		globs []string
	}{{"include_folders", in.IncludeFolders}, {"exclude_folders", in.ExcludeFolders}} {
		if len(l.globs) > limits.Globs {
			return fmt.Errorf("%s has %d patterns; at most %d", l.name, len(l.globs), limits.Globs)
		}
		for _, g := range l.globs {
			if err := limits.Text(l.name, g, limits.GlobLength); err != nil {
				return err
			}
		}
	}
	return nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, "|") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Check applies the eligibility rule to every row and moves out of rows
// those it refuses outright: no MX Plan account with the address, or a
// destination service that does not exist or is not E-mail Pro or Exchange.
// The other reasons (a redirection, another migration's lock, the account's
// state) are the platform's state of the moment: the migration is started,
// its preflight parks it saying why, and an operator fixes the cause and
// retries; the dry run lists them.
func Check(ctx context.Context, dir eligibility.Directory, rows []Row) ([]Row, []Problem, error) {
	var ok []Row
	var problems []Problem
	dir = &serviceMemo{Directory: dir, seen: map[string]serviceLookup{}}
	for _, r := range rows {
		v, err := eligibility.Check(ctx, dir, r.Input.Address, r.Input.To, workflows.WorkflowID(r.Input.Address))
		if err != nil {
			return nil, nil, err
		}
		refused := false
		for _, why := range v.Reasons {
			if Refuses(why.Kind) {
				problems = append(problems, Problem{Line: r.Line, Address: r.Input.Address, Reason: why.Message})
				refused = true
			}
		}
		if !refused {
			ok = append(ok, r)
		}
	}
	return ok, problems, nil
}

// Refuses tells whether a reason refuses a row before anything starts.
func Refuses(k eligibility.Kind) bool {
	switch k {
	case eligibility.AccountMissing, eligibility.UnknownService, eligibility.WrongServiceKind:
		return true
	}
	return false
}

// serviceMemo reads each destination service once per plan.
type serviceMemo struct {
	eligibility.Directory
	seen map[string]serviceLookup
}

type serviceLookup struct {
	sv  directory.Service
	err error
}

func (m *serviceMemo) Service(ctx context.Context, id string) (directory.Service, error) {
	if l, ok := m.seen[id]; ok {
		return l.sv, l.err
	}
	sv, err := m.Directory.Service(ctx, id)
	if err == nil || errors.Is(err, directory.ErrNotFound) {
		m.seen[id] = serviceLookup{sv, err}
	}
	return sv, err
}
