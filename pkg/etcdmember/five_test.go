package etcdmember

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestFiveMembersReplaceDeadMember replaces dead member e of five in the order
// DeadMemberOrder gives, checking the counts at each step.
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
	e := cl.id("e")
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

	for _, want := range []struct {
		step   Step
		voters int
		tol    int
	}{
		{StepRemoveOld, 4, 1},
		{StepPromoteLearner, 5, 2},
		{StepNone, 5, 2},
	} {
		ms := cl.waitMembers(ctx, "every member but e healthy", func(ms []Member) bool {
			return !slices.ContainsFunc(ms, func(m Member) bool { return m.ID != e && !m.Healthy })
		})
		step, reason := DeadMemberOrder(ms, e, f.ID)
		t.Logf("%s: %s", step, reason)
		if step != want.step {
			t.Fatalf("DeadMemberOrder = %s (%s), want %s", step, reason, want.step)
		}
		switch step {
		case StepRemoveOld:
			err = retryTransient(t, ctx, func() error { return cl.client.RemoveMember(ctx, token, e) })
		case StepPromoteLearner:
			wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			err = cl.client.WaitPromote(wctx, token, f.ID, 50*time.Millisecond)
			cancel()
		}
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		cl.waitMembers(ctx, fmt.Sprintf("after %s, %d voting, all healthy", step, want.voters), func(ms []Member) bool {
			c := Count(ms)
			return c.Voters == want.voters && c.Healthy == want.voters && c.Tolerance == want.tol
		})
	}
}
