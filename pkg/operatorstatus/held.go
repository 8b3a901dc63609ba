package operatorstatus

import (
	configv1 "github.com/openshift/api/config/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReasonAnotherOperatorActive (Degraded): another operator manages etcd, so quorumguard
// changes nothing.
const ReasonAnotherOperatorActive = "AnotherOperatorActive"

// Held is want with Degraded saying why quorumguard changes nothing: another operator
// manages etcd (why). A Degraded that want already had is named after it. The transition
// time moves only when Degraded's status changes from prev.
func Held(want, prev configv1.ClusterOperatorStatus, why string, now metav1.Time) configv1.ClusterOperatorStatus {
	out := *want.DeepCopy()
	cond := configv1.ClusterOperatorStatusCondition{Type: configv1.OperatorDegraded, Status: configv1.ConditionTrue,
		Reason: ReasonAnotherOperatorActive, Message: "quorumguard changes no etcd membership and no hook: " + why, LastTransitionTime: now}
	for _, p := range prev.Conditions {
		if p.Type == configv1.OperatorDegraded && p.Status == configv1.ConditionTrue {
			cond.LastTransitionTime = p.LastTransitionTime
		}
	}
	for i, c := range out.Conditions {
		if c.Type == configv1.OperatorDegraded {
			if c.Status == configv1.ConditionTrue {
				cond.Message += "; also " + c.Reason + ": " + c.Message
			}
			out.Conditions[i] = cond
			return out
		}
	}
	out.Conditions = append(out.Conditions, cond)
	return out
}
