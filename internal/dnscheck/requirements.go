package dnscheck

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

// ErrBadService marks a service definition whose DNS requirements cannot be
// turned into records: retrying cannot fix it, only correcting the service.
var ErrBadService = errors.New("bad service definition")

// FieldError is one bad field of a service's requirements. Field is spelled
// as in the directory's service definition (mx, spfInclude, autodiscover).
type FieldError struct {
	Field  string
	Value  string
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Reason)
}

// Unwrap makes every FieldError an ErrBadService.
func (e *FieldError) Unwrap() error { return ErrBadService }

// MX is one exchanger of a service's MX set.
type MX struct {
	Preference uint16
	// Host is a lower-case FQDN.
	Host string
}

// String is the MX in the form of Record.Value ("10 mx1.example.net.").
func (m MX) String() string { return strconv.Itoa(int(m.Preference)) + " " + m.Host }

// ParseMX reads a service's MX set: "preference host" pairs separated by
// commas. Each host is a host name (no address, no trailing junk) given
// once; an empty set is no MX at all.
func ParseMX(s string) ([]MX, error) {
	var out []MX
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			if strings.TrimSpace(s) != "" {
				return nil, &FieldError{"mx", s, "an empty entry between commas"}
			}
			continue
		}
		f := strings.Fields(part)
		if len(f) != 2 {
			return nil, &FieldError{"mx", part, `want "preference host", like "10 mx1.example.net"`}
		}
		pref, err := strconv.ParseUint(f[0], 10, 16)
		if err != nil {
			return nil, &FieldError{"mx", part, "the preference must be a number from 0 to 65535"}
		}
		host, err := HostName(f[1], false)
		if err != nil {
			return nil, &FieldError{"mx", part, err.Error()}
		}
		if seen[host] {
			return nil, &FieldError{"mx", s, fmt.Sprintf("host %s is listed twice", host)}
		}
		seen[host] = true
		out = append(out, MX{Preference: uint16(pref), Host: host})
	}
	return out, nil
}

// HostName checks a name that goes into a DNS record as a target or an SPF
// include and returns it as a lower-case FQDN: only letters, digits and
// hyphens (and underscores when underscore is set: SPF includes such as
// _spf.example.net use them), labels of 1 to 63 bytes not beginning or
// ending with a hyphen, at least two labels, at most 253 bytes. A Unicode
// name is taken in its A-label form. Anything else — spaces, quotes, SPF
// mechanisms or qualifiers, macros, an address — is refused, so a service
// definition can never smuggle text into a zone.
func HostName(s string, underscore bool) (string, error) {
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return "", errors.New("empty host name")
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		for _, r := range l {
			if r > 0x7e {
				a, err := idna.Lookup.ToASCII(l)
				if err != nil {
					return "", fmt.Errorf("not a valid host name: %v", err)
				}
				labels[i] = a
				break
			}
		}
	}
	name = strings.ToLower(strings.Join(labels, "."))
	if len(name) > 253 {
		return "", fmt.Errorf("%d bytes long; a host name has at most 253", len(name))
	}
	labels = strings.Split(name, ".")
	if len(labels) < 2 {
		return "", errors.New("a single label; want a full host name like mx1.example.net")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", errors.New("an empty label or one over 63 bytes")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("label %q begins or ends with a hyphen", l)
		}
		for _, r := range l {
			ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || (underscore && r == '_')
			if !ok {
				return "", fmt.Errorf("character %q is not allowed in a host name (only the name, no SPF mechanism, qualifier, space or quote)", r)
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", errors.New("an address, not a host name (the last label is all digits)")
	}
	return dns.Fqdn(name), nil
}

// Validate checks every field of the requirements; the error is a
// *FieldError naming the first bad one.
func (r Requirements) Validate() error {
	_, err := r.parse()
	return err
}

// parsed requirements: FQDNs, the SPF include without its trailing dot (as
// it is written after "include:").
type parsed struct {
	mx           []MX
	spf          string
	autodiscover string
}

func (r Requirements) parse() (parsed, error) {
	var p parsed
	var err error
	if p.mx, err = ParseMX(r.MX); err != nil {
		return p, err
	}
	if r.SPFInclude != "" {
		h, err := HostName(r.SPFInclude, true)
		if err != nil {
			return p, &FieldError{"spfInclude", r.SPFInclude, err.Error()}
		}
		p.spf = strings.TrimSuffix(h, ".")
	}
	if r.Autodiscover != "" {
		h, err := HostName(r.Autodiscover, false)
		if err != nil {
			return p, &FieldError{"autodiscover", r.Autodiscover, err.Error()}
		}
		p.autodiscover = h
	}
	return p, nil
}
