package etcdmember

import (
	"context"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// lostRemoval applies every member removal and then answers as the removed member does when
// it handled the request itself: it stopped as it applied its own removal.
type lostRemoval struct{ etcdAPI }

func (l lostRemoval) MemberRemove(ctx context.Context, id uint64) (*clientv3.MemberRemoveResponse, error) {
	if _, err := l.etcdAPI.MemberRemove(ctx, id); err != nil {
		return nil, err
	}
	return nil, rpctypes.ErrGRPCStopped
}

// TestRemovalWhoseAnswerIsLostIsReadBack: on a real cluster, a removal etcd applied but whose
// answer was "server stopped" is reported as done, since the member list read after it no
// longer shows the member.
func TestRemovalWhoseAnswerIsLostIsReadBack(t *testing.T) {
	ctx := t.Context()
	cl := newCluster(t, ctx, "a", "b", "c")
	cl.settle(ctx)
	cl.client.etcd = lostRemoval{cl.client.etcd}
	_, hs, err := cl.client.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var follower uint64
	for _, name := range []string{"a", "b", "c"} {
		if id := cl.id(name); id != leaderOf(hs) {
			follower = id
		}
	}
	if err := retryTransient(t, ctx, func() error { return cl.client.Remove(ctx, 1, follower) }); err != nil {
		t.Fatalf("Remove(%x) whose answer was lost after etcd applied it: %v", follower, err)
	}
	cl.forget(follower)
	after, err := cl.client.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := find(after, follower); ok || len(after) != 2 {
		t.Fatalf("members after the removal: %s", names(after))
	}
}
