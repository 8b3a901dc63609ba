package app

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/quorumguard/quorumguard/pkg/coexist"
	"github.com/quorumguard/quorumguard/pkg/openshift"
	"github.com/quorumguard/quorumguard/pkg/version"
)

// withFieldManager makes every write carry quorumguard's own field manager, whatever binary
// runs it, so that pkg/coexist can tell its writes of the ClusterOperator from another's.
func withFieldManager(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = coexist.FieldManager + "/" + version.Version
	return cfg
}

// setupGuard adds the runnable that watches for the etcd and ControlPlaneMachineSet
// operators and the control-plane topology. Its Events are about this replica's Pod, when it has one.
func setupGuard(mgr manager.Manager, o Options) (*coexist.Guard, error) {
	gauge, err := coexist.NewGauge(ctrlmetrics.Registry)
	if err != nil {
		return nil, err
	}
	oc, err := openshift.NewClientsForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return nil, err
	}
	g := &coexist.Guard{Clients: oc, ClusterOperator: o.ClusterOperator, Interval: o.CoexistInterval,
		Recorder: mgr.GetEventRecorder("quorumguard"), Log: ctrl.Log.WithName("coexist"), Gauge: gauge}
	if o.PodName != "" && o.ElectionNS != "" {
		g.Regarding = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: o.PodName, Namespace: o.ElectionNS}}
	}
	return g, mgr.Add(g)
}
