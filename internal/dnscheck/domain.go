package dnscheck

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Mailbox is where one address of a domain receives its mail.
type Mailbox struct {
	Address string
	Service string
	// Routed: the directory holds a route of the address to Service.
	Routed bool
}

// MailService is what the domain rule knows of a service.
type MailService struct {
	ID  string
	Req Requirements
	// FollowsRoutes: the service's MX hosts deliver every routed address to
	// its route's service and every other address to the service's own
	// mailboxes. The MX Plan platform's MTA does: the directory's routes
	// are its transport map, and an address without a route is its own.
	FollowsRoutes bool
}

// ServiceBoxes are the addresses of a domain on one service.
type ServiceBoxes struct {
	Service   string   `json:"service"`
	Addresses []string `json:"addresses"`
}

// Needs are the records a domain needs, computed from where every one of
// its addresses receives its mail.
type Needs struct {
	Domain  string
	Records []Record
	// Services lists the domain's services by ID, each with its addresses.
	Services []ServiceBoxes
	// MXFrom is the service whose MX set the domain gets ("" for none).
	MXFrom string
	// Held: no one MX reaches every address, so no record is set or
	// checked (Records is empty) and the domain's DNS stays as it is; Note
	// says why.
	Held bool
	// Note explains the records of a domain split between services (or
	// why there are none); empty when one service holds every address.
	Note string
}

// Split tells whether the domain's addresses are on more than one service.
func (n *Needs) Split() bool { return len(n.Services) > 1 }

// ServiceError is a service whose definition the rule cannot use.
type ServiceError struct {
	Service string
	Err     error
}

func (e *ServiceError) Error() string { return fmt.Sprintf("service %q: %v", e.Service, e.Err) }

// Unwrap returns the field error (an ErrBadService).
func (e *ServiceError) Unwrap() error { return e.Err }

// DomainNeeds is the one rule for a domain's records; the routing switch,
// the DNS check, the dns command and the plan's dry run all apply it.
//
//   - Every address on one service: that service's records.
//   - Addresses on several services: the records that serve all of them
//     when one MX reaches every address. A service's MX reaches its own
//     addresses, those of a service with the same MX set, and — when it
//     follows routes (MX Plan) — every routed address. The domain then gets
//     that MX set, one SPF record including every service's senders (each
//     address sends through its own service), and the autodiscover CNAME
//     only when every service names the same target (a name has one CNAME;
//     otherwise it is left as it is).
//   - Otherwise no record at all (Held): setting one service's MX would
//     take the mail of the others away. The domain's DNS stays as it is;
//     each address's route in the directory still says where its mail goes.
//
// Any service in boxes that is missing from services, or whose
// requirements are bad, is a *ServiceError wrapping ErrBadService.
func DomainNeeds(domain string, boxes []Mailbox, services map[string]MailService) (*Needs, error) {
	fqdn, err := Normalize(domain)
	if err != nil {
		return nil, err
	}
	n := &Needs{Domain: fqdn}
	byService := map[string][]Mailbox{}
	for _, b := range boxes {
		byService[b.Service] = append(byService[b.Service], b)
	}
	parsedOf := map[string]parsed{}
	for id, bs := range byService {
		sv, ok := services[id]
		if !ok {
			return nil, &ServiceError{id, fmt.Errorf("not in the directory: %w", ErrBadService)}
		}
		p, err := sv.Req.parse()
		if err != nil {
			return nil, &ServiceError{id, err}
		}
		parsedOf[id] = p
		var addrs []string
		for _, b := range bs {
			addrs = append(addrs, b.Address)
		}
		sort.Strings(addrs)
		n.Services = append(n.Services, ServiceBoxes{Service: id, Addresses: addrs})
	}
	sort.Slice(n.Services, func(i, j int) bool { return n.Services[i].Service < n.Services[j].Service })
	switch len(n.Services) {
	case 0:
		n.Held = true
		n.Note = fmt.Sprintf("%s has no account in the directory: no record to set", strings.TrimSuffix(fqdn, "."))
		return n, nil
	case 1:
		id := n.Services[0].Service
		n.Records = records(fqdn, parsedOf[id], []string{parsedOf[id].spf}, parsedOf[id].autodiscover)
		if len(parsedOf[id].mx) > 0 {
			n.MXFrom = id
		}
		return n, nil
	}

	// Which services' MX reaches every address, and do they agree?
	var from []string
	sets := map[string]bool{}
	for _, sb := range n.Services {
		x := sb.Service
		if len(parsedOf[x].mx) == 0 {
			continue
		}
		all := true
		for _, b := range boxes {
			reached := b.Service == x || mxKey(parsedOf[b.Service].mx) == mxKey(parsedOf[x].mx) ||
				(services[x].FollowsRoutes && b.Routed)
			all = all && reached
		}
		if all {
			from = append(from, x)
			sets[mxKey(parsedOf[x].mx)] = true
		}
	}
	who := n.who()
	if len(sets) != 1 {
		n.Held = true
		why := "no service's MX reaches every address"
		if len(sets) > 1 {
			why = fmt.Sprintf("the MX sets of %s each reach every address and differ", strings.Join(from, " and "))
		}
		n.Note = fmt.Sprintf("%s is split between services (%s) and %s: its DNS is left as it is, each address's route in the directory still delivers its mail; the records are set once its accounts are on one service",
			strings.TrimSuffix(fqdn, "."), who, why)
		return n, nil
	}
	n.MXFrom = from[0]
	// The MX's own service first, then the others by ID.
	spf := []string{parsedOf[n.MXFrom].spf}
	targets := map[string]bool{}
	for _, sb := range n.Services {
		spf = append(spf, parsedOf[sb.Service].spf)
		targets[parsedOf[sb.Service].autodiscover] = true
	}
	autodiscover := ""
	adNote := ""
	if len(targets) == 1 {
		autodiscover = parsedOf[n.MXFrom].autodiscover
	} else {
		adNote = "; autodiscover is left as it is (the services name different targets, a name has one CNAME)"
	}
	n.Records = records(fqdn, parsedOf[n.MXFrom], spf, autodiscover)
	n.Note = fmt.Sprintf("%s is split between services (%s): the MX of %s reaches every address", strings.TrimSuffix(fqdn, "."), who, n.MXFrom)
	if services[n.MXFrom].FollowsRoutes {
		n.Note += " (it delivers each routed address to its service)"
	}
	n.Note += "; the SPF record includes every service's senders" + adNote
	return n, nil
}

// who lists the services and their addresses: "a@x, b@x on mxplan-1; c@x
// on emailpro-1".
func (n *Needs) who() string {
	var parts []string
	for _, sb := range n.Services {
		parts = append(parts, strings.Join(sb.Addresses, ", ")+" on "+sb.Service)
	}
	return strings.Join(parts, "; ")
}

// records are the records of an MX set, SPF includes (once each, in order)
// and an autodiscover target.
func records(fqdn string, p parsed, spf []string, autodiscover string) []Record {
	var out []Record
	for _, mx := range p.mx {
		out = append(out, Record{Type: TypeMX, Name: fqdn, Value: mx.String()})
	}
	seen := map[string]bool{}
	for _, inc := range spf {
		if inc != "" && !seen[inc] {
			seen[inc] = true
			out = append(out, Record{Type: TypeSPF, Name: fqdn, Value: inc})
		}
	}
	if autodiscover != "" {
		out = append(out, Record{Type: TypeCNAME, Name: "autodiscover." + fqdn, Value: autodiscover})
	}
	return out
}

// mxKey identifies an MX set whatever its order.
func mxKey(mx []MX) string {
	var s []string
	for _, m := range mx {
		s = append(s, m.String())
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

// IsBadService tells whether err comes from a bad service definition, and
// names the service when it is known.
func IsBadService(err error) (service string, ok bool) {
	var se *ServiceError
	if errors.As(err, &se) {
		return se.Service, true
	}
	return "", errors.Is(err, ErrBadService)
}
