package app

import (
	configv1 "github.com/openshift/api/config/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/quorumguard/quorumguard/pkg/coexist"
	"github.com/quorumguard/quorumguard/pkg/version"
)

// ReasonAnotherOperatorActive is the ClusterOperator's Degraded reason while another
// operator manages etcd, so quorumguard changes nothing.
const ReasonAnotherOperatorActive = "AnotherOperatorActive"

// withFieldManager makes every write carry quorumguard's own field manager, whatever binary
// runs it, so that pkg/coexist can tell its writes of the ClusterOperator from another's.
func withFieldManager(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = coexist.FieldManager + "/" + version.Version
	return cfg
}

// setupGuard adds the runnable that watches for the etcd and ControlPlaneMachineSet
// operators. Its Events are about this replica's Pod, when it has one.
func setupGuard(mgr manager.Manager, o Options) (*coexist.Guard, error) {
	gauge, err := coexist.NewGauge(ctrlmetrics.Registry)
	if err != nil {
		return nil, err
	}
	g := &coexist.Guard{Reader: mgr.GetAPIReader(), ClusterOperator: o.ClusterOperator, Interval: o.CoexistInterval,
		Recorder: mgr.GetEventRecorder("quorumguard"), Log: ctrl.Log.WithName("coexist"), Gauge: gauge}
	if o.PodName != "" && o.ElectionNS != "" {
		g.Regarding = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: o.PodName, Namespace: o.ElectionNS}}
	}
	return g, mgr.Add(g)
}

// heldStatus is want with Degraded saying why quorumguard changes nothing: another operator
// manages etcd. The transition time moves only when Degraded's status changes.
func heldStatus(want, prev configv1.ClusterOperatorStatus, why string, now metav1.Time) configv1.ClusterOperatorStatus {
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
