package app

import (
	"context"

	configv1 "github.com/openshift/api/config/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/quorumguard/quorumguard/pkg/clusteroperator"
	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/openshift"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
)

// EnableStatus makes the controller report: it updates the quorumguard_ metrics on the
// controller-runtime registry from every pass and, unless Options.ClusterOperator is empty,
// keeps that ClusterOperator's status true (pkg/clusteroperator). The reconciler's Observer
// only records the pass; a runnable on the manager decides and writes, only on change and
// only while this replica leads. Calling it again does nothing.
func (c *Controller) EnableStatus() error {
	// On the Controller, not in a package map: a map keyed by controllers would keep every
	// one ever built (a test process builds hundreds) and all it refers to.
	if c.statusEnabled.Swap(true) {
		return nil
	}
	m, err := operatorstatus.NewMetrics(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	oc, err := openshift.NewClientsForConfigAndClient(c.Manager.GetConfig(), c.Manager.GetHTTPClient())
	if err != nil {
		return err
	}
	o := c.opts
	r := clusteroperator.New(clusteroperator.Config{
		Name: o.ClusterOperator, Namespace: o.Namespace, Hook: o.Hook, HookHeldThreshold: o.HookHeldThreshold, PreTerminateHook: o.PreTerminate(),
		Related: clusteroperator.RelatedObjects(o.Namespace, o.ElectionNS, leaderLock(o)),
		Client:  c.Manager.GetClient(), Informers: c.Manager.GetCache(), ClusterOperators: oc.Config.ConfigV1().ClusterOperators(),
		Metrics: m, Leads: c.leads,
		HoldsLock: func(ctx context.Context) error { return controlplane.HoldsLock(ctx, c.Reconciler.Fence) },
		// The Guard is set up after this is called (New), so it is looked up on each use.
		OwnsClusterOperator: func() bool { return c.Guard == nil || c.Guard.OwnsClusterOperator() },
		Hold: func() string {
			if c.Guard == nil {
				return ""
			}
			return c.Guard.Hold()
		},
		Warnings: warnings(o),
		Log:      ctrl.Log.WithName("status"),
	})
	prev := c.Reconciler.Observer
	c.Reconciler.Observer = func(obs controlplane.Observation) {
		if prev != nil {
			prev(obs)
		}
		r.Observe(obs)
	}
	return c.Manager.Add(r)
}

// leads says whether this replica holds the leader lock (or needs no election), whether or
// not it has claimed its fencing token: it then reports, and its metrics count.
func (c *Controller) leads() bool {
	if c.ForLife != nil {
		return c.holding.Load() || c.electionSkipped()
	}
	select {
	case <-c.Manager.Elected():
		return true
	default:
		return false
	}
}

// leaderLock is the object the leader election holds, nil without one.
func leaderLock(o Options) *configv1.ObjectReference {
	if o.ElectionNS == "" {
		return nil
	}
	switch o.LeaderElect {
	case "for-life":
		return &configv1.ObjectReference{Resource: "configmaps", Namespace: o.ElectionNS, Name: o.ElectionID}
	case "lease":
		return &configv1.ObjectReference{Group: "coordination.k8s.io", Resource: "leases", Namespace: o.ElectionNS, Name: o.ElectionID}
	}
	return nil
}

// SkipRolloutWarning is said in the log, an Event and the ClusterOperator while
// --skip-apiserver-rollout-wait is on.
const SkipRolloutWarning = "--skip-apiserver-rollout-wait is on: etcd members are removed without waiting for every node's kube-apiserver to roll out a revision that leaves them out, so apiservers may dial removed members until they do"

// warnings are the configuration choices the ClusterOperator must show.
func warnings(o Options) []string {
	var out []string
	if o.OpenShiftEndpoints && o.SkipAPIServerRollout {
		out = append(out, SkipRolloutWarning)
	}
	return out
}
