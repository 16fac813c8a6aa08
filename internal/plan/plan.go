// Package plan reads and validates migration plans: CSV files of accounts to
// move, one row per account. Every problem is reported with its line number;
// a row with a problem is never started.
package plan

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mailshift/mailshift/internal/directory"
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
		return fmt.Sprintf("line %d (%s): %s", p.Line, p.Address, p.Reason)
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.Reason)
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

// ParseCSV reads a plan. The header names the columns; "address" is
// required, "to" unless a default is given. Folder lists are separated by
// "|".
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
		return nil, nil, fmt.Errorf("plan header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !known[h] {
			return nil, nil, fmt.Errorf("plan header: unknown column %q (known: %s)", h, knownList)
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
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				problems = append(problems, Problem{Line: pe.Line, Reason: pe.Err.Error()})
				continue
			}
			return nil, nil, err
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

// build turns entries into rows: defaults filled in, every value checked,
// duplicates refused.
func build(entries []entry, def Defaults) ([]Row, []Problem) {
	var rows []Row
	var problems []Problem
	seen := map[string]int{}
	for _, e := range entries {
		get := func(name string) string { return e.fields[name] }
		line := e.line
		in := workflows.Input{Address: strings.ToLower(get("address")), To: get("to"), Plan: get("plan"),
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

// Check looks every row up in the directory: the destination service
// exists and is E-mail Pro or Exchange, the account exists on an MX Plan
// service. Rows with a problem are moved out of rows.
func Check(ctx context.Context, dir *directory.Store, rows []Row) ([]Row, []Problem, error) {
	var ok []Row
	var problems []Problem
	services := map[string]*directory.Service{}
	for _, r := range rows {
		sv, seen := services[r.Input.To]
		if !seen {
			s, err := dir.Service(ctx, r.Input.To)
			switch {
			case errors.Is(err, directory.ErrNotFound):
				sv = nil
			case err != nil:
				return nil, nil, err
			default:
				sv = &s
			}
			services[r.Input.To] = sv
		}
		if sv == nil {
			problems = append(problems, Problem{Line: r.Line, Address: r.Input.Address, Reason: fmt.Sprintf("unknown destination service %q", r.Input.To)})
			continue
		}
		if sv.Kind != directory.KindEmailPro && sv.Kind != directory.KindExchange {
			problems = append(problems, Problem{Line: r.Line, Address: r.Input.Address, Reason: fmt.Sprintf("destination service %q is %s, not E-mail Pro or Exchange", r.Input.To, sv.Kind)})
			continue
		}
		if _, err := dir.SourceAccount(ctx, r.Input.Address); errors.Is(err, directory.ErrNotFound) {
			problems = append(problems, Problem{Line: r.Line, Address: r.Input.Address, Reason: "no MX Plan account with this address in the directory"})
			continue
		} else if err != nil {
			return nil, nil, err
		}
		ok = append(ok, r)
	}
	return ok, problems, nil
}
