package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Workflow inputs and update payloads come from people typing JSON into the
// Temporal UI or a CLI. The SDK decodes them leniently (an unknown field is
// dropped), so "auto_confirm" instead of "autoConfirm" would silently mean
// nothing. The types decode strictly here instead; a decoding problem is
// kept, not returned, so the workflow can refuse the start (or the
// update's validator the update) with words that name the field, instead
// of failing its task over and over.

// decodeStrict decodes b into v (a pointer to a struct), refusing unknown
// fields, trailing data and wrong types; the error names the field and, for
// an unknown one, the closest known spelling.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err == nil {
		return nil
	}
	known := jsonFields(reflect.TypeOf(v).Elem())
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("field %q: want %s, got a JSON %s", te.Field, te.Type, te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if s := closest(name, known); s != "" {
			return fmt.Errorf("unknown field %q: did you mean %q? (known fields: %s)", name, s, strings.Join(known, ", "))
		}
		return fmt.Errorf("unknown field %q (known fields: %s)", name, strings.Join(known, ", "))
	}
	return fmt.Errorf("not a JSON object of the right form: %v", err)
}

// jsonFields lists the JSON names of a struct's exported fields.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// closest is the known name an unknown one was most likely meant to be:
// the same letters ignoring case, "_" and "-", else within two edits.
func closest(name string, known []string) string {
	fold := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(s))
	}
	best, bestD := "", 3
	for _, k := range known {
		if fold(k) == fold(name) {
			return k
		}
		if d := editDistance(fold(k), fold(name)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// UnmarshalJSON decodes an Input strictly; a problem is kept for validate
// to report (see decodeStrict).
func (in *Input) UnmarshalJSON(b []byte) error {
	type plain Input
	var p plain
	if err := decodeStrict(b, &p); err != nil {
		// What decodes leniently still names the account, so the refusal
		// is reported under the right workflow; the strict error decides.
		var q plain
		if json.Unmarshal(b, &q) != nil {
			q = plain{}
		}
		*in = Input(q)
		in.problem = err.Error()
		return nil
	}
	*in = Input(p)
	return nil
}

// UnmarshalJSON decodes an ActionInput strictly; the update's validator
// refuses a payload with a problem.
func (in *ActionInput) UnmarshalJSON(b []byte) error {
	type plain ActionInput
	var p plain
	if err := decodeStrict(b, &p); err != nil {
		*in = ActionInput{problem: err.Error()}
		return nil
	}
	*in = ActionInput(p)
	return nil
}
