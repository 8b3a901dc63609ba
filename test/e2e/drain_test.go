package e2e_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// TestDrainsOneControlPlaneNodeAtATime: OpenShift's drain controller drains a control-plane
// Node only while no other control-plane Node is cordoned. With master-2's Node cordoned by an
// administrator, two masters are replaced at once: quorumguard still brings both replacements
// to vote and removes the old members, one after another, while the drains wait (the drain
// controller says so in an Event); once master-2 is uncordoned the drains
// go on, one Node at a time, and both old Machines go. No instance is terminated while its
// member is listed.
func TestDrainsOneControlPlaneNodeAtATime(t *testing.T) {
	c, _ := setup(t, nil)
	ctx := t.Context()
	cordon := func(name string, on bool) {
		t.Helper()
		if err := framework.WaitFor(ctx, 10*time.Second, "cordon "+name, func() (bool, error) {
			node := &corev1.Node{}
			if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
				return false, err
			}
			node.Spec.Unschedulable = on
			return c.Client.Update(ctx, node) == nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	cordon("cluster-master-2", true)
	for _, name := range []string{"cluster-master-0", "cluster-master-1"} {
		if err := c.DeleteMachine(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"cluster-new-0", "cluster-new-1"} {
		if err := e2e.CreateReplacement(ctx, c, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := e2e.WaitVoters(ctx, c, 4*time.Minute, "cluster-master-2", "cluster-new-0", "cluster-new-1"); err != nil {
		t.Fatal(err)
	}
	// Both old members are gone; their Machines wait on the drain controller, which says so
	// in an Event on the Machine.
	uids := map[types.UID]string{}
	for _, name := range []string{"cluster-master-0", "cluster-master-1"} {
		if m, err := c.Machine(ctx, name); err == nil {
			uids[m.UID] = name
		}
	}
	if err := framework.WaitFor(ctx, time.Minute, "a drain refused while master-2 is cordoned", func() (bool, error) {
		var list corev1.EventList
		if err := c.Client.List(ctx, &list, client.InNamespace(framework.MachineNamespace)); err != nil {
			return false, err
		}
		return slices.ContainsFunc(list.Items, func(e corev1.Event) bool {
			return uids[e.InvolvedObject.UID] != "" && e.Reason == "DrainRequeued" && strings.Contains(e.Message, "drain not permitted")
		}), nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cluster-master-0", "cluster-master-1"} {
		if m, err := c.Machine(ctx, name); err == nil && c.Cloud.Terminated(m.UID) {
			t.Fatalf("%s was terminated though its drain was refused", name)
		}
	}
	cordon("cluster-master-2", false)
	if err := e2e.WaitGone(ctx, c, 3*time.Minute, "cluster-master-0", "cluster-master-1"); err != nil {
		t.Fatal(err)
	}
	noTerminationWithMember(t, c)
	if err := e2e.WaitVoters(ctx, c, time.Minute, "cluster-master-2", "cluster-new-0", "cluster-new-1"); err != nil {
		t.Fatal(err)
	}
}

// TestLeaderPodEvictedByTheDrain: quorumguard's two replicas run on control-plane Nodes, as the
// Deployment's nodeSelector puts them, with a PodDisruptionBudget (minAvailable 1) over them.
// The master the leader runs on is deleted: the leader brings the replacement to vote, removes
// the old member and releases the hooks; OpenShift's drain controller then evicts the leader's
// Pod through the Eviction API (the disruption controller allows one), the kubelet stops it,
// the garbage collector frees the lock and the standby takes over. The Machine goes; nothing
// waits on anything else.
func TestLeaderPodEvictedByTheDrain(t *testing.T) {
	c, _ := startCluster(t, clusterSpec{noController: true, settle: true})
	ctx := t.Context()
	const prefix = "qg-evicted"
	rs, err := e2e.StartReplicasOn(ctx, c, e2e.ControllerOptions(c), prefix, []string{"cluster-master-0", "cluster-master-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Stop() })
	tok, err := rs.WaitLeader(ctx, 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	waitHooks(t, c, "cluster-master-0", "cluster-master-1", "cluster-master-2")
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: prefix, Namespace: framework.MachineNamespace},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": prefix}},
		},
	}
	if err := c.Client.Create(ctx, pdb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.Delete(context.Background(), pdb) })
	if err := framework.WaitFor(ctx, time.Minute, "the disruption controller to allow one eviction", func() (bool, error) {
		cur := &policyv1.PodDisruptionBudget{}
		err := c.Client.Get(ctx, client.ObjectKeyFromObject(pdb), cur)
		return err == nil && cur.Status.ObservedGeneration == cur.Generation && cur.Status.DisruptionsAllowed == 1, err
	}); err != nil {
		t.Fatal(err)
	}
	leaderPod, leaderNode := rs.Leader()
	others := slices.DeleteFunc([]string{"cluster-master-0", "cluster-master-1", "cluster-master-2"}, func(n string) bool { return n == leaderNode })
	if err := c.DeleteMachine(ctx, leaderNode); err != nil {
		t.Fatal(err)
	}
	if err := e2e.CreateReplacement(ctx, c, "cluster-new-0"); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitVoters(ctx, c, 3*time.Minute, append(others, "cluster-new-0")...); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitGone(ctx, c, 3*time.Minute, leaderNode); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rs.Evicted(), leaderPod) {
		t.Fatalf("the leader's Pod %s on %s was not evicted by the drain (evicted: %v)", leaderPod, leaderNode, rs.Evicted())
	}
	if _, err := rs.WaitLeader(ctx, tok, time.Minute); err != nil {
		t.Fatalf("the standby did not take over from the evicted leader: %v", err)
	}
	noTerminationWithMember(t, c)
}
