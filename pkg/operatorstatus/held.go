package operatorstatus

import (
	"strings"

	configv1 "github.com/openshift/api/config/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorumguard/quorumguard/pkg/coexist"
)

// ReasonAnotherOperatorActive (Degraded): another operator manages etcd, so quorumguard
// changes nothing.
const ReasonAnotherOperatorActive = "AnotherOperatorActive"

// ReasonControlPlaneTopology (Degraded): the control-plane topology leaves quorumguard
// nothing it may change (DualReplica, SingleReplica, External), or is one it does not know.
const ReasonControlPlaneTopology = "ControlPlaneTopology"

// Held is want with Degraded saying why quorumguard changes nothing: another operator
// manages etcd, or the control-plane topology holds it (why, from pkg/coexist; a topology's
// starts with coexist.TopologyHoldPrefix and is reported as ReasonControlPlaneTopology). A
// Degraded that want already had is named after it. The transition time moves only when
// Degraded's status changes from prev.
func Held(want, prev configv1.ClusterOperatorStatus, why string, now metav1.Time) configv1.ClusterOperatorStatus {
	out := *want.DeepCopy()
	reason := ReasonAnotherOperatorActive
	if strings.HasPrefix(why, coexist.TopologyHoldPrefix) {
		reason = ReasonControlPlaneTopology
	}
	cond := configv1.ClusterOperatorStatusCondition{Type: configv1.OperatorDegraded, Status: configv1.ConditionTrue,
		Reason: reason, Message: "quorumguard changes no etcd membership and no hook: " + why, LastTransitionTime: now}
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
