package etcdmember

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestLearnerCutOffFromTheLeaderIsNotPromoted: a learner whose link to the leader alone is
// cut still answers Status and names the leader, and etcd's own readiness check looks only
// at what the leader last heard from it, so with no writes since it would promote it and
// turn 3 reachable voters into 4 with 3 reachable. Promote refuses it, since it cannot
// commit the fence's write; once the link is mended it is promoted.
func TestLearnerCutOffFromTheLeaderIsNotPromoted(t *testing.T) {
	ctx := t.Context()
	cl := newCluster(t, ctx, "a", "b", "c")
	const token = 1
	d, dm := cl.addLearner(ctx, token, "d", nil)
	eventually(t, ctx, 30*time.Second, "learner d has caught up", func() (bool, string) {
		p, err := cl.client.Progress(ctx, d.ID)
		return err == nil && p.CaughtUp(), p.String() + " " + errString(err)
	})
	members, health, err := cl.client.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lead := leaderOf(health)
	var leader string
	for _, m := range members {
		if m.ID == lead {
			leader = m.Name
		}
	}
	if leader == "" {
		t.Fatalf("no leader among %s", names(members))
	}
	dm.Cut(cl.members[leader])
	t.Logf("cut learner d off from leader %s only", leader)

	err = retryTransient(t, ctx, func() error { return cl.client.Promote(ctx, token, d.ID) })
	var ns *NotInSyncError
	if !errors.As(err, &ns) || !strings.Contains(ns.Error(), "not receiving the leader's entries") {
		ms, _ := cl.client.Members(ctx)
		t.Fatalf("Promote of a learner cut off from its leader = %v (members %s), want a *NotInSyncError saying it is not receiving the leader's entries", err, names(ms))
	}
	t.Logf("refused: %v", err)
	ms, err := cl.client.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := find(ms, d.ID); !ok || !m.IsLearner {
		t.Fatalf("after the refused promotion members are %s, want d still a learner", names(ms))
	}

	dm.Mend(cl.members[leader])
	if err := retryTransient(t, ctx, func() error {
		err := cl.client.Promote(ctx, token, d.ID)
		if errors.As(err, &ns) {
			return &TimeoutError{Where: ns.Where, Err: err} // the link is coming back: try again
		}
		return err
	}); err != nil {
		t.Fatalf("Promote after the link was mended: %v", err)
	}
	ms, err = cl.client.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := find(ms, d.ID); !ok || m.IsLearner {
		t.Fatalf("after the link was mended members are %s, want d voting", names(ms))
	}
}

// TestGuardRefusesAChangeWhoseReasonIsGone: a guard that fails on the state read after the
// fence refuses the change with a *StaleError, and nothing changes.
func TestGuardRefusesAChangeWhoseReasonIsGone(t *testing.T) {
	ctx := t.Context()
	cl := newCluster(t, ctx, "a", "b", "c")
	const token = 1
	target := cl.id("c")
	var saw []Member
	gone := errors.New("member c is healthy again")
	err := retryTransient(t, ctx, func() error {
		return cl.client.Remove(ctx, token, target, func(members []Observed) error {
			saw = nil
			for _, m := range members {
				saw = append(saw, m.Member)
			}
			return gone
		})
	})
	var se *StaleError
	if !errors.As(err, &se) || !errors.Is(err, gone) {
		t.Fatalf("Remove with a failing guard = %v, want a *StaleError wrapping the guard's error", err)
	}
	if len(saw) != 3 {
		t.Fatalf("the guard saw %s, want the 3 members read after the fence", names(saw))
	}
	ms, err := cl.client.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := find(ms, target); !ok || len(ms) != 3 {
		t.Fatalf("after the refused removal members are %s, want c still there", names(ms))
	}
}
