package e2e_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/endpoints"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// startOpenShiftProtected starts a cluster whose apiserver lives on the etcd quorumguard
// protects, the stand-in kube-apiserver operator following openshift-etcd/etcd-endpoints,
// and a controller keeping OpenShift's contract.
func startOpenShiftProtected(t *testing.T, mutate func(*app.Options)) (*framework.Cluster, *framework.KubeAPIServerOperator) {
	t.Helper()
	ctx := t.Context()
	c := newProtected(t)
	if err := framework.WaitFor(ctx, time.Minute, "the control-plane Nodes", func() (bool, error) {
		var nodes corev1.NodeList
		if err := c.Client.List(ctx, &nodes, client.HasLabels{"node-role.kubernetes.io/master"}); err != nil {
			return false, err
		}
		return len(nodes.Items) == 3, nil
	}); err != nil {
		t.Fatal(err)
	}
	op, err := c.StartKubeAPIServerOperator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Stop)
	o := e2e.ControllerOptions(c)
	o.OpenShiftEndpoints = true
	if mutate != nil {
		mutate(&o)
	}
	runProtectedController(t, c, o)
	return c, op
}

// TestOpenShiftReplacementWaitsForTheAPIServerRollout: on a cluster with a kube-apiserver
// operator, a replaced master's member stays in etcd until every node runs a revision that no
// longer dials it. With one node's rollout stuck, the Machine's condition names the revision
// and that node, and the member stays; once the node rolls out, the member goes and the hook
// is released. The stand-in operator checks all along that no member was removed while a
// node's revision dialled it.
func TestOpenShiftReplacementWaitsForTheAPIServerRollout(t *testing.T) {
	c, op := startOpenShiftProtected(t, nil)
	ctx := t.Context()
	const stuck = "cluster-master-2"
	op.Stick(stuck)
	old := c.Agent.Member("cluster-master-0")
	replaceWhenServing(t, c, "cluster-master-0", "cluster-new-0")
	var last string
	if err := framework.WaitFor(ctx, 3*time.Minute, "the removal to wait for "+stuck, func() (bool, error) {
		m, err := c.Machine(ctx, "cluster-master-0")
		if err != nil {
			return false, err
		}
		cond := framework.Condition(m, masters.ConditionType)
		if cond == nil {
			return false, nil
		}
		last = cond.Message
		return cond.Reason == quorum.ReasonWaitingForEndpointConsumers && strings.Contains(cond.Message, "on node "+stuck+" (at revision 1)"), nil
	}); err != nil {
		t.Fatalf("%v; last condition message %q; revisions %+v", err, last, op.Revisions())
	}
	t.Logf("while %s is stuck: %s", stuck, last)
	// Waiting is a state: it lasts while the node is stuck.
	time.Sleep(3 * time.Second)
	ids, err := e2e.VotingMembers(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids, "cluster-master-0") {
		t.Fatalf("member cluster-master-0 was removed while node %s's revision dials it: members %v", stuck, ids)
	}
	var cm corev1.ConfigMap
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: endpoints.EtcdEndpointsNamespace, Name: endpoints.EtcdEndpointsName}, &cm); err != nil {
		t.Fatal(err)
	}
	for id, ip := range cm.Data {
		if ip == old.IP.String() {
			t.Errorf("etcd-endpoints still lists the replaced member as %s", id)
		}
	}
	op.Unstick(stuck)
	if err := e2e.WaitGone(ctx, c, 3*time.Minute, "cluster-master-0"); err != nil {
		t.Fatalf("%v; rollouts %+v", err, op.Rollouts())
	}
	if v := op.Violations(); len(v) > 0 {
		t.Errorf("members removed while a node's revision dialled them: %v", v)
	}
	revs := op.Revisions()
	if len(revs) < 2 {
		t.Errorf("revisions %+v: want a revision without the replaced member", revs)
	}
	for _, r := range op.Rollouts() {
		t.Logf("node %s to revision %d: restarted %v, API away %s, err %v", r.Node, r.Revision, r.Restarted, r.Down.Round(time.Millisecond), r.Err)
	}
}

// TestOpenShiftSkipRolloutWaitIsSaid: with --skip-apiserver-rollout-wait a replaced member
// goes as soon as etcd-endpoints leaves it out, even with a node's rollout stuck, and the
// choice is said in a Warning Event and the ClusterOperator's Available message. The stand-in
// operator's invariant check sees what the wait exists to prevent: a node still dialling the
// removed member.
func TestOpenShiftSkipRolloutWaitIsSaid(t *testing.T) {
	c, op := startOpenShiftProtected(t, func(o *app.Options) {
		o.SkipAPIServerRollout, o.ClusterOperator = true, "quorumguard"
		o.PodName, o.ElectionNS = "quorumguard-skip", framework.MachineNamespace
	})
	ctx := t.Context()
	op.Stick("cluster-master-2")
	replaceWhenServing(t, c, "cluster-master-0", "cluster-new-0")
	if err := e2e.WaitGone(ctx, c, 3*time.Minute, "cluster-master-0"); err != nil {
		t.Fatalf("%v; rollouts %+v", err, op.Rollouts())
	}
	if err := framework.WaitFor(ctx, 30*time.Second, "the stand-in operator to see a node dialling the removed member", func() (bool, error) {
		return len(op.Violations()) > 0, nil
	}); err != nil {
		t.Error(err)
	}
	var last string
	if err := framework.WaitFor(ctx, time.Minute, "the warning on the ClusterOperator", func() (bool, error) {
		co := &configv1.ClusterOperator{}
		if err := c.Client.Get(ctx, client.ObjectKey{Name: "quorumguard"}, co); err != nil {
			return false, err
		}
		for _, cond := range co.Status.Conditions {
			if cond.Type == configv1.OperatorAvailable {
				last = cond.Message
				return strings.Contains(cond.Message, "WARNING: --skip-apiserver-rollout-wait is on"), nil
			}
		}
		return false, nil
	}); err != nil {
		t.Errorf("%v; Available says %q", err, last)
	}
	if err := framework.WaitFor(ctx, time.Minute, "the Warning Event", func() (bool, error) {
		var list corev1.EventList
		if err := c.Client.List(ctx, &list, client.InNamespace(framework.MachineNamespace)); err != nil {
			return false, err
		}
		return slices.ContainsFunc(list.Items, func(e corev1.Event) bool {
			return e.Reason == "APIServerRolloutWaitOff" && e.Type == corev1.EventTypeWarning && e.InvolvedObject.Name == "quorumguard-skip"
		}), nil
	}); err != nil {
		t.Error(err)
	}
}
