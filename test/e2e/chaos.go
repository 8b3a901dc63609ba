package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/machines"
	"github.com/quorumguard/quorumguard/test/framework"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// ChaosInput describes one seeded chaos scenario on a running cluster whose
// ControlPlaneMachineSet (zones Zones, RollingUpdate) is kept by Replicas: quorumguard
// replicas with leader election and the Machine controller on.
type ChaosInput struct {
	Seed     uint64
	Cluster  *framework.Cluster
	Replicas *Replicas
	// Zones are the ControlPlaneMachineSet's failure domains by letter when the scenario starts.
	Zones  string
	Events int
	// Only, when set, limits the events drawn to these kinds.
	Only []string
	// Settle bounds how long, after an event's faults clear, the cluster may take to be
	// whole again: no deleting Machine, three Machines balanced over the listed domains,
	// each with its hook, three healthy voting members and no learner.
	Settle time.Duration
	// DuringLoss, a test-only seam, runs while a quorum-loss event has quorum away, as a
	// broken controller acting then would: it shows that the check sees such an act.
	DuringLoss func(context.Context) error
}

// ChaosResult is one scenario's outcome.
type ChaosResult struct {
	Seed     uint64
	Events   []string
	Timeline []string
	Writer   framework.WriterReport
	Monitor  framework.MonitorReport
	// Linearizability is the check of the concurrent clients' history.
	Linearizability framework.LinearizabilityReport
	// MaxMachines is the most control-plane Machines, deleting ones included, seen at once.
	MaxMachines int
	// Windows are the spans in which the scenario took quorum away on purpose, and
	// ExplainedLoss the monitor's samples below quorum they explain.
	Windows       []LossWindow
	ExplainedLoss int
	// Releases are the moments a Machine was seen to lose its hook.
	Releases []HookRelease
	// Renewals counts the renewals of quorumguard's etcd client certificate during the
	// scenario (set by whoever runs it with a rotating certificate).
	Renewals int
	Took     time.Duration
	Err      error
}

// ChaosEvents are the kinds of event a scenario draws from.
var ChaosEvents = []string{
	"delete-one", "delete-two", "kill-then-delete", "freeze", "partition",
	"controller-crash", "delete-during-crash", "paused-leader", "apiserver-restart", "domain-change",
	"quorum-loss", "slow-links", "wipe-data", "leader-node-notready", "disk-stall",
}

// chaosZoneSets are the failure-domain lists a domain-change event picks from.
var chaosZoneSets = []string{"ab", "abc", "ac", "bc", "abcd"}

// ChaosSpec plays Events random events drawn from Seed, one after another, each followed by
// a wait for the cluster to settle, while checking throughout that quorum never falls except
// where an event takes it on purpose (every other fault takes out at most one member, so
// quorum must hold), no acknowledged write is lost, the clients' history is linearizable,
// never more than replicas+1 control-plane Machines exist, and no two membership changes
// overlap; a paused leader must step down on resuming without acting. The quorum-loss event
// freezes two voting members at once in the middle of a replacement: while they are frozen
// no replica may act and no hook may be released, and everything completes once they thaw.
func ChaosSpec(ctx context.Context, in ChaosInput) ChaosResult {
	res := ChaosResult{Seed: in.Seed}
	rng := rand.New(rand.NewPCG(in.Seed, in.Seed^0x9e3779b97f4a7c15))
	c := in.Cluster
	if in.Settle == 0 {
		in.Settle = 3 * time.Minute
	}
	var mu sync.Mutex // guards the timeline
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
	watch := WatchMachines(ctx, c)
	finish := func(err error) ChaosResult {
		wr := watch.Stop()
		res.MaxMachines, res.Releases = wr.MaxMachines, wr.Releases
		res.Took = time.Since(start)
		var check error
		res.Writer, res.Monitor, check = g.Check(ctx, 2)
		res.Linearizability = g.Linearizability
		res.Windows, res.ExplainedLoss = g.Windows(), g.ExplainedLoss
		var problems []string
		if err != nil {
			problems = append(problems, err.Error())
		}
		if check != nil {
			problems = append(problems, check.Error())
		}
		// etcd itself refuses a second learner; a second replacement begun before the first
		// one's old member is gone shows as a fifth member instead.
		if res.Monitor.MaxMembers > 4 {
			problems = append(problems, fmt.Sprintf("%d etcd members at once (replicas+1 is 4): two replacements overlapped", res.Monitor.MaxMembers))
		}
		if res.MaxMachines > 4 {
			problems = append(problems, fmt.Sprintf("%d control-plane Machines at once (replicas+1 is 4)", res.MaxMachines))
		}
		if quiet := Quiet(res.Windows, in.Replicas.Actions(), res.Releases, QuietMargin); len(quiet) > 0 {
			problems = append(problems, strings.Join(quiet, "; "))
		}
		if len(problems) > 0 {
			res.Err = fmt.Errorf("%s", strings.Join(problems, "; "))
		}
		return res
	}
	zones := in.Zones
	kinds := ChaosEvents
	if len(in.Only) > 0 {
		kinds = in.Only
	}
	for range in.Events {
		ev := kinds[rng.IntN(len(kinds))]
		res.Events = append(res.Events, ev)
		live := liveMasters(ctx, c)
		if len(live) == 0 {
			return finish(fmt.Errorf("no live masters"))
		}
		pick := func() string { return live[rng.IntN(len(live))] }
		del := func(names ...string) error {
			logf("delete %s", strings.Join(names, ", "))
			for _, n := range names {
				if err := c.DeleteMachine(ctx, n); err != nil {
					return err
				}
			}
			return nil
		}
		var err error
		switch ev {
		case "delete-one":
			err = del(pick())
		case "delete-two":
			a, b := pick(), pick()
			for b == a && len(live) > 1 {
				b = pick()
			}
			err = del(a, b)
		case "kill-then-delete":
			victim := pick()
			if m := c.Agent.Member(victim); m != nil {
				logf("kill etcd of %s", victim)
				m.Kill()
			}
			time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
			err = del(victim)
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
			logf("leader replica (token %d) crashes; its Pod is replaced", in.Replicas.Token())
			err = in.Replicas.CrashLeader(ctx)
		case "delete-during-crash":
			if err = del(pick()); err == nil {
				time.Sleep(time.Duration(rng.IntN(2000)) * time.Millisecond)
				logf("leader replica (token %d) crashes mid-replacement", in.Replicas.Token())
				err = in.Replicas.CrashLeader(ctx)
			}
		case "paused-leader":
			err = PausedLeader(ctx, in.Replicas, logf, func() error { return del(pick()) })
		case "apiserver-restart":
			if err = del(pick()); err == nil {
				time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
				d := time.Duration(1000+rng.IntN(2000)) * time.Millisecond
				logf("kube-apiserver restarts, down for %s", d)
				err = c.CP.RestartAPIServer(d)
				logf("kube-apiserver back")
			}
		case "quorum-loss":
			if err = del(pick()); err != nil {
				break
			}
			time.Sleep(time.Duration(rng.IntN(2000)) * time.Millisecond)
			var voters []string
			if voters, err = runningVoters(ctx, c); err != nil {
				break
			}
			if len(voters) < 2 {
				logf("fewer than two running voting members (%v): nothing to freeze", voters)
				break
			}
			rng.Shuffle(len(voters), func(i, j int) { voters[i], voters[j] = voters[j], voters[i] })
			a, b := c.Agent.Member(voters[0]), c.Agent.Member(voters[1])
			d := time.Duration(3000+rng.IntN(3000)) * time.Millisecond
			why := fmt.Sprintf("etcd of %s and %s frozen together", voters[0], voters[1])
			from := time.Now()
			a.Freeze()
			b.Freeze()
			logf("%s for %s: quorum is gone", why, d)
			time.Sleep(d / 2)
			if in.DuringLoss != nil {
				if err := in.DuringLoss(ctx); err != nil {
					logf("the injected act failed: %v", err)
				}
			}
			time.Sleep(time.Until(from.Add(d)))
			a.Thaw()
			b.Thaw()
			to := time.Now()
			g.ExpectLoss(from, to, why)
			logf("%s and %s thawed", voters[0], voters[1])
		case "slow-links":
			// One member's peer links slow and lossy while a replacement runs: quorum must hold.
			var voters []string
			if voters, err = runningVoters(ctx, c); err != nil || len(voters) == 0 {
				break
			}
			victim := voters[rng.IntN(len(voters))]
			m := c.Agent.Member(victim)
			f := etcdnet.LinkFault{Latency: time.Duration(50+rng.IntN(200)) * time.Millisecond, Loss: float64(rng.IntN(21)) / 100}
			d := time.Duration(4000+rng.IntN(6000)) * time.Millisecond
			logf("peer links of %s get %s for %s", victim, f, d)
			m.Degrade(f)
			if err = del(pick()); err == nil {
				time.Sleep(d)
			}
			m.Restore()
			logf("peer links of %s restored", victim)
		case "disk-stall":
			// A voting member's disk stops completing fsync for 3–8 s while a replacement
			// runs: it keeps its connections and answers Status, but takes no part in raft.
			// Quorum must hold, and the member must not count as healthy meanwhile (the
			// monitor's own read through it fails; quorumguard's probe is the same kind).
			var voters []string
			if voters, err = runningVoters(ctx, c); err != nil || len(voters) == 0 {
				break
			}
			victim := voters[rng.IntN(len(voters))]
			m := c.Agent.Member(victim)
			d := time.Duration(3000+rng.IntN(5000)) * time.Millisecond
			logf("disk of %s stalls for %s", victim, d)
			m.StallDisk()
			if err = del(pick()); err == nil {
				time.Sleep(d)
			}
			m.Resume()
			logf("disk of %s resumed", victim)
		case "wipe-data":
			// A node comes back with an empty data dir. Its join must not start the old member
			// from nothing; the Machine is then remediated (deleted) as a MachineHealthCheck
			// would, and quorumguard replaces it.
			victim := pick()
			if c.Agent.Member(victim) == nil {
				continue
			}
			var logPath string
			if logPath, err = c.Agent.Wipe(victim); err != nil {
				break
			}
			logf("etcd of %s restarted with an empty data dir", victim)
			time.Sleep(time.Duration(2000+rng.IntN(2000)) * time.Millisecond)
			if c.Agent.Member(victim) != nil {
				err = fmt.Errorf("the node of %s started etcd from an empty data dir without being added afresh", victim)
				break
			}
			if said, _ := os.ReadFile(logPath); !strings.Contains(string(said), "this node is added afresh") {
				err = fmt.Errorf("the join on %s did not say it waits for a fresh add; it said: %q", victim, said)
				break
			}
			err = del(victim)
		case "leader-node-notready":
			// The leader's Node goes NotReady mid-replacement, the leader with it; under
			// leader-for-life the standby must see the Node and take over.
			if err = del(pick()); err != nil {
				break
			}
			time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
			logf("the leader replica's Node goes NotReady (token %d)", in.Replicas.Token())
			var old, tok uint64
			old, tok, err = in.Replicas.LoseLeaderNode(ctx, time.Minute)
			if err == nil {
				logf("the standby took over from token %d with token %d", old, tok)
			}
		case "domain-change":
			next := zones
			for next == zones {
				next = chaosZoneSets[rng.IntN(len(chaosZoneSets))]
			}
			logf("failure domains %s -> %s", zones, next)
			zones = next
			err = UpdateCPMS(ctx, c, func(cpms *machinev1.ControlPlaneMachineSet) { SetZones(cpms, next) })
		default:
			err = fmt.Errorf("unknown chaos event %q (known: %s)", ev, strings.Join(ChaosEvents, ", "))
		}
		if err != nil {
			return finish(fmt.Errorf("event %s: %w", ev, err))
		}
		if err := waitSettled(ctx, c, zones, in.Settle); err != nil {
			logf("not settled: %v", err)
			return finish(fmt.Errorf("after %s: %w", ev, err))
		}
		logf("settled after %s", ev)
	}
	return finish(nil)
}

// PausedLeader holds the leader at its next action, makes it act (trigger, a Machine
// deletion), lets the standby take over once the paused leader's Pod is deleted, stops the
// standby, then resumes the old leader, which must step down having changed nothing
// (FencePaused compares footprints and Events).
func PausedLeader(ctx context.Context, rs *Replicas, logf func(string, ...any), trigger func() error) error {
	p, token, err := rs.PauseLeader()
	if err != nil {
		return err
	}
	if err := trigger(); err != nil {
		p.Release()
		return err
	}
	select {
	case act := <-p.Reached:
		logf("leader (token %d) paused before: %s", token, act)
	case <-time.After(time.Minute):
		p.Release()
		return fmt.Errorf("the leader (token %d) took no action within a minute of the deletion", token)
	}
	if err := rs.FencePaused(ctx, p, token, 2*time.Second); err != nil {
		return err
	}
	logf("paused leader (token %d) resumed and stepped down; token now %d", token, rs.Token())
	return nil
}

// waitSettled waits until the cluster is whole: no deleting control-plane Machine, three
// Machines each with the quorum hook, spread over exactly the domains in zones with counts
// no more than one apart, the ControlPlaneMachineSet reporting every replica updated, and
// three voting members all running with no learner.
func waitSettled(ctx context.Context, c *framework.Cluster, zones string, timeout time.Duration) error {
	var why string
	err := framework.WaitFor(ctx, timeout, "the cluster to settle", func() (bool, error) {
		why = ""
		all, err := masters(ctx, c)
		if err != nil {
			return false, err
		}
		if len(all) != 3 {
			why = fmt.Sprintf("%d control-plane Machines", len(all))
			return false, nil
		}
		for _, m := range all {
			if m.DeletionTimestamp != nil || !hooks.Has(&m, hooks.Default) {
				why = fmt.Sprintf("Machine %s deleting or without its hook", m.Name)
				return false, nil
			}
		}
		layout, err := Layout(ctx, c)
		if err != nil {
			return false, err
		}
		if why = unbalanced(layout, zones); why != "" {
			return false, nil
		}
		cpms, err := GetCPMS(ctx, c)
		if err != nil {
			return false, err
		}
		cond := meta.FindStatusCondition(cpms.Status.Conditions, "Progressing")
		if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != machines.ReasonAllReplicasUpdated || cpms.Status.ObservedGeneration != cpms.Generation {
			why = "the ControlPlaneMachineSet is still progressing"
			return false, nil
		}
		list, err := memberList(ctx, c)
		if err != nil {
			return false, err
		}
		voters := 0
		for _, m := range list {
			if m.IsLearner {
				why = "a learner remains"
				return false, nil
			}
			if em := c.Agent.Member(m.Name); m.Name == "" || em == nil || !em.Running() {
				why = fmt.Sprintf("member %q is not running", m.Name)
				return false, nil
			}
			voters++
		}
		if voters != 3 {
			why = fmt.Sprintf("%d voting members", voters)
			return false, nil
		}
		return true, nil
	})
	if err != nil && why != "" {
		err = fmt.Errorf("%w: %s; %s", err, why, describe(ctx, c))
	}
	return err
}

// describe says what the Machines and members look like, for a scenario that did not settle.
func describe(ctx context.Context, c *framework.Cluster) string {
	var parts []string
	if all, err := masters(ctx, c); err == nil {
		for _, m := range all {
			s := m.Name
			if m.DeletionTimestamp != nil {
				s += " (deleting)"
			}
			if cond := framework.Condition(&m, controlplane.ConditionType); cond != nil {
				s += fmt.Sprintf(" %s: %s", cond.Reason, cond.Message)
			}
			parts = append(parts, s)
		}
	}
	if list, err := memberList(ctx, c); err == nil {
		for _, m := range list {
			parts = append(parts, fmt.Sprintf("member %q %x learner=%v", m.Name, m.ID, m.IsLearner))
		}
	} else {
		parts = append(parts, "member list: "+err.Error())
	}
	return "Machines and members: " + strings.Join(parts, "; ")
}

// unbalanced says why the layout does not use exactly the listed zones evenly, or "".
func unbalanced(layout []Placed, zones string) string {
	count := map[string]int{}
	for _, p := range layout {
		count[p.Zone]++
	}
	listed := make([]string, 0, len(zones))
	for i := range len(zones) {
		listed = append(listed, Zone(zones[i]))
	}
	lo, hi := len(layout), 0
	for z, n := range count {
		if !slices.Contains(listed, z) {
			return fmt.Sprintf("a Machine is in %s, which is not listed", z)
		}
		hi = max(hi, n)
	}
	for _, z := range listed {
		lo = min(lo, count[z])
	}
	if len(listed) <= len(layout) && hi-lo > 1 {
		return fmt.Sprintf("unbalanced over %v: %v", listed, count)
	}
	if len(listed) > len(layout) && hi > 1 {
		return fmt.Sprintf("two Machines share a domain while others are free: %v", count)
	}
	return ""
}

// QuietMargin is how long after a quorum-taking fault begins an action may still be recorded:
// one whose fence passed just before the fault.
const QuietMargin = time.Second

// runningVoters names the Machines whose etcd members vote and are running.
func runningVoters(ctx context.Context, c *framework.Cluster) ([]string, error) {
	voters, err := VotingMembers(ctx, c)
	return slices.DeleteFunc(voters, func(name string) bool {
		em := c.Agent.Member(name)
		return name == "" || em == nil || !em.Running()
	}), err
}

func masters(ctx context.Context, c *framework.Cluster) ([]machinev1beta1.Machine, error) {
	var list machinev1beta1.MachineList
	err := c.Client.List(ctx, &list, client.InNamespace(framework.MachineNamespace), client.MatchingLabels{framework.RoleLabel: "master"})
	return list.Items, err
}

func liveMasters(ctx context.Context, c *framework.Cluster) []string {
	all, err := masters(ctx, c)
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range all {
		if m.DeletionTimestamp == nil {
			out = append(out, m.Name)
		}
	}
	return out
}
