package failuredomain

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// IndexOf returns a Machine's index: the number after the last "-" of its
// name, as in "cluster-abcde-master-2".
func IndexOf(machineName string) (int, error) {
	bad := func(detail string) error {
		return fieldErr(describe("Machine", "", machineName), "metadata.name", ErrInvalid, "%s", detail)
	}
	i := strings.LastIndexByte(machineName, '-')
	if i < 0 {
		return 0, bad("the name has no \"-<index>\" suffix")
	}
	s := machineName[i+1:]
	if s == "" || len(s) > 9 {
		return 0, bad("the part after the last \"-\" is not an index")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, bad("the part after the last \"-\" is not an index")
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, bad(err.Error())
	}
	return n, nil
}

// Machine is what Place needs to know about one control-plane Machine.
type Machine struct {
	Name  string
	Index int
	// Domain is the Key of the listed domain the Machine is in, or "" when
	// its providerSpec matches no listed domain. A name missing from
	// Input.Domains is a domain that is no longer listed.
	Domain   string
	Deleting bool
	Ready    bool
}

// MaxReplicas bounds Input.Replicas, so that a corrupt value cannot make
// Place allocate without limit. Control planes have 3 or 5.
const MaxReplicas = 1000

// Input is everything Place decides on.
type Input struct {
	Replicas int
	// Domains are the Keys of the listed failure domains, in any order.
	Domains  []string
	Machines []Machine
}

// Move says that an index needs a Machine in another domain.
type Move struct {
	Index int
	// Machine is the Machine to replace, "" when the index has none. When
	// several stand for the index, it is the first by name.
	Machine string
	// From is the listed domain the Machine is in, or what its Domain said
	// when that is not a listed domain; "" when unknown or when there is no
	// Machine.
	From   string
	To     string
	Reason string
}

// Placement is Place's decision.
type Placement struct {
	// Indexes are the indexes the set should have, ascending.
	Indexes []int
	// Targets is the domain each index belongs in, "" for every index when
	// no domains are listed.
	Targets map[int]string
	// Reasons says, for every index, why it belongs where Targets says.
	Reasons map[int]string
	// Moves are the indexes whose Machines are not in their target domain,
	// in the order to carry them out. See the package documentation.
	Moves []Move
}

// indexState is one desired index and the Machines that stand for it.
type indexState struct {
	index int
	// occupants are the non-deleting Machines with this index or, when there
	// are none, the deleting ones; sorted by name.
	occupants []Machine
	// options are the positions, in the sorted domain list, of the listed
	// domains the occupants are in. An index whose Machines are all deleting
	// has none: it holds no domain (see Place).
	options []int
	// onlyDeleting is set when every Machine at the index is deleting; was
	// then lists the domains those Machines are in.
	onlyDeleting bool
	was          []int
	anyReady     bool
}

// Place decides the target domain of every index and the moves to get there.
//
// Balance: with n indexes and k domains every domain ends with n/k or n/k+1
// indexes (integer division), and n%k domains have the larger share. For
// 5 machines in 3 domains that is 2, 2, 1; for 3 in 2 it is 2, 1.
//
// Fewest moves: an index keeps its domain whenever balance allows, and Place
// changes as few indexes as any balanced layout can. It finds them in three
// steps:
//
//  1. Each domain keeps up to n/k of the indexes already in it, lowest
//     indexes first. (Matching, so an index with Machines in two domains
//     during a replacement keeps whichever of them has room.)
//  2. The n%k larger shares go, alphabetically, to domains that still hold
//     an index step 1 could not keep; that domain keeps the lowest such
//     index. A domain gets a larger share here only if it saves a move.
//  3. Every index left (new, unknown domain, unlisted domain, or in a domain
//     over its share), lowest first, goes to the domain holding the fewest
//     indexes at that point, alphabetically first among equals. The larger
//     shares not given out in step 2 are given out here.
//
// With one Machine per index, step 1 keeps sum(min(c_d, n/k)) indexes, where
// c_d is what domain d holds, and step 2 keeps min(n%k, number of domains
// with c_d > n/k) more; no balanced layout keeps more. (With several Machines
// at an index, steps 1 and 2 are a maximum matching and the same holds.) Example: a, b, a with domain c added: n/k = 1,
// no larger shares; a keeps index 0, b keeps 1, index 2 moves to c. The same
// three Machines with only a and b listed: shares 2 and 1; a keeps 0, b keeps
// 1, a takes the larger share because it saves moving index 2: no moves.
// With nothing in place (a fresh set) step 3 alone lays out a, b, c, a, b.
//
// The operator's rule: the three steps give the counts and the fewest moves,
// but when the ControlPlaneMachineSet operator's mapping of the same indexes
// (see operatorLayout) is balanced and moves no more, Place takes it instead,
// so that both agree on which index moves and where. Example: Machines 0 to 4
// in c, c, c, a, b with domains a, b, c. Step 1 keeps 0 in c, 3 in a, 4 in b;
// step 2 gives c its larger share for index 1; step 3 sends index 2 to a. The
// operator's slots are a, b, c, a, b; index 0 claims the c at 2 (so 2 holds
// a), 3 claims a, 4 claims the b at 1 (so 1 holds b); walking 1 and 2, index
// 1 moves to b because c holds 3 > ceil(5/3), and index 2 stays because c
// then holds 2. Place moves index 1 to b. When the operator's layout fails
// (for 5 Machines in a, a, b, b, c with d added, ceil(5/4) = 2 lets it leave
// d empty) the three steps decide.
//
// Deleting Machines: a deleting Machine that shares its index with a
// non-deleting one is being replaced by it and is ignored, otherwise both
// would count and the domain would look over-used. An index whose Machines
// are all deleting holds no domain either: it is placed in step 3 like a new
// index, so its replacement goes where balance needs a Machine and no live
// Machine moves for it; among equally used domains it prefers the one it was
// in, and landing there is not a move. Example: domains a, b, c and Machines
// 0 (deleting), 1 and 2, all in a: a keeps 1, index 0 goes to b and index 2
// to c. Had the deleting Machine kept index 0 in a, both live Machines would
// have to move, and under OnDelete (where only deleted Machines are
// replaced) all three would stay in a.
func Place(in Input) (Placement, error) {
	if in.Replicas < 0 || in.Replicas > MaxReplicas {
		return Placement{}, fmt.Errorf("%w: replicas is %d, want 0 to %d", ErrInvalidInput, in.Replicas, MaxReplicas)
	}
	domains := slices.Clone(in.Domains)
	slices.Sort(domains)
	pos := make(map[string]int, len(domains))
	for i, d := range domains {
		if d == "" {
			return Placement{}, fmt.Errorf("%w: a listed failure domain has an empty name", ErrInvalidInput)
		}
		if i > 0 && domains[i-1] == d {
			return Placement{}, fmt.Errorf("%w: failure domain %q is listed twice", ErrInvalidInput, d)
		}
		pos[d] = i
	}

	byIndex := map[int][]Machine{}
	names := map[string]bool{}
	for _, m := range in.Machines {
		if m.Name == "" {
			return Placement{}, fmt.Errorf("%w: a Machine with index %d has no name", ErrInvalidInput, m.Index)
		}
		if names[m.Name] {
			return Placement{}, fmt.Errorf("%w: Machine %s is listed twice", ErrInvalidInput, m.Name)
		}
		names[m.Name] = true
		if m.Index < 0 {
			return Placement{}, fmt.Errorf("%w: Machine %s has negative index %d", ErrInvalidInput, m.Name, m.Index)
		}
		byIndex[m.Index] = append(byIndex[m.Index], m)
	}

	indexes := make([]int, 0, max(in.Replicas, len(byIndex)))
	for i := range byIndex {
		indexes = append(indexes, i)
	}
	slices.Sort(indexes)
	if len(indexes) > in.Replicas {
		return Placement{}, &TooManyIndexesError{Replicas: in.Replicas, Indexes: indexes}
	}
	for i := 0; len(indexes) < in.Replicas; i++ {
		if _, used := byIndex[i]; !used {
			indexes = append(indexes, i)
		}
	}
	slices.Sort(indexes)

	states := make([]indexState, len(indexes))
	for p, idx := range indexes {
		st := indexState{index: idx}
		all := byIndex[idx]
		for _, m := range all {
			if !m.Deleting {
				st.occupants = append(st.occupants, m)
			}
		}
		if len(st.occupants) == 0 && len(all) > 0 {
			st.occupants = all
			st.onlyDeleting = true
		}
		slices.SortFunc(st.occupants, func(a, b Machine) int { return strings.Compare(a.Name, b.Name) })
		for _, m := range st.occupants {
			held := &st.options
			if st.onlyDeleting {
				held = &st.was
			}
			if d, ok := pos[m.Domain]; ok && !slices.Contains(*held, d) {
				*held = append(*held, d)
			}
			st.anyReady = st.anyReady || (m.Ready && !m.Deleting)
		}
		slices.Sort(st.options)
		slices.Sort(st.was)
		states[p] = st
	}

	out := Placement{
		Indexes: indexes,
		Targets: make(map[int]string, len(indexes)),
		Reasons: make(map[int]string, len(indexes)),
	}
	if len(domains) == 0 {
		for _, idx := range indexes {
			out.Targets[idx] = ""
			out.Reasons[idx] = fmt.Sprintf("index %d has no placement constraint: no failure domains are listed", idx)
		}
		return out, nil
	}

	s := newSolver(len(domains), states)
	s.run()
	s.follow(operatorLayout(len(domains), states))
	explain(&out, domains, states, s)
	return out, nil
}

// solver assigns index positions to domain positions, keeping the invariant
// documented on Place.
type solver struct {
	k, share, larger int
	states           []indexState
	capacity         []int
	load             []int
	holders          [][]int // index positions per domain, ascending
	assigned         []int   // domain position per index position, -1 when none
	kept             []bool  // assigned in steps 1-2, to a domain it is in
}

func newSolver(k int, states []indexState) *solver {
	n := len(states)
	s := &solver{
		k: k, share: n / k, larger: n % k, states: states,
		capacity: make([]int, k), load: make([]int, k), holders: make([][]int, k),
		assigned: make([]int, n), kept: make([]bool, n),
	}
	for d := range s.capacity {
		s.capacity[d] = s.share
	}
	for p := range s.assigned {
		s.assigned[p] = -1
	}
	return s
}

func (s *solver) run() {
	// Step 1: keep up to share per domain, lowest indexes first.
	for p := range s.states {
		if len(s.states[p].options) > 0 {
			s.augment(p, make([]bool, s.k))
		}
	}
	// Step 2: larger shares, alphabetically, to domains where they save a move.
	left := s.larger
	for d := 0; d < s.k && left > 0; d++ {
		s.capacity[d]++
		placed := false
		for p := range s.states {
			if s.assigned[p] < 0 && len(s.states[p].options) > 0 && s.augment(p, make([]bool, s.k)) {
				placed = true
				break
			}
		}
		if placed && s.load[d] == s.capacity[d] {
			left--
		} else {
			s.capacity[d]--
		}
	}
	for p := range s.states {
		s.kept[p] = s.assigned[p] >= 0
	}
	// Step 3: everything else, lowest index first, to the least-used domain.
	for p := range s.states {
		if s.assigned[p] >= 0 {
			continue
		}
		best := -1
		was := s.states[p].was
		for d := 0; d < s.k; d++ {
			room := s.load[d] < s.capacity[d] || (s.capacity[d] == s.share && left > 0)
			better := best < 0 || s.load[d] < s.load[best] ||
				(s.load[d] == s.load[best] && slices.Contains(was, d) && !slices.Contains(was, best))
			if room && better {
				best = d
			}
		}
		if best < 0 {
			// Unreachable: the capacities add up to n.
			best = 0
		}
		if s.load[best] == s.capacity[best] {
			s.capacity[best]++
			left--
		}
		s.assign(p, best)
		// A replacement going back to the domain its deleting Machine is in
		// does not move anything.
		s.kept[p] = slices.Contains(was, best)
	}
}

// augment finds room for index position p in one of the domains it is
// already in, moving other kept indexes between domains they are already in
// if that makes room. It never un-keeps an index.
func (s *solver) augment(p int, seen []bool) bool {
	for _, d := range s.states[p].options {
		if seen[d] {
			continue
		}
		seen[d] = true
		if s.load[d] < s.capacity[d] {
			s.assign(p, d)
			return true
		}
		for _, q := range slices.Clone(s.holders[d]) {
			if s.augment(q, seen) {
				s.assign(p, d)
				return true
			}
		}
	}
	return false
}

func (s *solver) assign(p, d int) {
	if old := s.assigned[p]; old >= 0 {
		s.load[old]--
		s.holders[old] = slices.DeleteFunc(s.holders[old], func(q int) bool { return q == p })
	}
	s.assigned[p] = d
	s.load[d]++
	s.holders[d] = append(s.holders[d], p)
	slices.Sort(s.holders[d])
}

// explain fills targets, reasons and moves. Moves are ordered: first indexes
// with no usable Machine (none at all, or only a deleting one), then indexes
// whose Machines are not ready, then the rest; lowest index first in each.
func explain(out *Placement, domains []string, states []indexState, s *solver) {
	n := len(states)
	held := make([]int, len(domains))
	for _, st := range states {
		for _, d := range st.options {
			held[d]++
		}
	}
	running := make([]int, len(domains))
	movedIn := make([]int, len(domains))
	for p := range states {
		if s.kept[p] {
			running[s.assigned[p]]++
		}
	}
	countOf := func(c int) string {
		if c == 0 {
			return "none"
		}
		return fmt.Sprintf("%d of %d machines", c, n)
	}

	type ordered struct {
		group int
		move  Move
	}
	var moves []ordered
	for p, st := range states {
		d := s.assigned[p]
		to := domains[d]
		out.Targets[st.index] = to
		if s.kept[p] {
			why := fmt.Sprintf("index %d stays in %s: it fits %s's share of %d of %d machines", st.index, to, to, s.capacity[d], n)
			if st.onlyDeleting {
				why += fmt.Sprintf("; the replacement of deleting Machine %s goes there", st.occupants[0].Name)
			}
			out.Reasons[st.index] = why
			continue
		}

		mv := Move{Index: st.index, To: to}
		var why string
		switch {
		case len(st.occupants) == 0:
			why = fmt.Sprintf("index %d has no Machine; its new Machine goes to %s", st.index, to)
		default:
			m := st.occupants[0]
			mv.Machine = m.Name
			mv.From = m.Domain
			from, listed := 0, false
			if m.Domain != "" {
				from, listed = slices.BinarySearch(domains, m.Domain)
			}
			switch {
			case m.Domain == "":
				why = fmt.Sprintf("index %d moves to %s: Machine %s is in no listed failure domain", st.index, to, m.Name)
			case !listed:
				why = fmt.Sprintf("index %d moves from %s to %s: %s is not a listed failure domain", st.index, m.Domain, to, m.Domain)
			default:
				why = fmt.Sprintf("index %d moves from %s to %s: %s holds %s, more than its share of %d",
					st.index, m.Domain, to, m.Domain, countOf(held[from]), s.capacity[from])
			}
			if st.onlyDeleting {
				why += fmt.Sprintf(" (Machine %s is deleting)", m.Name)
			}
		}
		why += fmt.Sprintf("; %s holds %s", to, countOf(running[d]))
		if movedIn[d] > 0 {
			why += " counting the moves of lower indexes"
		}
		running[d]++
		movedIn[d]++
		mv.Reason = why
		out.Reasons[st.index] = why

		group := 2
		switch {
		case len(st.occupants) == 0 || st.onlyDeleting:
			group = 0
		case !st.anyReady:
			group = 1
		}
		moves = append(moves, ordered{group: group, move: mv})
	}
	slices.SortStableFunc(moves, func(a, b ordered) int {
		if a.group != b.group {
			return a.group - b.group
		}
		return a.move.Index - b.move.Index
	})
	for _, m := range moves {
		out.Moves = append(out.Moves, m.move)
	}
}

// operatorLayout is the domain position of every index position as the
// ControlPlaneMachineSet operator's reconcileMappings would map the same
// indexes (pkg/machineproviders/providers/openshift/machine/v1beta1/mapping.go
// in openshift/cluster-control-plane-machine-set-operator):
//
//   - Slots: the domains in use by any Machine come first, then the others,
//     alphabetically within each group, dealt round-robin over 0..n-1. An
//     index at or above n takes the slot of the lowest index below n that is
//     not in the set, in ascending order.
//   - Matching: indexes with a live Machine, ascending, each claim the lowest
//     unclaimed slot of a domain it is in, swapping that slot's domain with
//     the one at its own index.
//   - The rest, ascending: an index with no Machine, or with none in a listed
//     domain, takes the domain of the slot at its own index. So does one
//     whose domain holds more than ceil(n/k) indexes at that point; an index
//     in a domain within that bound keeps it.
//
// So in a domain over its share the lowest indexes the slots allow stay, the
// lowest of the rest move, and the highest that still fit stay too.
func operatorLayout(k int, states []indexState) []int {
	n := len(states)
	if n == 0 || k == 0 {
		return nil
	}
	inUse := make([]bool, k)
	for _, st := range states {
		for _, d := range st.options {
			inUse[d] = true
		}
		for _, d := range st.was {
			inUse[d] = true
		}
	}
	order := make([]int, 0, k)
	for _, used := range []bool{true, false} {
		for d := range k {
			if inUse[d] == used {
				order = append(order, d)
			}
		}
	}

	slot := make([]int, n)
	inSet := make(map[int]bool, n)
	for _, st := range states {
		inSet[st.index] = true
	}
	var spare []int
	for i := range n {
		if !inSet[i] {
			spare = append(spare, order[i%k])
		}
	}
	for p, st := range states {
		if st.index < n {
			slot[p] = order[st.index%k]
		} else {
			slot[p], spare = spare[0], spare[1:]
		}
	}

	// current is the domain an index is in as the walk goes; -1 for none.
	current := make([]int, n)
	open := make([]bool, n)
	for p, st := range states {
		open[p] = true
		current[p] = -1
		if len(st.options) > 0 {
			current[p] = st.options[0]
		} else if len(st.was) > 0 {
			current[p] = st.was[0]
		}
	}
	for p, st := range states {
		if st.onlyDeleting || len(st.options) == 0 {
			continue
		}
		for q := range states {
			if open[q] && slices.Contains(st.options, slot[q]) {
				slot[p], slot[q] = slot[q], slot[p]
				current[p] = slot[p]
				open[p] = false
				break
			}
		}
	}
	limit := (n + min(n, k) - 1) / min(n, k)
	count := func(d int) int {
		c := 0
		for _, e := range current {
			if e == d {
				c++
			}
		}
		return c
	}
	for p := range states {
		if !open[p] {
			continue
		}
		if current[p] < 0 || count(current[p]) > limit {
			current[p] = slot[p]
		}
		open[p] = false
	}
	return current
}

// follow replaces the solver's layout with layout when layout is as good:
// balanced, and changing no more indexes than the solver's. Otherwise, as
// when a domain is added and the operator's bound of ceil(n/k) leaves it
// empty, the solver's layout stands.
func (s *solver) follow(layout []int) {
	if len(layout) != len(s.states) || len(layout) == 0 {
		return
	}
	load := make([]int, s.k)
	for _, d := range layout {
		load[d]++
	}
	if slices.Max(load)-slices.Min(load) > 1 {
		return
	}
	changes := func(at func(p int) int) int {
		c := 0
		for p, st := range s.states {
			if !slices.Contains(st.options, at(p)) {
				c++
			}
		}
		return c
	}
	if changes(func(p int) int { return layout[p] }) > changes(func(p int) int { return s.assigned[p] }) {
		return
	}
	for p := range s.states {
		s.assign(p, layout[p])
		s.kept[p] = slices.Contains(s.states[p].options, layout[p]) ||
			(s.states[p].onlyDeleting && slices.Contains(s.states[p].was, layout[p]))
	}
	for d := range s.capacity {
		s.capacity[d] = s.load[d]
	}
}
