package cli

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/mailshift/mailshift/internal/limits"
	"github.com/mailshift/mailshift/workflows"
)

// queryString is s as a string literal of a Temporal visibility query, so
// that no value can end the literal or change the query around it: a single
// quote is doubled. A value the server cannot match literally is refused
// rather than sent: a backslash (a trailing one escapes the closing quote,
// a doubled one is kept doubled), a double quote (never matched, however
// escaped, on the dev server), control characters and invalid UTF-8. Plan IDs are validated before they get here (limits.CheckPlanID);
// this holds for any value anyway.
func queryString(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if r == '\\' || r == '"' || r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("character %q cannot be put in a visibility query", r)
		}
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'", nil
}

// planQuery lists the migrations of a plan.
func planQuery(planID string) (string, error) {
	lit, err := queryString(planID)
	if err != nil {
		return "", fmt.Errorf("plan %q: %w", planID, err)
	}
	return workflows.SAPlan.GetName() + " = " + lit, nil
}

// checkPlanFlag checks the --plan of a command (empty: none given).
func checkPlanFlag(planID string) error {
	if planID == "" {
		return nil
	}
	if err := limits.CheckPlanID(planID); err != nil {
		return fmt.Errorf("--plan: %w", err)
	}
	return nil
}
