package controlplane

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/leader"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// step is a cluster in which the planner's next step is one action.
type step struct {
	name     string
	machines func() []*machinev1beta1.Machine
	members  func() []*fakeMember
	leader   uint64
	// act is what the pass records from the action's Token on.
	act []string
	// after is the member list once the action is made.
	after string
}

// replacing is master-0 being deleted, with its replacement master-3 running.
func replacing() []*machinev1beta1.Machine {
	return []*machinev1beta1.Machine{deleting(0), master(1), master(2), master(3)}
}

func voters(is ...int) []*fakeMember {
	var out []*fakeMember
	for _, i := range is {
		out = append(out, voter(i))
	}
	return out
}

// steps are the five actions of a replacement, each the next step of its cluster.
var steps = []step{
	{
		name: "a learner is added for the replacement", machines: replacing,
		members: func() []*fakeMember { return voters(0, 1, 2) }, leader: 0x11,
		act:   []string{"token", "fence", "read", "recheck", "add https://10.0.0.3:2380"},
		after: "10,11,12,101L",
	},
	{
		name: "a learner holding the leader's index is promoted", machines: replacing,
		members: func() []*fakeMember { return append(voters(0, 1, 2), learner(3, true, 1000)) }, leader: 0x11,
		act:   []string{"token", "fence", "read", "recheck", "promote 13", "observe"},
		after: "10,11,12,13",
	},
	{
		name: "leadership moves off the member to remove", machines: replacing,
		members: func() []*fakeMember { return voters(0, 1, 2, 3) }, leader: 0x10,
		act:   []string{"token", "fence", "read", "recheck", "move-leader 11"},
		after: "10,11,12,13",
	},
	{
		name: "the member of the deleting Machine is removed", machines: replacing,
		members: func() []*fakeMember { return voters(0, 1, 2, 3) }, leader: 0x11,
		act:   []string{"token", "fence", "read", "recheck", "remove 10"},
		after: "11,12,13",
	},
	{
		name: "the hook of the deleting Machine with no member is released", machines: replacing,
		members: func() []*fakeMember { return voters(1, 2, 3) }, leader: 0x11,
		act:   []string{"token", "token", "fence", "observe", "patch status master-0", "patch master-0"},
		after: "11,12,13",
	},
}

func (s step) harness(t *testing.T) *harness {
	return newHarness(t, s.machines(), s.members(), s.leader)
}

// TestEachActionTakesTheLockThenTheFenceThenReadsThenActs: a pass reads the lock and the
// member list, and the action then takes the lock's token, passes the etcd fence with it,
// reads the state it acts on and checks its reason on that state, and only then changes
// anything.
func TestEachActionTakesTheLockThenTheFenceThenReadsThenActs(t *testing.T) {
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			h := s.harness(t)
			got := h.pass()
			want := append([]string{"token", "observe"}, s.act...)
			if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
				t.Errorf("the pass recorded\n  %q\nwant it to start with\n  %q", got, want)
			}
			if ids := h.etcd.ids(); ids != s.after {
				t.Errorf("members after the pass: %s; want %s", ids, s.after)
			}
			if h.last.Err != nil {
				t.Errorf("the pass reported %v", h.last.Err)
			}
			if len(h.downed) > 0 {
				t.Errorf("stepped down: %v", h.downed)
			}
		})
	}
}

// TestAReplicaThatDoesNotLeadDoesNothing: a standby touches nothing at all, and a replica
// whose lock is gone steps down before it reads or writes anything.
func TestAReplicaThatDoesNotLeadDoesNothing(t *testing.T) {
	for _, s := range steps {
		t.Run("a standby where "+s.name, func(t *testing.T) {
			h := s.harness(t)
			h.r.Elected = func() bool { return false }
			if got := h.pass(); len(got) > 0 {
				t.Errorf("a standby recorded %q; want nothing", got)
			}
			if ids := h.etcd.ids(); ids != memberList(s.members()).ids() {
				t.Errorf("members %s; want %s unchanged", ids, memberList(s.members()).ids())
			}
		})
		t.Run("a replica that lost its lock where "+s.name, func(t *testing.T) {
			h := s.harness(t)
			h.lock.err = leader.ErrNotLeader
			if got := h.pass(); !slices.Equal(got, []string{"token"}) {
				t.Errorf("recorded %q; want only the lock read", got)
			}
			if len(h.downed) != 1 || !errors.Is(h.downed[0], leader.ErrNotLeader) {
				t.Errorf("StepDown calls: %v; want one with the lost lock", h.downed)
			}
			if !h.hasHook("master-0") {
				t.Error("the hook of master-0 was released")
			}
		})
	}
}

type memberList []*fakeMember

func (l memberList) ids() string { return (&fakeEtcd{members: l}).ids() }

// TestNothingIsChangedWithoutQuorum: a member list read without quorum (or no list at all)
// is reported on every Machine and never acted on.
func TestNothingIsChangedWithoutQuorum(t *testing.T) {
	for _, s := range steps {
		for _, tc := range []struct {
			name   string
			err    error
			view   bool
			reason string
		}{
			{"quorum is lost", &etcdmember.NoQuorumError{Counts: etcdmember.Counts{Voters: 4, Healthy: 1, Quorum: 3, Tolerance: -2}, Answering: 1, Err: errors.New("list members: context deadline exceeded")}, true, quorum.ReasonNoQuorum},
			{"etcd is unreachable", &etcdmember.UnreachableError{Err: errors.New("connection refused")}, false, quorum.ReasonEtcdUnreachable},
		} {
			t.Run(fmt.Sprintf("%s where %s", tc.name, s.name), func(t *testing.T) {
				h := s.harness(t)
				h.etcd.ObserveErr, h.etcd.NoQuorumView = tc.err, tc.view
				got := h.pass()
				for _, e := range got {
					if e == "fence" || e == "read" {
						t.Errorf("recorded %q: etcd was written or acted on", got)
						break
					}
				}
				if c := changes(got); len(c) > 0 {
					t.Errorf("changed %q", c)
				}
				if !h.hasHook("master-0") {
					t.Error("the hook of master-0 was released")
				}
				for _, m := range s.machines() {
					if r := h.reason(m.Name); r != tc.reason {
						t.Errorf("%s says %q; want %q", m.Name, r, tc.reason)
					}
				}
				if h.last.Decision.Action.Kind != "" && h.last.Decision.Action.Kind != quorum.None {
					t.Errorf("decided %s", h.last.Decision.Action)
				}
			})
		}
	}
}

// TestAFencedLeaderStepsDownAndChangesNothing: when a newer leadership has passed the etcd
// fence, the action is refused at the fence, the replica steps down, and neither etcd nor
// the hook changes.
func TestAFencedLeaderStepsDownAndChangesNothing(t *testing.T) {
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			h := s.harness(t)
			h.etcd.stored = 2 // a newer leader's token; this replica still holds 1
			got := h.pass()
			if c := changes(got); len(c) > 0 {
				t.Errorf("changed %q", c)
			}
			if count(got, "read") > 0 {
				t.Errorf("recorded %q: the state was read past a refused fence", got)
			}
			if ids := h.etcd.ids(); ids != memberList(s.members()).ids() {
				t.Errorf("members %s; want %s unchanged", ids, memberList(s.members()).ids())
			}
			if !h.hasHook("master-0") {
				t.Error("the hook of master-0 was released")
			}
			var fe *etcdmember.FencedError
			if len(h.downed) != 1 || !errors.As(h.downed[0], &fe) {
				t.Errorf("StepDown calls: %v; want one with the fence's refusal", h.downed)
			}
		})
	}
}
