package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/machines"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// withMachineController starts the quorum controller with o (adjusted by adjust, which may be
// nil), waits for the hooks, then starts the Machine controller and an Active
// ControlPlaneMachineSet over zones a and b, and waits until it reports every replica
// updated. Both controllers and the set go at the end of the test.
func withMachineController(t *testing.T, c *framework.Cluster, o app.Options, adjust func(*app.Controller) error) {
	t.Helper()
	ctx := t.Context()
	rc, err := e2e.StartControllerWith(ctx, c, o, adjust)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Stop() })
	waitHooks(t, c, "cluster-master-0", "cluster-master-1", "cluster-master-2")
	t.Cleanup(func() { _ = e2e.DeleteCPMS(context.Background(), c) })
	startMachines(t, c, nil)
	createCPMS(t, c, e2e.CPMSInput{Zones: "ab"})
	if _, err := e2e.WaitCPMSCondition(ctx, c, 60*time.Second, "Progressing", metav1.ConditionFalse, machines.ReasonAllReplicasUpdated); err != nil {
		t.Fatal(err)
	}
}

// attempts records when the controller set out to take each kind of action (after taking
// its token, before the etcd fence every action passes).
type attempts struct {
	mu sync.Mutex
	at map[quorum.Kind][]time.Time
}

func (a *attempts) record(_ context.Context, act quorum.Action) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.at[act.Kind] = append(a.at[act.Kind], time.Now())
}

func (a *attempts) between(k quorum.Kind, from, to time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, t := range a.at[k] {
		if !t.Before(from) && !t.After(to) {
			n++
		}
	}
	return n
}

// TestAPIServerOutageDuringReplacement: the apiserver goes away once the replacement's
// learner is added and stays away for 20 s. The hook release that cannot be written is
// tried again with a backoff, not on every pass (each attempt passes the etcd fence, a write
// to etcd), and once the apiserver is back the replacement completes and every status
// quorumguard writes is recomputed: the Machines' conditions and the ControlPlaneMachineSet
// no longer speak of the Machine that is gone.
func TestAPIServerOutageDuringReplacement(t *testing.T) {
	ctx := t.Context()
	c := zonedCluster(t, "aba")
	tried := &attempts{at: map[quorum.Kind][]time.Time{}}
	withMachineController(t, c, e2e.ControllerOptions(c), func(a *app.Controller) error {
		a.Reconciler.BeforeAct = tried.record
		return nil
	})

	if err := c.DeleteMachine(ctx, "cluster-master-0"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitFor(ctx, 2*time.Minute, "the replacement's learner", func() (bool, error) {
		n, err := e2e.Learners(ctx, c)
		return err == nil && n > 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	const down = 20 * time.Second
	from := time.Now()
	if err := c.CP.RestartAPIServer(down); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	t.Logf("kube-apiserver away from %s to %s", from.Format(time.StampMilli), back.Format(time.StampMilli))

	if err := e2e.WaitGone(ctx, c, 3*time.Minute, "cluster-master-0"); err != nil {
		t.Fatal(err)
	}
	gone := time.Now()
	releases := tried.between(quorum.ReleaseHook, from, back)
	t.Logf("hook release attempts while the apiserver was away: %d; the Machine was gone %s after it came back", releases, gone.Sub(back).Round(time.Millisecond))
	// Every 100 ms (the poll interval) would be about 150 in the 15 s or more the release
	// waits; the backoff doubles from 200 ms up to 30 s: 7 in 20 s.
	if releases > 10 {
		t.Errorf("%d hook release attempts (each an etcd fence write) while the apiserver was away for %s; want them backed off", releases, down)
	}

	var why string
	notCurrent := func() string {
		layout, err := e2e.Layout(ctx, c)
		if err != nil {
			return err.Error()
		}
		var voting []string
		for _, p := range layout {
			if p.Voting {
				voting = append(voting, p.Name)
			}
		}
		if len(layout) != 3 || len(voting) != 3 {
			return fmt.Sprintf("%s, voting %v", e2e.LayoutString(layout), voting)
		}
		cpms, err := e2e.GetCPMS(ctx, c)
		if err != nil {
			return err.Error()
		}
		for _, cond := range cpms.Status.Conditions {
			if strings.Contains(cond.Message, "cluster-master-0") {
				return fmt.Sprintf("ControlPlaneMachineSet %s=%s: %s", cond.Type, cond.Status, cond.Message)
			}
		}
		if p := meta.FindStatusCondition(cpms.Status.Conditions, "Progressing"); p == nil || p.Status != metav1.ConditionFalse || cpms.Status.ReadyReplicas != 3 {
			return fmt.Sprintf("ControlPlaneMachineSet status %+v", cpms.Status)
		}
		return ""
	}
	// The Machine controller's cache may take up to client-go's watch backoff (30 s) to see
	// the deletion; the status must not wait for it. 20 s from the deletion is well inside
	// that and far more than a few passes.
	err := framework.WaitFor(ctx, 20*time.Second, "conditions and the ControlPlaneMachineSet recomputed", func() (bool, error) {
		if now := notCurrent(); now != why {
			why = now
			t.Logf("%s after the apiserver came back: %s", time.Since(back).Round(time.Millisecond), why)
		}
		return why == "", nil
	})
	if err != nil {
		t.Fatalf("%v: %s", err, why)
	}
	t.Logf("statuses current %s after the apiserver came back", time.Since(back).Round(time.Millisecond))
}
