package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/plan"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// TestPlanCommand runs `quorumguard plan` (runPlan) against a real apiserver and real TLS
// etcd members, with the controller running: the deletion of one master, a failure-domain
// change, a minimum tolerance the plan cannot keep, and, with no ControlPlaneMachineSet, a
// deletion that stalls. Nothing is changed by it.
func TestPlanCommand(t *testing.T) {
	ctx := t.Context()
	c, err := framework.StartCluster(ctx, controlPlane(t), framework.ClusterOptions{Dir: t.TempDir(), ProvisionDelay: 100 * time.Millisecond,
		ProviderSpec: func(i int) *runtime.RawExtension { return e2e.ZoneSpec("abc"[i]) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	cpms := e2e.NewCPMS(c, e2e.CPMSInput{Zones: "abc"})
	if err := c.Client.Create(ctx, cpms); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e2e.DeleteCPMS(context.Background(), c) })
	o := e2e.ControllerOptions(c)
	stop := startController(t, c, o)
	defer stop()
	waitFor(t, "hooks and Voting conditions", func() bool {
		for _, n := range []string{"cluster-master-0", "cluster-master-1", "cluster-master-2"} {
			m, err := c.Machine(ctx, n)
			if err != nil || !hooks.Has(m, hooks.Default) || reason(m) != quorum.ReasonVoting {
				return false
			}
		}
		return true
	})
	run := func(r planRequest) (string, int) {
		t.Helper()
		var out bytes.Buffer
		err := runPlan(ctx, c.CP.Config, o, r, &out)
		var ee *exitError
		switch {
		case err == nil:
			return out.String(), 0
		case errors.As(err, &ee):
			return out.String(), ee.code
		default:
			t.Fatalf("plan %+v: %v", r, err)
			return "", exitFailed
		}
	}

	// One master deleted: replaced in its own zone, the tolerance never below 1.
	table, code := run(planRequest{Delete: []string{"cluster-master-1"}, MinTolerance: defaultMinTolerance})
	t.Logf("quorumguard plan --delete cluster-master-1:\n%s", table)
	if code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	mustContain(t, table, "PLAN: delete cluster-master-1 (desired voting members: 3; fault tolerance now: 1)",
		"LOWEST FAULT TOLERANCE: 1 (minimum allowed: 0)", "SETTLED after")
	mustMatchLine(t, table, "1 ", "you", plan.KindDeleteMachine, "cluster-master-1")
	mustMatchLine(t, table, "2 ", "ControlPlaneMachineSet", plan.KindCreateMachine, "cluster-master-new-1", "in us-east-1b")
	for _, k := range []quorum.Kind{quorum.AddLearner, quorum.Promote} {
		mustMatchLine(t, table, "", "controller", string(k), "cluster-master-new-1")
	}
	for _, k := range []quorum.Kind{quorum.RemoveMember, quorum.ReleaseHook} {
		mustMatchLine(t, table, "", "controller", string(k), "cluster-master-1 ")
	}
	mustMatchLine(t, table, "", "machine-api", plan.KindMachineGone, "cluster-master-1")

	// The same as JSON.
	js, code := run(planRequest{Delete: []string{"cluster-master-1"}, MinTolerance: defaultMinTolerance, JSON: true})
	var rep planReport
	if err := json.Unmarshal([]byte(js), &rep); err != nil || code != 0 {
		t.Fatalf("JSON (exit %d): %v\n%s", code, err, js)
	}
	if rep.Desired != 3 || rep.MinTolerance != 0 || rep.Lowest != 1 || rep.Stall != "" || len(rep.Steps) < 10 || rep.Steps[1].Domain != "us-east-1b" {
		t.Errorf("JSON report %+v", rep)
	}

	// Zone c dropped: index 2 moves to the least-used zone, a, rolling one Machine.
	table, code = run(planRequest{Domains: []string{"us-east-1a", "us-east-1b"}, MinTolerance: defaultMinTolerance})
	t.Logf("quorumguard plan --domains us-east-1a,us-east-1b:\n%s", table)
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	mustMatchLine(t, table, "1 ", "ControlPlaneMachineSet", plan.KindCreateMachine, "cluster-master-new-2", "in us-east-1a")
	mustMatchLine(t, table, "", "ControlPlaneMachineSet", plan.KindDeleteMachine, "cluster-master-2")
	if strings.Count(table, plan.KindCreateMachine) != 1 {
		t.Errorf("more than one Machine created for one move")
	}

	// A minimum the plan cannot keep: exit 3.
	if table, code = run(planRequest{Delete: []string{"cluster-master-1"}, MinTolerance: 2}); code != exitNoMargin {
		t.Errorf("--min-tolerance 2 exited %d, want %d:\n%s", code, exitNoMargin, table)
	}
	// An unknown Machine is refused.
	if err := runPlan(ctx, c.CP.Config, o, planRequest{Delete: []string{"cluster-master-9"}}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "cluster-master-9") {
		t.Errorf("plan of an unknown Machine = %v", err)
	}

	// No ControlPlaneMachineSet: nothing creates a replacement, the plan stalls, exit 4.
	if err := e2e.DeleteCPMS(ctx, c); err != nil {
		t.Fatal(err)
	}
	table, code = run(planRequest{Delete: []string{"cluster-master-0"}, MinTolerance: defaultMinTolerance})
	t.Logf("quorumguard plan --delete cluster-master-0 without a ControlPlaneMachineSet:\n%s", table)
	if code != exitPlanStalls {
		t.Errorf("exit %d, want %d", code, exitPlanStalls)
	}
	mustContain(t, table, "STALLS: Machine cluster-master-0 waits (WaitingForReplacement)", "nothing creates a replacement")
	if err := runPlan(ctx, c.CP.Config, o, planRequest{Domains: []string{"us-east-1a"}}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--domains needs an Active ControlPlaneMachineSet") {
		t.Errorf("--domains without a ControlPlaneMachineSet = %v, want a refusal", err)
	}

	// The command changed nothing.
	for _, n := range []string{"cluster-master-0", "cluster-master-1", "cluster-master-2"} {
		if m, err := c.Machine(ctx, n); err != nil || m.DeletionTimestamp != nil || !hooks.Has(m, hooks.Default) {
			t.Errorf("Machine %s changed (%v)", n, err)
		}
	}
}
