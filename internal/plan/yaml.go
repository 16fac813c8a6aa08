package plan

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mailshift/mailshift/internal/limits"
)

// ParseYAML reads a YAML plan:
//
//	plan: wave-3                # optional plan ID
//	defaults:                   # optional, any account field
//	  to: emailpro-1
//	  auto_confirm: true
//	accounts:
//	  - address: alice@example.com
//	  - bob@example.com         # a bare address takes the defaults
//	  - address: carol@example.com
//	    to: exchange-1
//	    exclude_folders: [Junk, Trash]
//
// An account's own fields win over the file's defaults, which win over
// the command line's. Problems carry the line of the account in the file.
func ParseYAML(r io.Reader, def Defaults) ([]Row, []Problem, error) {
	dec := yaml.NewDecoder(r)
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, errors.New("plan is empty: want an \"accounts:\" list")
		}
		return nil, nil, fmt.Errorf("plan: %w", err)
	}
	// A second document would be silently ignored: its accounts never
	// started although the file lists them.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, nil, fmt.Errorf("plan line %d: a second YAML document (after \"---\"); a plan is one document", max(next.Line, 1))
	case !errors.Is(err, io.EOF):
		return nil, nil, fmt.Errorf("plan: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, nil, errors.New("plan is empty: want an \"accounts:\" list")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("plan line %d: want a mapping with \"accounts:\" (and optionally \"plan:\" and \"defaults:\")", root.Line)
	}
	if k := repeatedKey(root); k != nil {
		return nil, nil, fmt.Errorf("plan line %d: key %q appears twice", k.Line, k.Value)
	}
	var accounts *yaml.Node
	defaults := entry{fields: map[string]string{}, lists: map[string][]string{}}
	var problems []Problem
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "plan":
			if v.Kind != yaml.ScalarNode {
				return nil, nil, fmt.Errorf("plan line %d: \"plan\" must be a name", v.Line)
			}
			if err := limits.CheckPlanID(v.Value); err != nil {
				return nil, nil, fmt.Errorf("plan line %d: %w", v.Line, err)
			}
			def.Plan = v.Value
		case "defaults":
			d, more := fieldsOf(v, false)
			if len(more) > 0 {
				return nil, nil, fmt.Errorf("plan defaults: %s", more[0])
			}
			defaults = d
		case "accounts":
			accounts = v
		default:
			return nil, nil, fmt.Errorf("plan line %d: unknown key %q (known: plan, defaults, accounts)", k.Line, k.Value)
		}
	}
	if accounts == nil || accounts.Kind != yaml.SequenceNode {
		return nil, nil, errors.New("plan: no \"accounts:\" list")
	}
	var entries []entry
	for _, a := range accounts.Content {
		e, more := fieldsOf(a, true)
		if len(more) > 0 {
			problems = append(problems, more...)
			continue
		}
		for k, v := range defaults.fields {
			if _, set := e.fields[k]; !set && k != "address" {
				e.fields[k] = v
			}
		}
		for k, v := range defaults.lists {
			if _, set := e.lists[k]; !set {
				e.lists[k] = v
			}
		}
		entries = append(entries, e)
	}
	rows, more := build(entries, def)
	return rows, append(problems, more...), nil
}

// fieldsOf reads one account (or the defaults): a mapping of known fields,
// or, for an account, a bare address.
func fieldsOf(n *yaml.Node, account bool) (entry, []Problem) {
	e := entry{line: n.Line, fields: map[string]string{}, lists: map[string][]string{}}
	if account && n.Kind == yaml.ScalarNode {
		e.fields["address"] = strings.TrimSpace(n.Value)
		return e, nil
	}
	if n.Kind != yaml.MappingNode {
		return e, []Problem{{Line: n.Line, Reason: "want an address or a mapping of account fields (address, to, …)"}}
	}
	var problems []Problem
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := strings.ToLower(k.Value)
		if prev, dup := seen[name]; dup {
			problems = append(problems, Problem{Line: k.Line, Reason: fmt.Sprintf("field %q appears twice (first on line %d)", k.Value, prev)})
			continue
		}
		seen[name] = k.Line
		switch {
		case !known[name]:
			problems = append(problems, Problem{Line: k.Line, Reason: fmt.Sprintf("unknown field %q (known: %s)", k.Value, knownList)})
		case strings.HasSuffix(name, "_folders"):
			switch v.Kind {
			case yaml.SequenceNode:
				var list []string
				for _, f := range v.Content {
					if f.Kind != yaml.ScalarNode {
						problems = append(problems, Problem{Line: f.Line, Reason: name + ": want folder names"})
						continue
					}
					list = append(list, f.Value)
				}
				e.lists[name] = list
			case yaml.ScalarNode:
				e.lists[name] = splitList(v.Value)
			default:
				problems = append(problems, Problem{Line: v.Line, Reason: name + ": want a list of folder names"})
			}
		case v.Kind != yaml.ScalarNode:
			problems = append(problems, Problem{Line: v.Line, Reason: name + ": want a single value"})
		default:
			e.fields[name] = strings.TrimSpace(v.Value)
		}
	}
	if account {
		addr := e.fields["address"]
		for i := range problems {
			problems[i].Address = addr
		}
		if addr == "" && len(problems) == 0 {
			problems = append(problems, Problem{Line: n.Line, Reason: "account without an address"})
		}
	}
	return e, problems
}

// repeatedKey returns the second occurrence of a key of a mapping, if any.
func repeatedKey(n *yaml.Node) *yaml.Node {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if seen[k.Value] {
			return k
		}
		seen[k.Value] = true
	}
	return nil
}
