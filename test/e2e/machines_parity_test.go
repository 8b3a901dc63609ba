package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/quorumguard/quorumguard/pkg/failuredomain"
	"github.com/quorumguard/quorumguard/pkg/machines"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/test/e2e"
)

// TestParityOnDeleteReplacementGoesWhereBalanceNeedsIt: Machines 0, 1 and 2 all in a under
// OnDelete with domains a, b and c. Deleting 0 leaves its index with only a deleting
// Machine; its replacement goes to b, the under-used zone, and 1 and 2 are not touched.
func TestParityOnDeleteReplacementGoesWhereBalanceNeedsIt(t *testing.T) {
	c := machineSetup(t, "aaa", true)
	startMachines(t, c, nil)
	createCPMS(t, c, e2e.CPMSInput{Strategy: machinev1.OnDelete, Zones: "abc"})
	if _, err := e2e.WaitCPMSCondition(t.Context(), c, 30*time.Second, "Progressing", metav1.ConditionTrue, machines.ReasonNeedsUpdate); err != nil {
		t.Fatal(err)
	}
	res := rollout(t, e2e.RolloutInput{Cluster: c, Zones: "baa", Replaced: []int{0}, EndProgressing: machines.ReasonNeedsUpdate,
		Act: func(ctx context.Context) error { return c.DeleteMachine(ctx, "cluster-master-0") }})
	if len(res.Watch.Created) != 1 {
		t.Errorf("created %v, want exactly one Machine", res.Watch.Created)
	}
	for _, name := range res.Watch.Created {
		m, err := c.Machine(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if why := m.Annotations[machines.ReasonAnnotation]; !strings.Contains(why, "index 0 moves from us-east-1a") {
			t.Errorf("Machine %s was created because %q; want the reason index 0 changes zone", name, why)
		}
	}
}

// TestParityAdoptsAnOperatorLayout: a set as the ControlPlaneMachineSet operator leaves it:
// a master whose name carries no index (it replaced master-1 by hand) and a failure-domain
// list with a duplicate. It is adopted at index 1 without Degraded, and nothing moves.
func TestParityAdoptsAnOperatorLayout(t *testing.T) {
	c := machineSetup(t, "abc", true)
	ctx := t.Context()
	if err := c.Client.Create(ctx, c.NewMaster("cluster-master-byhand", e2e.ZoneSpec('b'))); err != nil {
		t.Fatal(err)
	}
	waitHooks(t, c, "cluster-master-byhand")
	if err := c.DeleteMachine(ctx, "cluster-master-1"); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitGone(ctx, c, time.Minute, "cluster-master-1"); err != nil {
		t.Fatal(err)
	}

	startMachines(t, c, nil)
	createCPMS(t, c, e2e.CPMSInput{Zones: "abca"})
	if _, err := e2e.WaitCPMSCondition(ctx, c, 30*time.Second, "Progressing", metav1.ConditionFalse, machines.ReasonAllReplicasUpdated); err != nil {
		t.Fatal(err)
	}
	if err := e2e.UntouchedSpec(ctx, c, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	cpms, err := e2e.GetCPMS(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, cond := range cpms.Status.Conditions {
		if cond.Type == "Degraded" && cond.Status != metav1.ConditionFalse {
			t.Errorf("Degraded %s/%s: %s", cond.Status, cond.Reason, cond.Message)
		}
	}
	if st := cpms.Status; st.Replicas != 3 || st.ReadyReplicas != 3 || st.UpdatedReplicas != 3 || st.UnavailableReplicas != 0 {
		t.Errorf("status %+v, want 3 replicas all ready and updated", st)
	}
	m, err := c.Machine(ctx, "cluster-master-byhand")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Annotations[failuredomain.IndexAnnotation]; got != "1" {
		t.Errorf("cluster-master-byhand index annotation %q, want 1", got)
	}
	layout, err := e2e.Layout(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if !e2e.Settled(layout, "abc", "") {
		t.Errorf("layout %s, want a, b, c with cluster-master-byhand at index 1", e2e.LayoutString(layout))
	}
}

// TestParityEmptyDomainListChangesNothing: `aws: []` is no failure domains, and the zone is
// then no reason to replace a Machine: nothing moves, and a deleted Machine's replacement
// goes to the zone it leaves.
func TestParityEmptyDomainListChangesNothing(t *testing.T) {
	c := machineSetup(t, "abc", true)
	ctx := t.Context()
	startMachines(t, c, nil)
	cpms := e2e.NewCPMS(c, e2e.CPMSInput{})
	cpms.Spec.Template.OpenShiftMachineV1Beta1Machine.FailureDomains = &machinev1.FailureDomains{
		Platform: configv1.AWSPlatformType, AWS: &[]machinev1.AWSFailureDomain{},
	}
	if err := c.Client.Create(ctx, cpms); err != nil {
		t.Fatal(err)
	}
	if _, err := e2e.WaitCPMSCondition(ctx, c, 30*time.Second, "Progressing", metav1.ConditionFalse, machines.ReasonAllReplicasUpdated); err != nil {
		t.Fatal(err)
	}
	if err := e2e.UntouchedSpec(ctx, c, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	res := rollout(t, e2e.RolloutInput{Cluster: c, Zones: "abc", Replaced: []int{2},
		Act: func(ctx context.Context) error { return c.DeleteMachine(ctx, "cluster-master-2") }})
	if len(res.Watch.Created) != 1 {
		t.Errorf("created %v, want exactly one Machine", res.Watch.Created)
	}
}

// TestParityClusterOperatorReflectsMachineProblems: what the Machine controller finds shows
// on the ClusterOperator, by field and value, each once: a template whose subnet has the
// wrong shape, then a master Machine that cannot be adopted.
func TestParityClusterOperatorReflectsMachineProblems(t *testing.T) {
	const co = "quorumguard-parity"
	c, _ := statusCluster(t, co, nil)
	ctx := t.Context()
	t.Cleanup(func() { _ = e2e.DeleteCPMS(context.Background(), c) })
	startMachines(t, c, nil)

	cpms := e2e.NewCPMS(c, e2e.CPMSInput{Zones: "abc"})
	cpms.Spec.Template.OpenShiftMachineV1Beta1Machine.Spec.ProviderSpec.Value = &runtime.RawExtension{
		Raw: []byte(`{"kind":"AWSMachineProviderConfig","instanceType":"m6i.xlarge","placement":{"availabilityZone":"us-east-1a","region":"us-east-1"},"subnet":"subnet-0abc"}`),
	}
	if err := c.Client.Create(ctx, cpms); err != nil {
		t.Fatal(err)
	}
	conds := waitConditions(t, co, 30*time.Second, map[configv1.ClusterStatusConditionType]want{
		configv1.OperatorDegraded: {status: configv1.ConditionTrue, reason: operatorstatus.ReasonControlPlaneMachinesDegraded},
	})
	msg := conds[configv1.OperatorDegraded].Message
	if !strings.Contains(msg, `providerSpec.value.subnet: malformed providerSpec: want an object, got a string "subnet-0abc"`) ||
		strings.Count(msg, "want an object") != 1 {
		t.Errorf("Degraded message %q: want the subnet field and its value named once", msg)
	}
	if err := e2e.UntouchedSpec(ctx, c, time.Second); err != nil {
		t.Fatal(err)
	}

	if err := e2e.UpdateCPMS(ctx, c, func(cpms *machinev1.ControlPlaneMachineSet) {
		cpms.Spec.Template.OpenShiftMachineV1Beta1Machine.Spec.ProviderSpec.Value = e2e.TemplateSpec("")
	}); err != nil {
		t.Fatal(err)
	}
	extra := c.NewMaster("cluster-master-extra", e2e.ZoneSpec('a'))
	if err := c.Client.Create(ctx, extra); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeleteMachine(context.Background(), "cluster-master-extra") })
	for _, text := range []string{machines.ReasonMachineNameHasNoIndex, "Machine cluster-master-extra metadata.name", "cannot be adopted"} {
		waitConditions(t, co, 30*time.Second, map[configv1.ClusterStatusConditionType]want{
			configv1.OperatorDegraded: {status: configv1.ConditionTrue, reason: operatorstatus.ReasonControlPlaneMachinesDegraded, contains: text},
		})
	}
}
