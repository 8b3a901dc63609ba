package plan

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/pkg/machines"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// cluster is n healthy voting members on Machines cluster-master-0..n-1, Machine i in
// domains[i], the member of Machine leader leading, every member voting for an hour.
func cluster(domains string, leader int) quorum.State {
	s := quorum.State{Desired: len(domains), Now: now}
	for i := range len(domains) {
		name := fmt.Sprintf("cluster-master-%d", i)
		ip := fmt.Sprintf("10.0.0.%d", i+1)
		s.Machines = append(s.Machines, quorum.Machine{Name: name, Running: true, HasHook: true, NodeName: name,
			Domain: string(domains[i]), Addresses: []quorum.Address{{Type: quorum.AddressInternalIP, Address: ip}},
			VotingSince: now.Add(-time.Hour)})
		s.Members = append(s.Members, quorum.Member{ID: uint64(0x100 + i), Name: name, PeerURLs: []string{"https://" + ip + ":2380"},
			Started: true, Healthy: true, Leader: i == leader})
	}
	return s
}

func set(domains string) *MachineSet {
	ms := &MachineSet{Strategy: machines.RollingUpdate}
	for _, d := range domains {
		ms.Domains = append(ms.Domains, string(d))
	}
	return ms
}

// script is the plan as "actor kind machine" lines, waits without their machine.
func script(r Result) []string {
	var out []string
	for _, st := range r.Steps {
		line := fmt.Sprintf("%s %s %s", st.Actor, st.Kind, st.Machine)
		if st.Kind == KindCreateMachine {
			line += " in " + st.Domain
		}
		if st.Kind == KindWait {
			line = fmt.Sprintf("%s %s", st.Actor, st.Kind)
		}
		out = append(out, line)
	}
	return out
}

// replacing is the script of one Machine's replacement by new, once new exists, with
// leadership moved away first when moveLeader.
func replacing(old, new string, moveLeader bool) []string {
	out := []string{
		"controller AddHook " + new,
		"controller AddLearner " + new,
		"node StartLearner " + new,
		"etcd CatchUp " + new,
		"controller Promote " + new,
		"clock Wait",
	}
	if moveLeader {
		out = append(out, "controller MoveLeader "+old)
	}
	return append(out, "controller RemoveMember "+old, "controller ReleaseHook "+old, "machine-api MachineGone "+old)
}

// rolling is the script of a rolling replacement once new exists: the
// ControlPlaneMachineSet deletes the old Machine as soon as the new one votes, and its
// member goes once the health window has passed.
func rolling(old, new string) []string {
	r := replacing(old, new, false)
	return slices.Concat(r[:5], []string{"ControlPlaneMachineSet DeleteMachine " + old}, r[5:])
}

func TestRun(t *testing.T) {
	cases := []struct {
		name   string
		in     Input
		want   []string
		lowest int
		stall  string
	}{
		{
			name: "three members, one deleted: replaced in its own domain, leadership moved off it first",
			in:   Input{State: cluster("abc", 0), MachineSet: set("abc"), Delete: []string{"cluster-master-0"}},
			want: slices.Concat([]string{"you DeleteMachine cluster-master-0", "ControlPlaneMachineSet CreateMachine cluster-master-new-0 in a"},
				replacing("cluster-master-0", "cluster-master-new-0", true)),
			lowest: 1,
		},
		{
			name: "five members, one deleted that does not lead",
			in:   Input{State: cluster("abcab", 0), MachineSet: set("abc"), Delete: []string{"cluster-master-3"}},
			want: slices.Concat([]string{"you DeleteMachine cluster-master-3", "ControlPlaneMachineSet CreateMachine cluster-master-new-3 in a"},
				replacing("cluster-master-3", "cluster-master-new-3", false)),
			lowest: 2,
		},
		{
			name: "three members, two deleted at once: one replacement after the other",
			in:   Input{State: cluster("abc", 2), MachineSet: set("abc"), Delete: []string{"cluster-master-0", "cluster-master-1"}},
			want: slices.Concat([]string{"you DeleteMachine cluster-master-0", "you DeleteMachine cluster-master-1",
				"ControlPlaneMachineSet CreateMachine cluster-master-new-0 in a"},
				replacing("cluster-master-0", "cluster-master-new-0", false)[:6],
				// The second replacement is created as soon as the first old Machine is gone;
				// the learner waits for the health window.
				[]string{"controller RemoveMember cluster-master-0", "controller ReleaseHook cluster-master-0",
					"machine-api MachineGone cluster-master-0", "ControlPlaneMachineSet CreateMachine cluster-master-new2-1 in b"},
				replacing("cluster-master-1", "cluster-master-new2-1", false)),
			lowest: 1,
		},
		{
			name: "five members, two deleted at once",
			in:   Input{State: cluster("abcab", 4), MachineSet: set("abc"), Delete: []string{"cluster-master-0", "cluster-master-1"}},
			want: slices.Concat([]string{"you DeleteMachine cluster-master-0", "you DeleteMachine cluster-master-1",
				"ControlPlaneMachineSet CreateMachine cluster-master-new-0 in a"},
				replacing("cluster-master-0", "cluster-master-new-0", false)[:6],
				[]string{"controller RemoveMember cluster-master-0", "controller ReleaseHook cluster-master-0",
					"machine-api MachineGone cluster-master-0", "ControlPlaneMachineSet CreateMachine cluster-master-new2-1 in b"},
				replacing("cluster-master-1", "cluster-master-new2-1", false)),
			lowest: 2,
		},
		{
			name: "a domain added: index 2 moves from a to c, the old Machine deleted once the new one votes",
			in:   Input{State: cluster("aba", 1), MachineSet: set("abc")},
			want: slices.Concat([]string{"ControlPlaneMachineSet CreateMachine cluster-master-new-2 in c"},
				rolling("cluster-master-2", "cluster-master-new-2")),
			lowest: 1,
		},
		{
			name: "all in one domain, three listed: two Machines roll, one at a time",
			in:   Input{State: cluster("aaa", 0), MachineSet: set("abc")},
			want: slices.Concat(
				[]string{"ControlPlaneMachineSet CreateMachine cluster-master-new-1 in b"},
				rolling("cluster-master-1", "cluster-master-new-1"),
				[]string{"ControlPlaneMachineSet CreateMachine cluster-master-new2-2 in c"},
				rolling("cluster-master-2", "cluster-master-new2-2")),
			lowest: 1,
		},
		{
			name: "nothing to do",
			in:   Input{State: cluster("abc", 0), MachineSet: set("abc")},
			want: nil, lowest: 1,
		},
		{
			name:   "no ControlPlaneMachineSet: the deleted Machine waits for a replacement that never comes",
			in:     Input{State: cluster("abc", 1), Delete: []string{"cluster-master-0"}},
			want:   []string{"you DeleteMachine cluster-master-0"},
			lowest: 1,
			stall:  "Machine cluster-master-0 waits (WaitingForReplacement)",
		},
		{
			name: "a replacement with no InternalIP: no learner is ever added for it",
			in: func() Input {
				s := cluster("abc", 1)
				s.Machines = append(s.Machines, quorum.Machine{Name: "cluster-master-x-0", Running: true, HasHook: true, Domain: "a"})
				s.Machines[0].Deleting = true
				return Input{State: s, MachineSet: set("abc")}
			}(),
			want:   nil,
			lowest: 1,
			stall:  "Machine cluster-master-x-0 waits (NotMember): Machine has no InternalIP",
		},
		{
			name: "a Machine deleted after its hook was stripped, one member already dead: quorum is lost",
			in: func() Input {
				s := cluster("abc", 1)
				s.Machines[0].HasHook = false
				s.Members[2].Healthy = false
				return Input{State: s, MachineSet: set("abc"), Delete: []string{"cluster-master-0"}}
			}(),
			// The replacement is created and hooked, and nothing more: no learner is added
			// without quorum.
			want: []string{"you DeleteMachine cluster-master-0", "machine-api MachineGone cluster-master-0",
				"ControlPlaneMachineSet CreateMachine cluster-master-new-0 in a", "controller AddHook cluster-master-new-0"},
			// 1 healthy of 3 voters, quorum 2.
			lowest: -1,
			stall:  "the controller",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Run(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got := script(res)
			if tc.stall == "" && res.Stalls() {
				t.Errorf("stalls: %s", res.Stall)
			}
			if tc.stall != "" && !strings.Contains(res.Stall, tc.stall) {
				t.Errorf("stall %q, want one containing %q", res.Stall, tc.stall)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if res.Lowest != tc.lowest {
				t.Errorf("lowest fault tolerance %d, want %d", res.Lowest, tc.lowest)
			}
			lowest := res.StartTolerance
			for _, st := range res.Steps {
				lowest = min(lowest, st.FaultTolerance)
			}
			if lowest != res.Lowest {
				t.Errorf("Lowest %d, but the steps go down to %d", res.Lowest, lowest)
			}
		})
	}
}

// Each step's fault tolerance is the planner's on the world after it: a learner counts
// for nothing, a promotion to four voters keeps it at 1, the removal brings it back.
func TestRunTolerancePerStep(t *testing.T) {
	res, err := Run(Input{State: cluster("abc", 1), MachineSet: set("abc"), Delete: []string{"cluster-master-0"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range res.Steps {
		if st.FaultTolerance != 1 {
			t.Errorf("step %s %s on %s: tolerance %d, want 1", st.Actor, st.Kind, st.Machine, st.FaultTolerance)
		}
	}
	// With a dead member on a Machine that stays, nothing moves and the plan says why.
	s := cluster("abc", 1)
	s.Members[2].Healthy = false
	res, err = Run(Input{State: s, MachineSet: set("abc"), Delete: []string{"cluster-master-0"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stalls() || !strings.Contains(res.Stall, quorum.ReasonBlocked) || res.Lowest != 0 {
		t.Errorf("with member 102 dead: stall %q, lowest %d; want a Blocked stall at tolerance 0\n%s", res.Stall, res.Lowest, strings.Join(script(res), "\n"))
	}
}

// A world that never settles ends at the step bound, reported as a stall.
func TestRunStepBound(t *testing.T) {
	res, err := Run(Input{State: cluster("abc", 0), MachineSet: set("abc"), Delete: []string{"cluster-master-0"}, MaxSteps: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Steps) != 5 || !strings.Contains(res.Stall, "no end after 5 steps") {
		t.Errorf("%d steps, stall %q; want 5 and the bound", len(res.Steps), res.Stall)
	}
}

func TestRunRefusesUnknownMachines(t *testing.T) {
	if _, err := Run(Input{State: cluster("abc", 0), Delete: []string{"cluster-master-9"}}); err == nil || !strings.Contains(err.Error(), "no control-plane Machine cluster-master-9") {
		t.Errorf("Run = %v, want the unknown Machine refused", err)
	}
}

func TestDefaultMinTolerance(t *testing.T) {
	for desired, want := range map[int]int{3: 0, 5: 1} {
		if got := DefaultMinTolerance(desired); got != want {
			t.Errorf("DefaultMinTolerance(%d) = %d, want %d", desired, got, want)
		}
	}
}

// TestRunCaughtUpLearnerMayLead: a learner the plan lets catch up has the leader's raft
// index, so it competes for leadership as the controller would see it then. Here the two
// other voters trail the leader by more than quorum.LeaderIndexSlack in the reading the plan
// starts from: the caught-up replacement is the one leadership moves to.
func TestRunCaughtUpLearnerMayLead(t *testing.T) {
	s := cluster("abc", 0)
	s.Members[0].Index, s.Members[1].Index, s.Members[2].Index = 5000, 4800, 4800
	r, err := Run(Input{State: s, MachineSet: set("abc"), Delete: []string{"cluster-master-0"}})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(r.Steps, func(st Step) bool { return st.Kind == string(quorum.MoveLeader) })
	if i < 0 {
		t.Fatalf("no leadership move in the plan: %v", script(r))
	}
	learner := slices.IndexFunc(r.Steps, func(st Step) bool { return st.Kind == string(quorum.AddLearner) })
	if learner < 0 || r.Steps[i].To != r.Steps[learner].Member {
		t.Errorf("leadership moves to %s; want the caught-up replacement's member %s", r.Steps[i].To, r.Steps[max(learner, 0)].Member)
	}
}

// TestRunWithPreTerminateHook: with the preTerminate hook kept, a replacement runs as with the
// preDrain hook alone: the new Machine gets both hooks in one step, and the old one goes once
// both are released together.
func TestRunWithPreTerminateHook(t *testing.T) {
	s := cluster("abc", 0)
	s.PreTerminateHook = true
	for i := range s.Machines {
		s.Machines[i].HasPreTerminateHook = true
	}
	r, err := Run(Input{State: s, MachineSet: set("abc"), Delete: []string{"cluster-master-0"}})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Concat([]string{"you DeleteMachine cluster-master-0", "ControlPlaneMachineSet CreateMachine cluster-master-new-0 in a"},
		replacing("cluster-master-0", "cluster-master-new-0", true))
	if got := script(r); !slices.Equal(got, want) {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
