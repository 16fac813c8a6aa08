package activities

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/sieve"
)

// SieveDirectory is what the filter and alias activities need of the
// directory beyond Directory; *directory.Store has it.
type SieveDirectory interface {
	SieveAddr(ctx context.Context, serviceID string) (string, error)
	MoveAliases(ctx context.Context, address, serviceID, wfID string) ([]directory.Alias, error)
}

// FiltersInput asks for an account's Sieve filters to be installed on its
// destination.
type FiltersInput struct {
	Address string `json:"address"`
	From    string `json:"from"`
	To      string `json:"to"`
	// Folders is the copy's folder map (CopySummary.Folders of the full
	// copy): a fileinto naming a source folder is rewritten to the folder
	// its messages went to.
	Folders []FolderSummary `json:"folders,omitempty"`
}

// FolderRename is one folder name rewritten inside a script.
type FolderRename struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// ScriptReport is what happened to one script. It holds no script content.
type ScriptReport struct {
	Name string `json:"name"`
	// Active is set for the script active on the source.
	Active bool `json:"active,omitempty"`
	// Installed is set when the destination holds the script (installed
	// now, or by an earlier attempt).
	Installed bool           `json:"installed"`
	Renamed   []FolderRename `json:"renamed,omitempty"`
	// Unmapped are fileinto folders that are not among the copied folders:
	// kept as written.
	Unmapped []string `json:"unmapped,omitempty"`
	// Refused is why the script is not on the destination: the
	// destination server's words, or the platform's rule.
	Refused string `json:"refused,omitempty"`
	// Note says what else the owner should know (a script whose folder
	// names could not be read is installed unchanged).
	Note string `json:"note,omitempty"`
}

// FiltersResult is the outcome of CopyFilters, small enough for history.
type FiltersResult struct {
	Scripts []ScriptReport `json:"scripts,omitempty"`
	// Active is the script active on the destination ("" if none was
	// activated).
	Active    string `json:"active,omitempty"`
	Installed int    `json:"installed"`
	Refused   int    `json:"refused"`
	// NotCarried says why no filter was carried (a service serves no
	// ManageSieve); the report shows it.
	NotCarried string `json:"notCarried,omitempty"`
}

// errNoSieve: a service records no ManageSieve server.
var errNoSieve = errors.New("filters are not carried")

// maxFoldersInInput bounds the folder map a workflow may pass.
const maxFoldersInInput = 100000

// maxReplyText bounds a server's words kept in a result.
const maxReplyText = 500

// CopyFilters reads the account's Sieve scripts from the source service
// (ManageSieve), rewrites the folders their fileinto rules name by the
// copy's folder map, installs them on the destination and activates the
// one active on the source. A script the destination refuses, or one with
// an auto-responder (vacation, refused by the platform as at preflight), is
// reported with the reason and not installed; nothing is dropped silently.
// Repeating it replaces the scripts with the same content: a retry is safe.
func (a *Activities) CopyFilters(ctx context.Context, in FiltersInput) (*FiltersResult, error) {
	if err := checkAddress(in.Address); err != nil {
		return nil, err
	}
	if in.From == "" || in.To == "" || in.From == in.To {
		return nil, permanent(ErrTypeBadInput, "filters of %s: source %q and destination %q must be two services", in.Address, in.From, in.To)
	}
	if len(in.Folders) > maxFoldersInInput {
		return nil, permanent(ErrTypeBadInput, "filters of %s: %d folders in the map, at most %d", in.Address, len(in.Folders), maxFoldersInInput)
	}
	sd, ok := a.Dir.(SieveDirectory)
	if !ok {
		return nil, permanent(ErrTypeConfig, "the directory cannot say where the services' ManageSieve servers are")
	}
	sep, err := a.sieveEndpoint(ctx, sd, in.From, in.Address)
	if errors.Is(err, errNoSieve) {
		return &FiltersResult{NotCarried: err.Error()}, nil
	}
	if err != nil {
		return nil, err
	}
	dep, err := a.sieveEndpoint(ctx, sd, in.To, in.Address)
	if errors.Is(err, errNoSieve) {
		return &FiltersResult{NotCarried: err.Error()}, nil
	}
	if err != nil {
		return nil, err
	}
	type script struct {
		sieve.Script
		body string
	}
	src, err := sieve.Dial(ctx, sep)
	if err != nil {
		return nil, fromSieve(err)
	}
	list, err := src.ListScripts()
	var scripts []script
	for i := 0; err == nil && i < len(list); i++ {
		var body string
		body, err = src.GetScript(list[i].Name)
		scripts = append(scripts, script{Script: list[i], body: body})
	}
	if err != nil {
		src.Close()
		return nil, fromSieve(err)
	}
	_ = src.Logout()
	sort.Slice(scripts, func(i, j int) bool { return scripts[i].Name < scripts[j].Name })

	dst, err := sieve.Dial(ctx, dep)
	if err != nil {
		return nil, fromSieve(err)
	}
	defer dst.Close()
	have, err := dst.ListScripts()
	if err != nil {
		return nil, fromSieve(err)
	}
	onDst := map[string]bool{}
	activeOnDst := ""
	for _, s := range have {
		onDst[s.Name] = true
		if s.Active {
			activeOnDst = s.Name
		}
	}
	rename := folderRenamer(in.Folders)
	res := &FiltersResult{}
	for _, s := range scripts {
		rep := ScriptReport{Name: s.Name, Active: s.Active}
		body, err := prepareScript(s.body, rename, &rep)
		if err == nil && rep.Refused == "" {
			err = install(dst, s.Name, body, onDst[s.Name], &rep)
		}
		if err != nil {
			return nil, fromSieve(err)
		}
		if rep.Installed {
			res.Installed++
		} else {
			res.Refused++
		}
		if s.Active && rep.Installed {
			if activeOnDst != s.Name {
				if err := dst.SetActive(s.Name); err != nil {
					return nil, fromSieve(err)
				}
			}
			res.Active = s.Name
		}
		res.Scripts = append(res.Scripts, rep)
	}
	_ = dst.Logout()
	a.log(ctx).Info("filters copied", zap.String("account", in.Address), zap.Int("scripts", len(scripts)),
		zap.Int("installed", res.Installed), zap.Int("refused", res.Refused), zap.String("active", res.Active))
	return res, nil
}

// FiltersCheckInput names the account whose filters preflight reads.
type FiltersCheckInput struct {
	Address string `json:"address"`
	From    string `json:"from"`
}

// CheckFilters is preflight's look at the account's Sieve filters on the
// source, read-only: an active script that sends automatic replies
// (vacation) is an auto-responder, which the platform refuses like the
// directory's (permanent RedirectionPresent, naming the script and line).
func (a *Activities) CheckFilters(ctx context.Context, in FiltersCheckInput) error {
	if err := checkAddress(in.Address); err != nil {
		return err
	}
	sd, ok := a.Dir.(SieveDirectory)
	if !ok {
		return permanent(ErrTypeConfig, "the directory cannot say where the services' ManageSieve servers are")
	}
	ep, err := a.sieveEndpoint(ctx, sd, in.From, in.Address)
	if errors.Is(err, errNoSieve) {
		return nil // nothing to read the filters from: nothing to refuse
	}
	if err != nil {
		return err
	}
	c, err := sieve.Dial(ctx, ep)
	if err != nil {
		return fromSieve(err)
	}
	defer c.Close()
	list, err := c.ListScripts()
	if err != nil {
		return fromSieve(err)
	}
	for _, s := range list {
		if !s.Active {
			continue
		}
		body, err := c.GetScript(s.Name)
		if err != nil {
			return fromSieve(err)
		}
		if sc, err := sieve.Parse(body); err == nil && sc.Vacation {
			return permanent(ErrTypeRedirection, "auto-responder: the active Sieve filter %q of %s sends automatic replies (vacation, line %d); the owner removes it, then the migration starts again", s.Name, in.Address, sc.VacationLine)
		}
	}
	_ = c.Logout()
	return nil
}

// prepareScript refuses an auto-responder and rewrites folder names,
// recording both in rep.
func prepareScript(body string, rename func(string) (string, bool), rep *ScriptReport) (string, error) {
	sc, err := sieve.Parse(body)
	if err != nil {
		// The source server accepted it, so it is valid Sieve this reader
		// does not follow: install it as written, and say so.
		rep.Note = fmt.Sprintf("folder names not rewritten (%v): installed as written", err)
		return body, nil
	}
	if sc.Vacation {
		rep.Refused = "auto-responder (vacation): the platform accepts no auto-responder; remove it from the script and migrate the filters again"
		return "", nil
	}
	var renamed []FolderRename
	seen := map[string]bool{}
	out, kept, err := sieve.Rewrite(body, func(f string) (string, bool) {
		to, ok := rename(f)
		if ok && to != f && !seen[f] {
			seen[f] = true
			renamed = append(renamed, FolderRename{From: f, To: to})
		}
		return to, ok
	})
	if err != nil {
		return "", err
	}
	rep.Renamed, rep.Unmapped = renamed, kept
	return out, nil
}

// install checks and stores one script. A refusal (NO) is recorded in rep
// with the server's words; other errors are returned.
func install(c *sieve.Client, name, body string, exists bool, rep *ScriptReport) error {
	if exists {
		if cur, err := c.GetScript(name); err == nil && cur == body {
			rep.Installed = true
			return nil
		} else if err != nil && !isNo(err) {
			return err
		}
	}
	var err error
	if c.CanCheck() {
		err = c.CheckScript(body)
	}
	if err == nil {
		err = c.PutScript(name, body)
	}
	var se *sieve.Error
	switch {
	case err == nil:
		rep.Installed = true
		return nil
	case errors.As(err, &se) && se.Type == "NO" && se.Code != "TRYLATER":
		rep.Refused = serverWords(se)
		return nil
	}
	return err
}

func isNo(err error) bool {
	var se *sieve.Error
	return errors.As(err, &se) && se.Type == "NO"
}

// serverWords is a refusal as the server put it, on one line and bounded.
func serverWords(se *sieve.Error) string {
	t := strings.Join(strings.Fields(se.Text), " ")
	if se.Code != "" {
		t = "(" + se.Code + ") " + t
	}
	if len(t) > maxReplyText {
		t = t[:maxReplyText] + "…"
	}
	return t
}

// folderRenamer maps a folder named in a script to the folder the copy
// put its messages in. INBOX is INBOX everywhere.
func folderRenamer(folders []FolderSummary) func(string) (string, bool) {
	m := make(map[string]string, len(folders))
	for _, f := range folders {
		m[f.Source] = f.Dest
	}
	return func(name string) (string, bool) {
		if strings.EqualFold(name, "INBOX") {
			return "INBOX", true
		}
		to, ok := m[name]
		return to, ok && to != ""
	}
}

// sieveEndpoint is how the migrator reaches address's scripts on a
// service: its ManageSieve server, TLS as the service's IMAP (STARTTLS:
// ManageSieve has no implicit TLS), logged in as the master user.
func (a *Activities) sieveEndpoint(ctx context.Context, sd SieveDirectory, serviceID, address string) (sieve.Endpoint, error) {
	sv, err := a.Dir.Service(ctx, serviceID)
	if err != nil {
		return sieve.Endpoint{}, err
	}
	ep, err := a.endpoint(sv, address)
	if err != nil {
		return sieve.Endpoint{}, err
	}
	addr, err := sd.SieveAddr(ctx, serviceID)
	if err != nil {
		return sieve.Endpoint{}, err
	}
	if addr == "" {
		return sieve.Endpoint{}, fmt.Errorf("service %q records no ManageSieve address: %w", serviceID, errNoSieve)
	}
	sec := sieve.SecurityStartTLS
	if sv.IMAPSecurity == "plain" {
		sec = sieve.SecurityPlain
	}
	host, _, _ := net.SplitHostPort(addr)
	return sieve.Endpoint{Addr: addr, Security: sec,
		TLSConfig: &tls.Config{InsecureSkipVerify: ep.InsecureSkipVerify, RootCAs: ep.RootCAs, ServerName: host, MinVersion: tls.VersionTLS12},
		User:      address, MasterUser: ep.MasterUser, MasterSep: ep.MasterSep, UseSASLAuthz: ep.UseSASLAuthz, Password: ep.Password}, nil
}

// fromSieve makes a refused login permanent; the rest (a cut connection,
// a busy server) stays retryable.
func fromSieve(err error) error {
	if errors.Is(err, sieve.ErrAuthFailed) {
		return permanent(ErrTypeAuth, "%v", err)
	}
	return err
}

// AliasesInput asks for the aliases delivering to an address to move with
// it to its destination service.
type AliasesInput struct {
	Address string `json:"address"`
	To      string `json:"to"`
}

// AliasesResult lists the aliases now on the destination service.
type AliasesResult struct {
	Aliases []string `json:"aliases,omitempty"`
}

// MoveAliases moves the aliases that deliver to the address to its
// destination service in the directory (audited under the workflow's ID;
// a retry moves nothing twice).
func (a *Activities) MoveAliases(ctx context.Context, in AliasesInput) (*AliasesResult, error) {
	if err := checkAddress(in.Address); err != nil {
		return nil, err
	}
	sd, ok := a.Dir.(SieveDirectory)
	if !ok {
		return nil, permanent(ErrTypeConfig, "the directory has no aliases")
	}
	moved, err := sd.MoveAliases(ctx, in.Address, in.To, activity.GetInfo(ctx).WorkflowExecution.ID)
	if err != nil {
		return nil, err
	}
	res := &AliasesResult{}
	for _, al := range moved {
		res.Aliases = append(res.Aliases, al.Alias)
	}
	return res, nil
}
