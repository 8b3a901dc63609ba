package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/inspect"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
)

// TestStatusPredictsEveryStep: at every action the controller takes during a replacement
// (each learner addition, promotion attempt, leadership move, removal and hook release), it
// is held just before acting, and `quorumguard status` (inspect.Cluster, what the command prints)
// is asked on the same cluster: its NEXT STEP must be that very action. And on every pass
// that waits for etcd's health window (with more than a second of it left), status must say
// nothing is to be done. What is compared is what the controller recorded it was about to
// do, not a sampled state.
func TestStatusPredictsEveryStep(t *testing.T) {
	ctx := t.Context()
	c := newCluster(t, "")
	o := e2e.ControllerOptions(c)
	var mu sync.Mutex
	var steps, wrong []string
	rc, err := e2e.StartControllerWith(ctx, c, o, func(a *app.Controller) error {
		a.Reconciler.BeforeAct = func(ctx context.Context, act quorum.Action) {
			want := operatorstatus.Step(act)
			rep, err := inspect.Cluster(ctx, c.CP.Config, o)
			mu.Lock()
			defer mu.Unlock()
			steps = append(steps, string(act.Kind))
			switch {
			case err != nil:
				wrong = append(wrong, fmt.Sprintf("controller about to %q; status failed: %v", want, err))
			case rep.Next.Action != string(act.Kind) || rep.Next.Machine != act.Machine || rep.Next.Step != want:
				wrong = append(wrong, fmt.Sprintf("controller about to %q (%s on %s); status's NEXT STEP %q (%s on %s, because %s)",
					want, act.Kind, act.Machine, rep.Next.Step, rep.Next.Action, rep.Next.Machine, rep.Next.Reason))
			}
		}
		// A pass that waits for etcd's health window, with more than a second of it left:
		// status must wait too.
		prev := a.Reconciler.Observer
		a.Reconciler.Observer = func(obs controlplane.Observation) {
			if prev != nil {
				prev(obs)
			}
			act := obs.Decision.Action
			if act.Kind != quorum.None || act.Until.IsZero() || time.Until(act.Until) < time.Second {
				return
			}
			rep, err := inspect.Cluster(ctx, c.CP.Config, o)
			mu.Lock()
			defer mu.Unlock()
			steps = append(steps, "Wait")
			switch {
			case err != nil:
				wrong = append(wrong, fmt.Sprintf("controller waiting (%s); status failed: %v", act.Reason, err))
			case rep.Next.Action != string(quorum.None):
				wrong = append(wrong, fmt.Sprintf("controller waiting (%s); status's NEXT STEP %q (%s on %s)", act.Reason, rep.Next.Step, rep.Next.Action, rep.Next.Machine))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Stop() })
	waitHooks(t, c, "cluster-master-0", "cluster-master-1", "cluster-master-2")
	replace(t, e2e.ReplaceInput{Cluster: c, Delete: []string{"cluster-master-0"}, Replacements: []string{"cluster-new-0"}, MinVoters: 3})

	mu.Lock()
	defer mu.Unlock()
	t.Logf("actions compared: %s", strings.Join(steps, ", "))
	for _, w := range wrong {
		t.Error(w)
	}
	for _, k := range []string{string(quorum.AddLearner), string(quorum.Promote), "Wait", string(quorum.RemoveMember), string(quorum.ReleaseHook)} {
		if !slices.Contains(steps, k) {
			t.Errorf("the controller never took a %s step, so it was never compared", k)
		}
	}
}
