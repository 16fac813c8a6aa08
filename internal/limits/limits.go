// Package limits holds the bounds of every field that reaches mailshift
// from outside (plan rows, workflow inputs, operator updates) and the rule
// for plan IDs, so the plan, the starter and the workflow enforce the same
// numbers. Every bound is far above real use and far below what would make a
// workflow's history, result or a visibility query fail later.
package limits

import (
	"fmt"
	"unicode/utf8"
)

// Bounds of outside fields, in bytes or items.
const (
	PlanID     = 100  // MigrationPlan search attribute value
	ServiceID  = 64   // a destination service's ID
	Operator   = 200  // "by" of an operator update
	Reason     = 2000 // "reason" of an operator update
	Globs      = 100  // folder patterns per list
	GlobLength = 500  // bytes per folder pattern
	Duration   = 40   // a Go duration string
	MaxSkipped = 1000000
)

// CheckPlanID checks a plan ID: 1 to PlanID bytes of letters, digits and
// ". _ - : /". Plan IDs go into visibility queries, search attributes and
// file names of reports, so quotes, backslashes, spaces and control
// characters are refused rather than escaped at every use.
func CheckPlanID(id string) error {
	if id == "" {
		return fmt.Errorf("plan ID is empty")
	}
	if len(id) > PlanID {
		return fmt.Errorf("plan ID is %d bytes long; at most %d", len(id), PlanID)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("plan ID %q is not valid UTF-8", id)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '_', r == '-', r == ':', r == '/':
		default:
			return fmt.Errorf("plan ID %q: character %q is not allowed (letters, digits and . _ - : / are)", id, r)
		}
	}
	return nil
}

// Text checks a free-text field: valid UTF-8, at most max bytes, no control
// characters but tab.
func Text(field, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%q is %d bytes long; at most %d", field, len(v), max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%q is not valid UTF-8", field)
	}
	for _, r := range v {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return fmt.Errorf("%q contains a control character", field)
		}
	}
	return nil
}
