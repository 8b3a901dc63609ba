package operatorstatus

import (
	"strings"
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorumguard/quorumguard/pkg/coexist"
)

func TestHeldNamesTheTopology(t *testing.T) {
	topology := coexist.Decide(coexist.Input{Topology: configv1.DualReplicaTopologyMode}).Topology
	etcd := coexist.Decide(coexist.Input{EtcdOperatorFound: true}).Quorum
	for _, tc := range []struct {
		why, reason string
	}{
		{topology, ReasonControlPlaneTopology},
		{etcd, ReasonAnotherOperatorActive},
	} {
		out := Held(configv1.ClusterOperatorStatus{}, configv1.ClusterOperatorStatus{}, tc.why, metav1.Now())
		if len(out.Conditions) != 1 {
			t.Fatalf("conditions %+v; want Degraded alone", out.Conditions)
		}
		d := out.Conditions[0]
		if d.Type != configv1.OperatorDegraded || d.Status != configv1.ConditionTrue || d.Reason != tc.reason ||
			!strings.HasSuffix(d.Message, tc.why) || !strings.HasPrefix(d.Message, "quorumguard changes no etcd membership and no hook: ") {
			t.Errorf("Held(%q) = %+v; want Degraded True, reason %s, message ending with the reason", tc.why, d, tc.reason)
		}
	}
}
