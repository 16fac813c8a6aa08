package limits

import (
	"strings"
	"testing"
)

func TestCheckPlanID(t *testing.T) {
	for _, tc := range []struct {
		id  string
		err string
	}{
		{id: "wave-1"},
		{id: "2026/12:batch_3.a"},
		{id: "", err: "empty"},
		{id: "wave'x", err: "not allowed"},
		{id: `wave\`, err: "not allowed"},
		{id: "wave x", err: "not allowed"},
		{id: "wave\"x", err: "not allowed"},
		{id: "w\xff", err: "UTF-8"},
		{id: "wäve", err: "not allowed"},
		{id: strings.Repeat("a", 3000), err: "at most 100"},
	} {
		err := CheckPlanID(tc.id)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CheckPlanID(%.20q) = %v, want error %q", tc.id, err, tc.err)
		}
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct {
		v   string
		err string
	}{
		{v: "Ana (on call)\tticket 42"},
		{v: strings.Repeat("x", 201), err: "at most 200"},
		{v: "a\nb", err: "control"},
		{v: "a\xffb", err: "UTF-8"},
	} {
		err := Text("by", tc.v, Operator)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Text(%.20q) = %v, want error %q", tc.v, err, tc.err)
		}
	}
}
