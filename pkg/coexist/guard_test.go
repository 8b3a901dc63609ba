package coexist

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	configv1 "github.com/openshift/api/config/v1"
	configfake "github.com/openshift/client-go/config/clientset/versioned/fake"
	operatorfake "github.com/openshift/client-go/operator/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"

	"github.com/quorumguard/quorumguard/pkg/openshift"
)

// TestGuardTopology covers what the API server cannot be made to say: a topology value this
// quorumguard does not know (the Infrastructure CRD it is tested with admits only the known
// ones), and a read that fails after one that succeeded.
func TestGuardTopology(t *testing.T) {
	infra := &configv1.Infrastructure{ObjectMeta: metav1.ObjectMeta{Name: InfrastructureName},
		Status: configv1.InfrastructureStatus{ControlPlaneTopology: "TripleReplica"}}
	cfg := configfake.NewClientset(infra)
	g := &Guard{Clients: &openshift.Clients{Config: cfg, Operator: operatorfake.NewClientset()}, Log: logr.Discard()}

	if hold := g.Topology(); !strings.Contains(hold, "not yet known") {
		t.Errorf("Topology() before the first read = %q; want it held as not yet known", hold)
	}
	g.Check(t.Context())
	hold := g.Topology()
	if !strings.Contains(hold, `"TripleReplica", which quorumguard does not know`) || g.Hold() != hold {
		t.Errorf("Topology() = %q, Hold() = %q; want both holding for the unknown value", hold, g.Hold())
	}
	if got := strings.Join(g.Roles(), ","); got != "master" {
		t.Errorf("Roles() = %s; want master", got)
	}

	// The topology changes to HighlyAvailable, but the read fails: the last verdict stands.
	infra.Status.ControlPlaneTopology = configv1.HighlyAvailableTopologyMode
	if _, err := cfg.ConfigV1().Infrastructures().UpdateStatus(t.Context(), infra, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg.PrependReactor("get", "infrastructures", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	g.Check(t.Context())
	if got := g.Topology(); got != hold {
		t.Errorf("Topology() after a failed read = %q; want the last verdict %q", got, hold)
	}
	cfg.ReactionChain = cfg.ReactionChain[1:]
	g.Check(t.Context())
	if got := g.Topology(); got != "" {
		t.Errorf("Topology() once HighlyAvailable reads = %q; want none", got)
	}
}
