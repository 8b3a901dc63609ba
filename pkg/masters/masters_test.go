package masters

import (
	"strings"
	"testing"

	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func machine(name, role string, extra map[string]string) machinev1beta1.Machine {
	l := map[string]string{RoleLabel: role}
	for k, v := range extra {
		l[k] = v
	}
	return machinev1beta1.Machine{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

func set(state machinev1.ControlPlaneMachineSetState, replicas int32, selector map[string]string) *machinev1.ControlPlaneMachineSet {
	return &machinev1.ControlPlaneMachineSet{Spec: machinev1.ControlPlaneMachineSetSpec{
		State: state, Replicas: ptr.To(replicas), Selector: metav1.LabelSelector{MatchLabels: selector},
	}}
}

func TestMayHoldMember(t *testing.T) {
	sel := map[string]string{RoleLabel: "master"}
	indexed := []machinev1beta1.Machine{machine("m-0", "master", nil), machine("m-1", "master", nil), machine("m-2", "master", nil)}
	for _, tc := range []struct {
		name string
		m    machinev1beta1.Machine
		all  []machinev1beta1.Machine
		cpms *machinev1.ControlPlaneMachineSet
		ok   bool
		why  string
	}{
		{"a worker", machine("w-0", "worker", nil), nil, nil, false, "not labelled " + RoleLabel + "=master"},
		{"a master without a set", machine("odd", "master", nil), nil, nil, true, ""},
		{"an inactive set manages nothing", machine("odd", "master", nil), indexed, set(machinev1.ControlPlaneMachineSetStateInactive, 3, sel), true, ""},
		{"an indexed master of an active set", indexed[1], indexed, set(machinev1.ControlPlaneMachineSetStateActive, 3, sel), true, ""},
		{"a master the active set does not select", machine("m-3", "master", nil), indexed,
			set(machinev1.ControlPlaneMachineSetStateActive, 3, map[string]string{RoleLabel: "master", "zone": "a"}), false, "does not select it"},
		{"an unindexed master adopted at the free index", machine("odd", "master", nil), indexed[:2], set(machinev1.ControlPlaneMachineSetStateActive, 3, sel), true, ""},
		{"an unindexed master with no free index", machine("odd", "master", nil), indexed, set(machinev1.ControlPlaneMachineSetStateActive, 3, sel), false, "cannot manage it"},
		{"an invalid selector", machine("m-0", "master", nil), indexed, &machinev1.ControlPlaneMachineSet{Spec: machinev1.ControlPlaneMachineSetSpec{
			State: machinev1.ControlPlaneMachineSetStateActive, Replicas: ptr.To(int32(3)),
			Selector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "x", Operator: "Bogus"}}}}}, false, "spec.selector is invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := MayHoldMember(&tc.m, tc.all, tc.cpms)
			if ok != tc.ok || (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
				t.Fatalf("MayHoldMember(%s) = %v, %q; want %v and a reason containing %q", tc.m.Name, ok, why, tc.ok, tc.why)
			}
		})
	}
}

func TestIndexesOfLeavesOutWhatTheSetDoesNotSelect(t *testing.T) {
	all := []machinev1beta1.Machine{
		machine("m-0", "master", nil), machine("m-2", "master", nil), machine("odd", "master", nil),
		machine("w-1", "worker", nil), machine("m-7", "master", map[string]string{"other": "yes"}),
	}
	cpms := set(machinev1.ControlPlaneMachineSetStateActive, 3, map[string]string{RoleLabel: "master"})
	cpms.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "other", Operator: metav1.LabelSelectorOpDoesNotExist}}
	got := IndexesOf(all, cpms)
	if len(got) != 3 {
		t.Fatalf("IndexesOf gave %d Machines (%v); want m-0, m-2 and odd", len(got), got)
	}
	if got["m-0"].Index != 0 || got["m-2"].Index != 2 {
		t.Fatalf("indexed names: got %v", got)
	}
	if a := got["odd"]; a.Err != nil || a.Index != 1 || !a.Adopted {
		t.Fatalf("odd: got %+v; want adopted at the free index 1", a)
	}
}
