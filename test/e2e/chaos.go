package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/test/framework"
)

// ChaosInput describes one seeded chaos scenario on a running cluster and controller.
type ChaosInput struct {
	Seed    uint64
	Cluster *framework.Cluster
	// Restart stops the running controller and starts a new one; the scenario calls it for
	// "controller crash" events.
	Restart func(ctx context.Context) error
	Events  int
	// Settle bounds how long, after the last fault clears, every deleting Machine may take to
	// disappear and every voting member to be healthy.
	Settle time.Duration
}

// ChaosResult is one scenario's outcome.
type ChaosResult struct {
	Seed     uint64
	Events   []string
	Timeline []string
	Writer   framework.WriterReport
	Monitor  framework.MonitorReport
	Took     time.Duration
	Err      error
}

// The kinds of event a scenario draws from.
var chaosEvents = []string{"delete-one", "delete-two", "kill-then-delete", "freeze", "partition", "controller-crash", "delete-during-restart"}

// ChaosSpec plays Events random events drawn from Seed, one after another, each waiting for
// the cluster to settle, while checking continuously that quorum never falls (faults here take
// out at most one member at a time, so quorum must hold throughout), no acknowledged write is
// lost, no more than replicas+1 live Machines exist, and no two membership changes overlap;
// and at the end that every deleting Machine is gone and no hook is stuck.
func ChaosSpec(ctx context.Context, in ChaosInput) ChaosResult {
	res := ChaosResult{Seed: in.Seed}
	rng := rand.New(rand.NewPCG(in.Seed, in.Seed^0x9e3779b97f4a7c15))
	c := in.Cluster
	if in.Settle == 0 {
		in.Settle = 2 * time.Minute
	}
	var mu sync.Mutex
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		res.Timeline = append(res.Timeline, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
	start := time.Now()
	g, err := StartGuards(ctx, c)
	if err != nil {
		res.Err = err
		return res
	}
	machinesCtx, stopMachines := context.WithCancel(ctx)
	maxLive := 0
	go func() {
		for machinesCtx.Err() == nil {
			if live := len(liveMasters(machinesCtx, c)); live > maxLive {
				mu.Lock()
				maxLive = live
				mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	next := 0
	fail := func(err error) ChaosResult {
		stopMachines()
		res.Writer, res.Monitor, _ = g.Check(ctx, 0)
		res.Err, res.Took = err, time.Since(start)
		return res
	}
	for i := 0; i < in.Events; i++ {
		ev := chaosEvents[rng.IntN(len(chaosEvents))]
		res.Events = append(res.Events, ev)
		live := liveMasters(ctx, c)
		if len(live) == 0 {
			return fail(fmt.Errorf("no live masters"))
		}
		pick := func() string { return live[rng.IntN(len(live))] }
		replaceOne := func(old string) error {
			name := fmt.Sprintf("chaos-%d-%d", in.Seed%1000, next)
			next++
			logf("delete %s, create %s", old, name)
			if err := c.DeleteMachine(ctx, old); err != nil {
				return err
			}
			return CreateReplacement(ctx, c, name)
		}
		var err error
		switch ev {
		case "delete-one":
			err = replaceOne(pick())
		case "delete-two":
			a := pick()
			b := pick()
			for b == a && len(live) > 1 {
				b = pick()
			}
			if err = replaceOne(a); err == nil && b != a {
				err = replaceOne(b)
			}
		case "kill-then-delete":
			victim := pick()
			if m := c.Agent.Member(victim); m != nil {
				logf("kill etcd of %s", victim)
				m.Kill()
			}
			time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
			err = replaceOne(victim)
		case "freeze", "partition":
			victim := pick()
			m := c.Agent.Member(victim)
			if m == nil {
				continue
			}
			d := time.Duration(1000+rng.IntN(3000)) * time.Millisecond
			logf("%s etcd of %s for %s", ev, victim, d)
			if ev == "freeze" {
				m.Freeze()
				time.Sleep(d)
				m.Thaw()
			} else {
				m.Partition()
				time.Sleep(d)
				m.Heal()
			}
			logf("%s of %s cleared", ev, victim)
		case "controller-crash":
			logf("controller crash and restart")
			err = in.Restart(ctx)
		case "delete-during-restart":
			if err = replaceOne(pick()); err == nil {
				time.Sleep(time.Duration(rng.IntN(2000)) * time.Millisecond)
				logf("controller crash and restart mid-replacement")
				err = in.Restart(ctx)
			}
		}
		if err != nil {
			return fail(fmt.Errorf("event %s: %w", ev, err))
		}
		if err := waitSettled(ctx, c, in.Settle); err != nil {
			logf("not settled: %v", err)
			return fail(fmt.Errorf("after %s: %w", ev, err))
		}
		logf("settled after %s", ev)
	}
	stopMachines()
	res.Took = time.Since(start)
	res.Writer, res.Monitor, err = g.Check(ctx, 2)
	var problems []string
	if err != nil {
		problems = append(problems, err.Error())
	}
	if res.Monitor.MaxLearners > 1 {
		problems = append(problems, fmt.Sprintf("%d learners at once: two membership changes overlapped", res.Monitor.MaxLearners))
	}
	if maxLive > 4 {
		problems = append(problems, fmt.Sprintf("%d live control-plane Machines at once (replicas+1 is 4)", maxLive))
	}
	if len(problems) > 0 {
		res.Err = fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return res
}

// waitSettled waits until no control-plane Machine is deleting, there are three voting
// members, all healthy, and no learner.
func waitSettled(ctx context.Context, c *framework.Cluster, timeout time.Duration) error {
	return framework.WaitFor(ctx, timeout, "deleting Machines gone and three healthy voting members", func() (bool, error) {
		var list machinev1beta1.MachineList
		if err := c.Client.List(ctx, &list, client.InNamespace(framework.MachineNamespace), client.MatchingLabels{framework.RoleLabel: "master"}); err != nil {
			return false, err
		}
		for _, m := range list.Items {
			if m.DeletionTimestamp != nil {
				return false, nil
			}
		}
		names, err := VotingMembers(ctx, c)
		if err != nil || len(names) != 3 {
			return false, err
		}
		for _, n := range names {
			m := c.Agent.Member(n)
			if n == "" || m == nil || !m.Running() {
				return false, nil
			}
		}
		return true, nil
	})
}

func liveMasters(ctx context.Context, c *framework.Cluster) []string {
	var list machinev1beta1.MachineList
	if err := c.Client.List(ctx, &list, client.InNamespace(framework.MachineNamespace), client.MatchingLabels{framework.RoleLabel: "master"}); err != nil {
		return nil
	}
	var out []string
	for _, m := range list.Items {
		if m.DeletionTimestamp == nil {
			out = append(out, m.Name)
		}
	}
	return out
}

// RestartableController keeps one controller running and replaces it on Restart.
type RestartableController struct {
	c    *framework.Cluster
	o    app.Options
	mu   sync.Mutex
	curr *Controller
}

// NewRestartableController starts a controller that Restart can crash and start again.
func NewRestartableController(ctx context.Context, c *framework.Cluster, o app.Options) (*RestartableController, error) {
	rc, err := StartController(ctx, c, o)
	if err != nil {
		return nil, err
	}
	return &RestartableController{c: c, o: o, curr: rc}, nil
}

// Restart stops the current controller without any hand-over and starts a new one.
func (r *RestartableController) Restart(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.curr.Stop(); err != nil {
		return err
	}
	next, err := StartController(ctx, r.c, r.o)
	if err != nil {
		return err
	}
	r.curr = next
	return nil
}

// Stop stops the current controller.
func (r *RestartableController) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.curr.Stop()
}
