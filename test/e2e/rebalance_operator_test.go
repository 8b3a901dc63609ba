package e2e_test

import (
	"context"
	"testing"

	machinev1 "github.com/openshift/api/machine/v1"
	"k8s.io/utils/ptr"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// TestRebalanceMovesTheIndexTheOperatorMoves, on a real apiserver and a five-member etcd:
// masters 0–4 in zones c, c, c, a, b, and a ControlPlaneMachineSet listing a, b and c. c is
// over-used (3 of 5, more than ceil(5/3) = 2). The ControlPlaneMachineSet operator's mapping
// (reconcileMappings) walks the indexes it left unmatched lowest first, so it moves index 1
// to b; the rule quorumguard had before (the lowest stay, the highest move) moved index 2
// to a. The rebalance replaces index 1 alone, through the protected replacement.
func TestRebalanceMovesTheIndexTheOperatorMoves(t *testing.T) {
	c, _ := startCluster(t, clusterSpec{zones: "cccab", settle: true,
		cluster: func(o *framework.ClusterOptions) { o.Masters = 5 },
		options: func(o *app.Options) { o.DefaultReplicas = 5 }})
	t.Cleanup(func() { _ = e2e.DeleteCPMS(context.Background(), c) })
	startMachines(t, c, func(o *e2e.MachinesOptions) { o.App.DefaultReplicas = 5 })
	// No failure domains listed first: nothing moves.
	cpms := e2e.NewCPMS(c, e2e.CPMSInput{})
	cpms.Spec.Replicas = ptr.To[int32](5)
	if err := c.Client.Create(t.Context(), cpms); err != nil {
		t.Fatal(err)
	}
	res := rollout(t, e2e.RolloutInput{Cluster: c, Zones: "cbcab", Replaced: []int{1}, Replicas: 5,
		Change: func(cpms *machinev1.ControlPlaneMachineSet) { e2e.SetZones(cpms, "abc") }})
	if !progressedWith(res, "index 1 moves from us-east-1c") {
		t.Errorf("Progressing never said index 1 moves: %q", res.Watch.Progressing)
	}
}
