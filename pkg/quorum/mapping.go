package quorum

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// Address types as Machines report them in status.addresses.
const (
	AddressInternalIP  = "InternalIP"
	AddressExternalIP  = "ExternalIP"
	AddressInternalDNS = "InternalDNS"
	AddressExternalDNS = "ExternalDNS"
	AddressHostname    = "Hostname"
)

// Address is one entry of a Machine's status.addresses.
type Address struct {
	Type, Address string
}

// PlacementKind says how sure Map is of a member's Machine.
type PlacementKind string

// The kinds of placement.
const (
	Placed    PlacementKind = "Placed"
	Unmatched PlacementKind = "Unmatched"
	Ambiguous PlacementKind = "Ambiguous"
	Invalid   PlacementKind = "Invalid"
)

// Placement is where one member belongs, as Map found it.
type Placement struct {
	Kind PlacementKind
	// Machine is the one Machine the member belongs to; empty when Problem is set.
	Machine string
	// Candidates are every Machine some signal points at, sorted.
	Candidates []string
	// Problem says why the member is not accounted for: it matches no Machine, several, or
	// one of its peer URLs cannot be read. Empty for a member placed on exactly one Machine.
	Problem string
}

// Mapping says which members belong to which Machines.
type Mapping struct {
	// Of is the placement of every member, by ID.
	Of map[uint64]Placement
	// MemberOf is, for each Machine, the lowest ID of the members placed on it.
	MemberOf map[string]uint64
	// Claimed lists, for each Machine, every member any signal points at it, placed or not.
	Claimed map[string][]uint64
	// Shared are Machines that report an address another Machine reports too.
	Shared map[string]string
}

// Map places members on Machines by every signal the cluster gives, and guesses nothing:
//
//   - a peer URL whose host is an IP address matches the Machines that report that IP in
//     status.addresses (InternalIP or ExternalIP), compared as addresses: brackets, zones and
//     IPv4-mapped IPv6 forms make no difference;
//   - a peer URL whose host is a DNS name matches the Machines that report that name as an
//     InternalDNS, ExternalDNS or Hostname address, compared without case or a trailing dot;
//   - a started member's name matches the Machine whose status.nodeRef names a Node of that
//     name, as OpenShift names members after their Nodes.
//
// A member is placed only when every signal it gives points at the same single Machine. One
// that matches none, matches several (an address two Machines share, or signals that
// disagree), or has a peer URL that cannot be parsed is reported with the Problem, never
// placed. The result does not depend on the order of the inputs.
func Map(machines []Machine, members []Member) Mapping {
	out := Mapping{Of: map[uint64]Placement{}, MemberOf: map[string]uint64{}, Claimed: map[string][]uint64{}, Shared: map[string]string{}}
	byIP := map[netip.Addr][]string{}
	byDNS := map[string][]string{}
	byNode := map[string][]string{}
	add := func(idx map[string][]string, key, name string) {
		if !slices.Contains(idx[key], name) {
			idx[key] = append(idx[key], name)
		}
	}
	for _, m := range machines {
		for _, a := range m.Addresses {
			switch a.Type {
			case AddressInternalIP, AddressExternalIP:
				ip, err := ParseIP(a.Address)
				if err != nil {
					continue
				}
				if !slices.Contains(byIP[ip], m.Name) {
					byIP[ip] = append(byIP[ip], m.Name)
				}
			case AddressInternalDNS, AddressExternalDNS, AddressHostname:
				if h := dnsName(a.Address); h != "" {
					add(byDNS, h, m.Name)
				}
			}
		}
		if m.NodeName != "" {
			add(byNode, m.NodeName, m.Name)
		}
	}
	for ip, names := range byIP {
		if len(names) > 1 {
			for _, n := range names {
				out.Shared[n] = ip.String()
			}
		}
	}
	for h, names := range byDNS {
		if len(names) > 1 {
			for _, n := range names {
				out.Shared[n] = h
			}
		}
	}

	for _, mem := range members {
		found := map[string]bool{}
		var problems []string
		for _, pu := range mem.PeerURLs {
			host, err := peerHost(pu)
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			var names []string
			if ip, err := ParseIP(host); err == nil {
				names = byIP[ip]
			} else {
				names = byDNS[dnsName(host)]
			}
			if len(names) > 1 {
				problems = append(problems, fmt.Sprintf("peer URL %s is on an address that Machines %s share", pu, strings.Join(sorted(names), ", ")))
			}
			for _, n := range names {
				found[n] = true
			}
		}
		if len(mem.PeerURLs) == 0 {
			problems = append(problems, "it has no peer URL")
		}
		if mem.Name != "" {
			for _, n := range byNode[mem.Name] {
				found[n] = true
			}
		}
		p := Placement{}
		for n := range found {
			p.Candidates = append(p.Candidates, n)
		}
		slices.Sort(p.Candidates)
		for _, n := range p.Candidates {
			out.Claimed[n] = append(out.Claimed[n], mem.ID)
		}
		switch {
		case len(problems) > 0 && len(p.Candidates) > 1:
			p.Kind, p.Problem = Ambiguous, "it is ambiguous: "+strings.Join(problems, "; ")
		case len(problems) > 0:
			p.Kind, p.Problem = Invalid, strings.Join(problems, "; ")
		case len(p.Candidates) == 0:
			p.Kind, p.Problem = Unmatched, "it matches no Machine (no Machine reports its peer URL's host as an address, and no Machine's Node has its name)"
		case len(p.Candidates) > 1:
			p.Kind, p.Problem = Ambiguous, "it is ambiguous: its peer URLs and name point at Machines "+strings.Join(p.Candidates, ", ")
		default:
			p.Kind, p.Machine = Placed, p.Candidates[0]
			if cur, ok := out.MemberOf[p.Machine]; !ok || mem.ID < cur {
				out.MemberOf[p.Machine] = mem.ID
			}
		}
		out.Of[mem.ID] = p
	}
	for _, ids := range out.Claimed {
		slices.Sort(ids)
	}
	return out
}

// Accounted says the member is placed on exactly one Machine.
func (m Mapping) Accounted(id uint64) bool {
	p, ok := m.Of[id]
	return ok && p.Kind == Placed
}

// ParseIP reads an IP address written with or without brackets and zone, and returns it
// without zone and with IPv4-mapped IPv6 unmapped.
func ParseIP(s string) (netip.Addr, error) {
	h := strings.TrimSpace(s)
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	return a.WithZone("").Unmap(), nil
}

// peerHost is the host of a peer URL, which must be an absolute URL with a host and, if the
// host is not an IP address, a valid DNS name.
func peerHost(peerURL string) (string, error) {
	u, err := url.Parse(peerURL)
	if err != nil || u.Scheme == "" || u.Hostname() == "" {
		return "", fmt.Errorf("peer URL %q cannot be parsed", peerURL)
	}
	h := u.Hostname()
	if _, err := ParseIP(h); err == nil {
		return h, nil
	}
	if dnsName(h) == "" {
		return "", fmt.Errorf("peer URL %q has a host that is neither an IP address nor a DNS name", peerURL)
	}
	return h, nil
}

// dnsName is the lower-case name without a trailing dot, or "" if s is not a DNS name.
func dnsName(s string) string {
	h := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	if h == "" || len(h) > 253 {
		return ""
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return ""
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return ""
			}
		}
	}
	return h
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
