package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ImportFile is what operators load into the directory: service
// definitions, free slots ordered for a destination service, accounts and
// redirections. Passwords are given as hashes ({SSHA256}, as the mail
// servers store them) or in clear, hashed on import and never stored.
type ImportFile struct {
	Services []Service `json:"services"`
	Slots    []struct {
		Service     string `json:"service"`
		Placeholder string `json:"placeholder"`
		QuotaBytes  int64  `json:"quotaBytes"`
	} `json:"slots"`
	Accounts []struct {
		Address      string `json:"address"`
		Service      string `json:"service"`
		Password     string `json:"password,omitempty"`
		PasswordHash string `json:"passwordHash,omitempty"`
		QuotaBytes   int64  `json:"quotaBytes"`
		Locale       string `json:"locale,omitempty"`
	} `json:"accounts"`
	Redirections []Redirection `json:"redirections"`
}

// ImportReport counts what an import did.
type ImportReport struct {
	Services, Slots, Accounts, Redirections int
	// Skipped lists what was already there (an import can be re-run).
	Skipped []string
}

// Import loads a JSON import file. Services are created or updated; slots
// (by placeholder), accounts and redirections already present are skipped
// and listed, so running the same file twice changes nothing.
func (s *Store) Import(ctx context.Context, r io.Reader) (*ImportReport, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var f ImportFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("import file: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("import file: more after the JSON object; want one object")
	}
	// Every service is checked before anything is written: a definition
	// is what the DNS records and the migrator's connections are made of.
	ids := map[string]int{}
	for i, sv := range f.Services {
		if err := sv.Validate(); err != nil {
			return nil, fmt.Errorf("services[%d]: %w", i, err)
		}
		if j, ok := ids[sv.ID]; ok {
			return nil, fmt.Errorf("services[%d]: service %q is already defined at services[%d]", i, sv.ID, j)
		}
		ids[sv.ID] = i
	}
	rep := &ImportReport{}
	for i, sv := range f.Services {
		if err := s.AddService(ctx, sv); err != nil {
			return rep, fmt.Errorf("services[%d]: %w", i, err)
		}
		rep.Services++
	}
	for i, sl := range f.Slots {
		if sl.Placeholder == "" || sl.Service == "" || sl.QuotaBytes <= 0 {
			return rep, fmt.Errorf("slots[%d]: service, placeholder and a positive quotaBytes are required", i)
		}
		var n int
		if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM slots WHERE placeholder = ?`), sl.Placeholder).Scan(&n); err != nil {
			return rep, err
		}
		if n > 0 {
			rep.Skipped = append(rep.Skipped, "slot "+sl.Placeholder)
			continue
		}
		if _, err := s.Service(ctx, sl.Service); err != nil {
			return rep, fmt.Errorf("slots[%d]: %w", i, err)
		}
		if err := s.AddSlot(ctx, sl.Service, sl.Placeholder, sl.QuotaBytes); err != nil {
			return rep, fmt.Errorf("slots[%d]: %w", i, err)
		}
		rep.Slots++
	}
	for i, a := range f.Accounts {
		hash := a.PasswordHash
		switch {
		case hash == "" && a.Password == "":
			return rep, fmt.Errorf("accounts[%d] (%s): password or passwordHash is required", i, a.Address)
		case hash == "":
			hash = HashPassword(a.Password)
		case !strings.HasPrefix(hash, "{"):
			return rep, fmt.Errorf("accounts[%d] (%s): passwordHash must carry its scheme, like {SSHA256}", i, a.Address)
		}
		if _, err := s.Account(ctx, a.Service, a.Address); err == nil {
			rep.Skipped = append(rep.Skipped, "account "+a.Address)
			continue
		} else if !errors.Is(err, ErrNotFound) {
			return rep, err
		}
		if _, err := s.Service(ctx, a.Service); err != nil {
			return rep, fmt.Errorf("accounts[%d] (%s): %w", i, a.Address, err)
		}
		if err := s.AddAccount(ctx, Account{Address: a.Address, ServiceID: a.Service, QuotaBytes: a.QuotaBytes, Locale: a.Locale}, hash); err != nil {
			return rep, fmt.Errorf("accounts[%d]: %w", i, err)
		}
		rep.Accounts++
	}
	for i, rd := range f.Redirections {
		have, err := s.Redirections(ctx, rd.Address)
		if err != nil {
			return rep, err
		}
		dup := false
		for _, h := range have {
			dup = dup || (h.Kind == rd.Kind && h.Target == rd.Target)
		}
		if dup {
			rep.Skipped = append(rep.Skipped, "redirection of "+rd.Address)
			continue
		}
		if rd.Address == "" || rd.Kind == "" {
			return rep, fmt.Errorf("redirections[%d]: address and kind are required", i)
		}
		if err := s.AddRedirection(ctx, rd); err != nil {
			return rep, err
		}
		rep.Redirections++
	}
	return rep, nil
}
