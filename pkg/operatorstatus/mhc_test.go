package operatorstatus

import (
	"testing"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func mhc(name string, maxUnhealthy *intstr.IntOrString, selector metav1.LabelSelector) machinev1beta1.MachineHealthCheck {
	return machinev1beta1.MachineHealthCheck{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "openshift-machine-api"},
		Spec:       machinev1beta1.MachineHealthCheckSpec{Selector: selector, MaxUnhealthy: maxUnhealthy},
	}
}

var (
	masters = metav1.LabelSelector{MatchLabels: map[string]string{RoleLabel: "master"}}
	workers = metav1.LabelSelector{MatchLabels: map[string]string{RoleLabel: "worker"}}
)

func TestCheckMachineHealthChecks(t *testing.T) {
	i := intstr.FromInt32
	s := intstr.FromString
	cases := []struct {
		name        string
		mhc         machinev1beta1.MachineHealthCheck
		desired     int
		wantTargets bool
		wantSafe    bool
		wantAllowed int
	}{
		{"maxUnhealthy 1 is safe", mhc("a", ptr(i(1)), masters), 3, true, true, 1},
		{"maxUnhealthy 0 blocks remediation and is safe", mhc("a", ptr(i(0)), masters), 3, true, true, 0},
		{"maxUnhealthy 2 is unsafe", mhc("a", ptr(i(2)), masters), 3, true, false, 2},
		{"maxUnhealthy 3 is unsafe", mhc("a", ptr(i(3)), masters), 3, true, false, 3},
		{"no maxUnhealthy means 100% and is unsafe", mhc("a", nil, masters), 3, true, false, 4},
		{"40% of 3 rounds down to 1, and of 4 too: safe", mhc("a", ptr(s("40%")), masters), 3, true, true, 1},
		{"67% of 3 is 2: unsafe", mhc("a", ptr(s("67%")), masters), 3, true, false, 2},
		{"50% of 3 is 1 but 2 of 4 during a replacement: unsafe", mhc("a", ptr(s("50%")), masters), 3, true, false, 2},
		{"20% of 5 is 1 and of 6 too: safe", mhc("a", ptr(s("20%")), masters), 5, true, true, 1},
		{"34% of 5 is 1 but 2 of 6: unsafe", mhc("a", ptr(s("34%")), masters), 5, true, false, 2},
		{"100% is unsafe", mhc("a", ptr(s("100%")), masters), 3, true, false, 4},
		{"0% is safe", mhc("a", ptr(s("0%")), masters), 3, true, true, 0},
		{"an integer written as a string counts as that integer", mhc("a", ptr(s("2")), masters), 3, true, false, 2},
		{"a value that cannot be read is unsafe", mhc("a", ptr(s("many")), masters), 3, true, false, 3},
		{"a worker MachineHealthCheck is not judged", mhc("w", nil, workers), 3, false, false, 0},
		{"an empty selector selects the masters too", mhc("all", ptr(i(3)), metav1.LabelSelector{}), 3, true, false, 3},
		{"a selector on several labels of the masters matches", mhc("a", ptr(i(2)), metav1.LabelSelector{
			MatchLabels: map[string]string{RoleLabel: "master", "machine.openshift.io/cluster-api-machine-type": "master"}}), 3, true, false, 2},
		{"a selector by expression matches", mhc("a", nil, metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: RoleLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"master", "worker"}}}}), 3, true, false, 4},
		{"an invalid selector selects nothing", mhc("bad", nil, metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: RoleLabel, Operator: "Near"}}}), 3, false, false, 0},
	}
	controlPlane := []labels.Set{
		{RoleLabel: "master", "machine.openshift.io/cluster-api-machine-type": "master"},
		{RoleLabel: "master", "machine.openshift.io/cluster-api-machine-type": "master"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckMachineHealthChecks([]machinev1beta1.MachineHealthCheck{tc.mhc}, controlPlane, tc.desired)
			if !tc.wantTargets {
				if len(got) != 0 {
					t.Fatalf("judged %+v; want it ignored", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d verdicts, want 1", len(got))
			}
			v := got[0]
			if v.Safe != tc.wantSafe || v.Allowed != tc.wantAllowed || v.Name != tc.mhc.Name {
				t.Errorf("verdict %+v; want safe=%v allowed=%d", v, tc.wantSafe, tc.wantAllowed)
			}
			if v.Message == "" {
				t.Error("verdict has no message")
			}
		})
	}
}

func TestCheckMachineHealthChecksWithoutMachinesUsesTheRoleLabel(t *testing.T) {
	got := CheckMachineHealthChecks([]machinev1beta1.MachineHealthCheck{
		mhc("b", ptr(intstr.FromInt32(1)), masters), mhc("a", nil, masters), mhc("w", nil, workers),
	}, nil, 0)
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" || got[0].Safe || !got[1].Safe {
		t.Errorf("verdicts %+v; want a (unsafe) then b (safe)", got)
	}
}

func ptr[T any](v T) *T { return &v }
