package failuredomain

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func m(name string, index int, domain string) Machine {
	return Machine{Name: name, Index: index, Domain: domain, Ready: true}
}

func deleting(mc Machine) Machine { mc.Deleting = true; return mc }
func notReady(mc Machine) Machine { mc.Ready = false; return mc }

func moveStrings(moves []Move) []string {
	out := make([]string, 0, len(moves))
	for _, mv := range moves {
		out = append(out, fmt.Sprintf("%d %s %s->%s", mv.Index, mv.Machine, mv.From, mv.To))
	}
	return out
}

func targetList(p Placement) []string {
	out := make([]string, 0, len(p.Indexes))
	for _, i := range p.Indexes {
		out = append(out, p.Targets[i])
	}
	return out
}

func TestPlace(t *testing.T) {
	abc := []string{"a", "b", "c"}
	tests := []struct {
		name    string
		in      Input
		indexes []int // nil means 0..replicas-1
		targets []string
		moves   []string
	}{
		{
			name:    "3 new machines in 3 domains",
			in:      Input{Replicas: 3, Domains: abc},
			targets: []string{"a", "b", "c"},
			moves:   []string{"0  ->a", "1  ->b", "2  ->c"},
		},
		{
			name:    "3 machines in place in 3 domains",
			in:      Input{Replicas: 3, Domains: abc, Machines: []Machine{m("m-0", 0, "a"), m("m-1", 1, "b"), m("m-2", 2, "c")}},
			targets: []string{"a", "b", "c"},
		},
		{
			name:    "3 new machines in 2 domains",
			in:      Input{Replicas: 3, Domains: []string{"b", "a"}},
			targets: []string{"a", "b", "a"},
			moves:   []string{"0  ->a", "1  ->b", "2  ->a"},
		},
		{
			name:    "5 new machines in 3 domains",
			in:      Input{Replicas: 5, Domains: []string{"c", "a", "b"}},
			targets: []string{"a", "b", "c", "a", "b"},
			moves:   []string{"0  ->a", "1  ->b", "2  ->c", "3  ->a", "4  ->b"},
		},
		{
			name:    "5 new machines in 2 domains",
			in:      Input{Replicas: 5, Domains: []string{"a", "b"}},
			targets: []string{"a", "b", "a", "b", "a"},
			moves:   []string{"0  ->a", "1  ->b", "2  ->a", "3  ->b", "4  ->a"},
		},
		{
			name: "adding domain c to a, b, a moves exactly index 2",
			in: Input{Replicas: 3, Domains: abc, Machines: []Machine{
				m("m-0", 0, "a"), m("m-1", 1, "b"), m("m-2", 2, "a"),
			}},
			targets: []string{"a", "b", "c"},
			moves:   []string{"2 m-2 a->c"},
		},
		{
			name: "adding domains d and e to 5 machines in a, b, c moves the highest index of each over-used domain",
			in: Input{Replicas: 5, Domains: []string{"a", "b", "c", "d", "e"}, Machines: []Machine{
				m("m-0", 0, "a"), m("m-1", 1, "b"), m("m-2", 2, "c"), m("m-3", 3, "a"), m("m-4", 4, "b"),
			}},
			targets: []string{"a", "b", "c", "d", "e"},
			moves:   []string{"3 m-3 a->d", "4 m-4 b->e"},
		},
		{
			name: "removing domain c moves its machine to the least-used domain, alphabetically",
			in: Input{Replicas: 3, Domains: []string{"a", "b"}, Machines: []Machine{
				m("m-0", 0, "a"), m("m-1", 1, "b"), m("m-2", 2, "c"),
			}},
			targets: []string{"a", "b", "a"},
			moves:   []string{"2 m-2 c->a"},
		},
		{
			name: "removing domain a of 5 machines moves both, to the least used first",
			in: Input{Replicas: 5, Domains: []string{"b", "c"}, Machines: []Machine{
				m("m-0", 0, "a"), m("m-1", 1, "b"), m("m-2", 2, "c"), m("m-3", 3, "a"), m("m-4", 4, "c"),
			}},
			targets: []string{"b", "b", "c", "b", "c"},
			moves:   []string{"0 m-0 a->b", "3 m-3 a->b"},
		},
		{
			name: "balanced layout that is not alphabetical is kept, 3 in 2",
			in: Input{Replicas: 3, Domains: []string{"a", "b"}, Machines: []Machine{
				m("m-0", 0, "a"), m("m-1", 1, "b"), m("m-2", 2, "b"),
			}},
			targets: []string{"a", "b", "b"},
		},
		{
			name: "balanced layout that is not alphabetical is kept, 5 in 3",
			in: Input{Replicas: 5, Domains: abc, Machines: []Machine{
				m("m-0", 0, "c"), m("m-1", 1, "c"), m("m-2", 2, "b"), m("m-3", 3, "a"), m("m-4", 4, "a"),
			}},
			targets: []string{"c", "c", "b", "a", "a"},
		},
		{
			name: "indexes numbered from 3 are kept",
			in: Input{Replicas: 3, Domains: abc, Machines: []Machine{
				m("m-3", 3, "b"), m("m-4", 4, "c"), m("m-5", 5, "a"),
			}},
			indexes: []int{3, 4, 5},
			targets: []string{"b", "c", "a"},
		},
		{
			name: "indexes numbered from 3 with one missing get index 0 added",
			in: Input{Replicas: 3, Domains: abc, Machines: []Machine{
				m("m-3", 3, "a"), m("m-4", 4, "b"),
			}},
			indexes: []int{0, 3, 4},
			targets: []string{"c", "a", "b"},
			moves:   []string{"0  ->c"},
		},
		{
			name: "an index whose only machine is deleting keeps its domain for the replacement",
			in: Input{Replicas: 3, Domains: abc, Machines: []Machine{
				m("m-0", 0, "a"), deleting(m("m-1", 1, "b")), m("m-2", 2, "c"),
			}},
			targets: []string{"a", "b", "c"},
		},
		{
			name: "an index whose only machine is deleting in an over-used domain moves first",
			in: Input{Replicas: 3, Domains: abc, Machines: []Machine{
				m("m-0", 0, "a"), m("m-1", 1, "a"), deleting(m("m-2", 2, "a")),
			}},
			targets: []string{"a", "b", "c"},
			moves:   []string{"2 m-2 a->c", "1 m-1 a->b"},
		},
		{
			name: "an index whose only machine is deleting gives up its domain to where balance needs it",
			in: Input{Replicas: 3, Domains: abc, Machines: []Machine{
				deleting(m("m-0", 0, "a")), m("m-1", 1, "a"), m("m-2", 2, "a"),
			}},
			targets: []string{"b", "a", "c"},
			moves:   []string{"0 m-0 a->b", "2 m-2 a->c"},
		},
		{
			name: "an index whose only machine is deleting goes back to its domain among equally used ones",
			in: Input{Replicas: 3, Domains: []string{"a", "b"}, Machines: []Machine{
				m("m-0", 0, "a"), deleting(m("m-1", 1, "b")), m("m-2", 2, "b"),
			}},
			targets: []string{"a", "b", "b"},
		},
		{
			name: "a deleting machine beside its replacement does not hold its domain",
			in: Input{Replicas: 3, Domains: abc, Machines: []Machine{
				m("m-0", 0, "a"), deleting(m("m-old-1", 1, "a")), m("m-new-1", 1, "b"), m("m-2", 2, "c"),
			}},
			targets: []string{"a", "b", "c"},
		},
		{
			name: "an index with two live machines during a move keeps the one that fits",
			in: Input{Replicas: 3, Domains: abc, Machines: []Machine{
				m("m-0", 0, "a"), m("m-1", 1, "b"), m("m-a-2", 2, "a"), notReady(m("m-c-2", 2, "c")),
			}},
			targets: []string{"a", "b", "c"},
		},
		{
			name: "a machine in a domain that is no longer listed moves",
			in: Input{Replicas: 3, Domains: abc, Machines: []Machine{
				m("m-0", 0, "a"), m("m-1", 1, "old"), m("m-2", 2, "c"),
			}},
			targets: []string{"a", "b", "c"},
			moves:   []string{"1 m-1 old->b"},
		},
		{
			name: "a machine whose providerSpec matches no domain moves",
			in: Input{Replicas: 3, Domains: abc, Machines: []Machine{
				m("m-0", 0, "a"), m("m-1", 1, "b"), m("m-2", 2, ""),
			}},
			targets: []string{"a", "b", "c"},
			moves:   []string{"2 m-2 ->c"},
		},
		{
			name: "no domains means no constraint",
			in: Input{Replicas: 3, Machines: []Machine{
				m("m-0", 0, "a"), m("m-1", 1, ""),
			}},
			targets: []string{"", "", ""},
		},
		{
			name: "moves: missing index first, then not ready, then ready",
			in: Input{Replicas: 5, Domains: abc, Machines: []Machine{
				m("m-0", 0, "a"), m("m-1", 1, "a"), notReady(m("m-2", 2, "a")), m("m-3", 3, "a"),
			}},
			targets: []string{"a", "a", "c", "b", "b"},
			moves:   []string{"4  ->b", "2 m-2 a->c", "3 m-3 a->b"},
		},
		{
			name:    "no replicas",
			in:      Input{Replicas: 0, Domains: abc},
			indexes: []int{},
			targets: []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Place(tc.in)
			if err != nil {
				t.Fatalf("Place: %v", err)
			}
			wantIndexes := tc.indexes
			if wantIndexes == nil {
				for i := range tc.in.Replicas {
					wantIndexes = append(wantIndexes, i)
				}
			}
			if !slices.Equal(got.Indexes, wantIndexes) {
				t.Errorf("indexes = %v, want %v", got.Indexes, wantIndexes)
			}
			if g := targetList(got); !slices.Equal(g, tc.targets) {
				t.Errorf("targets = %q, want %q", g, tc.targets)
			}
			if g := moveStrings(got.Moves); !slices.Equal(g, tc.moves) {
				t.Errorf("moves = %q, want %q", g, tc.moves)
			}
			for _, msg := range checkPlacement(tc.in, got, true) {
				t.Error(msg)
			}
		})
	}
}

func TestPlaceReasons(t *testing.T) {
	in := Input{Replicas: 3, Domains: []string{"us-east-1a", "us-east-1b", "us-east-1c"}, Machines: []Machine{
		m("master-0", 0, "us-east-1a"), m("master-1", 1, "us-east-1b"), m("master-2", 2, "us-east-1a"),
	}}
	got, err := Place(in)
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	want := map[int]string{
		0: "index 0 stays in us-east-1a: it fits us-east-1a's share of 1 of 3 machines",
		1: "index 1 stays in us-east-1b: it fits us-east-1b's share of 1 of 3 machines",
		2: "index 2 moves from us-east-1a to us-east-1c: us-east-1a holds 2 of 3 machines, more than its share of 1; us-east-1c holds none",
	}
	for i, w := range want {
		if got.Reasons[i] != w {
			t.Errorf("reason %d = %q, want %q", i, got.Reasons[i], w)
		}
	}
	if len(got.Moves) != 1 || got.Moves[0].Reason != want[2] {
		t.Errorf("moves = %+v, want one move with reason %q", got.Moves, want[2])
	}

	// A second machine moving into the same domain says the count includes it.
	got, err = Place(Input{Replicas: 2, Domains: []string{"a"}, Machines: []Machine{m("m-0", 0, "x"), m("m-1", 1, "")}})
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	wantMoves := []string{
		"index 0 moves from x to a: x is not a listed failure domain; a holds none",
		"index 1 moves to a: Machine m-1 is in no listed failure domain; a holds 1 of 2 machines counting the moves of lower indexes",
	}
	for i, w := range wantMoves {
		if i >= len(got.Moves) {
			t.Errorf("move %d missing, want reason %q", i, w)
		} else if got.Moves[i].Reason != w {
			t.Errorf("move %d reason = %q, want %q", i, got.Moves[i].Reason, w)
		}
	}
}

func TestPlaceErrors(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want error
	}{
		{"negative replicas", Input{Replicas: -1}, ErrInvalidInput},
		{"too many replicas", Input{Replicas: MaxReplicas + 1}, ErrInvalidInput},
		{"empty domain", Input{Replicas: 1, Domains: []string{"a", ""}}, ErrInvalidInput},
		{"duplicate domain", Input{Replicas: 1, Domains: []string{"a", "b", "a"}}, ErrInvalidInput},
		{"machine without name", Input{Replicas: 1, Machines: []Machine{{Index: 0}}}, ErrInvalidInput},
		{"duplicate machine", Input{Replicas: 2, Machines: []Machine{m("m-0", 0, ""), m("m-0", 1, "")}}, ErrInvalidInput},
		{"negative index", Input{Replicas: 1, Machines: []Machine{m("m-x", -1, "")}}, ErrInvalidInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Place(tc.in)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("more indexes than replicas", func(t *testing.T) {
		_, err := Place(Input{Replicas: 3, Domains: []string{"a"}, Machines: []Machine{
			m("m-0", 0, "a"), m("m-1", 1, "a"), m("m-2", 2, "a"), deleting(m("m-7", 7, "a")),
		}})
		var tooMany *TooManyIndexesError
		if !errors.As(err, &tooMany) {
			t.Fatalf("err = %v, want a *TooManyIndexesError", err)
		}
		if tooMany.Replicas != 3 || !slices.Equal(tooMany.Indexes, []int{0, 1, 2, 7}) {
			t.Errorf("err = %+v, want replicas 3 and indexes [0 1 2 7]", tooMany)
		}
	})
}

func TestIndexOf(t *testing.T) {
	tests := []struct {
		name    string
		want    int
		wantErr bool
	}{
		{"master-0", 0, false},
		{"demo-x7k2p-master-12", 12, false},
		{"cluster-abcde-4", 4, false},
		{"master-007", 7, false},
		{"master", 0, true},
		{"master-", 0, true},
		{"master-x", 0, true},
		{"master-+1", 0, true},
		{"master-1a", 0, true},
		{"master-1234567890", 0, true},
		{"", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := IndexOf(tc.name)
			if (err != nil) != tc.wantErr {
				t.Fatalf("IndexOf(%q) err = %v, want error %v", tc.name, err, tc.wantErr)
			}
			if err != nil {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != "metadata.name" || fe.Object != describe("Machine", "", tc.name) {
					t.Errorf("IndexOf(%q) err = %v, want a FieldError on the Machine's metadata.name", tc.name, err)
				}
				return
			}
			if got != tc.want {
				t.Errorf("IndexOf(%q) = %d, want %d", tc.name, got, tc.want)
			}
		})
	}
}
