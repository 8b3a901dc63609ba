package etcdmember

import (
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// MachineAddrs is a Machine's name and the addresses of its InternalIP entries; a
// dual-stack Machine has several.
type MachineAddrs struct {
	Name        string
	InternalIPs []string
}

// Mapping says which members belong to which Machines. A member belongs to a Machine when
// a host in its peer URLs is one of the Machine's InternalIPs, compared as IP addresses:
// brackets, IPv4-mapped IPv6 forms and zones make no difference. Nothing is guessed: a
// member or Machine that cannot be placed with certainty is reported instead.
type Mapping struct {
	// MachineOf is the Machine of each member that matches exactly one Machine.
	MachineOf map[uint64]string
	// MembersOf lists, for each Machine, the IDs of the members MachineOf gives it, ascending.
	MembersOf map[string][]uint64
	// UnmatchedMembers match no Machine. Ascending.
	UnmatchedMembers []uint64
	// MachinesWithoutMember are Machines whose InternalIPs match no member's peer URL, not
	// even ambiguously. Sorted.
	MachinesWithoutMember []string
	// Conflicts are addresses shared by several Machines, and members matching several
	// Machines. The members involved are in neither MachineOf nor UnmatchedMembers.
	Conflicts []Conflict
	// Invalid describes addresses and peer URL hosts that are not IP addresses; they match
	// nothing.
	Invalid []string
}

// Conflict is a member-to-Machine match that is not unique. Address is set when several
// Machines list it; it is empty when one member matches several Machines through
// different addresses.
type Conflict struct {
	Address  string
	Machines []string
	Members  []uint64
}

func (c Conflict) String() string {
	if c.Address != "" {
		return fmt.Sprintf("address %s is an InternalIP of machines %s (members %s)", c.Address, strings.Join(c.Machines, ", "), hexIDs(c.Members))
	}
	return fmt.Sprintf("members %s match machines %s", hexIDs(c.Members), strings.Join(c.Machines, ", "))
}

// MapMachines maps members to Machines. The result does not depend on the order of the
// inputs.
func MapMachines(members []Member, machines []MachineAddrs) Mapping {
	out := Mapping{MachineOf: map[uint64]string{}, MembersOf: map[string][]uint64{}}
	owners := map[netip.Addr][]string{}
	for _, mc := range machines {
		for _, raw := range mc.InternalIPs {
			a, err := parseAddr(raw)
			if err != nil {
				out.Invalid = append(out.Invalid, fmt.Sprintf("machine %s: %v", mc.Name, err))
				continue
			}
			if !slices.Contains(owners[a], mc.Name) {
				owners[a] = append(owners[a], mc.Name)
			}
		}
	}

	shared := map[netip.Addr][]uint64{}
	for a, names := range owners {
		if len(names) > 1 {
			shared[a] = nil
		}
	}
	touched := map[string]bool{}
	for _, m := range members {
		found := map[string]bool{}
		ambiguous := false
		for _, pu := range m.PeerURLs {
			a, err := peerAddr(pu)
			if err != nil {
				out.Invalid = append(out.Invalid, fmt.Sprintf("member %s: %v", m, err))
				continue
			}
			for _, name := range owners[a] {
				found[name] = true
				touched[name] = true
			}
			if ids, ok := shared[a]; ok {
				ambiguous = true
				if !slices.Contains(ids, m.ID) {
					shared[a] = append(ids, m.ID)
				}
			}
		}
		switch {
		case ambiguous:
		case len(found) > 1:
			out.Conflicts = append(out.Conflicts, Conflict{Machines: slices.Sorted(maps.Keys(found)), Members: []uint64{m.ID}})
		case len(found) == 1:
			for name := range found {
				out.MachineOf[m.ID] = name
				out.MembersOf[name] = append(out.MembersOf[name], m.ID)
			}
		default:
			out.UnmatchedMembers = append(out.UnmatchedMembers, m.ID)
		}
	}
	for a, ids := range shared {
		slices.Sort(ids)
		names := slices.Clone(owners[a])
		slices.Sort(names)
		out.Conflicts = append(out.Conflicts, Conflict{Address: a.String(), Machines: names, Members: ids})
	}
	for _, mc := range machines {
		if !touched[mc.Name] && !slices.Contains(out.MachinesWithoutMember, mc.Name) {
			out.MachinesWithoutMember = append(out.MachinesWithoutMember, mc.Name)
		}
	}

	for _, ids := range out.MembersOf {
		slices.Sort(ids)
	}
	slices.Sort(out.UnmatchedMembers)
	slices.Sort(out.MachinesWithoutMember)
	slices.Sort(out.Invalid)
	slices.SortFunc(out.Conflicts, func(a, b Conflict) int {
		if c := strings.Compare(a.Address, b.Address); c != 0 {
			return c
		}
		if c := slices.Compare(a.Machines, b.Machines); c != 0 {
			return c
		}
		return slices.Compare(a.Members, b.Members)
	})
	return out
}

// parseAddr reads an IP address written with or without brackets and zone, and returns it
// without zone and with IPv4-mapped IPv6 unmapped.
func parseAddr(s string) (netip.Addr, error) {
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

func peerAddr(peerURL string) (netip.Addr, error) {
	u, err := url.Parse(peerURL)
	if err != nil || u.Host == "" {
		return netip.Addr{}, fmt.Errorf("peer URL %q has no host", peerURL)
	}
	a, err := parseAddr(u.Hostname())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("peer URL %q: %w", peerURL, err)
	}
	return a, nil
}

func hexIDs(ids []uint64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%x", id)
	}
	return strings.Join(parts, ", ")
}
