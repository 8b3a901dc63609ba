package quorum

import (
	"strings"
	"testing"
	"time"
)

// machine is a running, hooked Machine whose Node is named after it, with InternalIP ip.
func machine(name string, ip string, deleting bool) Machine {
	m := Machine{Name: name, Running: true, HasHook: true, Deleting: deleting, NodeName: name}
	if ip != "" {
		m.Addresses = []Address{{Type: AddressInternalIP, Address: ip}, {Type: AddressInternalDNS, Address: name + ".cluster.local"}}
	}
	return m
}

// voter is a started voting member named after its Machine's Node, on peer URL ip.
func voter(id uint64, name, ip string, healthy bool) Member {
	return Member{ID: id, Name: name, PeerURLs: []string{"https://" + ip + ":2380"}, Started: true, Healthy: healthy}
}

// learner is a learner on ip, started or not.
func learner(id uint64, ip string, started bool) Member {
	m := Member{ID: id, PeerURLs: []string{"https://" + ip + ":2380"}, Learner: true, Started: started, Healthy: started, Progress: 0.5}
	if started {
		m.Progress = 1
	}
	return m
}

func steady() State {
	return State{Desired: 3,
		Machines: []Machine{machine("m-0", "10.0.0.1", false), machine("m-1", "10.0.0.2", false), machine("m-2", "10.0.0.3", false)},
		Members:  []Member{voter(1, "m-0", "10.0.0.1", true), voter(2, "m-1", "10.0.0.2", true), voter(3, "m-2", "10.0.0.3", true)},
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
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			return s
		}, AddLearner, "m-3", 0, map[string]string{"m-0": ReasonWaitingForReplacement, "m-3": ReasonNotMember}},
		{"a machine without the hook gets no learner", func() State {
			s := steady()
			m := machine("m-3", "10.0.0.4", false)
			m.HasHook = false
			s.Machines = append(s.Machines, m)
			return s
		}, None, "", 0, nil},
		{"a machine without an address gets no learner", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "", false))
			return s
		}, None, "", 0, map[string]string{"m-3": ReasonNotMember}},
		{"a machine that may not hold a member gets no learner", func() State {
			s := steady()
			m := machine("master", "10.0.0.4", false)
			m.Ineligible = "its name carries no index"
			s.Machines = append(s.Machines, m)
			return s
		}, None, "", 0, map[string]string{"master": ReasonNotMember}},
		{"the learner of a machine that may not hold a member is removed, not promoted", func() State {
			s := steady()
			m := machine("master", "10.0.0.4", false)
			m.Ineligible = "its name carries no index"
			s.Machines = append(s.Machines, m)
			s.Members = append(s.Members, learner(4, "10.0.0.4", true))
			return s
		}, RemoveMember, "master", 4, nil},
		{"a started learner is promoted", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			s.Members = append(s.Members, learner(4, "10.0.0.4", true))
			return s
		}, Promote, "m-3", 4, map[string]string{"m-0": ReasonReplacementCatchingUp, "m-3": ReasonLearner}},
		{"a learner waits while a voting member is unhealthy", func() State {
			s := steady()
			s.Members[1].Healthy = false
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			s.Members = append(s.Members, learner(4, "10.0.0.4", true))
			return s
		}, None, "", 0, map[string]string{"m-3": ReasonLearner}},
		{"a dead voter on a running machine blocks the replacement, and the deleting machine says so", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Members[1].Healthy = false
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			s.Members = append(s.Members, learner(4, "10.0.0.4", true))
			return s
		}, None, "", 0, map[string]string{"m-0": ReasonBlocked, "m-3": ReasonLearner}},
		{"a dead member of a deleting machine goes before its replacement is promoted", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Members[0].Healthy = false
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			s.Members = append(s.Members, learner(4, "10.0.0.4", true))
			return s
		}, RemoveMember, "m-0", 1, nil},
		{"of two healthy members waiting for removal, the one in the most-used failure domain goes first", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false), machine("m-4", "10.0.0.5", false))
			s.Members = append(s.Members, voter(4, "m-3", "10.0.0.4", true), voter(5, "m-4", "10.0.0.5", true))
			for i, d := range []string{"b", "a", "a", "c", "c"} {
				s.Machines[i].Domain = d
			}
			s.Machines[0].Deleting = true
			s.Machines[1].Deleting = true
			return s
		}, RemoveMember, "m-1", 2, nil},
		{"of two members waiting for removal, an unhealthy one goes first whatever its domain", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false), machine("m-4", "10.0.0.5", false))
			s.Members = append(s.Members, voter(4, "m-3", "10.0.0.4", true), voter(5, "m-4", "10.0.0.5", true))
			for i, d := range []string{"b", "a", "a", "c", "c"} {
				s.Machines[i].Domain = d
			}
			s.Machines[0].Deleting = true
			s.Machines[1].Deleting = true
			s.Members[0].Healthy = false
			return s
		}, RemoveMember, "m-0", 1, nil},
		{"a learner of a deleting machine is removed, not promoted", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", true))
			s.Members = append(s.Members, learner(4, "10.0.0.4", true))
			return s
		}, RemoveMember, "m-3", 4, nil},
		{"a learner that never starts is removed after the bound", func() State {
			s := steady()
			s.LearnerStartTimeout = 5 * time.Minute
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			l := learner(4, "10.0.0.4", false)
			l.DownFor = 6 * time.Minute
			s.Members = append(s.Members, l)
			return s
		}, RemoveMember, "m-3", 4, map[string]string{"m-3": ReasonLearner}},
		{"a learner within the bound is kept", func() State {
			s := steady()
			s.LearnerStartTimeout = 5 * time.Minute
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			l := learner(4, "10.0.0.4", false)
			l.DownFor = 4 * time.Minute
			s.Members = append(s.Members, l)
			return s
		}, None, "", 0, map[string]string{"m-3": ReasonLearner}},
		{"after a learner timed out, another machine gets the slot first", func() State {
			s := steady()
			a, b := machine("m-3", "10.0.0.4", false), machine("m-4", "10.0.0.5", false)
			a.LearnerTimedOut = true
			s.Machines = append(s.Machines, a, b)
			return s
		}, AddLearner, "m-4", 0, nil},
		{"after promotion the deleting machine's member is removed", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			s.Members = append(s.Members, voter(4, "m-3", "10.0.0.4", true))
			return s
		}, RemoveMember, "m-0", 1, map[string]string{"m-0": ReasonRemovingMember}},
		{"after promotion a removal the endpoint consumers hold waits, leadership untouched", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Members[0].Leader = true
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			s.Members = append(s.Members, voter(4, "m-3", "10.0.0.4", true))
			s.RemovalHeld = map[uint64]string{1: "waiting for endpoint consumers"}
			return s
		}, None, "m-0", 1, map[string]string{"m-0": ReasonWaitingForEndpointConsumers}},
		{"of two members waiting for removal, one the consumers have moved off goes while the other is held", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Machines[1].Deleting = true
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false), machine("m-4", "10.0.0.5", false))
			s.Members = append(s.Members, voter(4, "m-3", "10.0.0.4", true), voter(5, "m-4", "10.0.0.5", true))
			s.RemovalHeld = map[uint64]string{1: "still published"}
			return s
		}, RemoveMember, "m-1", 2, map[string]string{"m-0": ReasonWaitingForEndpointConsumers}},
		{"a held dead member of a deleting machine does not stop its replacement's learner", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Members[0].Healthy = false
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			s.RemovalHeld = map[uint64]string{1: "waiting for endpoint consumers"}
			return s
		}, AddLearner, "m-3", 0, map[string]string{"m-0": ReasonWaitingForEndpointConsumers}},
		{"a removal waits while the replacement was promoted within etcd's health window", func() State {
			s := steady()
			s.Now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
			s.Machines[0].Deleting = true
			repl := machine("m-3", "10.0.0.4", false)
			repl.VotingSince = s.Now.Add(-2 * time.Second)
			s.Machines = append(s.Machines, repl)
			s.Members = append(s.Members, voter(4, "m-3", "10.0.0.4", true))
			return s
		}, None, "m-0", 1, map[string]string{"m-0": ReasonWaitingForHealthWindow, "m-3": ReasonVoting}},
		{"the leader's removal waits for the health window too", func() State {
			s := steady()
			s.Now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
			s.Machines[0].Deleting = true
			s.Members[0].Leader = true
			repl := machine("m-3", "10.0.0.4", false)
			repl.VotingSince = s.Now.Add(-time.Second)
			s.Machines = append(s.Machines, repl)
			s.Members = append(s.Members, voter(4, "m-3", "10.0.0.4", true))
			return s
		}, None, "m-0", 1, map[string]string{"m-0": ReasonWaitingForHealthWindow}},
		{"once the health window (and the second a stored time may lose) has passed, the member is removed", func() State {
			s := steady()
			s.Now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
			s.Machines[0].Deleting = true
			repl := machine("m-3", "10.0.0.4", false)
			repl.VotingSince = s.Now.Add(-HealthWindow - time.Second)
			s.Machines = append(s.Machines, repl)
			s.Members = append(s.Members, voter(4, "m-3", "10.0.0.4", true))
			return s
		}, RemoveMember, "m-0", 1, map[string]string{"m-0": ReasonRemovingMember}},
		{"a dead member of a deleting machine is removed at once, whatever was just promoted", func() State {
			s := steady()
			s.Now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
			s.Machines[0].Deleting = true
			s.Members[0].Healthy = false
			s.Machines[1].VotingSince = s.Now
			return s
		}, RemoveMember, "m-0", 1, nil},
		{"leadership moves before the leader's member is removed", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Members[0].Leader = true
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			s.Members = append(s.Members, voter(4, "m-3", "10.0.0.4", true))
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
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			s.Members = append(s.Members, voter(4, "m-3", "10.0.0.4", false))
			return s
		}, None, "", 0, map[string]string{"m-0": ReasonBlocked}},
		{"the hook of a deleting machine with no member is released", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", true))
			return s
		}, ReleaseHook, "m-3", 0, map[string]string{"m-3": ReasonHookReleased}},
		{"a machine that never had an address is released when every voter is accounted for", func() State {
			s := steady()
			m := machine("m-3", "", true)
			m.NodeName = ""
			s.Machines = append(s.Machines, m)
			return s
		}, ReleaseHook, "m-3", 0, nil},
		{"a member whose peer URL is a DNS name is placed by InternalDNS and keeps the hook", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Members[0].Name = ""
			s.Members[0].PeerURLs = []string{"https://M-0.cluster.local.:2380"}
			return s
		}, None, "", 0, map[string]string{"m-0": ReasonWaitingForReplacement}},
		{"a member placed only by its Node name keeps the hook", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Members[0].PeerURLs = []string{"https://etcd-0.example.com:2380"}
			return s
		}, None, "", 0, map[string]string{"m-0": ReasonWaitingForReplacement}},
		{"a voter on an address no machine lists blocks every release", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", true))
			s.Members[2].Name = "etcd-c"
			s.Members[2].PeerURLs = []string{"https://10.9.9.9:2380"}
			return s
		}, None, "", 0, map[string]string{"m-3": ReasonBlocked}},
		{"a voter with a peer URL that cannot be parsed blocks every release", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", true))
			s.Members[2].Name = ""
			s.Members[2].PeerURLs = []string{"::not a url"}
			return s
		}, None, "", 0, map[string]string{"m-3": ReasonBlocked}},
		{"a voter with no unaccounted peers lets an unrelated deleting machine go", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", true))
			return s
		}, ReleaseHook, "m-3", 0, nil},
		{"an unaccounted voter stops a learner being added", func() State {
			s := steady()
			s.Members[2].Name = "etcd-c"
			s.Members[2].PeerURLs = []string{"https://10.9.9.9:2380"}
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			return s
		}, None, "", 0, map[string]string{"m-3": ReasonNotMember}},
		{"an unhealthy voter of no machine is not removed", func() State {
			s := steady()
			s.Members = append(s.Members, Member{ID: 9, PeerURLs: []string{"https://10.9.9.9:2380"}, Started: true})
			return s
		}, None, "", 0, nil},
		{"a healthy learner on an address two machines share is not removed", func() State {
			s := steady()
			a, b := machine("m-3", "10.0.0.9", false), machine("m-4", "10.0.0.9", true)
			s.Machines = append(s.Machines, a, b)
			s.Members = append(s.Members, learner(9, "10.0.0.9", true))
			return s
		}, None, "", 0, map[string]string{"m-3": ReasonBlocked, "m-4": ReasonBlocked}},
		{"an unhealthy voter on an address two machines share is not removed, and no hook is released", func() State {
			s := steady()
			a, b := machine("m-3", "10.0.0.9", true), machine("m-4", "10.0.0.9", true)
			a.NodeName, b.NodeName = "", ""
			s.Machines = append(s.Machines, a, b)
			s.Desired = 4
			s.Members = append(s.Members, Member{ID: 9, PeerURLs: []string{"https://10.0.0.9:2380"}, Started: true})
			return s
		}, None, "", 0, map[string]string{"m-3": ReasonBlocked, "m-4": ReasonBlocked}},
		{"machines sharing an address and no member get no learner", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.9", false), machine("m-4", "10.0.0.9", false))
			return s
		}, None, "", 0, nil},
		{"a learner that matches no machine is removed", func() State {
			s := steady()
			s.Members = append(s.Members, learner(9, "10.9.9.9", false))
			return s
		}, RemoveMember, "", 9, nil},
		{"only one learner at a time", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false), machine("m-4", "10.0.0.5", false))
			s.Members = append(s.Members, learner(4, "10.0.0.4", false))
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

func TestActionString(t *testing.T) {
	a := Action{Kind: AddLearner, Machine: "m-3", PeerURL: "https://10.0.0.4:2380", Reason: "r"}
	if !strings.Contains(a.String(), "m-3") || !strings.Contains(a.String(), "2380") {
		t.Fatal(a.String())
	}
}

// TestNewLeaderChoice: before the leader's member is removed, leadership goes to the healthy
// voting member of a live Machine with the highest raft index (within LeaderIndexSlack of
// it counting as equal), then the name that sorts first, then the lowest ID; never to a
// learner, an unhealthy member or a member whose Machine is being deleted.
func TestNewLeaderChoice(t *testing.T) {
	// base: m-0 leads and is being replaced by m-3 (promoted); m-1, m-2 and m-3 are
	// healthy voters of live Machines.
	base := func(index map[string]uint64) State {
		s := steady()
		s.Machines[0].Deleting = true
		s.Members[0].Leader = true
		s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
		s.Members = append(s.Members, voter(4, "m-3", "10.0.0.4", true))
		for i := range s.Members {
			s.Members[i].Index = index[s.Members[i].Name]
		}
		return s
	}
	cases := []struct {
		name  string
		state State
		want  uint64
	}{
		{"the highest raft index wins over a lower ID", base(map[string]uint64{"m-0": 1000, "m-1": 700, "m-2": 850, "m-3": 990}), 4},
		{"indexes within LeaderIndexSlack of the highest count as equal: the name decides", base(map[string]uint64{"m-0": 1000, "m-1": 1000 - LeaderIndexSlack, "m-2": 1000, "m-3": 1000}), 2},
		{"equal indexes: the name that sorts first", func() State {
			s := base(map[string]uint64{"m-0": 100, "m-1": 99, "m-2": 99, "m-3": 99})
			// IDs in the opposite order of the names: the name decides.
			s.Members[1].ID, s.Members[2].ID, s.Members[3].ID = 30, 20, 10
			return s
		}(), 30},
		{"never a member of a deleting Machine, whatever its index", func() State {
			s := base(map[string]uint64{"m-0": 100, "m-1": 99, "m-2": 50, "m-3": 50})
			s.Machines[1].Deleting = true
			return s
		}(), 3},
		{"never an unhealthy member", func() State {
			s := base(map[string]uint64{"m-0": 100, "m-1": 90, "m-2": 80, "m-3": 99})
			s.Members[3].Healthy = false
			return s
		}(), 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.state)
			if d.Action.Kind != MoveLeader || d.Action.MemberID != 1 {
				t.Fatalf("action %+v; want MoveLeader away from member 1", d.Action)
			}
			if d.Action.To != tc.want {
				t.Errorf("leadership to %x; want %x", d.Action.To, tc.want)
			}
		})
	}
	// A learner is never chosen, whatever its index: the planner promotes a healthy learner
	// before it moves leadership, so only the choice itself can show it.
	s := base(map[string]uint64{"m-0": 1000, "m-1": 700, "m-2": 900, "m-3": 990})
	s.Members[3].Learner = true
	machines := map[string]Machine{}
	for _, m := range s.Machines {
		machines[m.Name] = m
	}
	for i := range s.Members {
		s.Members[i].Machine = s.Members[i].Name
	}
	if to := pickLeader(s.Members, machines, 1); to != 3 {
		t.Errorf("with m-3 a learner (index 990), leadership to %x; want 3 (m-2, index 900)", to)
	}
}
