package etcdmember

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// TestRemovedLeaderHandsOverToTheMostUpToDate: before the leader's member is removed,
// leadership goes to the healthy voter whose raft index is highest, never to a learner. Of
// voters a, b, c and leader d, a sorts first but its peer links are slow while writes go on,
// so its index trails b's and c's by more than quorum.LeaderIndexSlack; learner e sorts
// after them all and is never a candidate. The hand-over must go to b or c, and the member the client names as
// the target must be the one that leads afterwards.
func TestRemovedLeaderHandsOverToTheMostUpToDate(t *testing.T) {
	ctx := t.Context()
	cl := newCluster(t, ctx, "a", "b", "c", "d")
	const token = 1
	cl.settle(ctx)
	if err := retryTransient(t, ctx, func() error { return cl.client.MoveLeader(ctx, token, cl.id("d")) }); err != nil {
		t.Fatalf("move leadership to d: %v", err)
	}
	e, _ := cl.addLearner(ctx, token, "e", nil)
	cl.waitHealth(ctx, e.ID, true)

	// a's lag is about the write rate times this latency, so 32 writers keep it more than
	// twice the slack behind even on a loaded machine; a longer latency would make a's own
	// probe fail, and a must stay healthy.
	cl.members["a"].Degrade(etcdnet.LinkFault{Latency: 2 * time.Second})
	defer cl.members["a"].Restore()
	// The writers go through b, c and d only: a request a forwards would wait on its slow
	// links, and the writes would be too few for a to fall behind.
	tc, err := cl.net.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	fast, err := clientv3.New(clientv3.Config{TLS: tc, DialTimeout: 3 * time.Second,
		Endpoints: []string{cl.members["b"].ClientURL(), cl.members["c"].ClientURL(), cl.members["d"].ClientURL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := 0; wctx.Err() == nil; i++ {
				pctx, cancel := context.WithTimeout(wctx, 2*time.Second)
				_, _ = fast.Put(pctx, fmt.Sprintf("load/%d/%d", w, i), "v")
				cancel()
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	// a trails while the writes go on, and stays healthy: it is passed over for its index,
	// not for its health.
	eventually(t, ctx, 45*time.Second, "a healthy and far behind b and c", func() (bool, string) {
		ms, hs, err := cl.client.State(ctx)
		if err != nil {
			return false, err.Error()
		}
		idx := map[string]uint64{}
		for i, m := range ms {
			if m.Name == "a" && !m.Healthy {
				return false, "a is not healthy"
			}
			if hs[i].Status != nil {
				idx[m.Name] = hs[i].Status.Index
			}
		}
		behind := idx["a"] > 0 && idx["a"]+2*quorum.LeaderIndexSlack < min(idx["b"], idx["c"])
		if behind {
			t.Logf("a trails: indexes %v", idx)
		}
		return behind, fmt.Sprintf("indexes %v", idx)
	})

	var moved uint64
	cl.client.beforeChange = func(_ context.Context, op string, id uint64) {
		if op == "move leader" {
			moved = id
		}
	}
	d := cl.id("d")
	if err := retryTransient(t, ctx, func() error { return cl.client.RemoveMember(ctx, token, d) }); err != nil {
		t.Fatalf("RemoveMember d: %v", err)
	}
	cl.forget(d)
	name := map[uint64]string{}
	for n, m := range cl.members {
		name[m.ID()] = n
	}
	switch name[moved] {
	case "b", "c":
	case "":
		t.Fatalf("leadership was not handed over before removing leader d (target %x)", moved)
	default:
		t.Fatalf("leadership went to %s; want b or c, the healthy voters with the highest raft index (a trails, e is a learner)", name[moved])
	}
	_, hs, err := cl.client.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lead := leaderOf(hs); lead != moved {
		t.Errorf("after the removal %s leads; the hand-over named %s", name[lead], name[moved])
	}
}
