package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/failuredomain"
	"github.com/quorumguard/quorumguard/pkg/plan"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// TestPlanMatchesReplacement holds `quorumguard plan --delete` against what then happens: the
// plan is computed as the command computes it (one dry pass, plan.FromPass, plan.Run), the
// Machine is deleted, and the controller's actions, as it recorded them just before taking
// each, must be the plan's controller steps: the same kinds, on the same Machines, in the
// same order (a replacement the plan names <prefix>-new-<index> stands for the Machine the
// ControlPlaneMachineSet created for that index). The replacement must land in the
// failure domain the plan says, and the lowest fault tolerance the plan gives must be the
// lowest the quorum monitor saw.
func TestPlanMatchesReplacement(t *testing.T) {
	ctx := t.Context()
	c := newCluster(t, "abc")
	o := e2e.ControllerOptions(c)
	var mu sync.Mutex
	var acted []string
	rc, err := e2e.StartControllerWith(ctx, c, o, func(a *app.Controller) error {
		a.Reconciler.BeforeAct = func(_ context.Context, act quorum.Action) {
			mu.Lock()
			defer mu.Unlock()
			acted = append(acted, fmt.Sprintf("%s %s", act.Kind, act.Machine))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Stop() })
	waitHooks(t, c, "cluster-master-0", "cluster-master-1", "cluster-master-2")
	t.Cleanup(func() { _ = e2e.DeleteCPMS(context.Background(), c) })
	startMachines(t, c, nil)
	createCPMS(t, c, e2e.CPMSInput{Zones: "abc"})
	settle(t, c)

	// The leader's Machine, so that the plan has every kind of step, a leadership move too.
	victim := leaderMachine(t, c, o)
	res := planFor(t, c, o, victim)
	var steps []string
	for i, st := range res.Steps {
		steps = append(steps, fmt.Sprintf("%d %s %s %s %s (tolerance %d)", i+1, st.Actor, st.Kind, st.Machine, st.Member, st.FaultTolerance))
	}
	t.Logf("plan for deleting %s:\n  %s", victim, strings.Join(steps, "\n  "))
	if res.Stalls() {
		t.Fatalf("the plan stalls: %s", res.Stall)
	}
	var planned []string
	var created plan.Step
	for _, st := range res.Steps {
		switch {
		case st.Kind == plan.KindCreateMachine:
			created = st
		case st.Actor == plan.ActorController && st.Kind != plan.KindAddHook:
			planned = append(planned, st.Kind+" "+st.Machine)
		}
	}
	if created.Machine == "" {
		t.Fatalf("the plan creates no replacement")
	}

	mu.Lock()
	acted = nil
	mu.Unlock()
	g, err := e2e.StartGuards(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMachine(ctx, victim); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitGone(ctx, c, 3*time.Minute, victim); err != nil {
		t.Fatal(err)
	}
	var layout []e2e.Placed
	if err := framework.WaitFor(ctx, time.Minute, "three voting Machines, one per zone", func() (bool, error) {
		layout, err = e2e.Layout(ctx, c)
		return err == nil && e2e.Settled(layout, "abc", ""), err
	}); err != nil {
		t.Fatalf("%v (layout %s)", err, e2e.LayoutString(layout))
	}
	_, mon, err := g.Check(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}

	// The replacement: the Machine at the victim's index that was not there before.
	idx, _ := failuredomain.IndexOf(victim)
	var replacement e2e.Placed
	for _, p := range layout {
		if p.Index == idx {
			replacement = p
		}
	}
	if replacement.Zone != created.Domain {
		t.Errorf("the replacement %s is in %s; the plan put it in %s", replacement.Name, replacement.Zone, created.Domain)
	}
	mu.Lock()
	got := collapse(acted)
	mu.Unlock()
	for i := range got {
		got[i] = strings.Replace(got[i], " "+replacement.Name, " "+created.Machine, 1)
	}
	t.Logf("the controller's actions (repeats of one attempt collapsed): %s", strings.Join(got, ", "))
	if !slices.Equal(got, planned) {
		t.Errorf("the controller acted:\n  %s\nthe plan said:\n  %s", strings.Join(got, "\n  "), strings.Join(planned, "\n  "))
	}
	// The plan's tolerance is the planner's between steps; the monitor samples during them
	// too (a member busy with a leadership move or just promoted can miss a probe), so only
	// quorum is held to.
	if mon.MinTolerance < 0 {
		t.Errorf("the monitor saw quorum lost: %s", mon)
	}
	t.Logf("monitor: %s; plan's lowest fault tolerance %d", mon, res.Lowest)
}

// leaderMachine is the Machine the planner places the etcd leader on.
func leaderMachine(t *testing.T, c *framework.Cluster, o app.Options) string {
	t.Helper()
	p := dryRun(t, c, o)
	for _, m := range p.Decision.Members {
		if m.Leader && m.Machine != "" {
			return m.Machine
		}
	}
	t.Fatalf("no leader placed on a Machine: %+v", p.Decision.Members)
	return ""
}

// planFor plays `quorumguard plan --delete victim` on the cluster, as runPlan does.
func planFor(t *testing.T, c *framework.Cluster, o app.Options, victim string) plan.Result {
	t.Helper()
	in, err := plan.FromPass(dryRun(t, c, o), []string{victim}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// dryRun is one pass of the controller that acts on nothing, as `quorumguard plan` reads.
func dryRun(t *testing.T, c *framework.Cluster, o app.Options) *controlplane.Pass {
	t.Helper()
	cl, err := client.New(c.CP.Config, client.Options{Scheme: app.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	view, err := app.NewEtcdView(o, cl)
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	p, err := controlplane.DryRun(t.Context(), controlplane.Source{Reader: cl, Etcd: view, Namespace: o.Namespace, Hook: o.Hook, DefaultReplicas: o.DefaultReplicas})
	if err != nil {
		t.Fatal(err)
	}
	if p.EtcdErr != nil {
		t.Fatal(p.EtcdErr)
	}
	return p
}

// collapse drops an action that repeats the one before it: a promotion etcd refused until
// the learner was in sync, or a step whose pass failed, is tried again, and that is the
// same step of the plan.
func collapse(acts []string) []string {
	var out []string
	for _, a := range acts {
		if len(out) == 0 || out[len(out)-1] != a {
			out = append(out, a)
		}
	}
	return out
}
