package e2e_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/quorumguard/quorumguard/pkg/coexist"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// installEtcdOperatorCRD installs etcds.operator.openshift.io from the openshift/api module.
func installEtcdOperatorCRD(t *testing.T) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "list", "-m", "-f", "{{.Dir}}", "github.com/openshift/api")
	cmd.Dir = framework.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "operator", "v1", "zz_generated.crd-manifests", "0000_12_etcd_01_etcds-Default.crd.yaml")
	if _, err := envtest.InstallCRDs(cp.Config, envtest.CRDInstallOptions{Paths: []string{path}}); err != nil {
		t.Fatal(err)
	}
}

func setEtcdOperator(t *testing.T, state string) {
	t.Helper()
	ctx := t.Context()
	etcd := &unstructured.Unstructured{}
	etcd.SetGroupVersionKind(coexist.EtcdOperatorKind)
	err := cp.Client.Get(ctx, client.ObjectKey{Name: "cluster"}, etcd)
	if apierrors.IsNotFound(err) {
		etcd.SetName("cluster")
		_ = unstructured.SetNestedField(etcd.Object, state, "spec", "managementState")
		err = cp.Client.Create(ctx, etcd)
	} else if err == nil {
		_ = unstructured.SetNestedField(etcd.Object, state, "spec", "managementState")
		err = cp.Client.Update(ctx, etcd)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// setCPMSOperator makes the control-plane-machine-set ClusterOperator report Available.
func setCPMSOperator(t *testing.T, available configv1.ConditionStatus) {
	t.Helper()
	ctx := t.Context()
	co := &configv1.ClusterOperator{}
	err := cp.Client.Get(ctx, client.ObjectKey{Name: coexist.CPMSOperatorName}, co)
	if apierrors.IsNotFound(err) {
		co = &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: coexist.CPMSOperatorName}}
		err = cp.Client.Create(ctx, co)
	}
	if err != nil {
		t.Fatal(err)
	}
	co.Status.Conditions = []configv1.ClusterOperatorStatusCondition{{Type: configv1.OperatorAvailable, Status: available,
		Reason: "AsExpected", LastTransitionTime: metav1.Now()}}
	if err := cp.Client.Status().Update(ctx, co, client.FieldOwner("control-plane-machine-set-operator")); err != nil {
		t.Fatal(err)
	}
}

func anotherOperatorGauge(t *testing.T, scope string) float64 {
	t.Helper()
	mfs, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != coexist.MetricAnotherOperator {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "scope" && l.GetValue() == scope {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// TestCoexistence runs quorumguard, with Machine management on, next to simulated foreign
// operators and shows that it changes nothing while they are active: with the etcd operator
// Managed it adds no hook and writes no Machine condition, with the ControlPlaneMachineSet
// operator Available it creates no Machine though the set asks for a rebalance, and with
// another field manager writing its ClusterOperator's status it leaves that status alone.
// Each time it says why (its ClusterOperator, an Event, a metric). Once they are gone it
// acts: the hooks appear and the rebalance starts, so the checks above could fail.
func TestCoexistence(t *testing.T) {
	ctx := t.Context()
	installEtcdOperatorCRD(t)
	setEtcdOperator(t, "Managed")
	setCPMSOperator(t, configv1.ConditionTrue)
	t.Cleanup(func() {
		etcd := &unstructured.Unstructured{}
		etcd.SetGroupVersionKind(coexist.EtcdOperatorKind)
		etcd.SetName("cluster")
		_ = cp.Client.Delete(context.Background(), etcd)
		_ = cp.Client.Delete(context.Background(), &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: coexist.CPMSOperatorName}})
	})

	c := zonedCluster(t, "aba")
	// Zones a, b, c: the Machine controller would move index 2 to c at once.
	createCPMS(t, c, e2e.CPMSInput{Zones: "abc"})
	t.Cleanup(func() { _ = e2e.DeleteCPMS(context.Background(), c) })

	const coName = "quorumguard-coexist"
	podNS := "default"
	o := e2e.ControllerOptions(c)
	o.ManageMachines, o.ClusterOperator, o.CoexistInterval = true, coName, 300*time.Millisecond
	o.PodName, o.ElectionNS = "quorumguard-coexist-0", podNS
	rc, err := e2e.StartController(ctx, c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = rc.Stop()
		_ = cp.Client.Delete(context.Background(), &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: coName}})
	})

	names := []string{"cluster-master-0", "cluster-master-1", "cluster-master-2"}
	voters, err := e2e.VotingMembers(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	// unchanged checks, over a few seconds of passes, that nothing quorumguard owns was
	// touched: no hook, no EtcdMember condition, no new Machine, the same voters, and no
	// status on the ControlPlaneMachineSet.
	unchanged := func(phase string) {
		t.Helper()
		deadline := time.Now().Add(4 * time.Second)
		for time.Now().Before(deadline) {
			for _, n := range names {
				m, err := c.Machine(ctx, n)
				if err != nil {
					t.Fatal(err)
				}
				if hooks.Has(m, o.Hook) {
					t.Fatalf("%s: %s got the hook", phase, n)
				}
				if framework.Condition(m, masters.ConditionType) != nil {
					t.Fatalf("%s: %s got an EtcdMember condition", phase, n)
				}
			}
			list := &unstructured.UnstructuredList{}
			list.SetAPIVersion("machine.openshift.io/v1beta1")
			list.SetKind("MachineList")
			if err := c.Client.List(ctx, list, client.InNamespace(framework.MachineNamespace)); err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 3 {
				t.Fatalf("%s: %d Machines, want the 3 there were", phase, len(list.Items))
			}
			now, err := e2e.VotingMembers(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(now, ",") != strings.Join(voters, ",") {
				t.Fatalf("%s: voting members %v, were %v", phase, now, voters)
			}
			cpms, err := e2e.GetCPMS(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if cpms.Status.ObservedGeneration != 0 || len(cpms.Status.Conditions) != 0 {
				t.Fatalf("%s: the ControlPlaneMachineSet's status was written: %+v", phase, cpms.Status)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	degraded := func() *configv1.ClusterOperatorStatusCondition {
		co := &configv1.ClusterOperator{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: coName}, co); err != nil {
			return nil
		}
		for i := range co.Status.Conditions {
			if co.Status.Conditions[i].Type == configv1.OperatorDegraded {
				return &co.Status.Conditions[i]
			}
		}
		return nil
	}

	// 1. The etcd operator is Managed and the ControlPlaneMachineSet operator Available.
	if err := framework.WaitFor(ctx, 30*time.Second, "Degraded AnotherOperatorActive", func() (bool, error) {
		d := degraded()
		return d != nil && d.Status == configv1.ConditionTrue && d.Reason == operatorstatus.ReasonAnotherOperatorActive &&
			strings.Contains(d.Message, "etcd operator manages etcd"), nil
	}); err != nil {
		t.Fatal(err)
	}
	unchanged("etcd operator Managed, ControlPlaneMachineSet operator Available")
	if q, m := anotherOperatorGauge(t, "quorum"), anotherOperatorGauge(t, "machines"); q != 1 || m != 1 {
		t.Errorf("%s quorum=%v machines=%v, want 1 and 1", coexist.MetricAnotherOperator, q, m)
	}
	var reasons []string
	eventually(t, func() bool {
		events := &corev1.EventList{}
		if err := cp.Client.List(ctx, events, client.InNamespace(podNS)); err != nil {
			t.Fatal(err)
		}
		reasons = nil
		for _, e := range events.Items {
			if e.InvolvedObject.Name == o.PodName {
				reasons = append(reasons, e.Reason)
			}
		}
		return slices.Contains(reasons, "AnotherOperatorActive")
	})
	if !slices.Contains(reasons, "AnotherOperatorActive") {
		t.Errorf("Events about %s: %v, want AnotherOperatorActive", o.PodName, reasons)
	}

	// 2. The etcd operator steps back, but another field manager now writes quorumguard's
	// ClusterOperator: quorumguard still changes nothing and leaves that status as it is.
	co := &configv1.ClusterOperator{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: coName}, co); err != nil {
		t.Fatal(err)
	}
	co.Status.Conditions = []configv1.ClusterOperatorStatusCondition{{Type: configv1.OperatorDegraded, Status: configv1.ConditionFalse,
		Reason: "WrittenByAnother", LastTransitionTime: metav1.Now()}}
	if err := cp.Client.Status().Update(ctx, co, client.FieldOwner("cluster-etcd-operator")); err != nil {
		t.Fatal(err)
	}
	setEtcdOperator(t, "Unmanaged")
	time.Sleep(time.Second)
	unchanged("another writer of the ClusterOperator")
	if d := degraded(); d == nil || d.Reason != "WrittenByAnother" {
		t.Errorf("quorumguard wrote over another writer's ClusterOperator status: Degraded %+v", d)
	}

	// 3. The other writer is gone (its managedFields reset, as the README's handover says),
	// and the ControlPlaneMachineSet operator is no longer Available: quorumguard acts.
	reset := []byte(`{"metadata":{"managedFields":[{}]}}`)
	if err := cp.Client.Patch(ctx, &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: coName}}, client.RawPatch(types.MergePatchType, reset)); err != nil {
		t.Fatal(err)
	}
	setCPMSOperator(t, configv1.ConditionFalse)
	waitHooks(t, c, names...)
	if err := framework.WaitFor(ctx, 30*time.Second, "quorumguard writing its ClusterOperator again", func() (bool, error) {
		d := degraded()
		return d != nil && d.Reason != "WrittenByAnother" && d.Reason != operatorstatus.ReasonAnotherOperatorActive, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitFor(ctx, 30*time.Second, "the ControlPlaneMachineSet's status written", func() (bool, error) {
		cpms, err := e2e.GetCPMS(ctx, c)
		return err == nil && cpms.Status.ObservedGeneration > 0, err
	}); err != nil {
		t.Fatal(err)
	}
	if q, m := anotherOperatorGauge(t, "quorum"), anotherOperatorGauge(t, "machines"); q != 0 || m != 0 {
		t.Errorf("%s quorum=%v machines=%v, want 0 and 0", coexist.MetricAnotherOperator, q, m)
	}
}
