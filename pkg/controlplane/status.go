package controlplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// writeConditions sets the EtcdMember condition on each Machine where it changed. Only that
// condition is touched, and the write carries the resourceVersion it was computed from.
func (r *Reconciler) writeConditions(ctx context.Context, st *snapshot, d quorum.Decision) {
	changed := false
	for i := range st.machines {
		if want, ok := d.Conditions[st.machines[i].Name]; ok && applyCondition(st.machines[i].DeepCopy(), want, r.now()) {
			changed = true
		}
	}
	if !changed {
		return // nothing to write, so no need to read the lock again
	}
	if _, err := r.Fence.Token(ctx); err != nil {
		return
	}
	for i := range st.machines {
		m := &st.machines[i]
		want, ok := d.Conditions[m.Name]
		if !ok {
			continue
		}
		_ = r.setCondition(ctx, m, want)
	}
}

// markUnreachable records on every Machine that etcd could not be observed, or that it has
// lost quorum; nothing else.
func (r *Reconciler) markUnreachable(ctx context.Context, st *snapshot) {
	if _, err := r.Fence.Token(ctx); err != nil {
		return
	}
	reason, msg := quorum.ReasonEtcdUnreachable, fmt.Sprintf("etcd could not be observed, nothing is changed: %v", st.etcdErr)
	var nq *etcdmember.NoQuorumError
	if errors.As(st.etcdErr, &nq) {
		reason, msg = quorum.ReasonNoQuorum, "etcd has lost quorum, nothing is changed: "+nq.Summary()
	}
	for i := range st.machines {
		m := &st.machines[i]
		// One Event when the reason changes. Without quorum the condition follows the counts
		// as they change (the first pass after a fault may still see a member that has not
		// noticed it); an unreachable etcd's error text is not worth a write every pass.
		c := condition(m)
		if c == nil || c.Reason != reason {
			r.event(m, corev1.EventTypeWarning, reason, "Observe", msg)
		} else if reason != quorum.ReasonNoQuorum {
			continue
		}
		_ = r.setCondition(ctx, m, quorum.Condition{Status: "Unknown", Reason: reason, Message: msg})
	}
}

func (r *Reconciler) setCondition(ctx context.Context, m *machinev1beta1.Machine, want quorum.Condition) error {
	return r.patchCondition(ctx, m, want, nil)
}

// patchCondition writes the EtcdMember condition with the resourceVersion it was computed
// from; refused for a conflict, it is written again on the Machine read afresh (after
// still, when given, accepts that copy).
func (r *Reconciler) patchCondition(ctx context.Context, m *machinev1beta1.Machine, want quorum.Condition, still func(*machinev1beta1.Machine) error) error {
	rv := m.ResourceVersion
	err := r.writer().Patch(ctx, m, true, func(cur *machinev1beta1.Machine) (bool, error) {
		if still != nil && cur.ResourceVersion != rv {
			if err := still(cur); err != nil {
				return false, err
			}
		}
		return applyCondition(cur, want, r.now()), nil
	})
	if err == nil && m.ResourceVersion != rv {
		r.own.record(rv, m)
	}
	return err
}

// applyCondition sets the EtcdMember condition on m and says whether it changed.
func applyCondition(m *machinev1beta1.Machine, want quorum.Condition, now time.Time) bool {
	cur := condition(m)
	status := corev1.ConditionStatus(want.Status)
	if cur != nil && cur.Status == status && cur.Reason == want.Reason && cur.Message == want.Message {
		return false
	}
	next := machinev1beta1.Condition{Type: ConditionType, Status: status, Reason: want.Reason, Message: want.Message, LastTransitionTime: metav1.NewTime(now)}
	if status == corev1.ConditionFalse {
		next.Severity = machinev1beta1.ConditionSeverityInfo
	}
	if cur != nil {
		if cur.Status == status {
			next.LastTransitionTime = cur.LastTransitionTime
		}
		*cur = next
	} else {
		m.Status.Conditions = append(m.Status.Conditions, next)
	}
	return true
}
