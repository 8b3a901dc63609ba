package hooks

import (
	"context"
	"errors"
	"fmt"
	"slices"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Default is quorumguard's own hook. It is not the etcd operator's, so the two never add,
// repair or release each other's hook.
var Default = machinev1beta1.LifecycleHook{Name: "QuorumGuard", Owner: "clusteroperator/quorumguard"}

// EtcdOperator is the hook OpenShift's etcd operator uses. quorumguard takes it with
// --hook-name and --hook-owner where it replaces that operator's quorum protection, so that
// the hooks already on the Machines are the ones it holds and releases.
var EtcdOperator = machinev1beta1.LifecycleHook{Name: "EtcdQuorumOperator", Owner: "clusteroperator/etcd"}

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

// Writer writes Machines with the optimistic lock, and on a conflict reads the Machine
// afresh and tries again, with backoff. A cached copy can be stale for long (after an
// apiserver restart the cache relists only once its watch is back), and without a fresh
// read every pass would send a write that can only be refused.
type Writer struct {
	Client client.Client
	// Reader reads the Machine again after a conflict; it must not be a cache (the
	// manager's APIReader). Nil means no retry: a conflict is returned.
	Reader client.Reader
	// Backoff paces the tries; the zero value is retry.DefaultBackoff (4 tries, 10 ms to
	// 1.25 s apart).
	Backoff wait.Backoff
}

// ErrChanged: the Machine, read afresh after a conflict, no longer allows the write (what
// it was decided on changed); nothing was written.
var ErrChanged = errors.New("the Machine changed since the decision was made; nothing was written")

// Patch applies change to m and writes the difference, the status subresource when status is
// set. On a conflict it reads the Machine afresh, applies change to that copy and writes
// again. change reports whether there is anything to write, or an error (such as
// ErrChanged) to give up with. On success m holds what was written.
func (w Writer) Patch(ctx context.Context, m *machinev1beta1.Machine, status bool, change func(*machinev1beta1.Machine) (bool, error)) error {
	return w.patch(ctx, m, status, func(cur *machinev1beta1.Machine, _ bool) (bool, error) { return change(cur) })
}

func (w Writer) patch(ctx context.Context, m *machinev1beta1.Machine, status bool, change func(cur *machinev1beta1.Machine, fresh bool) (bool, error)) error {
	backoff := w.Backoff
	if backoff.Steps == 0 {
		backoff = retry.DefaultBackoff
	}
	if w.Reader == nil {
		backoff.Steps = 1 // nothing to read afresh with: one try
	}
	var cur *machinev1beta1.Machine
	err := retry.RetryOnConflict(backoff, func() error {
		fresh := cur != nil
		if !fresh {
			cur = m.DeepCopy()
		} else {
			cur = &machinev1beta1.Machine{}
			if err := w.Reader.Get(ctx, client.ObjectKeyFromObject(m), cur); err != nil {
				return err
			}
		}
		base := cur.DeepCopy()
		write, err := change(cur, fresh)
		if err != nil || !write {
			return err
		}
		opt := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
		if status {
			return w.Client.Status().Patch(ctx, cur, opt)
		}
		return w.Client.Patch(ctx, cur, opt)
	})
	if err == nil {
		*m = *cur
	}
	return err
}

// Ensure is the package's Ensure, read afresh and tried again on a conflict. The outcome
// is that of the copy last written (a Machine found deleting on the fresh read is Missing).
func (w Writer) Ensure(ctx context.Context, m *machinev1beta1.Machine, hook machinev1beta1.LifecycleHook) (Outcome, error) {
	var out Outcome
	err := w.Patch(ctx, m, false, func(cur *machinev1beta1.Machine) (bool, error) {
		var want []machinev1beta1.LifecycleHook
		want, out = Desired(cur, hook)
		cur.Spec.LifecycleHooks.PreDrain = want
		return out == Added || out == Repaired, nil
	})
	if err != nil {
		return out, fmt.Errorf("write preDrain hook %s on Machine %s/%s: %w", hook.Name, m.Namespace, m.Name, err)
	}
	return out, nil
}

// Release is the package's Release, read afresh and tried again on a conflict. still is
// asked about every fresh copy and must return ErrChanged (or another error) when what the
// release was decided on no longer holds (its addresses changed, say): nothing is released
// then.
func (w Writer) Release(ctx context.Context, m *machinev1beta1.Machine, hook machinev1beta1.LifecycleHook, still func(fresh *machinev1beta1.Machine) error) error {
	err := w.patch(ctx, m, false, func(cur *machinev1beta1.Machine, fresh bool) (bool, error) {
		if fresh && still != nil {
			if err := still(cur); err != nil {
				return false, err
			}
		}
		i := slices.IndexFunc(cur.Spec.LifecycleHooks.PreDrain, func(h machinev1beta1.LifecycleHook) bool { return h.Name == hook.Name })
		if i < 0 {
			return false, nil
		}
		cur.Spec.LifecycleHooks.PreDrain = slices.Delete(slices.Clone(cur.Spec.LifecycleHooks.PreDrain), i, i+1)
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("release preDrain hook %s on Machine %s/%s: %w", hook.Name, m.Namespace, m.Name, err)
	}
	return nil
}
