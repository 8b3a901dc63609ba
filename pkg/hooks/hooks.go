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

// DefaultPreTerminate is quorumguard's own preTerminate hook, kept beside Default.
var DefaultPreTerminate = machinev1beta1.LifecycleHook{Name: "QuorumGuard", Owner: "clusteroperator/quorumguard"}

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

// ExcludeDrainAnnotation on a Machine makes OpenShift's Machine controller skip the Node's
// drain, and with it every preDrain hook: the Machine goes on to its preTerminate hooks.
const ExcludeDrainAnnotation = "machine.openshift.io/exclude-node-draining"

// Set is quorumguard's hooks on a control-plane Machine: the preDrain one, which holds the
// Machine before its Node is drained, and the preTerminate one, which holds it before its
// instance is terminated. OpenShift's Machine controller honours a preDrain hook only when
// the Machine has a Node (status.nodeRef) and no ExcludeDrainAnnotation; otherwise it skips
// the drain and only the preTerminate hook holds. A PreTerminate with no Name is no hook:
// only the preDrain one is kept.
type Set struct {
	PreDrain, PreTerminate machinev1beta1.LifecycleHook
}

// Only is the Set of the preDrain hook alone.
func Only(preDrain machinev1beta1.LifecycleHook) Set { return Set{PreDrain: preDrain} }

// WithPreTerminate says the Set keeps a preTerminate hook.
func (s Set) WithPreTerminate() bool { return s.PreTerminate.Name != "" }

// Has says whether the Machine carries hook with the right owner among its preDrain hooks.
func Has(m *machinev1beta1.Machine, hook machinev1beta1.LifecycleHook) bool {
	return slices.Contains(m.Spec.LifecycleHooks.PreDrain, hook)
}

// HasPreTerminate says whether the Machine carries hook with the right owner among its
// preTerminate hooks.
func HasPreTerminate(m *machinev1beta1.Machine, hook machinev1beta1.LifecycleHook) bool {
	return slices.Contains(m.Spec.LifecycleHooks.PreTerminate, hook)
}

// DrainSkipped says why OpenShift's Machine controller skips the drain of m, and with it
// every preDrain hook, should m be deleted: "" when it honours them.
func DrainSkipped(m *machinev1beta1.Machine) string {
	if _, ok := m.Annotations[ExcludeDrainAnnotation]; ok {
		return "the Machine carries the " + ExcludeDrainAnnotation + " annotation"
	}
	if m.Status.NodeRef == nil {
		return "the Machine has no Node (status.nodeRef)"
	}
	return ""
}

// Desired returns the preDrain list a Machine should have and what that changes. It keeps
// every other hook and their order.
func Desired(m *machinev1beta1.Machine, hook machinev1beta1.LifecycleHook) ([]machinev1beta1.LifecycleHook, Outcome) {
	return desiredIn(m.Spec.LifecycleHooks.PreDrain, m.DeletionTimestamp != nil, hook)
}

// DesiredPreTerminate is Desired for the preTerminate list.
func DesiredPreTerminate(m *machinev1beta1.Machine, hook machinev1beta1.LifecycleHook) ([]machinev1beta1.LifecycleHook, Outcome) {
	return desiredIn(m.Spec.LifecycleHooks.PreTerminate, m.DeletionTimestamp != nil, hook)
}

func desiredIn(cur []machinev1beta1.LifecycleHook, deleting bool, hook machinev1beta1.LifecycleHook) ([]machinev1beta1.LifecycleHook, Outcome) {
	i := slices.IndexFunc(cur, func(h machinev1beta1.LifecycleHook) bool { return h.Name == hook.Name })
	switch {
	case i >= 0 && cur[i].Owner == hook.Owner:
		return cur, Unchanged
	case i >= 0:
		out := slices.Clone(cur)
		out[i].Owner = hook.Owner
		return out, Repaired
	case deleting:
		return cur, Missing
	default:
		return append(slices.Clone(cur), hook), Added
	}
}

// Outcomes says what DesiredSet decided for each of a Set's hooks; PreTerminate is Unchanged
// when the Set has none.
type Outcomes struct {
	PreDrain, PreTerminate Outcome
}

// Writes says whether the Outcomes change the Machine.
func (o Outcomes) Writes() bool {
	return o.PreDrain == Added || o.PreDrain == Repaired || o.PreTerminate == Added || o.PreTerminate == Repaired
}

// DesiredSet returns both lifecycle hook lists a Machine should have for set, and what that
// changes for each hook: each is added to a Machine that is not being deleted and repaired
// on any, as Desired does, and never added back to a deleting one.
func DesiredSet(m *machinev1beta1.Machine, set Set) (machinev1beta1.LifecycleHooks, Outcomes) {
	want := m.Spec.LifecycleHooks
	var out Outcomes
	want.PreDrain, out.PreDrain = Desired(m, set.PreDrain)
	out.PreTerminate = Unchanged
	if set.WithPreTerminate() {
		want.PreTerminate, out.PreTerminate = DesiredPreTerminate(m, set.PreTerminate)
	}
	return want, out
}

// Released returns both lifecycle hook lists of m without the Set's hooks (by name), and
// whether that removes any. Both go in the same write: the preTerminate hook is never
// released before the preDrain one.
func Released(m *machinev1beta1.Machine, set Set) (machinev1beta1.LifecycleHooks, bool) {
	want := m.Spec.LifecycleHooks
	named := func(name string) func(machinev1beta1.LifecycleHook) bool {
		return func(h machinev1beta1.LifecycleHook) bool { return h.Name == name }
	}
	changed := false
	if slices.IndexFunc(want.PreDrain, named(set.PreDrain.Name)) >= 0 {
		want.PreDrain = slices.DeleteFunc(slices.Clone(want.PreDrain), named(set.PreDrain.Name))
		changed = true
	}
	if set.WithPreTerminate() && slices.IndexFunc(want.PreTerminate, named(set.PreTerminate.Name)) >= 0 {
		want.PreTerminate = slices.DeleteFunc(slices.Clone(want.PreTerminate), named(set.PreTerminate.Name))
		changed = true
	}
	return want, changed
}

// Names lists the Set's hooks for messages: "preDrain hook A" or "preDrain hook A and
// preTerminate hook B".
func (s Set) Names() string {
	if !s.WithPreTerminate() {
		return "preDrain hook " + s.PreDrain.Name
	}
	return "preDrain hook " + s.PreDrain.Name + " and preTerminate hook " + s.PreTerminate.Name
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

// Release removes hook (by name) from the Machine's preDrain hooks, with an optimistic lock.
func Release(ctx context.Context, c client.Client, m *machinev1beta1.Machine, hook machinev1beta1.LifecycleHook) error {
	return ReleaseSet(ctx, c, m, Only(hook))
}

// ReleaseSet removes the Set's hooks (by name) from the Machine in one write, with an
// optimistic lock.
func ReleaseSet(ctx context.Context, c client.Client, m *machinev1beta1.Machine, set Set) error {
	want, changed := Released(m, set)
	if !changed {
		return nil
	}
	base := m.DeepCopy()
	m.Spec.LifecycleHooks = want
	if err := c.Patch(ctx, m, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("release %s on Machine %s/%s: %w", set.Names(), m.Namespace, m.Name, err)
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
	out, err := w.EnsureSet(ctx, m, Only(hook))
	return out.PreDrain, err
}

// EnsureSet writes DesiredSet's hooks in one write, read afresh and tried again on a
// conflict. The outcomes are those of the copy last written.
func (w Writer) EnsureSet(ctx context.Context, m *machinev1beta1.Machine, set Set) (Outcomes, error) {
	var out Outcomes
	err := w.Patch(ctx, m, false, func(cur *machinev1beta1.Machine) (bool, error) {
		var want machinev1beta1.LifecycleHooks
		want, out = DesiredSet(cur, set)
		cur.Spec.LifecycleHooks = want
		return out.Writes(), nil
	})
	if err != nil {
		return out, fmt.Errorf("write %s on Machine %s/%s: %w", set.Names(), m.Namespace, m.Name, err)
	}
	return out, nil
}

// Release is the package's Release, read afresh and tried again on a conflict. still is
// asked about every fresh copy and must return ErrChanged (or another error) when what the
// release was decided on no longer holds (its addresses changed, say): nothing is released
// then.
func (w Writer) Release(ctx context.Context, m *machinev1beta1.Machine, hook machinev1beta1.LifecycleHook, still func(fresh *machinev1beta1.Machine) error) error {
	return w.ReleaseSet(ctx, m, Only(hook), still)
}

// ReleaseSet is Release for both of the Set's hooks, removed in one write: the preTerminate
// hook never goes before the preDrain one.
func (w Writer) ReleaseSet(ctx context.Context, m *machinev1beta1.Machine, set Set, still func(fresh *machinev1beta1.Machine) error) error {
	err := w.patch(ctx, m, false, func(cur *machinev1beta1.Machine, fresh bool) (bool, error) {
		if fresh && still != nil {
			if err := still(cur); err != nil {
				return false, err
			}
		}
		want, changed := Released(cur, set)
		cur.Spec.LifecycleHooks = want
		return changed, nil
	})
	if err != nil {
		return fmt.Errorf("release %s on Machine %s/%s: %w", set.Names(), m.Namespace, m.Name, err)
	}
	return nil
}
