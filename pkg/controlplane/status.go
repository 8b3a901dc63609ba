package controlplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/masters"
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
	if r.holdsLock(ctx) != nil {
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

// lockHolder is a Fence that can tell whether this replica holds the leader lock before it
// has claimed its fencing token (pkg/leader's ForLife and Lease, pkg/app's fence).
type lockHolder interface {
	Holds(ctx context.Context) error
}

// HoldsLock re-reads the leader lock behind f: nil while this replica holds it. Reports (the
// EtcdMember conditions here, the ClusterOperator in pkg/clusteroperator) need only the
// lock; changes (membership, hooks, Machines) need the fencing token as well. The token is
// claimed from etcd, so a leader that cannot reach etcd has none, and must still say why. A
// Fence that cannot tell is asked for its token.
func HoldsLock(ctx context.Context, f masters.Fence) error {
	if h, ok := f.(lockHolder); ok {
		return h.Holds(ctx)
	}
	_, err := f.Token(ctx)
	return err
}

func (r *Reconciler) holdsLock(ctx context.Context) error { return HoldsLock(ctx, r.Fence) }

// reportWithoutToken is the pass of a replica that has no fencing token yet. While it holds
// the leader lock and etcd cannot be observed (unreachable, a rejected certificate, quorum
// lost: the reasons the token cannot be claimed), the Machines' conditions and the Observer
// say so, and nothing is changed. A standby, a replica whose Fence cannot tell whether it
// holds the lock, and a lock holder whose etcd answers (its token comes in a moment) do
// nothing.
func (r *Reconciler) reportWithoutToken(ctx context.Context) reconcile.Result {
	again := reconcile.Result{RequeueAfter: time.Second}
	if h, ok := r.Fence.(lockHolder); !ok || h.Holds(ctx) != nil {
		return again
	}
	st, err := r.gather(ctx)
	if err != nil || st.etcdErr == nil {
		return again
	}
	if r.Hold != nil {
		if why := r.Hold(); why != "" {
			r.observeHeld(st, why)
			return again
		}
	}
	logr.FromContextOrDiscard(ctx).Error(st.etcdErr, "etcd unreachable or without quorum before a fencing token could be claimed; reported, nothing is changed")
	r.markUnreachable(ctx, st)
	r.observe(st, unobserved(st), st.etcdErr)
	return again
}

// decide is the planner's decision on st, or unobserved(st) when etcd was not observed.
func decide(st *snapshot) quorum.Decision {
	if st.etcdErr != nil {
		return unobserved(st)
	}
	return quorum.Decide(st.state)
}

// unobserved is the decision of a pass that could not observe etcd. Only the fault
// tolerance is known of a view read without quorum, and the members it lists placed on the
// Machines: no conditions, no action.
func unobserved(st *snapshot) quorum.Decision {
	var d quorum.Decision
	var nq *etcdmember.NoQuorumError
	if errors.As(st.etcdErr, &nq) {
		d.FaultTolerance = nq.Counts.Tolerance
	}
	d.Members = st.state.Placed()
	return d
}

// markUnreachable records on every Machine that etcd could not be observed, or that it has
// lost quorum; nothing else. It needs the leader lock, not the token.
func (r *Reconciler) markUnreachable(ctx context.Context, st *snapshot) {
	if r.holdsLock(ctx) != nil {
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
	next := machinev1beta1.Condition{Type: masters.ConditionType, Status: status, Reason: want.Reason, Message: want.Message, LastTransitionTime: metav1.NewTime(now)}
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
