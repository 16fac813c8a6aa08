package cli

import (
	"fmt"
	"strings"
)

// count is n followed by the noun, singular for one: "1 account",
// "2 accounts", "0 problems". plural is given when adding an s is wrong.
func count(n int, singular string, plural ...string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, singular)
	}
	if len(plural) > 0 {
		return fmt.Sprintf("%d %s", n, plural[0])
	}
	return fmt.Sprintf("%d %ss", n, singular)
}

// refusal is the workflow's reason for refusing an update, without the
// "refused: " its validators start with, so that "confirm refused: …" does
// not say it twice.
func refusal(msg string) string {
	for {
		m := strings.TrimPrefix(msg, "refused: ")
		if m == msg {
			return msg
		}
		msg = m
	}
}
