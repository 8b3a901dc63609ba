package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// shippedMachineHealthCheck reads manifests/05-machinehealthcheck.yaml, with its timeouts cut
// to timeout: a test cannot wait the shipped five minutes. Everything else is as shipped.
func shippedMachineHealthCheck(t *testing.T, timeout time.Duration) *machinev1beta1.MachineHealthCheck {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "manifests", "05-machinehealthcheck.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mhc := &machinev1beta1.MachineHealthCheck{}
	if err := yaml.UnmarshalStrict(raw, mhc); err != nil {
		t.Fatal(err)
	}
	if mhc.Spec.MaxUnhealthy == nil || mhc.Spec.MaxUnhealthy.String() != "1" {
		t.Fatalf("the shipped MachineHealthCheck has maxUnhealthy %v, want 1", mhc.Spec.MaxUnhealthy)
	}
	for i := range mhc.Spec.UnhealthyConditions {
		mhc.Spec.UnhealthyConditions[i].Timeout = metav1.Duration{Duration: timeout}
	}
	return mhc
}

// TestMachineHealthCheckRemediation runs the shipped MachineHealthCheck (maxUnhealthy 1) in
// machine-api-operator's own controller. A master whose kubelet stops heartbeating goes
// Ready=Unknown (kube-controller-manager's node lifecycle controller); the MachineHealthCheck
// deletes its Machine, quorumguard's Machine controller creates the replacement, and the
// preDrain hook holds the old one until the replacement votes: no instance is terminated
// while its member is listed. Then two masters go unhealthy at once: the MachineHealthCheck
// short-circuits and deletes neither, and the ClusterOperator says why.
func TestMachineHealthCheckRemediation(t *testing.T) {
	const co = "etcd-mhc-remediation"
	t.Cleanup(func() {
		_ = cp.Client.Delete(context.Background(), &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: co}})
	})
	c, _ := startCluster(t, clusterSpec{zones: "abc", settle: true,
		options: func(o *app.Options) { o.ClusterOperator, o.HookHeldThreshold = co, 30*time.Minute },
		adjust:  func(a *app.Controller) error { return a.EnableStatus() },
	})
	t.Cleanup(func() { _ = e2e.DeleteCPMS(context.Background(), c) })
	ctx := t.Context()
	createCPMS(t, c, e2e.CPMSInput{Strategy: machinev1.OnDelete, Zones: "abc"})
	startMachines(t, c, nil)

	// The ControlPlaneMachineSet operator owns the masters (a controller reference): the
	// MachineHealthCheck remediates only Machines with a controller owner.
	cpms := &machinev1.ControlPlaneMachineSet{}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: framework.MachineNamespace, Name: masters.CPMSName}, cpms); err != nil {
		t.Fatal(err)
	}
	own := func(m *machinev1beta1.Machine) {
		m.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "machine.openshift.io/v1", Kind: "ControlPlaneMachineSet", Name: cpms.Name, UID: cpms.UID, Controller: ptr.To(true),
		}}
	}
	for _, name := range []string{"cluster-master-0", "cluster-master-1", "cluster-master-2"} {
		if err := c.UpdateMachine(ctx, name, own); err != nil {
			t.Fatal(err)
		}
	}
	mhc := shippedMachineHealthCheck(t, 3*time.Second)
	mhc.Spec.Selector.MatchLabels[framework.ClusterLabel] = c.Opts.Prefix
	if err := c.Client.Create(ctx, mhc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), mhc) })

	// One master's kubelet hangs: remediated and replaced.
	c.Cloud.Kubelet("cluster-master-0").Hang()
	if err := e2e.WaitGone(ctx, c, 3*time.Minute, "cluster-master-0"); err != nil {
		t.Fatal(err)
	}
	if !gotEvent(t, "cluster-master-0", "MachineDeleted") {
		t.Error("no Event from the MachineHealthCheck's remediation of cluster-master-0")
	}
	var repl string
	if err := framework.WaitFor(ctx, 3*time.Minute, "three voting members, one of them the replacement", func() (bool, error) {
		voters, err := e2e.VotingMembers(ctx, c)
		if err != nil || len(voters) != 3 || slices.Contains(voters, "cluster-master-0") {
			return false, nil //nolint:nilerr // not yet
		}
		for _, v := range voters {
			if v != "cluster-master-1" && v != "cluster-master-2" {
				repl = v
			}
		}
		return repl != "", nil
	}); err != nil {
		t.Fatal(err)
	}
	noTerminationWithMember(t, c)
	if err := c.UpdateMachine(ctx, repl, own); err != nil {
		t.Fatal(err)
	}

	// Two masters' kubelets hang: the MachineHealthCheck remediates neither.
	c.Cloud.Kubelet("cluster-master-1").Hang()
	c.Cloud.Kubelet("cluster-master-2").Hang()
	if err := framework.WaitFor(ctx, 2*time.Minute, "the MachineHealthCheck to short-circuit", func() (bool, error) {
		cur := &machinev1beta1.MachineHealthCheck{}
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(mhc), cur); err != nil {
			return false, err
		}
		for _, cond := range cur.Status.Conditions {
			if cond.Type == machinev1beta1.RemediationAllowedCondition && cond.Status == corev1.ConditionFalse {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	waitConditions(t, co, time.Minute, map[configv1.ClusterStatusConditionType]want{
		configv1.OperatorDegraded: {configv1.ConditionTrue, operatorstatus.ReasonMachineHealthCheckRestricted, "MachineHealthCheck " + mhc.Name + " remediates no control-plane Machine"},
	})
	// Past the unhealthy timeout several times over, neither Machine was deleted.
	time.Sleep(5 * time.Second)
	for _, name := range []string{"cluster-master-1", "cluster-master-2"} {
		m, err := c.Machine(ctx, name)
		if apierrors.IsNotFound(err) || (err == nil && m.DeletionTimestamp != nil) {
			t.Fatalf("%s was remediated while two masters were unhealthy", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if hasEvent(t, name, "MachineDeleted") {
			t.Fatalf("an Event says %s was remediated while two masters were unhealthy", name)
		}
	}
}
