package leader_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/leader"
	"github.com/quorumguard/quorumguard/test/framework"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

var cp *framework.ControlPlane

func TestMain(m *testing.M) {
	framework.Main(m, framework.ControlPlaneOptions{ControllerManager: true}, &cp)
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "leader-"}}
	if err := cp.Client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func pod(t *testing.T, ns, name, node string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "quorumguard", Image: "quorumguard"}}}}
	if err := cp.Client.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func candidate(t *testing.T, st leader.TokenStore, ns, podName string) *leader.ForLife {
	t.Helper()
	wc, err := client.NewWithWatch(cp.Config, client.Options{Scheme: framework.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return &leader.ForLife{Client: wc, Namespace: ns, LockName: "quorumguard-lock", PodName: podName, Log: testr.New(t), Recheck: 2 * time.Second, Store: st}
}

// store is the etcd fence a leadership claims its token from, and a plain client of the same
// etcd for what the fence client would never write.
type store struct {
	*etcdmember.Client
	raw *clientv3.Client
}

// fenceStore starts a one-member etcd cluster and returns clients of it.
func fenceStore(t *testing.T) *store {
	t.Helper()
	n, urls := etcdnet.StartSingle(t)
	ca, cert, key := n.ClientFiles()
	c, err := etcdmember.NewFromFiles(etcdmember.Config{Endpoints: urls}, etcdmember.TLSFiles{CA: ca, Cert: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tc, err := n.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := clientv3.New(clientv3.Config{Endpoints: urls, TLS: tc, DialTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return &store{Client: c, raw: raw}
}

type result struct {
	token uint64
	err   error
	at    time.Time
}

func become(ctx context.Context, l *leader.ForLife) <-chan result {
	ch := make(chan result, 1)
	go func() {
		tok, err := l.Become(ctx)
		ch <- result{tok, err, time.Now()}
	}()
	return ch
}

func TestLeaderForLife(t *testing.T) {
	ctx := t.Context()
	ns := namespace(t)
	podA, _ := pod(t, ns, "quorumguard-a", ""), pod(t, ns, "quorumguard-b", "")
	st := fenceStore(t)
	a, b := candidate(t, st, ns, "quorumguard-a"), candidate(t, st, ns, "quorumguard-b")

	tokA, err := a.Become(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Token(ctx); err != nil {
		t.Fatalf("the first candidate should lead: %v", err)
	}
	bDone := become(ctx, b)
	select {
	case r := <-bDone:
		t.Fatalf("the second candidate became leader while the first leads: %+v", r)
	case <-time.After(time.Second):
	}

	t.Run("a waiting standby rides out an apiserver restart", func(t *testing.T) {
		if err := cp.RestartAPIServer(time.Second); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-bDone:
			t.Fatalf("the standby's Become returned during an apiserver restart: %+v", r)
		case <-time.After(2 * time.Second):
		}
		if _, err := a.Token(ctx); err != nil {
			t.Fatalf("the leader after an apiserver restart: %v", err)
		}
	})

	t.Run("deleting the leader's Pod lets the garbage collector free the lock for the standby", func(t *testing.T) {
		deleted := time.Now()
		if err := cp.Client.Delete(ctx, podA); err != nil {
			t.Fatal(err)
		}
		var r result
		select {
		case r = <-bDone:
		case <-time.After(60 * time.Second):
			t.Fatal("the standby did not take over within 60s of the leader Pod's deletion")
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Logf("takeover %s after the leader Pod was deleted", r.at.Sub(deleted).Round(time.Millisecond))
		if r.token <= tokA {
			t.Fatalf("the new leadership's token %d must exceed the old one's %d", r.token, tokA)
		}
		if _, err := a.Token(ctx); !errors.Is(err, leader.ErrNotLeader) {
			t.Fatalf("the old leader's Token: want ErrNotLeader, got %v", err)
		}
		// The new leader has done nothing yet, and the old token is already refused.
		var fe *etcdmember.FencedError
		if err := st.Fence(ctx, tokA); !errors.As(err, &fe) || fe.Stored != r.token {
			t.Fatalf("the old leader's token %d right after the takeover: want refused with %d stored, got %v", tokA, r.token, err)
		}
	})

	t.Run("a restarted leader with the same Pod finds its lock and carries on", func(t *testing.T) {
		again := candidate(t, st, ns, "quorumguard-b")
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := again.Become(rctx); err != nil {
			t.Fatalf("restarted leader: %v", err)
		}
		if _, err := again.Token(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLeaderForLifeOutOfCluster(t *testing.T) {
	l := &leader.ForLife{LockName: "quorumguard-lock", Log: testr.New(t)}
	if _, err := l.Become(t.Context()); !errors.Is(err, leader.ErrNotInCluster) {
		t.Fatalf("want ErrNotInCluster, got %v", err)
	}
}

// In a cluster, a candidate without POD_NAME fails instead of skipping the election.
func TestLeaderForLifeInClusterNeedsPodName(t *testing.T) {
	l := &leader.ForLife{Namespace: "quorumguard", LockName: "quorumguard-lock", Log: testr.New(t), InCluster: true}
	_, err := l.Become(t.Context())
	if !errors.Is(err, leader.ErrNoPodName) || !strings.Contains(err.Error(), "POD_NAME") || !strings.Contains(err.Error(), "downward API") {
		t.Fatalf("want an error naming POD_NAME and the downward API, got %v", err)
	}
}

func TestLeaderForLifeUnhealthyLeaders(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(t *testing.T, ns string, p *corev1.Pod)
	}{
		{"an evicted leader Pod is deleted by the standby", func(t *testing.T, ns string, p *corev1.Pod) {
			p.Status.Phase, p.Status.Reason = corev1.PodFailed, "Evicted"
			if err := cp.Client.Status().Update(t.Context(), p); err != nil {
				t.Fatal(err)
			}
		}},
		{"a preempted leader Pod is deleted by the standby", func(t *testing.T, ns string, p *corev1.Pod) {
			p.Status.Phase, p.Status.Reason = corev1.PodFailed, "Preempting"
			if err := cp.Client.Status().Update(t.Context(), p); err != nil {
				t.Fatal(err)
			}
		}},
		{"a leader Pod that failed for another reason is deleted by the standby", func(t *testing.T, ns string, p *corev1.Pod) {
			p.Status.Phase, p.Status.Reason = corev1.PodFailed, "Error"
			if err := cp.Client.Status().Update(t.Context(), p); err != nil {
				t.Fatal(err)
			}
		}},
		{"a leader Pod that succeeded is deleted by the standby", func(t *testing.T, ns string, p *corev1.Pod) {
			p.Status.Phase = corev1.PodSucceeded
			if err := cp.Client.Status().Update(t.Context(), p); err != nil {
				t.Fatal(err)
			}
		}},
		{"a leader on a NotReady Node is deleted with its lock", func(t *testing.T, ns string, p *corev1.Pod) {
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: p.Spec.NodeName}}
			if err := cp.Client.Create(t.Context(), node); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), node) })
			node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletStopped", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
			if err := cp.Client.Status().Update(t.Context(), node); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			ns := namespace(t)
			lead := pod(t, ns, "lead", fmt.Sprintf("node-%d", i))
			pod(t, ns, "standby", "")
			st := fenceStore(t)
			if _, err := candidate(t, st, ns, "lead").Become(ctx); err != nil {
				t.Fatal(err)
			}
			done := become(ctx, candidate(t, st, ns, "standby"))
			tc.break_(t, ns, lead)
			select {
			case r := <-done:
				if r.err != nil {
					t.Fatal(r.err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the standby did not take over")
			}
		})
	}
}
