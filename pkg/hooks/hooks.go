package hooks

import (
	"context"
	"fmt"
	"slices"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Default is the hook OpenShift's etcd operator uses.
var Default = machinev1beta1.LifecycleHook{Name: "EtcdQuorumOperator", Owner: "clusteroperator/etcd"}

// Outcome says what Desired decided for one Machine.
type Outcome string

const (
	Unchanged Outcome = "Unchanged"
	Added     Outcome = "Added"
	Repaired  Outcome = "Repaired"
	// Missing means the Machine is deleting and the hook is not there: it is not added back.
	Missing Outcome = "Missing"
)

// Has says whether the Machine carries hook with the right owner.
func Has(m *machinev1beta1.Machine, hook machinev1beta1.LifecycleHook) bool {
	return slices.Contains(m.Spec.LifecycleHooks.PreDrain, hook)
}

// Desired returns the preDrain list a Machine should have and what that changes. It keeps
// every other hook and their order.
func Desired(m *machinev1beta1.Machine, hook machinev1beta1.LifecycleHook) ([]machinev1beta1.LifecycleHook, Outcome) {
	cur := m.Spec.LifecycleHooks.PreDrain
	i := slices.IndexFunc(cur, func(h machinev1beta1.LifecycleHook) bool { return h.Name == hook.Name })
	switch {
	case i >= 0 && cur[i].Owner == hook.Owner:
		return cur, Unchanged
	case i >= 0:
		out := slices.Clone(cur)
		out[i].Owner = hook.Owner
		return out, Repaired
	case m.DeletionTimestamp != nil:
		return cur, Missing
	default:
		return append(slices.Clone(cur), hook), Added
	}
}

// Ensure writes the Desired hooks to the Machine if they differ, with an optimistic lock: if
// the Machine changed since it was read, the apiserver refuses with a conflict and nothing is
// written.
func Ensure(ctx context.Context, c client.Client, m *machinev1beta1.Machine, hook machinev1beta1.LifecycleHook) (Outcome, error) {
	want, out := Desired(m, hook)
	if out != Added && out != Repaired {
		return out, nil
	}
	base := m.DeepCopy()
	m.Spec.LifecycleHooks.PreDrain = want
	if err := c.Patch(ctx, m, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return out, fmt.Errorf("write preDrain hook %s on Machine %s/%s: %w", hook.Name, m.Namespace, m.Name, err)
	}
	return out, nil
}

// Release removes hook (by name) from the Machine, with an optimistic lock.
func Release(ctx context.Context, c client.Client, m *machinev1beta1.Machine, hook machinev1beta1.LifecycleHook) error {
	i := slices.IndexFunc(m.Spec.LifecycleHooks.PreDrain, func(h machinev1beta1.LifecycleHook) bool { return h.Name == hook.Name })
	if i < 0 {
		return nil
	}
	base := m.DeepCopy()
	m.Spec.LifecycleHooks.PreDrain = slices.Delete(slices.Clone(m.Spec.LifecycleHooks.PreDrain), i, i+1)
	if err := c.Patch(ctx, m, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("release preDrain hook %s on Machine %s/%s: %w", hook.Name, m.Namespace, m.Name, err)
	}
	return nil
}
