package failuredomain

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// checkPlacement checks got against the rules Place promises, computed
// afresh from in. With bruteForce set and a small enough input it also
// checks, by trying every balanced layout, that no layout needs fewer moves.
func checkPlacement(in Input, got Placement, bruteForce bool) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	listed := map[string]bool{}
	for _, d := range in.Domains {
		listed[d] = true
	}
	byIndex := map[int][]Machine{}
	for _, mc := range in.Machines {
		byIndex[mc.Index] = append(byIndex[mc.Index], mc)
	}
	var want []int
	for i := range byIndex {
		want = append(want, i)
	}
	for i := 0; len(want) < in.Replicas; i++ {
		if _, ok := byIndex[i]; !ok {
			want = append(want, i)
		}
	}
	slices.Sort(want)
	if !slices.Equal(got.Indexes, want) {
		bad("indexes = %v, want %v", got.Indexes, want)
		return problems
	}
	if len(got.Targets) != len(want) || len(got.Reasons) != len(want) {
		bad("%d targets and %d reasons for %d indexes", len(got.Targets), len(got.Reasons), len(want))
	}

	// Where each index is now, under the rule for deleting Machines: in0
	// counts an index whose Machines all delete as in their domains (landing
	// there is no move), live0 does not (such an index holds no domain).
	in0 := map[int]map[string]bool{}
	live0 := map[int]map[string]bool{}
	noLive := map[int]bool{}
	group := map[int]int{}
	for _, i := range want {
		var live []Machine
		for _, mc := range byIndex[i] {
			if !mc.Deleting {
				live = append(live, mc)
			}
		}
		occ := live
		if len(live) == 0 {
			occ = byIndex[i]
		}
		in0[i] = map[string]bool{}
		live0[i] = map[string]bool{}
		noLive[i] = len(live) == 0
		for _, mc := range occ {
			if listed[mc.Domain] {
				in0[i][mc.Domain] = true
				if !mc.Deleting {
					live0[i][mc.Domain] = true
				}
			}
		}
		group[i] = 2
		if len(live) == 0 {
			group[i] = 0
		} else if !slices.ContainsFunc(live, func(mc Machine) bool { return mc.Ready }) {
			group[i] = 1
		}
	}

	for _, i := range want {
		if got.Reasons[i] == "" {
			bad("index %d has no reason", i)
		}
	}
	k, n := len(in.Domains), len(want)
	if k == 0 {
		for _, i := range want {
			if got.Targets[i] != "" {
				bad("index %d has target %q with no domains", i, got.Targets[i])
			}
		}
		if len(got.Moves) > 0 {
			bad("moves %v with no domains", got.Moves)
		}
		return problems
	}

	counts := map[string]int{}
	for _, i := range want {
		t := got.Targets[i]
		if !listed[t] {
			bad("index %d has unlisted target %q", i, t)
		}
		counts[t]++
	}
	lo, hi := n, 0
	for _, d := range in.Domains {
		lo, hi = min(lo, counts[d]), max(hi, counts[d])
	}
	if hi-lo > 1 {
		bad("not balanced: %v", counts)
	}

	var wantMoves []int
	for _, i := range want {
		if !in0[i][got.Targets[i]] {
			wantMoves = append(wantMoves, i)
		}
	}
	var gotMoves []int
	for j, mv := range got.Moves {
		gotMoves = append(gotMoves, mv.Index)
		if mv.To != got.Targets[mv.Index] {
			bad("move %d goes to %q, target is %q", mv.Index, mv.To, got.Targets[mv.Index])
		}
		if mv.Reason == "" || mv.Reason != got.Reasons[mv.Index] {
			bad("move %d reason %q differs from index reason %q", mv.Index, mv.Reason, got.Reasons[mv.Index])
		}
		if (mv.Machine == "") != (len(byIndex[mv.Index]) == 0) {
			bad("move %d names Machine %q", mv.Index, mv.Machine)
		}
		if j > 0 {
			prev := got.Moves[j-1]
			if group[prev.Index] > group[mv.Index] || (group[prev.Index] == group[mv.Index] && prev.Index > mv.Index) {
				bad("move %d comes after move %d", mv.Index, prev.Index)
			}
		}
	}
	slices.Sort(gotMoves)
	if !slices.Equal(gotMoves, wantMoves) {
		bad("moves for indexes %v, want %v", gotMoves, wantMoves)
	}

	if bruteForce && n <= 7 && k <= 5 {
		// Live Machines move as few as possible; an index with none counts
		// as a change in live0 even when it lands where it was.
		changes := len(got.Moves)
		for _, i := range want {
			if noLive[i] && !slices.Contains(gotMoves, i) {
				changes++
			}
		}
		if best := fewestMoves(want, in.Domains, live0); best != changes {
			bad("%d changes of live Machines and indexes without one, but a balanced layout with %d exists", changes, best)
		}
	}
	return problems
}

// fewestMoves tries every assignment of indexes to domains, keeps the
// balanced ones (largest and smallest count differ by at most one), and
// returns the fewest indexes any of them puts outside their current domains.
func fewestMoves(indexes []int, domains []string, current map[int]map[string]bool) int {
	n, k := len(indexes), len(domains)
	ceil := (n + k - 1) / k
	load := make([]int, k)
	best := n + 1
	var try func(p, changes int)
	try = func(p, changes int) {
		if changes >= best {
			return
		}
		if p == n {
			if slices.Max(load)-slices.Min(load) <= 1 {
				best = changes
			}
			return
		}
		for d := range domains {
			if load[d] == ceil {
				continue // no balanced layout has more than ceil(n/k) in a domain
			}
			load[d]++
			c := changes
			if !current[indexes[p]][domains[d]] {
				c++
			}
			try(p+1, c)
			load[d]--
		}
	}
	try(0, 0)
	return best
}

// randomInput builds a small Input: up to 5 domains, up to 7 replicas,
// Machines in listed, unlisted and unknown domains, some deleting, some not
// ready, some sharing an index.
func randomInput(r *rand.Rand) Input {
	pool := []string{"a", "b", "c", "d", "e"}
	r.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	in := Input{Replicas: r.IntN(8), Domains: slices.Clone(pool[:r.IntN(6)])}
	indexes := r.Perm(10)[:r.IntN(in.Replicas+1)]
	for j, idx := range indexes {
		for c := range 1 + r.IntN(2)*r.IntN(2) {
			mc := Machine{Name: fmt.Sprintf("m%d%c-%d", j, 'a'+c, idx), Index: idx, Ready: r.IntN(4) > 0, Deleting: r.IntN(5) == 0}
			switch v := r.IntN(10); {
			case v < 7 && len(in.Domains) > 0:
				mc.Domain = in.Domains[r.IntN(len(in.Domains))]
			case v < 9:
				mc.Domain = pool[r.IntN(len(pool))]
			}
			in.Machines = append(in.Machines, mc)
		}
	}
	return in
}

func shuffled(r *rand.Rand, in Input) Input {
	out := Input{Replicas: in.Replicas, Domains: slices.Clone(in.Domains), Machines: slices.Clone(in.Machines)}
	r.Shuffle(len(out.Domains), func(i, j int) { out.Domains[i], out.Domains[j] = out.Domains[j], out.Domains[i] })
	r.Shuffle(len(out.Machines), func(i, j int) { out.Machines[i], out.Machines[j] = out.Machines[j], out.Machines[i] })
	return out
}

func TestPlaceProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for c := range 400 {
		in := randomInput(r)
		got, err := Place(in)
		if err != nil {
			t.Fatalf("case %d: Place(%+v): %v", c, in, err)
		}
		for _, msg := range checkPlacement(in, got, true) {
			t.Errorf("case %d: %+v: %s", c, in, msg)
		}
		for range 3 {
			again, err := Place(shuffled(r, in))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("case %d: %+v: permuted input gives %+v, %v; want %+v", c, in, again, err, got)
			}
		}
	}
}

// TestPlaceKeepsBalancedLayouts: a layout that is already balanced, in
// listed domains, with one live Machine per index, needs no move.
func TestPlaceKeepsBalancedLayouts(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for c := range 200 {
		k := 1 + r.IntN(5)
		n := r.IntN(8)
		domains := []string{"a", "b", "c", "d", "e"}[:k]
		// Deal n indexes round-robin from a random starting domain, then shuffle.
		layout := make([]string, n)
		start := r.IntN(k)
		for i := range layout {
			layout[i] = domains[(start+i)%k]
		}
		r.Shuffle(n, func(i, j int) { layout[i], layout[j] = layout[j], layout[i] })
		in := Input{Replicas: n, Domains: domains}
		for i, d := range layout {
			in.Machines = append(in.Machines, m(fmt.Sprintf("m-%d", i), i, d))
		}
		got, err := Place(in)
		if err != nil {
			t.Fatalf("case %d: %v", c, err)
		}
		if len(got.Moves) != 0 {
			t.Errorf("case %d: layout %v: moves %v, want none", c, layout, moveStrings(got.Moves))
		}
	}
}

// inputFromBytes turns fuzz data into a small Input.
func inputFromBytes(data []byte) Input {
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return int(b)
	}
	in := Input{Replicas: next() % 9}
	for i := range next() % 6 {
		in.Domains = append(in.Domains, string(rune('a'+i)))
	}
	for len(data) > 0 && len(in.Machines) < 12 {
		idx, dom, flags := next()%10, next(), next()
		mc := Machine{Name: fmt.Sprintf("m%d-%d", len(in.Machines), idx), Index: idx, Deleting: flags&1 != 0, Ready: flags&2 != 0}
		switch v := dom % 8; {
		case v < 5:
			mc.Domain = string(rune('a' + v))
		case v == 7:
			mc.Domain = "gone"
		}
		in.Machines = append(in.Machines, mc)
	}
	return in
}

func FuzzPlace(f *testing.F) {
	f.Add([]byte{3, 3})
	f.Add([]byte{5, 3})
	f.Add([]byte{3, 3, 0, 0, 2, 1, 1, 2, 2, 0, 2})
	f.Add([]byte{5, 2, 0, 2, 2, 1, 2, 3, 2, 7, 0, 3, 6, 2, 4, 0, 1})
	f.Add([]byte{3, 3, 1, 1, 1, 1, 1, 2, 1, 0, 2})
	f.Add([]byte{2, 4, 0, 0, 2, 1, 0, 2, 5, 3, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := inputFromBytes(data)
		got, err := Place(in)
		if err != nil {
			var tooMany *TooManyIndexesError
			if !errors.As(err, &tooMany) {
				t.Fatalf("Place(%+v): %v", in, err)
			}
			return
		}
		for _, msg := range checkPlacement(in, got, true) {
			t.Errorf("%+v: %s", in, msg)
		}
		rev := Input{Replicas: in.Replicas, Domains: slices.Clone(in.Domains), Machines: slices.Clone(in.Machines)}
		slices.Reverse(rev.Domains)
		slices.Reverse(rev.Machines)
		if again, err := Place(rev); err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("%+v: reversed input gives %+v, %v; want %+v", in, again, err, got)
		}
	})
}
