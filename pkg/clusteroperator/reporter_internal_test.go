package clusteroperator

import (
	"context"
	"errors"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

const name = "quorumguard"

// reporter is a Reporter over a fake API server holding no ClusterOperator yet; adjust
// changes its Config before it is built.
func reporter(t *testing.T, adjust func(*Config)) (*Reporter, client.Client) {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{configv1.Install, machinev1beta1.Install, machinev1.Install} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	cl := fake.NewClientBuilder().WithScheme(s).WithStatusSubresource(&configv1.ClusterOperator{}).Build()
	m, err := operatorstatus.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Name: name, Namespace: "openshift-machine-api", HookHeldThreshold: 30 * time.Minute,
		Related: RelatedObjects("openshift-machine-api", "", nil), Client: cl, Reader: cl, Metrics: m,
		Leads: func() bool { return true }, HoldsLock: func(context.Context) error { return nil }}
	if adjust != nil {
		adjust(&cfg)
	}
	return New(cfg), cl
}

// healthy is a pass over three healthy voters with nothing to do.
func healthy() controlplane.Observation {
	var members []quorum.Member
	for i := range 3 {
		members = append(members, quorum.Member{ID: uint64(i + 1), Started: true, Healthy: true, Leader: i == 0})
	}
	return controlplane.Observation{Time: time.Now(), Members: members, Desired: 3,
		Decision: quorum.Decision{Action: quorum.Action{Kind: quorum.None}, Conditions: map[string]quorum.Condition{}, FaultTolerance: 1, Members: members}}
}

func degraded(co *configv1.ClusterOperator) *configv1.ClusterOperatorStatusCondition {
	for i := range co.Status.Conditions {
		if co.Status.Conditions[i].Type == configv1.OperatorDegraded {
			return &co.Status.Conditions[i]
		}
	}
	return nil
}

// TestReporterWritesOnlyWhatItMay: the leader creates the ClusterOperator with the decided
// status; nothing is written before a pass was observed, by a replica that lost the lock, or
// while another operator writes the ClusterOperator; and while another operator manages
// etcd, Degraded says so.
func TestReporterWritesOnlyWhatItMay(t *testing.T) {
	for _, tc := range []struct {
		name    string
		adjust  func(*Config)
		observe bool
		// written says the ClusterOperator is there after one sync; degraded is then the
		// reason Degraded must give ("" for any).
		written  bool
		degraded string
	}{
		{name: "the leader writes the decided status", observe: true, written: true},
		{name: "nothing observed yet: nothing written", observe: false},
		{name: "a replica that lost the lock writes nothing", observe: true,
			adjust: func(c *Config) { c.HoldsLock = func(context.Context) error { return errors.New("not the leader") } }},
		{name: "another operator writes the ClusterOperator", observe: true,
			adjust: func(c *Config) { c.OwnsClusterOperator = func() bool { return false } }},
		{name: "another operator manages etcd", observe: true, written: true, degraded: operatorstatus.ReasonAnotherOperatorActive,
			adjust: func(c *Config) { c.Hold = func() string { return "the etcd operator is active" } }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, cl := reporter(t, tc.adjust)
			if tc.observe {
				r.Observe(healthy())
			}
			if err := r.sync(t.Context()); err != nil {
				t.Fatalf("sync: %v", err)
			}
			co := &configv1.ClusterOperator{}
			err := cl.Get(t.Context(), client.ObjectKey{Name: name}, co)
			switch {
			case !tc.written && !apierrors.IsNotFound(err):
				t.Fatalf("the ClusterOperator was written (get: %v): %+v", err, co.Status)
			case !tc.written:
				return
			case err != nil:
				t.Fatalf("the ClusterOperator was not written: %v", err)
			}
			if len(co.Status.Conditions) == 0 || len(co.Status.RelatedObjects) == 0 || len(co.Status.Versions) == 0 {
				t.Errorf("status %+v; want conditions, related objects and versions", co.Status)
			}
			if d := degraded(co); tc.degraded != "" && (d == nil || d.Reason != tc.degraded || d.Status != configv1.ConditionTrue) {
				t.Errorf("Degraded %+v; want True, reason %s", d, tc.degraded)
			}
		})
	}
}
