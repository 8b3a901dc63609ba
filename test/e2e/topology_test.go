package e2e_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/coexist"
	"github.com/quorumguard/quorumguard/pkg/failuredomain"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/machines"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/openshift"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// setTopology makes infrastructures.config.openshift.io/cluster exist with
// status.controlPlaneTopology set to topology through the status subresource ("" leaves the
// status unset), and deletes it when the test ends.
func setTopology(t *testing.T, topology configv1.TopologyMode) {
	t.Helper()
	ctx := t.Context()
	infra := &configv1.Infrastructure{}
	err := cp.Client.Get(ctx, client.ObjectKey{Name: coexist.InfrastructureName}, infra)
	if apierrors.IsNotFound(err) {
		infra = &configv1.Infrastructure{ObjectMeta: metav1.ObjectMeta{Name: coexist.InfrastructureName}}
		err = cp.Client.Create(ctx, infra)
		t.Cleanup(func() { deleteInfrastructure(t) })
	}
	if err != nil {
		t.Fatal(err)
	}
	if topology == "" {
		return
	}
	infra.Status.ControlPlaneTopology = topology
	infra.Status.InfrastructureTopology = configv1.HighlyAvailableTopologyMode
	if err := cp.Client.Status().Update(ctx, infra); err != nil {
		t.Fatal(err)
	}
}

func deleteInfrastructure(t *testing.T) {
	t.Helper()
	err := cp.Client.Delete(context.Background(), &configv1.Infrastructure{ObjectMeta: metav1.ObjectMeta{Name: coexist.InfrastructureName}})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
	}
	_ = framework.WaitFor(context.Background(), 10*time.Second, "the Infrastructure gone", func() (bool, error) {
		err := cp.Client.Get(context.Background(), client.ObjectKey{Name: coexist.InfrastructureName}, &configv1.Infrastructure{})
		return apierrors.IsNotFound(err), nil
	})
}

// TestTopologyGuard has a Guard read infrastructures.config.openshift.io/cluster from the API
// server with each topology the API admits: no object, an object without a status, each
// value; and a read it is forbidden, which holds.
func TestTopologyGuard(t *testing.T) {
	ctx := t.Context()
	oc, err := openshift.NewClients(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, wantHold, wantRoles string) {
		t.Helper()
		g := &coexist.Guard{Clients: oc}
		g.Check(ctx)
		hold := g.Topology()
		if (wantHold == "") != (hold == "") || !strings.Contains(hold, wantHold) {
			t.Errorf("Topology() = %q; want containing %q (empty: %v)", hold, wantHold, wantHold == "")
		}
		if got := g.Hold(); got != hold {
			t.Errorf("Hold() = %q; want the topology's %q", got, hold)
		}
		if got := strings.Join(g.Roles(), ","); got != wantRoles {
			t.Errorf("Roles() = %s; want %s", got, wantRoles)
		}
		if g.Quorum() != "" || g.Machines() != "" {
			t.Errorf("Quorum() = %q, Machines() = %q; want both empty", g.Quorum(), g.Machines())
		}
	}

	deleteInfrastructure(t)
	t.Run("no Infrastructure", func(t *testing.T) { check(t, "", "master") })
	setTopology(t, "")
	t.Run("no status", func(t *testing.T) { check(t, "", "master") })
	for _, tc := range []struct {
		topology            configv1.TopologyMode
		wantHold, wantRoles string
	}{
		{configv1.HighlyAvailableTopologyMode, "", "master"},
		{configv1.HighlyAvailableArbiterMode, "", "master,arbiter"},
		{configv1.DualReplicaTopologyMode, "DualReplica: Pacemaker owns etcd membership", "master"},
		{configv1.SingleReplicaTopologyMode, "SingleReplica: one etcd member has no quorum to protect", "master"},
		{configv1.ExternalTopologyMode, "External: etcd runs outside this cluster", "master"},
	} {
		t.Run(string(tc.topology), func(t *testing.T) {
			setTopology(t, tc.topology)
			check(t, tc.wantHold, tc.wantRoles)
		})
	}

	// A read the API server refuses is no answer: the Guard holds until it has one.
	t.Run("forbidden", func(t *testing.T) {
		cfg := rest.CopyConfig(cp.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:default:nobody"}
		noone, err := openshift.NewClients(cfg)
		if err != nil {
			t.Fatal(err)
		}
		g := &coexist.Guard{Clients: noone}
		g.Check(ctx)
		if hold := g.Topology(); !strings.Contains(hold, "not yet known") {
			t.Errorf("Topology() after a forbidden read = %q; want it held as not yet known", hold)
		}
		if _, err := coexist.Gather(ctx, noone, ""); !apierrors.IsForbidden(errorsCause(err)) {
			t.Errorf("Gather as nobody: %v; want Forbidden", err)
		}
	})
}

// errorsCause unwraps err to its innermost error.
func errorsCause(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

// TestTopologyDualReplica runs quorumguard on a cluster whose Infrastructure says
// DualReplica: Pacemaker owns etcd membership, so a deleted master keeps its hook and its
// member, no learner joins for its replacement, and the ClusterOperator says why. Once the
// topology reads HighlyAvailable the replacement goes through.
func TestTopologyDualReplica(t *testing.T) {
	ctx := t.Context()
	const coName = "quorumguard-topology"
	c, rc := startCluster(t, clusterSpec{settle: true, options: func(o *app.Options) {
		o.ClusterOperator, o.CoexistInterval = coName, 300*time.Millisecond
	}})
	_ = rc
	t.Cleanup(func() {
		_ = cp.Client.Delete(context.Background(), &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: coName}})
	})
	hook := hooks.Default

	setTopology(t, configv1.DualReplicaTopologyMode)
	waitDegraded(t, coName, operatorstatus.ReasonControlPlaneTopology, "Pacemaker owns etcd membership")

	before := memberIDs(t, c)
	if err := e2e.CreateReplacement(ctx, c, "cluster-new-0"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMachine(ctx, "cluster-master-0"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		m, err := c.Machine(ctx, "cluster-master-0")
		if err != nil {
			t.Fatalf("cluster-master-0 under DualReplica: %v; want it kept by its hook", err)
		}
		if !hooks.Has(m, hook) {
			t.Fatal("cluster-master-0 lost its hook under DualReplica")
		}
		if n, err := c.Machine(ctx, "cluster-new-0"); err == nil && hooks.Has(n, hook) {
			t.Fatal("cluster-new-0 got the hook under DualReplica")
		}
		if after := memberIDs(t, c); !slices.Equal(before, after) {
			t.Fatalf("membership changed under DualReplica: %x, then %x", before, after)
		}
		time.Sleep(300 * time.Millisecond)
	}
	waitDegraded(t, coName, operatorstatus.ReasonControlPlaneTopology, "Pacemaker owns etcd membership")

	setTopology(t, configv1.HighlyAvailableTopologyMode)
	if err := e2e.WaitGone(ctx, c, 3*time.Minute, "cluster-master-0"); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitVoters(ctx, c, time.Minute, "cluster-master-1", "cluster-master-2", "cluster-new-0"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitFor(ctx, 30*time.Second, "Degraded without the topology", func() (bool, error) {
		got, err := conditions(ctx, coName)
		return err == nil && got[configv1.OperatorDegraded].Reason != operatorstatus.ReasonControlPlaneTopology, err
	}); err != nil {
		t.Fatal(err)
	}
}

// waitDegraded waits until the ClusterOperator's Degraded is True with reason and a message
// containing msg.
func waitDegraded(t *testing.T, coName, reason, msg string) {
	t.Helper()
	var last configv1.ClusterOperatorStatusCondition
	err := framework.WaitFor(t.Context(), 30*time.Second, "Degraded "+reason, func() (bool, error) {
		got, err := conditions(t.Context(), coName)
		if err != nil {
			return false, nil //nolint:nilerr // not written yet
		}
		last = got[configv1.OperatorDegraded]
		return last.Status == configv1.ConditionTrue && last.Reason == reason && strings.Contains(last.Message, msg), nil
	})
	if err != nil {
		co := &configv1.ClusterOperator{}
		gerr := cp.Client.Get(t.Context(), client.ObjectKey{Name: coName}, co)
		t.Fatalf("%v; last Degraded: %+v; ClusterOperator (%v): %+v", err, last, gerr, co.Status)
	}
}

// newArbiter creates an arbiter Machine: labelled as the installer labels one, otherwise
// like a master.
func newArbiter(t *testing.T, c *framework.Cluster, name string) {
	t.Helper()
	m := c.NewMaster(name, framework.AWSProviderSpec("us-east-1a", "subnet-us-east-1a"))
	m.Labels[framework.RoleLabel], m.Labels[framework.TypeLabel] = masters.ArbiterRole, masters.ArbiterRole
	if err := c.Client.Create(t.Context(), m); err != nil {
		t.Fatal(err)
	}
}

// TestTopologyArbiter shows arbiter Machines protected only on a HighlyAvailableArbiter
// control plane. On HighlyAvailable an arbiter Machine gets no hook and no member. Once the
// topology says HighlyAvailableArbiter it gets the hook and its member joins as a learner and
// is promoted, counting toward quorum. Deleted with no replacement, it keeps its hook and
// its member; once a replacement arbiter's member has joined and been promoted, the old one
// is removed and the Machine goes.
func TestTopologyArbiter(t *testing.T) {
	ctx := t.Context()
	c, _ := startCluster(t, clusterSpec{settle: true, options: func(o *app.Options) { o.CoexistInterval = 300 * time.Millisecond }})
	hook := hooks.Default
	mastersOnly := []string{"cluster-master-0", "cluster-master-1", "cluster-master-2"}
	setTopology(t, configv1.HighlyAvailableTopologyMode)

	newArbiter(t, c, "cluster-arbiter-0")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if m, err := c.Machine(ctx, "cluster-arbiter-0"); err == nil && hooks.Has(m, hook) {
			t.Fatal("cluster-arbiter-0 got the hook on a HighlyAvailable control plane")
		}
		voters, err := e2e.VotingMembers(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(voters, mastersOnly) {
			t.Fatalf("voting members %v on a HighlyAvailable control plane; want %v", voters, mastersOnly)
		}
		time.Sleep(300 * time.Millisecond)
	}

	setTopology(t, configv1.HighlyAvailableArbiterMode)
	waitHooks(t, c, "cluster-arbiter-0")
	withArbiter := append(slices.Clone(mastersOnly), "cluster-arbiter-0")
	slices.Sort(withArbiter)
	if err := e2e.WaitVoters(ctx, c, 2*time.Minute, withArbiter...); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitHealthWindow(ctx, c, time.Minute); err != nil {
		t.Fatal(err)
	}

	// Deleted alone, the arbiter keeps its member: it counts toward quorum like a master's.
	if err := c.DeleteMachine(ctx, "cluster-arbiter-0"); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m, err := c.Machine(ctx, "cluster-arbiter-0")
		if err != nil || !hooks.Has(m, hook) {
			t.Fatalf("cluster-arbiter-0 deleted with no replacement: %v, hook held %v; want it kept by its hook", err, err == nil && hooks.Has(m, hook))
		}
		voters, err := e2e.VotingMembers(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(voters, withArbiter) {
			t.Fatalf("voting members %v with the arbiter deleted and not replaced; want %v", voters, withArbiter)
		}
		time.Sleep(300 * time.Millisecond)
	}

	newArbiter(t, c, "cluster-arbiter-1")
	if err := e2e.WaitGone(ctx, c, 3*time.Minute, "cluster-arbiter-0"); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitVoters(ctx, c, time.Minute, append(slices.Clone(mastersOnly), "cluster-arbiter-1")...); err != nil {
		t.Fatal(err)
	}
}

// TestTopologyArbiterNotRebalanced runs quorumguard with Machine management on a
// HighlyAvailableArbiter control plane whose arbiter sits in zone c, with the masters in a,
// b, a. Adding zone c to the ControlPlaneMachineSet moves master index 2 there: the arbiter
// neither fills zone c nor counts as a master, and it is never moved, deleted or given an
// index, while its member stays a voter.
func TestTopologyArbiterNotRebalanced(t *testing.T) {
	ctx := t.Context()
	setTopology(t, configv1.HighlyAvailableArbiterMode)
	c, _ := startCluster(t, clusterSpec{zones: "aba", settle: true, options: func(o *app.Options) {
		o.ManageMachines, o.CoexistInterval = true, 300*time.Millisecond
	}})
	arbiter := c.NewMaster("cluster-arbiter-0", e2e.ZoneSpec('c'))
	arbiter.Labels[framework.RoleLabel], arbiter.Labels[framework.TypeLabel] = masters.ArbiterRole, masters.ArbiterRole
	if err := c.Client.Create(ctx, arbiter); err != nil {
		t.Fatal(err)
	}
	waitHooks(t, c, "cluster-arbiter-0")
	if err := e2e.WaitVoters(ctx, c, 2*time.Minute, "cluster-arbiter-0", "cluster-master-0", "cluster-master-1", "cluster-master-2"); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitHealthWindow(ctx, c, time.Minute); err != nil {
		t.Fatal(err)
	}

	// The rollout helpers count three voters; the arbiter's is a fourth, so the rebalance is
	// followed here. The set's selector names only the cluster, so it selects the arbiter
	// too: the role alone keeps the arbiter out.
	cpms := e2e.NewCPMS(c, e2e.CPMSInput{Zones: "abc"})
	cpms.Spec.Selector.MatchLabels = map[string]string{framework.ClusterLabel: c.Opts.Prefix}
	if err := c.Client.Create(ctx, cpms); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e2e.DeleteCPMS(context.Background(), c) })
	if err := e2e.WaitGone(ctx, c, 3*time.Minute, "cluster-master-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := e2e.WaitCPMSCondition(ctx, c, time.Minute, "Progressing", metav1.ConditionFalse, machines.ReasonAllReplicasUpdated); err != nil {
		t.Fatal(err)
	}
	var list machinev1beta1.MachineList
	if err := c.Client.List(ctx, &list, client.InNamespace(framework.MachineNamespace)); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list.Items {
		names = append(names, m.Name)
	}
	if len(list.Items) != 4 || !slices.Contains(names, "cluster-arbiter-0") {
		t.Errorf("Machines %v after the rebalance; want three masters and cluster-arbiter-0", names)
	}
	m, err := c.Machine(ctx, "cluster-arbiter-0")
	if err != nil {
		t.Fatal(err)
	}
	if m.DeletionTimestamp != nil || !hooks.Has(m, hooks.Default) {
		t.Errorf("the arbiter: deleting %v, hook %v; want it untouched and protected", m.DeletionTimestamp != nil, hooks.Has(m, hooks.Default))
	}
	if idx, ok := m.Annotations[failuredomain.IndexAnnotation]; ok {
		t.Errorf("the arbiter got the index annotation %q", idx)
	}
	voters, err := e2e.VotingMembers(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(voters, "cluster-arbiter-0") || len(voters) != 4 {
		t.Errorf("voting members %v after the rebalance; want three masters and cluster-arbiter-0", voters)
	}
}
