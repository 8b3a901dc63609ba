package etcdmember

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// recordingEtcd notes, in order, the fence transactions and member lists a Client sends
// through its balanced connection, and when the last transaction's answer came back.
type recordingEtcd struct {
	etcdAPI
	mu      sync.Mutex
	calls   []string
	lastTxn time.Time
}

func (r *recordingEtcd) note(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
	if call == "fence" {
		r.lastTxn = time.Now()
	}
}

func (r *recordingEtcd) reset() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	calls := r.calls
	r.calls = nil
	return calls
}

func (r *recordingEtcd) MemberList(ctx context.Context, opts ...clientv3.OpOption) (*clientv3.MemberListResponse, error) {
	resp, err := r.etcdAPI.MemberList(ctx, opts...)
	r.note("list members")
	return resp, err
}

func (r *recordingEtcd) Txn(ctx context.Context) clientv3.Txn {
	return &recordingTxn{Txn: r.etcdAPI.Txn(ctx), r: r}
}

type recordingTxn struct {
	clientv3.Txn
	r *recordingEtcd
}

func (t *recordingTxn) If(cs ...clientv3.Cmp) clientv3.Txn   { t.Txn = t.Txn.If(cs...); return t }
func (t *recordingTxn) Then(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Then(ops...); return t }
func (t *recordingTxn) Else(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Else(ops...); return t }
func (t *recordingTxn) Commit() (*clientv3.TxnResponse, error) {
	resp, err := t.Txn.Commit()
	t.r.note("fence")
	return resp, err
}

func record(c *Client) *recordingEtcd {
	r := &recordingEtcd{etcdAPI: c.etcd}
	c.etcd = r
	return r
}

// TestChangesReadStateAfterTheFence: every membership change passes the fence before it
// reads the member list it decides on, so no change is decided on a state read before a
// newer leadership's fence.
func TestChangesReadStateAfterTheFence(t *testing.T) {
	ctx := t.Context()
	cl := newCluster(t, ctx, "a", "b", "c")
	cl.settle(ctx)
	rec := record(cl.client)
	const token = 3
	ip, err := cl.net.AllocateIP()
	if err != nil {
		t.Fatal(err)
	}
	peerURL := "https://" + net.JoinHostPort(ip.String(), fmt.Sprint(etcdnet.PeerPort))
	_, hs, err := cl.client.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lead := leaderOf(hs)
	var learner uint64
	for _, step := range []struct {
		name   string
		change func() error
	}{
		{"add a learner", func() error {
			m, err := cl.client.AddLearner(ctx, token, peerURL)
			learner = m.ID
			return err
		}},
		{"promote (a voter: nothing to do)", func() error { return cl.client.Promote(ctx, token, cl.id("a")) }},
		{"move leadership (to the leader: nothing to do)", func() error { return cl.client.MoveLeader(ctx, token, lead) }},
		{"remove", func() error { return cl.client.Remove(ctx, token, learner) }},
		{"remove a member that is not there", func() error { return cl.client.RemoveMember(ctx, token, 0x1234) }},
	} {
		t.Run(step.name, func(t *testing.T) {
			var calls []string
			err := retryTransient(t, ctx, func() error {
				rec.reset()
				err := step.change()
				calls = rec.reset()
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			fence, list := slices.Index(calls, "fence"), slices.Index(calls, "list members")
			if fence != 0 || list < fence {
				t.Fatalf("calls %v: the fence must come first and the member list after it", calls)
			}
		})
	}
}

// BenchmarkFenceWindow measures the window between the two etcd calls of a membership
// change: from the fence transaction's answer to the moment the membership request is sent
// (the member list and the health probes it is decided on are read in between). Each round
// adds a learner that never starts and removes it, on a real three-member TLS cluster.
// window-ms is the mean over both changes of every round, max-window-ms the largest.
func BenchmarkFenceWindow(b *testing.B) {
	ctx := b.Context()
	cl := newCluster(b, ctx, "a", "b", "c")
	cl.settle(ctx)
	rec := record(cl.client)
	var windows []time.Duration
	cl.client.beforeChange = func(context.Context, string, uint64) {
		rec.mu.Lock()
		windows = append(windows, time.Since(rec.lastTxn))
		rec.mu.Unlock()
	}
	ip, err := cl.net.AllocateIP()
	if err != nil {
		b.Fatal(err)
	}
	const token = 1
	round := 0
	for b.Loop() {
		peerURL := "https://" + net.JoinHostPort(ip.String(), fmt.Sprint(30000+round))
		round++
		var m Member
		if err := retryTransient(b, ctx, func() error {
			var err error
			m, err = cl.client.AddLearner(ctx, token, peerURL)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		if err := retryTransient(b, ctx, func() error { return cl.client.Remove(ctx, token, m.ID) }); err != nil {
			b.Fatal(err)
		}
	}
	var sum, most time.Duration
	for _, w := range windows {
		sum, most = sum+w, max(most, w)
	}
	if len(windows) > 0 {
		b.ReportMetric(float64(sum.Microseconds())/1000/float64(len(windows)), "window-ms")
		b.ReportMetric(float64(most.Microseconds())/1000, "max-window-ms")
	}
}
