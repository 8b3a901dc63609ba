package quorum

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func machine(name string, ip string, member uint64, deleting bool) Machine {
	m := Machine{Name: name, Running: true, HasHook: true, MemberID: member, Deleting: deleting}
	if ip != "" {
		m.InternalIPs = []string{ip}
	}
	return m
}

func voter(id uint64, machine string, healthy bool) Member {
	return Member{ID: id, Name: machine, Machine: machine, Started: true, Healthy: healthy}
}

func steady() State {
	return State{Desired: 3,
		Machines: []Machine{machine("m-0", "10.0.0.1", 1, false), machine("m-1", "10.0.0.2", 2, false), machine("m-2", "10.0.0.3", 3, false)},
		Members:  []Member{voter(1, "m-0", true), voter(2, "m-1", true), voter(3, "m-2", true)},
	}
}

func TestDecide(t *testing.T) {
	cases := []struct {
		name   string
		state  func() State
		want   Kind
		target string
		member uint64
		cond   map[string]string
	}{
		{"a steady cluster needs nothing", steady, None, "", 0,
			map[string]string{"m-0": ReasonVoting}},
		{"a deleted machine with a healthy member waits for its replacement", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			return s
		}, None, "", 0, map[string]string{"m-0": ReasonWaitingForReplacement}},
		{"a new running machine gets a learner", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", 0, false))
			return s
		}, AddLearner, "m-3", 0, map[string]string{"m-0": ReasonWaitingForReplacement, "m-3": ReasonNotMember}},
		{"a machine without the hook gets no learner", func() State {
			s := steady()
			m := machine("m-3", "10.0.0.4", 0, false)
			m.HasHook = false
			s.Machines = append(s.Machines, m)
			return s
		}, None, "", 0, nil},
		{"a machine without an address gets no learner", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "", 0, false))
			return s
		}, None, "", 0, map[string]string{"m-3": ReasonNotMember}},
		{"a started learner is promoted", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", 4, false))
			s.Members = append(s.Members, Member{ID: 4, Machine: "m-3", Learner: true, Started: true, Healthy: true, Progress: 0.5})
			return s
		}, Promote, "m-3", 4, map[string]string{"m-0": ReasonReplacementCatchingUp, "m-3": ReasonLearner}},
		{"a learner waits while a voting member is unhealthy", func() State {
			s := steady()
			s.Members[1].Healthy = false
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", 4, false))
			s.Members = append(s.Members, Member{ID: 4, Machine: "m-3", Learner: true, Started: true, Healthy: true, Progress: 1})
			return s
		}, None, "", 0, map[string]string{"m-3": ReasonLearner}},
		{"a dead member of a deleting machine goes before its replacement is promoted", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Members[0].Healthy = false
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", 4, false))
			s.Members = append(s.Members, Member{ID: 4, Machine: "m-3", Learner: true, Started: true, Healthy: true, Progress: 1})
			return s
		}, RemoveMember, "m-0", 1, nil},
		{"a learner of a deleting machine is removed, not promoted", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", 4, true))
			s.Members = append(s.Members, Member{ID: 4, Machine: "m-3", Learner: true, Started: true, Healthy: true})
			return s
		}, RemoveMember, "m-3", 4, nil},
		{"after promotion the deleting machine's member is removed", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", 4, false))
			s.Members = append(s.Members, voter(4, "m-3", true))
			return s
		}, RemoveMember, "m-0", 1, map[string]string{"m-0": ReasonRemovingMember}},
		{"leadership moves before the leader's member is removed", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Members[0].Leader = true
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", 4, false))
			s.Members = append(s.Members, voter(4, "m-3", true))
			return s
		}, MoveLeader, "m-0", 1, map[string]string{"m-0": ReasonRemovingMember}},
		{"a dead member of a deleting machine is removed before its replacement is promoted", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Members[0].Healthy = false
			return s
		}, RemoveMember, "m-0", 1, nil},
		{"a healthy member is not removed while another is dead", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Members[1].Healthy = false
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", 4, false))
			s.Members = append(s.Members, voter(4, "m-3", false))
			return s
		}, None, "", 0, map[string]string{"m-0": ReasonWaitingForReplacement}},
		{"the hook of a deleting machine with no member is released", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", 0, true))
			return s
		}, ReleaseHook, "m-3", 0, map[string]string{"m-3": ReasonHookReleased}},
		{"a machine that never had an address is released at once", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "", 0, true))
			return s
		}, ReleaseHook, "m-3", 0, nil},
		{"a hook removed by hand is reported, not re-added", func() State {
			s := steady()
			m := machine("m-3", "10.0.0.4", 0, true)
			m.HasHook = false
			s.Machines = append(s.Machines, m)
			return s
		}, None, "", 0, map[string]string{"m-3": ReasonHookRemovedExternally}},
		{"a hook removed by hand from a machine that still has a member is reported", func() State {
			s := steady()
			s.Machines[2].Deleting, s.Machines[2].HasHook = true, false
			return s
		}, None, "", 0, map[string]string{"m-2": ReasonHookRemovedExternally}},
		{"machines sharing an address get no action", func() State {
			s := steady()
			a, b := machine("m-3", "10.0.0.9", 0, false), machine("m-4", "10.0.0.9", 0, true)
			a.AddressConflict, b.AddressConflict = true, true
			s.Machines = append(s.Machines, a, b)
			return s
		}, None, "", 0, nil},
		{"an unhealthy member of no machine is removed when quorum allows", func() State {
			s := steady()
			s.Members = append(s.Members, Member{ID: 9, Started: true, Healthy: false})
			return s
		}, RemoveMember, "", 9, nil},
		{"a healthy member of no machine is only reported", func() State {
			s := steady()
			s.Members = append(s.Members, Member{ID: 9, Started: true, Healthy: true})
			return s
		}, None, "", 0, nil},
		{"only one learner at a time", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", 4, false), machine("m-4", "10.0.0.5", 0, false))
			s.Members = append(s.Members, Member{ID: 4, Machine: "m-3", Learner: true})
			return s
		}, None, "", 0, map[string]string{"m-3": ReasonLearner}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.state())
			if d.Action.Kind != tc.want || d.Action.Machine != tc.target || d.Action.MemberID != tc.member {
				t.Fatalf("got %s (machine %q member %d); want %s on %q member %d", d.Action, d.Action.Machine, d.Action.MemberID, tc.want, tc.target, tc.member)
			}
			if d.Action.Reason == "" {
				t.Error("the action carries no reason")
			}
			for m, r := range tc.cond {
				if got := d.Conditions[m]; got.Reason != r || got.Message == "" {
					t.Errorf("condition of %s: %+v; want reason %s with a message", m, got, r)
				}
			}
		})
	}
}

func TestRemovalSafe(t *testing.T) {
	cases := []struct {
		voters, healthy int
		target          bool
		safe            bool
	}{
		{3, 3, true, true}, {3, 2, true, false}, {3, 2, false, true}, {4, 4, true, true},
		{5, 3, true, false}, {5, 4, true, true}, {1, 1, true, false}, {2, 2, true, true},
	}
	for _, c := range cases {
		ok, why := RemovalSafe(c.voters, c.healthy, c.target)
		if ok != c.safe || why == "" {
			t.Errorf("RemovalSafe(%d voters, %d healthy, target healthy %v) = %v (%s); want %v", c.voters, c.healthy, c.target, ok, why, c.safe)
		}
	}
}

// TestNoStepLosesQuorum drives random clusters through the planner's own actions, with
// members dying between steps, and checks that no action the planner takes ever leaves the
// healthy voting members below quorum when they were at or above it before.
func TestNoStepLosesQuorum(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for run := range 300 {
		s := steady()
		if rng.IntN(2) == 0 {
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", 4, false), machine("m-4", "10.0.0.5", 5, false))
			s.Members = append(s.Members, voter(4, "m-3", true), voter(5, "m-4", true))
			s.Desired = 5
		}
		next := 10
		for step := 0; step < 40; step++ {
			switch rng.IntN(6) {
			case 0: // a machine is deleted
				i := rng.IntN(len(s.Machines))
				s.Machines[i].Deleting = true
			case 1: // a replacement machine appears
				name := "m-" + string(rune('a'+next))
				s.Machines = append(s.Machines, machine(name, "10.1.0."+string(rune('0'+next%10)), 0, false))
				next++
			case 2: // a member dies
				if len(s.Members) > 0 {
					s.Members[rng.IntN(len(s.Members))].Healthy = false
				}
			}
			before := healthyQuorate(s)
			d := Decide(s)
			s = apply(s, d.Action, uint64(100+step))
			if before && !healthyQuorate(s) {
				t.Fatalf("run %d step %d: %s lost quorum", run, step, d.Action)
			}
		}
	}
}

func healthyQuorate(s State) bool {
	v, h := 0, 0
	for _, m := range s.Members {
		if !m.Learner {
			v++
			if m.Healthy {
				h++
			}
		}
	}
	return v == 0 || h >= QuorumOf(v)
}

// apply plays an action the way etcd and the machine API would.
func apply(s State, a Action, newID uint64) State {
	switch a.Kind {
	case AddLearner:
		s.Members = append(s.Members, Member{ID: newID, Machine: a.Machine, Learner: true, Started: true, Healthy: true, Progress: 1})
		for i := range s.Machines {
			if s.Machines[i].Name == a.Machine {
				s.Machines[i].MemberID = newID
			}
		}
	case Promote:
		for i := range s.Members {
			if s.Members[i].ID == a.MemberID {
				s.Members[i].Learner = false
			}
		}
	case MoveLeader:
		for i := range s.Members {
			s.Members[i].Leader = s.Members[i].ID == a.To
		}
	case RemoveMember:
		for i := range s.Members {
			if s.Members[i].ID == a.MemberID {
				s.Members = append(s.Members[:i], s.Members[i+1:]...)
				break
			}
		}
		for i := range s.Machines {
			if s.Machines[i].MemberID == a.MemberID {
				s.Machines[i].MemberID = 0
			}
		}
	case ReleaseHook:
		for i := range s.Machines {
			if s.Machines[i].Name == a.Machine {
				s.Machines = append(s.Machines[:i], s.Machines[i+1:]...)
				break
			}
		}
	}
	return s
}

func TestActionString(t *testing.T) {
	a := Action{Kind: AddLearner, Machine: "m-3", PeerURL: "https://10.0.0.4:2380", Reason: "r"}
	if !strings.Contains(a.String(), "m-3") || !strings.Contains(a.String(), "2380") {
		t.Fatal(a.String())
	}
}
