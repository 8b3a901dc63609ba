package etcdmember

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRemoveRefusedWhileAnotherIsDown: with c dead, removing healthy a would leave 2
// voters with 1 healthy, below quorum 2; removing dead c is fine.
func TestRemoveRefusedWhileAnotherIsDown(t *testing.T) {
	ctx := t.Context()
	cl := newCluster(t, ctx, "a", "b", "c")
	const token = 1
	a, c := cl.id("a"), cl.id("c")

	t.Run("a frozen member is unhealthy with an error naming it", func(t *testing.T) {
		b := cl.members["b"]
		b.Freeze()
		defer b.Thaw()
		_, hs := cl.waitHealth(ctx, cl.id("b"), false)
		h := hs[slices.IndexFunc(hs, func(h Health) bool { return h.ID == cl.id("b") })]
		// Whichever ends first: the connection attempt (unreachable) or the probe (timeout).
		var te *TimeoutError
		var ue *UnreachableError
		var w Where
		switch {
		case errors.As(h.Err, &te):
			w = te.Where
		case errors.As(h.Err, &ue):
			w = ue.Where
		}
		if w.Endpoint != b.ClientURL() || !strings.HasPrefix(w.Member, "b (") {
			t.Fatalf("probe of frozen b: %v, want a *TimeoutError or *UnreachableError naming %s and member b", h.Err, b.ClientURL())
		}
		b.Thaw()
		cl.waitHealth(ctx, cl.id("b"), true)
	})

	cl.members["c"].Kill()
	_, hs := cl.waitHealth(ctx, c, false)
	ms := cl.waitMembers(ctx, "c down, a and b healthy", func(ms []Member) bool { return Count(ms).Healthy == 2 })

	t.Run("a killed member is unreachable, named by endpoint and member", func(t *testing.T) {
		h := hs[slices.IndexFunc(hs, func(h Health) bool { return h.ID == c })]
		var ue *UnreachableError
		if !errors.As(h.Err, &ue) || ue.Endpoint != cl.members["c"].ClientURL() || !strings.HasPrefix(ue.Member, "c (") {
			t.Fatalf("probe of killed c: %v, want an *UnreachableError naming %s and member c", h.Err, cl.members["c"].ClientURL())
		}
		if got := Count(ms).Tolerance; got != 0 {
			t.Fatalf("fault tolerance with c dead = %d, want 0", got)
		}
	})

	cl.settle(ctx)
	for _, remove := range []struct {
		name string
		fn   func() error
	}{
		{"Remove", func() error { return cl.client.Remove(ctx, token, a) }},
		{"RemoveMember", func() error { return cl.client.RemoveMember(ctx, token, a) }},
	} {
		t.Run(remove.name+" of healthy a is refused with the numbers", func(t *testing.T) {
			err := retryTransient(t, ctx, remove.fn)
			var ue *UnsafeChangeError
			if !errors.As(err, &ue) {
				t.Fatalf("%s(a) with c dead = %v, want an *UnsafeChangeError", remove.name, err)
			}
			want := UnsafeChangeError{Change: Change{ChangeRemove, a},
				Before: Counts{Voters: 3, Healthy: 2, Quorum: 2, Tolerance: 0},
				After:  Counts{Voters: 2, Healthy: 1, Quorum: 2, Tolerance: -1}}
			if ue.Change != want.Change || ue.Before != want.Before || ue.After != want.After {
				t.Fatalf("refusal %v, want change %s, before %s, after %s", ue, want.Change, want.Before, want.After)
			}
			for _, s := range []string{"2 voting (1 healthy), quorum 2", "3 voting (2 healthy)"} {
				if !strings.Contains(ue.Error(), s) {
					t.Fatalf("refusal %q does not say %q", ue.Error(), s)
				}
			}
			ms, err := cl.client.Members(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := find(ms, a); !ok {
				t.Fatalf("a was removed anyway: %s", names(ms))
			}
		})
	}

	t.Run("removing dead c is allowed", func(t *testing.T) {
		if err := retryTransient(t, ctx, func() error { return cl.client.Remove(ctx, token, c) }); err != nil {
			t.Fatalf("Remove(dead c) = %v", err)
		}
		ms, err := cl.client.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := find(ms, c); ok || len(ms) != 2 {
			t.Fatalf("members after removing c: %s", names(ms))
		}
	})
	// Only a and b are left; with b dead too, a alone is below the quorum of 2.
	t.Run("with quorum lost, State says so and shows the members", func(t *testing.T) {
		b := cl.id("b")
		cl.members["b"].Kill()
		var ms []Member
		var nq *NoQuorumError
		eventually(t, ctx, 90*time.Second, "State returns a *NoQuorumError", func() (bool, string) {
			var err error
			ms, _, err = cl.client.State(ctx)
			return errors.As(err, &nq), fmt.Sprint(err)
		})
		want := Counts{Voters: 2, Healthy: 0, Quorum: 2, Tolerance: -2}
		if nq.Counts != want || nq.Answering != 1 {
			t.Fatalf("no-quorum error %v: counts %s, %d answering; want %s, 1 answering", nq, nq.Counts, nq.Answering, want)
		}
		if got := names(ms); got != "a,b" && got != "b,a" {
			t.Fatalf("members with quorum lost: %s, want a and b", got)
		}
		for _, s := range []string{"etcd has no quorum", "0 of 2 voting members are healthy and 2 are needed", "1 answer"} {
			if !strings.Contains(nq.Error(), s) {
				t.Fatalf("no-quorum error %q does not say %q", nq.Error(), s)
			}
		}
		err := cl.client.Remove(ctx, token, b)
		if !errors.As(err, &nq) {
			t.Fatalf("Remove(b) with quorum lost = %v, want the *NoQuorumError", err)
		}
	})
}

// TestRemoveMemberMovesLeadershipFirst removes the leader and checks, at the moment the
// removal is sent, that the other members already follow someone else.
func TestRemoveMemberMovesLeadershipFirst(t *testing.T) {
	ctx := t.Context()
	cl := newCluster(t, ctx, "a", "b", "c")
	const token = 1
	cl.settle(ctx)
	ms, hs, err := cl.client.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lead := leaderOf(hs)
	if lead == 0 {
		t.Fatalf("no leader in %v", hs)
	}
	var events []string
	cl.client.beforeChange = func(_ context.Context, op string, id uint64) {
		event := fmt.Sprintf("%s %x", op, id)
		if op == "remove" {
			for _, m := range ms {
				if m.ID == lead {
					continue
				}
				st, err := cl.client.Status(ctx, m)
				if err != nil {
					t.Errorf("status of %s right before removal: %v", m, err)
					continue
				}
				event += fmt.Sprintf(", %s follows %x", m.Name, st.Leader)
			}
		}
		events = append(events, event)
	}
	if err := retryTransient(t, ctx, func() error { return cl.client.RemoveMember(ctx, token, lead) }); err != nil {
		t.Fatalf("RemoveMember(leader %x): %v", lead, err)
	}
	cl.forget(lead)
	if len(events) < 2 || !strings.HasPrefix(events[0], "move leader ") || !strings.HasPrefix(events[len(events)-1], fmt.Sprintf("remove %x", lead)) {
		t.Fatalf("events %q, want a leadership move, then the removal of %x", events, lead)
	}
	to := strings.TrimPrefix(events[0], "move leader ")
	for _, e := range events[1:] {
		for _, follows := range strings.Split(e, ", ")[1:] {
			if !strings.HasSuffix(follows, " follows "+to) {
				t.Fatalf("at removal %q, want every other member following the new leader %s", e, to)
			}
		}
	}
	after, err := cl.client.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := find(after, lead); ok || len(after) != 2 {
		t.Fatalf("members after removing the leader: %s", names(after))
	}

	t.Run("removing a follower moves nothing", func(t *testing.T) {
		events = nil
		_, hs, err := cl.client.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var follower uint64
		for _, m := range after {
			if m.ID != leaderOf(hs) {
				follower = m.ID
			}
		}
		if err := retryTransient(t, ctx, func() error { return cl.client.RemoveMember(ctx, token, follower) }); err != nil {
			t.Fatalf("RemoveMember(follower %x): %v", follower, err)
		}
		if len(events) == 0 || slices.ContainsFunc(events, func(e string) bool { return !strings.HasPrefix(e, "remove ") }) {
			t.Fatalf("events %q, want only the removal", events)
		}
	})
}
