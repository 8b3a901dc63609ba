package operatorstatus

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// RoleLabel marks control-plane Machines with the value "master".
const RoleLabel = "machine.openshift.io/cluster-api-machine-role"

// MHCVerdict is what one MachineHealthCheck that targets control-plane Machines allows.
type MHCVerdict struct {
	Name string `json:"name"`
	// MaxUnhealthy is the field as set, "" when it is absent (the API then defaults it to 100%).
	MaxUnhealthy string `json:"maxUnhealthy"`
	// Allowed is how many control-plane Machines may be unhealthy at once with remediation
	// still going on, at the larger count of Machines it may see.
	Allowed int    `json:"allowed"`
	Safe    bool   `json:"safe"`
	Message string `json:"message"`
	// Restricted is the machine-api's own message when the MachineHealthCheck short-circuited
	// (RemediationAllowed False): it remediates nothing until fewer Machines are unhealthy.
	Restricted string `json:"restricted,omitempty"`
}

// CheckMachineHealthChecks judges every MachineHealthCheck whose selector matches one of the
// control-plane Machines' label sets (or, when there are none, the role label alone).
//
// The machine-api remediates as long as the unhealthy Machines among those it selects are
// at most maxUnhealthy; a percentage is taken of the Machines it selects, rounded down, and
// an absent field means 100%. Only one control-plane Machine may be remediated at a time:
// two unhealthy masters mean etcd is already short, and deleting both risks quorum. So a
// MachineHealthCheck is safe when it allows at most one, counted both at desired Machines
// and at desired+1, which it sees during a replacement: 40% allows 1 of 3 and 1 of 4 (safe);
// 50% allows 1 of 3 but 2 of 4 (unsafe); 67% allows 2 of 3 (unsafe); absent allows all.
// The result is sorted by name.
func CheckMachineHealthChecks(mhcs []machinev1beta1.MachineHealthCheck, controlPlane []labels.Set, desired int) []MHCVerdict {
	if len(controlPlane) == 0 {
		controlPlane = []labels.Set{{RoleLabel: "master"}}
	}
	if desired <= 0 {
		desired = 3
	}
	var out []MHCVerdict
	for i := range mhcs {
		mhc := &mhcs[i]
		sel, err := metav1.LabelSelectorAsSelector(&mhc.Spec.Selector)
		if err != nil {
			continue // the machine-api cannot use it either: it selects nothing
		}
		targets := false
		for _, set := range controlPlane {
			if sel.Matches(set) {
				targets = true
				break
			}
		}
		if targets {
			v := judge(mhc.Name, mhc.Spec.MaxUnhealthy, desired)
			v.Restricted = restricted(mhc)
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func judge(name string, maxUnhealthy *intstr.IntOrString, desired int) MHCVerdict {
	v := MHCVerdict{Name: name}
	if maxUnhealthy == nil {
		v.Allowed, v.Safe = desired+1, false
		v.Message = fmt.Sprintf("MachineHealthCheck %s has no maxUnhealthy (the default is 100%%), so it may remediate every control-plane Machine at once; set maxUnhealthy: 1", name)
		return v
	}
	v.MaxUnhealthy = maxUnhealthy.String()
	for _, total := range []int{desired, desired + 1} {
		n, err := allowed(maxUnhealthy, total)
		if err != nil {
			v.Allowed, v.Safe = total, false
			v.Message = fmt.Sprintf("MachineHealthCheck %s has a maxUnhealthy of %q that cannot be read (%v); set maxUnhealthy: 1", name, v.MaxUnhealthy, err)
			return v
		}
		v.Allowed = max(v.Allowed, n)
	}
	v.Safe = v.Allowed <= 1
	if v.Safe {
		v.Message = fmt.Sprintf("MachineHealthCheck %s remediates at most %d control-plane Machine at a time", name, v.Allowed)
	} else {
		v.Message = fmt.Sprintf("MachineHealthCheck %s has maxUnhealthy %s, which lets it remediate %d control-plane Machines at once (of %d, or %d during a replacement); set maxUnhealthy: 1",
			name, v.MaxUnhealthy, v.Allowed, desired, desired+1)
	}
	return v
}

// allowed is maxUnhealthy of total Machines, a percentage rounded down as the machine-api
// does. An integer written as a string counts as that integer.
func allowed(maxUnhealthy *intstr.IntOrString, total int) (int, error) {
	if maxUnhealthy.Type == intstr.String && !strings.HasSuffix(maxUnhealthy.StrVal, "%") {
		return strconv.Atoi(maxUnhealthy.StrVal)
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(maxUnhealthy, total, false)
	if err != nil {
		return 0, err
	}
	return max(n, 0), nil
}

// restricted is the message of mhc's RemediationAllowed condition when it is False, "" else.
func restricted(mhc *machinev1beta1.MachineHealthCheck) string {
	for _, c := range mhc.Status.Conditions {
		if c.Type == machinev1beta1.RemediationAllowedCondition && c.Status == corev1.ConditionFalse {
			if c.Message == "" {
				return c.Reason
			}
			return c.Message
		}
	}
	return ""
}
