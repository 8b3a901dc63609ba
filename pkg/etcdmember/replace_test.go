package etcdmember

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestReplaceMember replaces member c of a, b, c with a learner d that must catch up on
// 5 MB: added, refused promotion while behind, promoted, then c removed.
func TestReplaceMember(t *testing.T) {
	ctx := t.Context()
	cl := newCluster(t, ctx, "a", "b", "c")
	const token = 1
	cl.write(ctx, "data", 5<<20, 64<<10)

	d, dm := cl.addLearner(ctx, token, "d", nil)
	if !d.IsLearner || d.Started {
		t.Fatalf("new learner: %+v, want an unstarted learner", d)
	}

	t.Run("adding the same peer URL again returns the same learner", func(t *testing.T) {
		again, err := cl.client.AddLearner(ctx, token, dm.PeerURL())
		if err != nil || again.ID != d.ID {
			t.Fatalf("AddLearner again = %+v, %v; want member %x", again, err, d.ID)
		}
	})

	t.Run("a second learner is refused while d is unpromoted", func(t *testing.T) {
		ip, err := cl.net.AllocateIP()
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.client.AddLearner(ctx, token, "https://"+ip.String()+":2380")
		var ue *UnsafeChangeError
		if !errors.As(err, &ue) || ue.Change.Kind != ChangeAddLearner || ue.Before.Learners != 1 {
			t.Fatalf("AddLearner with a learner pending = %v, want an *UnsafeChangeError counting 1 learner", err)
		}
	})

	t.Run("promotion is refused while the learner is behind", func(t *testing.T) {
		eventually(t, ctx, 20*time.Second, "learner d knows a leader", func() (bool, string) {
			st, err := cl.client.Status(ctx, Member{ID: d.ID, Name: "d", Started: true, ClientURLs: []string{dm.ClientURL()}})
			return err == nil && st.Leader != 0, "status " + errString(err)
		})
		// Cut d off, and move the leader's index well past what d holds if d had caught up.
		dm.Partition()
		defer dm.Heal()
		var err error
		for range 30 {
			var p Progress
			if p, err = cl.client.Progress(ctx, d.ID); err == nil && p.Ratio() >= 0.8 {
				cl.burst(ctx, fmt.Sprintf("more-%d", p.LeaderIndex), 30)
				continue
			}
			if err == nil {
				err = cl.client.Promote(ctx, token, d.ID)
			}
			if !transient(err) {
				break
			}
			t.Logf("retrying after: %v", err)
			time.Sleep(200 * time.Millisecond)
		}
		var ns *NotInSyncError
		if !errors.As(err, &ns) {
			t.Fatalf("Promote of a learner cut off from its leader = %v, want a *NotInSyncError", err)
		}
		if ns.ID != d.ID || ns.Progress.LeaderIndex == 0 || ns.Progress.Ratio() >= 0.9 || ns.Endpoint == "" {
			t.Fatalf("NotInSyncError = %v (progress %+v), want d's progress below 90%% and the endpoint", ns, ns.Progress)
		}
		t.Logf("refused as expected: %v", ns)
	})

	t.Run("promotion succeeds once the learner catches up", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := cl.client.WaitPromote(wctx, token, d.ID, 50*time.Millisecond); err != nil {
			t.Fatalf("WaitPromote: %v", err)
		}
		ms, err := cl.client.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := find(ms, d.ID); !ok || m.IsLearner || !m.Started {
			t.Fatalf("after WaitPromote members are %s, want d voting", names(ms))
		}
		if err := cl.client.Promote(ctx, token, d.ID); err != nil {
			t.Fatalf("promoting a voter again = %v, want nil", err)
		}
	})

	t.Run("the old member is removed, and removing it again succeeds", func(t *testing.T) {
		old := cl.id("c")
		oldURL := cl.members["c"].ClientURL()
		if err := retryTransient(t, ctx, func() error { return cl.client.RemoveMember(ctx, token, old) }); err != nil {
			t.Fatalf("RemoveMember c: %v", err)
		}
		cl.forget(old)
		if err := cl.client.Remove(ctx, token, old); err != nil {
			t.Fatalf("Remove c again = %v, want nil", err)
		}
		ms, err := cl.client.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := find(ms, old); ok || len(ms) != 3 {
			t.Fatalf("members after removing c: %s", names(ms))
		}
		want := ClientURLs(ms)
		if err := cl.client.Sync(ctx); err != nil || !slices.Equal(cl.client.Endpoints(), want) {
			t.Fatalf("Sync = %v, endpoints %v; want %v", err, cl.client.Endpoints(), want)
		}
		if slices.Contains(cl.client.Endpoints(), oldURL) {
			t.Fatalf("client endpoints %v after Sync still include removed c at %s", cl.client.Endpoints(), oldURL)
		}
	})

	t.Run("a new client reaches etcd through the new member alone", func(t *testing.T) {
		ca, cert, key := cl.net.ClientFiles()
		c2, err := NewFromFiles(Config{Endpoints: []string{dm.ClientURL()}}, TLSFiles{CA: ca, Cert: cert, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		ms, hs, err := c2.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c := Count(ms); c.Voters != 3 || c.Healthy != 3 {
			t.Fatalf("state through d: %s (%v), want 3 healthy voters", c, hs)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
