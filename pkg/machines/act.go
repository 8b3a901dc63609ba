package machines

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/failuredomain"
)

// act takes the decided action on the objects of snap, which were read from the API server
// in this pass. Deletions carry the UID and resourceVersion they were decided on, so a
// Machine that changed since is left alone until the next pass.
func (r *Reconciler) act(ctx context.Context, snap *snapshot, a Action) error {
	log := logr.FromContextOrDiscard(ctx)
	switch a.Kind {
	case Create:
		m, err := r.newMachine(snap, a)
		if err != nil {
			r.event(snap.cpms, corev1.EventTypeWarning, "CreateFailed", "Create", err.Error())
			return err
		}
		if err := r.Client.Create(ctx, m); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create Machine %s: the name is taken; another name is drawn next pass: %w", m.Name, err)
			}
			r.event(snap.cpms, corev1.EventTypeWarning, "CreateFailed", "Create", fmt.Sprintf("create Machine %s: %v", m.Name, err))
			return fmt.Errorf("create Machine %s: %w", m.Name, err)
		}
		log.Info("created Machine", "machine", m.Name, "index", a.Index, "domain", a.Domain, "attempt", a.Attempt, "reason", a.Reason)
		r.event(snap.cpms, corev1.EventTypeNormal, "MachineCreated", "Create", fmt.Sprintf("created Machine %s: %s", m.Name, a))
	case Adopt:
		m := snap.machines[a.Machine]
		if m == nil {
			return fmt.Errorf("no Machine %s was gathered in this pass", a.Machine)
		}
		base := m.DeepCopy()
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[failuredomain.IndexAnnotation] = strconv.Itoa(a.Index)
		if err := r.Client.Patch(ctx, m, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("adopt Machine %s at index %d: %w", a.Machine, a.Index, err)
		}
		log.Info("adopted Machine", "machine", a.Machine, "index", a.Index)
		r.event(m, corev1.EventTypeNormal, "MachineAdopted", "Adopt", a.String())
	case Delete:
		if err := r.delete(ctx, snap, a.Machine); err != nil {
			return err
		}
		log.Info("deleted Machine", "machine", a.Machine, "index", a.Index, "reason", a.Reason)
		r.event(snap.cpms, corev1.EventTypeNormal, "MachineDeleted", "Delete", fmt.Sprintf("deleted Machine %s: %s", a.Machine, a.Reason))
	case DeleteFailed:
		if err := r.recordFailure(ctx, snap, a); err != nil {
			return err
		}
		if err := r.delete(ctx, snap, a.Machine); err != nil {
			return err
		}
		log.Info("deleted Failed Machine", "machine", a.Machine, "index", a.Index, "attempt", a.Attempt, "carrier", a.Carrier)
		if m := snap.machines[a.Machine]; m != nil {
			r.event(m, corev1.EventTypeWarning, ReasonMachineFailed, "Delete", a.Reason)
		}
		r.event(snap.cpms, corev1.EventTypeWarning, "FailedMachineDeleted", "Delete", a.String())
	}
	return nil
}

// newMachine builds the Machine for a Create: the template's labels, annotations and spec,
// the target domain written into the providerSpec, the attempt recorded, the hook on.
func (r *Reconciler) newMachine(snap *snapshot, a Action) (*machinev1beta1.Machine, error) {
	cpms := snap.cpms
	tmpl := cpms.Spec.Template.OpenShiftMachineV1Beta1Machine
	from := a.Machine
	if from == "" {
		from = lowestIndex(snap.input.Machines)
	}
	prefix := namePrefix(cpms.Spec.MachineNamePrefix, from)
	if prefix == "" {
		return nil, fmt.Errorf("no name prefix: spec.machineNamePrefix is empty and no Machine exists to take one from")
	}
	m := &machinev1beta1.Machine{
		ObjectMeta: metav1.ObjectMeta{
			Name:        machineName(prefix, r.random(), a.Index),
			Namespace:   r.Namespace,
			Labels:      maps.Clone(tmpl.ObjectMeta.Labels),
			Annotations: maps.Clone(tmpl.ObjectMeta.Annotations),
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[AttemptAnnotation] = strconv.Itoa(a.Attempt)
	m.Annotations[ReasonAnnotation] = shorten(a.Reason, maxReasonAnnotation)
	if a.Domain != "" {
		d, ok := snap.domains[a.Domain]
		if !ok {
			return nil, fmt.Errorf("failure domain %s is not listed", a.Domain)
		}
		spec, err := failuredomain.WithDomain(cpms, d)
		if err != nil {
			return nil, err
		}
		m.Spec.ProviderSpec.Value = spec
	} else if v := tmpl.Spec.ProviderSpec.Value; v != nil {
		m.Spec.ProviderSpec.Value = &runtime.RawExtension{Raw: slices.Clone(v.Raw), Object: v.Object}
		// No domains listed: the new Machine goes where the one it replaces is.
		if old := snap.machines[a.Machine]; old != nil {
			spec, err := inheritDomain(v, old.Spec.ProviderSpec.Value)
			if err != nil {
				return nil, err
			}
			m.Spec.ProviderSpec.Value = spec
		}
	}
	if r.Hook.Name != "" && !slices.Contains(m.Spec.LifecycleHooks.PreDrain, r.Hook) {
		m.Spec.LifecycleHooks.PreDrain = append(m.Spec.LifecycleHooks.PreDrain, r.Hook)
	}
	if r.PreTerminate.Name != "" && !slices.Contains(m.Spec.LifecycleHooks.PreTerminate, r.PreTerminate) {
		m.Spec.LifecycleHooks.PreTerminate = append(m.Spec.LifecycleHooks.PreTerminate, r.PreTerminate)
	}
	return m, nil
}

// maxReasonAnnotation bounds the reason kept on a Machine.
const maxReasonAnnotation = 1024

// inheritDomain is the template's providerSpec with the failure-domain fields of from.
func inheritDomain(tmpl, from *runtime.RawExtension) (*runtime.RawExtension, error) {
	t, err := decodeJSON(tmpl)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", templateProviderSpec, err)
	}
	platform, ok := platformOf(t)
	if !ok {
		return &runtime.RawExtension{Raw: slices.Clone(tmpl.Raw), Object: tmpl.Object}, nil
	}
	f, err := decodeJSON(from)
	if err != nil {
		return nil, fmt.Errorf("the Machine replaced: %s: %w", machineProviderSpec, err)
	}
	copyDomainFields(platform, f.(map[string]any), t.(map[string]any))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(t); err != nil {
		return nil, fmt.Errorf("%s: %w", templateProviderSpec, err)
	}
	return &runtime.RawExtension{Raw: bytes.TrimSuffix(buf.Bytes(), []byte("\n"))}, nil
}

func lowestIndex(ms []Machine) string {
	best := -1
	for i, m := range ms {
		if m.IndexErr == "" && (best < 0 || m.Index < ms[best].Index) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return ms[best].Name
}

// delete deletes the named Machine as it was read in this pass.
func (r *Reconciler) delete(ctx context.Context, snap *snapshot, name string) error {
	m := snap.machines[name]
	if m == nil {
		return fmt.Errorf("no Machine %s was gathered in this pass", name)
	}
	pre := client.Preconditions{UID: &m.UID, ResourceVersion: &m.ResourceVersion}
	if err := r.Client.Delete(ctx, m, pre); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Machine %s: %w", name, err)
	}
	return nil
}

// recordFailure writes the failed attempt count on the carrier, with an optimistic lock.
func (r *Reconciler) recordFailure(ctx context.Context, snap *snapshot, a Action) error {
	c := snap.machines[a.Carrier]
	if c == nil {
		return fmt.Errorf("no Machine %s was gathered in this pass", a.Carrier)
	}
	base := c.DeepCopy()
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[FailedAttemptsAnnotation] = strconv.Itoa(a.Attempt)
	c.Annotations[LastFailureAnnotation] = r.now().UTC().Format(time.RFC3339Nano)
	if err := r.Client.Patch(ctx, c, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("record %d failed attempts on Machine %s: %w", a.Attempt, a.Carrier, err)
	}
	return nil
}

func (r *Reconciler) event(obj runtime.Object, typ, reason, action, note string) {
	if r.Recorder == nil || obj == nil {
		return
	}
	r.Recorder.Eventf(obj, nil, typ, reason, action, "%s", note)
}
