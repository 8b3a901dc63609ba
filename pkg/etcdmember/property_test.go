package etcdmember

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// byteSource turns fuzz input into choices; once exhausted it returns zeros.
type byteSource struct{ data []byte }

func (b *byteSource) next(n int) int {
	if len(b.data) == 0 || n <= 0 {
		return 0
	}
	v := int(b.data[0])
	b.data = b.data[1:]
	return v % n
}

type chooser interface{ next(n int) int }

type randSource struct{ r *rand.Rand }

func (s randSource) next(n int) int { return s.r.IntN(n) }

// randomCluster is 1 to 7 voters, some dead, and at most one learner.
func randomCluster(src chooser) []Member {
	var ms []Member
	n := 1 + src.next(7)
	for i := range n {
		m := voter(uint64(i + 1))
		m.Healthy = src.next(4) != 0
		ms = append(ms, m)
	}
	if src.next(2) == 0 {
		l := learner(uint64(n + 1))
		l.Healthy = src.next(2) == 0
		ms = append(ms, l)
	}
	return ms
}

// runSequence applies steps random changes and faults to members, making only the
// changes CheckChange allows, and returns every broken invariant.
func runSequence(src chooser, members []Member, steps int) []string {
	var problems []string
	bad := func(step int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("step %d: ", step)+fmt.Sprintf(format, args...))
	}
	nextID := uint64(100)
	pick := func() uint64 {
		if len(members) == 0 || src.next(8) == 0 {
			return 999
		}
		return members[src.next(len(members))].ID
	}
	setHealth := func(id uint64, healthy bool) {
		for i := range members {
			if members[i].ID == id {
				members[i].Healthy = healthy
			}
		}
	}
	for step := range steps {
		switch op := src.next(6); op {
		case 0:
			setHealth(pick(), false)
			continue
		case 1:
			setHealth(pick(), true)
			continue
		}
		var c Change
		switch src.next(3) {
		case 0:
			c = Change{Kind: ChangeAddLearner, MemberID: nextID}
			nextID++
		case 1:
			c = Change{Kind: ChangePromote, MemberID: pick()}
		default:
			c = Change{Kind: ChangeRemove, MemberID: pick()}
		}
		before := Count(members)
		after := Apply(members, c)
		if err := CheckChange(members, c); err != nil {
			continue
		}
		ac := Count(after)
		noop := reflect.DeepEqual(after, members)
		if !noop && before.Healthy < before.Quorum {
			bad(step, "%s allowed with quorum lost before it: %s", c, before)
		}
		if !noop && ac.Healthy < ac.Quorum {
			bad(step, "%s allowed and leaves %s", c, ac)
		}
		if c.Kind == ChangeAddLearner && before.Learners > 0 {
			bad(step, "%s allowed while %d learners exist", c, before.Learners)
		}
		if ac.Learners > 1 && before.Learners <= 1 {
			bad(step, "%s leaves %d learners", c, ac.Learners)
		}
		members = after
	}
	return problems
}

func TestAllowedChangesKeepQuorum(t *testing.T) {
	for seed := range uint64(500) {
		src := randSource{rand.New(rand.NewPCG(seed, 7))}
		members := randomCluster(src)
		start := fmt.Sprint(Count(members))
		if problems := runSequence(src, members, 60); len(problems) > 0 {
			t.Fatalf("seed %d, starting from %s:\n%v", seed, start, problems)
		}
	}
}

func FuzzAllowedChangesKeepQuorum(f *testing.F) {
	f.Add([]byte{2, 1, 1, 0, 3, 2, 5, 1, 2, 4, 0})
	f.Add([]byte{4, 3, 3, 3, 3, 3, 1, 5, 2, 1, 5, 2, 2, 0, 0, 4, 4, 2})
	f.Add([]byte{0, 0, 1, 5, 1, 5, 2, 5, 0, 1})
	f.Add([]byte{6, 1, 0, 1, 1, 1, 1, 1, 0, 0, 2, 3, 2, 4, 5, 2, 7, 3, 0, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &byteSource{data: data}
		members := randomCluster(src)
		if problems := runSequence(src, members, len(data)); len(problems) > 0 {
			t.Fatalf("%v", problems)
		}
	})
}
