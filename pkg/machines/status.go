package machines

import (
	"context"
	"fmt"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// writeStatus writes the decided status when it differs from what the object shows, with
// the resourceVersion it was read at, and records an event when Degraded turns True or
// changes its reason.
func (r *Reconciler) writeStatus(ctx context.Context, snap *snapshot, d Decision) error {
	cpms := snap.cpms
	base := cpms.DeepCopy()
	oldDegraded := meta.FindStatusCondition(base.Status.Conditions, ConditionDegraded)

	st := &cpms.Status
	st.ObservedGeneration = cpms.Generation
	st.Replicas = d.Status.Replicas
	st.ReadyReplicas = d.Status.ReadyReplicas
	st.UpdatedReplicas = d.Status.UpdatedReplicas
	st.UnavailableReplicas = d.Status.UnavailableReplicas
	for _, c := range []struct {
		typ string
		c   Condition
	}{{ConditionAvailable, d.Status.Available}, {ConditionProgressing, d.Status.Progressing}, {ConditionDegraded, d.Status.Degraded}} {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: c.typ, Status: c.c.Status, Reason: c.c.Reason, Message: shorten(c.c.Message, maxConditionMessage), ObservedGeneration: cpms.Generation,
			LastTransitionTime: metav1.NewTime(r.now()),
		})
	}
	if equality.Semantic.DeepEqual(base.Status, cpms.Status) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, cpms, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patch ControlPlaneMachineSet %s/%s status: %w", cpms.Namespace, cpms.Name, err)
	}
	deg := d.Status.Degraded
	if deg.Status == metav1.ConditionTrue && (oldDegraded == nil || oldDegraded.Status != metav1.ConditionTrue || oldDegraded.Reason != deg.Reason) {
		r.event(cpms, corev1.EventTypeWarning, deg.Reason, "Validate", deg.Message)
	}
	return nil
}

// maxConditionMessage is the API's limit on a condition message.
const maxConditionMessage = 32768

// shorten cuts s to at most limit bytes, on a rune boundary, marking the cut.
func shorten(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
