package endpoints_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	operatorv1 "github.com/openshift/api/operator/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/endpoints"
	"github.com/quorumguard/quorumguard/pkg/openshift"
	"github.com/quorumguard/quorumguard/test/framework"
)

// kasWorld is the kube-apiserver operator's state on the test apiserver: its object and
// revision ConfigMaps, written as that operator writes them.
type kasWorld struct {
	t   *testing.T
	ctx context.Context
	oc  *openshift.Clients
}

func newKASWorld(t *testing.T) *kasWorld {
	t.Helper()
	ctx := t.Context()
	oc, err := openshift.NewClients(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	_ = oc.Operator.OperatorV1().KubeAPIServers().Delete(ctx, endpoints.KubeAPIServerName, metav1.DeleteOptions{})
	_ = cp.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: endpoints.EtcdEndpointsNamespace, Name: endpoints.EtcdEndpointsName}})
	if err := framework.CreateKubeAPIServer(ctx, cp.Client, oc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = oc.Operator.OperatorV1().KubeAPIServers().Delete(context.Background(), endpoints.KubeAPIServerName, metav1.DeleteOptions{})
	})
	return &kasWorld{t: t, ctx: ctx, oc: oc}
}

// revision writes config-<rev> dialling servers.
func (w *kasWorld) revision(rev int32, servers ...string) {
	w.t.Helper()
	if err := framework.WriteRevision(w.ctx, cp.Client, rev, servers); err != nil {
		w.t.Fatal(err)
	}
}

// status sets latestAvailableRevision and the nodes' current revisions.
func (w *kasWorld) status(latest int32, nodes map[string]int32) {
	w.t.Helper()
	if err := framework.SetKubeAPIServerRevisions(w.ctx, w.oc, latest, nodes); err != nil {
		w.t.Fatal(err)
	}
}

func etcdEndpoints(t *testing.T) *corev1.ConfigMap {
	t.Helper()
	var cm corev1.ConfigMap
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: endpoints.EtcdEndpointsNamespace, Name: endpoints.EtcdEndpointsName}, &cm); err != nil {
		t.Fatal(err)
	}
	return &cm
}

func osMember(id uint64, ip string, leaving bool) endpoints.Member {
	return endpoints.Member{ID: id, Name: fmt.Sprintf("m-%x", id), PeerURLs: []string{"https://" + ip + ":2380"}, ClientURLs: []string{"https://" + ip + ":2379"},
		Voting: true, Leaving: leaving, Healthy: true}
}

// TestOpenShiftContractWaitsForTheRolloutOnEveryNode, against a real apiserver and the
// kube-apiserver operator's own CRD: quorumguard writes etcd-endpoints in the etcd
// operator's format; member a, whose Machine is being deleted, is left out once its
// replacement d votes, and its removal then waits until every node runs a revision without
// a's IP. A node stuck on the old revision holds it and is named; a recreated etcd-endpoints
// that lists a again, or a revision ConfigMap that cannot be read, releases nothing.
func TestOpenShiftContractWaitsForTheRolloutOnEveryNode(t *testing.T) {
	ctx := t.Context()
	w := newKASWorld(t)
	pub := &endpoints.OpenShiftPublisher{Client: cp.Client, KubeAPIServers: w.oc.Operator.OperatorV1().KubeAPIServers()}
	a, b, c, d := osMember(0xa1, "10.0.0.1", true), osMember(0xb2, "10.0.0.2", false), osMember(0xc3, "10.0.0.3", false), osMember(0xd4, "10.0.0.4", false)
	old := []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379", "https://localhost:2379"}
	w.revision(3, old...)
	w.status(3, map[string]int32{"master-0": 3, "master-1": 3, "master-2": 3})

	// d is still a learner: a stays listed and held.
	dl := d
	dl.Voting = false
	res := pub.Sync(ctx, []endpoints.Member{a, b, c, dl}, 3)
	if !res.Active || res.Err != nil {
		t.Fatalf("active %v, err %v", res.Active, res.Err)
	}
	want := map[string]string{"a1": "10.0.0.1", "b2": "10.0.0.2", "c3": "10.0.0.3"}
	if got := etcdEndpoints(t).Data; !maps.Equal(got, want) {
		t.Fatalf("etcd-endpoints %v, want %v", got, want)
	}
	if !strings.Contains(res.Holds[a.ID], "still lists member a1") {
		t.Errorf("a's hold %q", res.Holds[a.ID])
	}

	// d votes: a is left out; no revision leaves it out yet.
	ms := []endpoints.Member{a, b, c, d}
	res = pub.Sync(ctx, ms, 3)
	want = map[string]string{"b2": "10.0.0.2", "c3": "10.0.0.3", "d4": "10.0.0.4"}
	if got := etcdEndpoints(t).Data; !maps.Equal(got, want) || !res.Changed {
		t.Fatalf("etcd-endpoints %v (changed %v), want %v", got, res.Changed, want)
	}
	if !strings.Contains(res.Holds[a.ID], "the latest, revision 3, still dials it") {
		t.Errorf("before a new revision, a's hold %q", res.Holds[a.ID])
	}

	// Revision 4 rolls out to two of three nodes; master-1 is stuck on 3.
	w.revision(4, "https://10.0.0.2:2379", "https://10.0.0.3:2379", "https://10.0.0.4:2379", "https://localhost:2379")
	w.status(4, map[string]int32{"master-0": 4, "master-1": 3, "master-2": 4})
	res = pub.Sync(ctx, ms, 3)
	if h := res.Holds[a.ID]; !strings.Contains(h, "revision 4") || !strings.Contains(h, "on node master-1 (at revision 3)") {
		t.Errorf("with master-1 stuck, a's hold %q should name revision 4 and master-1", h)
	}

	// The stuck node's revision ConfigMap cannot be read: still held.
	if err := cp.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: endpoints.KubeAPIServerNamespace, Name: "config-3"}}); err != nil {
		t.Fatal(err)
	}
	res = pub.Sync(ctx, ms, 3)
	if h := res.Holds[a.ID]; !strings.Contains(h, "master-1 (at revision 3, whose etcd servers cannot be read") {
		t.Errorf("with config-3 gone, a's hold %q", h)
	}

	// Every node runs revision 4: a may go, and only a.
	w.status(4, map[string]int32{"master-0": 4, "master-1": 4, "master-2": 4})
	res = pub.Sync(ctx, ms, 3)
	if len(res.Holds) != 3 || res.Holds[a.ID] != "" {
		t.Errorf("rolled out everywhere: holds %v, want only b2, c3 and d4 held (still listed)", res.Holds)
	}

	// etcd-endpoints recreated by hand with a in it: a is held again until quorumguard
	// has written it back and the decision reads what is stored.
	if err := cp.Client.Delete(ctx, etcdEndpoints(t)); err != nil {
		t.Fatal(err)
	}
	stale := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: endpoints.EtcdEndpointsNamespace, Name: endpoints.EtcdEndpointsName},
		Data: map[string]string{"a1": "10.0.0.1", "b2": "10.0.0.2", "c3": "10.0.0.3"}}
	if err := cp.Client.Create(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if h := endpoints.RolloutHolds(ms, stale.Data, &res.Rollout)[a.ID]; !strings.Contains(h, "still lists member a1") {
		t.Errorf("recreated etcd-endpoints listing a: hold %q", h)
	}
	res = pub.Sync(ctx, ms, 3)
	if got := etcdEndpoints(t).Data; !maps.Equal(got, want) {
		t.Errorf("etcd-endpoints after the recreation %v, want %v", got, want)
	}

	// The kube-apiserver operator cannot be read (its object gone would be "not
	// OpenShift"; a wrong answer is another thing): every removal waits.
	broken := &endpoints.OpenShiftPublisher{Client: cp.Client, KubeAPIServers: failingKAS{}}
	res = broken.Sync(ctx, ms, 3)
	if !res.Active || res.Err == nil || !strings.Contains(res.Holds[a.ID], "read kubeapiservers.operator.openshift.io/cluster") {
		t.Errorf("unreadable kube-apiserver operator: active %v, err %v, a's hold %q", res.Active, res.Err, res.Holds[a.ID])
	}
}

// TestOpenShiftContractOffWithoutAKubeAPIServerOperator: no kubeapiservers/cluster, no
// OpenShift contract: nothing written, nothing held.
func TestOpenShiftContractOffWithoutAKubeAPIServerOperator(t *testing.T) {
	ctx := t.Context()
	oc, err := openshift.NewClients(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	_ = oc.Operator.OperatorV1().KubeAPIServers().Delete(ctx, endpoints.KubeAPIServerName, metav1.DeleteOptions{})
	pub := &endpoints.OpenShiftPublisher{Client: cp.Client, KubeAPIServers: oc.Operator.OperatorV1().KubeAPIServers()}
	res := pub.Sync(ctx, []endpoints.Member{osMember(1, "10.0.0.1", true)}, 3)
	if res.Active || len(res.Holds) > 0 || res.Err != nil {
		t.Errorf("without a kube-apiserver operator: %+v", res)
	}
}

// TestOpenShiftContractSkipRollout: with the wait turned off a member not listed goes at
// once, a listed one still waits.
func TestOpenShiftContractSkipRollout(t *testing.T) {
	ctx := t.Context()
	w := newKASWorld(t)
	w.revision(1, "https://10.0.0.1:2379", "https://10.0.0.2:2379")
	w.status(1, map[string]int32{"master-0": 1})
	pub := &endpoints.OpenShiftPublisher{Client: cp.Client, KubeAPIServers: w.oc.Operator.OperatorV1().KubeAPIServers(), SkipRollout: true}
	a, b, c := osMember(0xa1, "10.0.0.1", true), osMember(0xb2, "10.0.0.2", false), osMember(0xc3, "10.0.0.3", false)
	res := pub.Sync(ctx, []endpoints.Member{a, b, c}, 2)
	if res.Holds[a.ID] != "" || res.Holds[b.ID] == "" {
		t.Errorf("skip: holds %v, want a free (left out) and b held (listed)", res.Holds)
	}
	pub.SkipRollout = false
	if res := pub.Sync(ctx, []endpoints.Member{a, b, c}, 2); !strings.Contains(res.Holds[a.ID], "still dials it") {
		t.Errorf("wait on: a's hold %q", res.Holds[a.ID])
	}
}

type failingKAS struct{}

func (failingKAS) Get(context.Context, string, metav1.GetOptions) (*operatorv1.KubeAPIServer, error) {
	return nil, apierrors.NewServiceUnavailable("the apiserver is restarting")
}
