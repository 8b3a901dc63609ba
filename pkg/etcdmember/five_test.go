package etcdmember

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// TestFiveMembersReplaceDeadMember replaces dead member e of five, against real etcd, in the
// order the planner gives, checking the counts at each step: the dead member goes first (5
// voting with 4 healthy become 4 of 4), its Machine's hook is released, then the learner is
// promoted (5 of 5).
func TestFiveMembersReplaceDeadMember(t *testing.T) {
	ctx := t.Context()
	cl := newCluster(t, ctx, "a", "b", "c", "d", "e")
	const token = 7
	ms, _, err := cl.client.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := Count(ms); c.Voters != 5 || c.Healthy != 5 || c.Quorum != 3 || c.Tolerance != 2 {
		t.Fatalf("fresh cluster: %s, want 5 voting, 5 healthy, quorum 3, tolerance 2", c)
	}
	cl.members["e"].Kill()
	cl.waitMembers(ctx, "e down, the other four healthy", func(ms []Member) bool { return Count(ms).Healthy == 4 })
	cl.settle(ctx)
	f, _ := cl.addLearner(ctx, token, "f", nil)
	ms = cl.waitMembers(ctx, "f and a to d healthy", func(ms []Member) bool {
		l, ok := find(ms, f.ID)
		return ok && l.Healthy && Count(ms).Healthy == 4
	})
	if c := Count(ms); c.Voters != 5 || c.Healthy != 4 || c.Learners != 1 || c.Tolerance != 1 {
		t.Fatalf("e dead, f learning: %s, %d learners; want 5 voting, 4 healthy, tolerance 1", c, c.Learners)
	}

	// Machine e is being deleted; the others run, each named after its member.
	deleting := map[string]bool{"e": true}
	for _, want := range []struct {
		kind   quorum.Kind
		voters int
		tol    int
	}{
		{quorum.RemoveMember, 4, 1},
		{quorum.ReleaseHook, 4, 1},
		{quorum.Promote, 5, 2},
		{quorum.None, 5, 2},
	} {
		ms, _, err := cl.client.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d := quorum.Decide(cl.plannerState(ms, deleting))
		t.Logf("%s", d.Action)
		if d.Action.Kind != want.kind {
			t.Fatalf("the planner says %s, want %s", d.Action, want.kind)
		}
		switch d.Action.Kind {
		case quorum.RemoveMember:
			err = retryTransient(t, ctx, func() error { return cl.client.RemoveMember(ctx, token, d.Action.MemberID) })
		case quorum.ReleaseHook:
			delete(deleting, d.Action.Machine)
			delete(cl.members, d.Action.Machine)
		case quorum.Promote:
			wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			err = cl.client.WaitPromote(wctx, token, d.Action.MemberID, 50*time.Millisecond)
			cancel()
		}
		if err != nil {
			t.Fatalf("%s: %v", d.Action, err)
		}
		cl.waitMembers(ctx, fmt.Sprintf("after %s, %d voting, all healthy", d.Action.Kind, want.voters), func(ms []Member) bool {
			c := Count(ms)
			return c.Voters == want.voters && c.Healthy == want.voters && c.Tolerance == want.tol
		})
	}
}

// plannerState is the planner's input for the cluster: one hooked, running Machine per
// member, with the member's IP as its InternalIP and a Node of the member's name.
func (cl *testCluster) plannerState(ms []Member, deleting map[string]bool) quorum.State {
	s := quorum.State{Desired: 5}
	for name, m := range cl.members {
		s.Machines = append(s.Machines, quorum.Machine{Name: name, NodeName: name, Running: true, HasHook: true, Deleting: deleting[name],
			Addresses: []quorum.Address{{Type: quorum.AddressInternalIP, Address: m.IP.String()}}})
	}
	for _, m := range ms {
		s.Members = append(s.Members, quorum.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, Learner: m.IsLearner,
			Started: m.Started, Healthy: m.Healthy, Progress: 1})
	}
	return s
}
