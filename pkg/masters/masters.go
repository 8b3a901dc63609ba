// Package masters is the vocabulary of control-plane Machines that both controllers share:
// how a control-plane Machine is recognised, which of them may hold an etcd member, the
// condition quorumguard keeps on them, and the leadership's fencing token every write to
// them or to etcd carries. It sits below the quorum controller (pkg/controlplane) and the
// Machine controller (pkg/machines), so neither imports the other.
package masters

import (
	"context"
	"fmt"
	"slices"

	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/quorumguard/quorumguard/pkg/failuredomain"
)

const (
	// RoleLabel marks control-plane Machines with value MasterRole, and the arbiter Machines
	// of a HighlyAvailableArbiter control plane with ArbiterRole.
	RoleLabel = "machine.openshift.io/cluster-api-machine-role"
	// MasterRole is RoleLabel's value on a control-plane Machine.
	MasterRole = "master"
	// ArbiterRole is RoleLabel's value on an arbiter Machine: it holds an etcd member on a
	// HighlyAvailableArbiter control plane, and is never a master for the
	// ControlPlaneMachineSet, failure domains or rebalancing.
	ArbiterRole = "arbiter"
	// ConditionType is the condition quorumguard keeps on every control-plane Machine.
	ConditionType machinev1beta1.ConditionType = "EtcdMember"
	// CPMSName is the name of the one ControlPlaneMachineSet.
	CPMSName = "cluster"
)

// Fence supplies the fencing token of the current leadership. Token fails once this process
// is no longer the leader, so nothing it does afterwards reaches etcd or the Machines.
type Fence interface {
	Token(ctx context.Context) (uint64, error)
}

// StaticFence is the token used when leader election is off.
type StaticFence uint64

// Token returns the fixed token.
func (f StaticFence) Token(context.Context) (uint64, error) { return uint64(f), nil }

// MayHoldMember is the one definition of which control-plane Machines may hold an etcd
// member, used by the quorum controller (no learner is added or promoted for any other) and by
// the Machine controller (which reports the others as problems). A Machine labelled as a
// master may, unless an Active ControlPlaneMachineSet exists and either does not select it
// or cannot give it an index (failuredomain.AssignIndexes over all the Machines it
// selects: a name without an index is adopted at a free index, and with none free it is
// not): such a Machine would be a voter beyond the set's replicas that the set can never
// replace.
//
// A Machine labelled as an arbiter may too: the ControlPlaneMachineSet never manages
// arbiters. Only a HighlyAvailableArbiter control plane has its arbiters hold members, and
// the Machines of other topologies are listed without them (pkg/coexist's Roles).
func MayHoldMember(m *machinev1beta1.Machine, all []machinev1beta1.Machine, cpms *machinev1.ControlPlaneMachineSet) (bool, string) {
	switch m.Labels[RoleLabel] {
	case ArbiterRole:
		return true, ""
	case MasterRole:
	default:
		return false, "it is not labelled " + RoleLabel + "=master"
	}
	if cpms == nil || cpms.Spec.State != machinev1.ControlPlaneMachineSetStateActive {
		return true, ""
	}
	sel, err := metav1.LabelSelectorAsSelector(&cpms.Spec.Selector)
	if err != nil {
		return false, fmt.Sprintf("the ControlPlaneMachineSet's spec.selector is invalid: %v", err)
	}
	if !sel.Matches(labels.Set(m.Labels)) {
		return false, fmt.Sprintf("the Active ControlPlaneMachineSet's spec.selector %q does not select it", sel)
	}
	if _, err := failuredomain.IndexOf(m.Name); err == nil {
		return true, ""
	}
	if !slices.ContainsFunc(all, func(o machinev1beta1.Machine) bool { return o.Name == m.Name }) {
		all = append(slices.Clip(all), *m)
	}
	if a := IndexesOf(all, cpms)[m.Name]; a.Err != nil {
		return false, fmt.Sprintf("the Active ControlPlaneMachineSet cannot manage it: %v", a.Err)
	}
	return true, ""
}

// IndexesOf is the index of every master Machine in all that the ControlPlaneMachineSet
// selects, as failuredomain.AssignIndexes gives them.
func IndexesOf(all []machinev1beta1.Machine, cpms *machinev1.ControlPlaneMachineSet) map[string]failuredomain.Assignment {
	sel, err := metav1.LabelSelectorAsSelector(&cpms.Spec.Selector)
	var named []failuredomain.Named
	for i := range all {
		m := &all[i]
		if m.Labels[RoleLabel] != "master" || err != nil || !sel.Matches(labels.Set(m.Labels)) {
			continue
		}
		named = append(named, failuredomain.Named{Name: m.Name, Annotation: m.Annotations[failuredomain.IndexAnnotation], Deleting: m.DeletionTimestamp != nil})
	}
	return failuredomain.AssignIndexes(int(ptr.Deref(cpms.Spec.Replicas, 0)), named)
}

// InternalIPs are the Machine's InternalIP addresses, in the order it reports them.
func InternalIPs(m *machinev1beta1.Machine) []string {
	var out []string
	for _, a := range m.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && a.Address != "" {
			out = append(out, a.Address)
		}
	}
	return out
}
