package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/machines"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
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
	// whole again and stay so for etcd's health window (see waitSettled).
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
	// QuietLatency is the writer's latency from its start to the first event; EventLatency
	// its latency in each event's window, from the event's start until the cluster was whole
	// again (the settle check's hold left out); LatencyFindings what LatencyRise said of them. A finding is reported, not a
	// failure (see LatencyRise).
	QuietLatency    framework.LatencySummary
	EventLatency    []EventLatency
	LatencyFindings []string

	Took time.Duration
	Err  error
}

// EventLatency is the writer's latency in one event's window.
type EventLatency struct {
	Event   string
	Latency framework.LatencySummary
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
		if p := TooManyMembers(res.Monitor, 4); p != "" {
			problems = append(problems, p)
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
	// The first event starts on a settled cluster too: members connected for etcd's health
	// window, or it would refuse the first reconfiguration.
	if err := waitSettled(ctx, c, zones, in.Settle); err != nil {
		logf("not settled before the first event: %v", err)
		return finish(fmt.Errorf("before the first event: %w", err))
	}
	for range in.Events {
		ev := kinds[rng.IntN(len(kinds))]
		res.Events = append(res.Events, ev)
		evStart := time.Now()
		if len(res.Events) == 1 {
			res.QuietLatency = g.Writer.Latencies(time.Time{}, evStart)
			logf("write latency before the first event: %s", res.QuietLatency)
		}
		if err := ReadyForFault(CurrentVoters(ctx, c)); err != nil {
			logf("harness failure: %s would start on a cluster with no failure to spare: %v", ev, err)
			return finish(fmt.Errorf("harness failure: event %s would start its fault on a cluster with no failure to spare (%w); the settle check let it through", ev, err))
		}
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
			lat := g.Writer.Latencies(evStart, time.Now())
			res.EventLatency = append(res.EventLatency, EventLatency{Event: ev, Latency: lat})
			logf("write latency during %s until it failed to settle: %s", ev, lat)
			return finish(fmt.Errorf("after %s: %w", ev, err))
		}
		logf("settled after %s", ev)
		// The window ends when the cluster was whole again: the settle check's hold is quiet.
		whole := time.Now().Add(-quorum.HealthWindow)
		if whole.Before(evStart) {
			whole = evStart
		}
		lat := g.Writer.Latencies(evStart, whole)
		res.EventLatency = append(res.EventLatency, EventLatency{Event: ev, Latency: lat})
		logf("write latency during %s until the cluster was whole: %s", ev, lat)
		if f := LatencyRise(ev, res.QuietLatency, lat); f != "" {
			res.LatencyFindings = append(res.LatencyFindings, f)
			logf("finding: %s", f)
		}
	}
	return finish(nil)
}

// PlainReplacements are the events that replace Machines and inject no fault: the ones whose
// write latency LatencyRise compares with the quiet period's. Every other event freezes,
// partitions, slows, stalls, kills or wipes a member, crashes or pauses a replica, or
// restarts the apiserver, any of which may raise latency by itself.
var PlainReplacements = []string{"delete-one", "delete-two", "domain-change"}

// LatencyRise says so when event is a plain replacement whose p99 write latency during was
// more than framework.MaxLatencyRise times the quiet period's p99, or "". With no write in
// either window there is nothing to compare. A replacement adds a learner, sends it a
// snapshot, promotes it and removes the old member: the leader sends every entry to one more
// peer for a while, and if the old member led, writes wait for an election. On a shared
// 2-core machine the scenario's own apiserver, two replicas and up to four etcd members
// compete for the cores too, so a scenario reports the finding rather than failing on it.
func LatencyRise(event string, quiet, during framework.LatencySummary) string {
	rise := during.RiseOver(quiet)
	if !slices.Contains(PlainReplacements, event) || rise <= framework.MaxLatencyRise {
		return ""
	}
	return fmt.Sprintf("%s: p99 write latency %s, %.1f times the %s before the first event (at most %d times); during: %s; before: %s",
		event, during.P99, rise, quiet.P99, framework.MaxLatencyRise, during, quiet)
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

// waitSettled waits until the cluster is whole and has stayed so, on every poll, for etcd's
// health window (quorum.HealthWindow, 5 s); any failed poll starts the window again. Whole
// means: three control-plane Machines, none deleting, each with the quorum hook and its
// EtcdMember condition Voting, spread over exactly the domains in zones with counts no more
// than one apart; the ControlPlaneMachineSet reporting every replica updated; and exactly
// three voting members and no learner, one on each Machine's InternalIP, each answering a
// linearizable read through its own client endpoint and then giving the same member list.
//
// A running process is not enough: a member whose raft loop died, or one just promoted with
// no peer connections yet, runs but cannot serve. Nor is one good poll: seed 95 started a
// kill 0.75 s after a replacement was reported settled, with the dead member removed and the
// new one not yet added (two voters of two), and lost quorum. Holding the state for the window
// etcd itself uses before a reconfiguration also means the next event's own replacement is
// not refused for a member connected too recently.
func waitSettled(ctx context.Context, c *framework.Cluster, zones string, timeout time.Duration) error {
	tc, err := c.Net.ClientTLS()
	if err != nil {
		return err
	}
	probe := framework.NewMemberProbe(tc, probeDeadline)
	defer probe.Close()
	err = HoldFor(ctx, timeout, quorum.HealthWindow, "the cluster to settle", func() (string, error) {
		return notSettled(ctx, c, zones, probe)
	})
	if err != nil {
		err = fmt.Errorf("%w; %s", err, describe(ctx, c))
	}
	return err
}

// probeDeadline bounds each read and member list the settle and fault-tolerance checks make
// through one member, as the quorum monitor's probes are bounded.
const probeDeadline = 2 * time.Second

// notSettled says why the cluster is not whole now (see waitSettled), or "".
func notSettled(ctx context.Context, c *framework.Cluster, zones string, probe *framework.MemberProbe) (string, error) {
	all, err := listMasters(ctx, c)
	if err != nil {
		return "", err
	}
	if len(all) != 3 {
		return fmt.Sprintf("%d control-plane Machines", len(all)), nil
	}
	ips := map[string]net.IP{}
	for _, m := range all {
		if m.DeletionTimestamp != nil || !hooks.Has(&m, hooks.Default) {
			return fmt.Sprintf("Machine %s deleting or without its hook", m.Name), nil
		}
		if cond := framework.Condition(&m, masters.ConditionType); cond == nil || cond.Status != corev1.ConditionTrue || cond.Reason != quorum.ReasonVoting {
			return fmt.Sprintf("Machine %s's %s condition is not True/%s: %s", m.Name, masters.ConditionType, quorum.ReasonVoting, conditionString(cond)), nil
		}
		ip := framework.InternalIP(&m)
		if ip == nil {
			return fmt.Sprintf("Machine %s has no InternalIP", m.Name), nil
		}
		ips[m.Name] = ip
	}
	layout, err := Layout(ctx, c)
	if err != nil {
		return "", err
	}
	if why := unbalanced(layout, zones); why != "" {
		return why, nil
	}
	cpms, err := GetCPMS(ctx, c)
	if err != nil {
		return "", err
	}
	cond := meta.FindStatusCondition(cpms.Status.Conditions, "Progressing")
	if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != machines.ReasonAllReplicasUpdated || cpms.Status.ObservedGeneration != cpms.Generation {
		return "the ControlPlaneMachineSet is still progressing", nil
	}
	view, err := ProbeVoters(ctx, probe, c.Agent.RunningEndpoints())
	if err != nil {
		return "", err
	}
	return view.Settled(ips), nil
}

func conditionString(cond *machinev1beta1.Condition) string {
	if cond == nil {
		return "none"
	}
	return fmt.Sprintf("%s/%s %q", cond.Status, cond.Reason, cond.Message)
}

// HoldFor polls check until it has passed on every poll for window without a break, starting
// the window again whenever a poll fails (says why, or errs). After timeout it fails with
// what the last failed poll saw and the longest the check held.
func HoldFor(ctx context.Context, timeout, window time.Duration, what string, check func() (string, error)) error {
	var since time.Time
	var last string
	var longest time.Duration
	err := framework.WaitFor(ctx, timeout, fmt.Sprintf("%s and stay so for %s", what, window), func() (bool, error) {
		why, err := check()
		if why == "" && err != nil {
			why = err.Error()
		}
		if why != "" {
			if !since.IsZero() {
				longest = max(longest, time.Since(since))
			}
			since, last = time.Time{}, why
			return false, nil
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) >= window, nil
	})
	if err != nil {
		if !since.IsZero() {
			longest = max(longest, time.Since(since))
		}
		err = fmt.Errorf("%w: last seen: %s (held for %s at most)", err, last, longest.Round(time.Millisecond))
	}
	return err
}

// VoterView is the etcd membership as the settle and fault-tolerance checks see it: the member
// list, and which voting members answer through their own client endpoint.
type VoterView struct {
	Members          []*etcdserverpb.Member
	Voters, Learners int
	// Healthy are the voting members whose linearizable read through their own endpoint
	// succeeded and whose member list, read next, matched Members.
	Healthy []*etcdserverpb.Member
	// Unhealthy says, for every other voting member, what failed.
	Unhealthy []string
}

// Tolerance is how many more voting members may fail before quorum is lost (quorum.Tolerance).
func (v VoterView) Tolerance() int { return quorum.Tolerance(v.Voters, len(v.Healthy)) }

func (v VoterView) String() string {
	return fmt.Sprintf("%d voting members, %d answering through their own endpoint, %d learners; members %s; %s",
		v.Voters, len(v.Healthy), v.Learners, memberNames(v.Members), strings.Join(append([]string{"unhealthy:"}, v.Unhealthy...), " "))
}

func memberName(m *etcdserverpb.Member) string {
	if m.Name == "" {
		return fmt.Sprintf("%x (never started)", m.ID)
	}
	return fmt.Sprintf("%s (%x)", m.Name, m.ID)
}

func memberNames(ms []*etcdserverpb.Member) string {
	var out []string
	for _, m := range ms {
		s := memberName(m)
		if m.IsLearner {
			s += " learner"
		}
		out = append(out, s)
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// membership is a member list's fingerprint: the members' IDs and which are learners.
func membership(ms []*etcdserverpb.Member) string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%x:%v", m.ID, m.IsLearner))
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// ReadyForFault says why no fault may start on a cluster whose voting members look like v, or
// nil. Every event takes out at most one member, except quorum-loss's freeze, which means to
// lose quorum; so each must start with one failure to spare: a fault tolerance of at least 1,
// counted from reads through each voter's own endpoint (3 voters need 3 healthy; 2 healthy of
// 3, or 2 of 2, leave none). err is ProbeVoters' error: a tolerance unknown is none.
func ReadyForFault(v VoterView, err error) error {
	if err != nil {
		return fmt.Errorf("fault tolerance unknown: %w", err)
	}
	if t := v.Tolerance(); t < 1 {
		return fmt.Errorf("fault tolerance %d: %s", t, v)
	}
	return nil
}

// CurrentVoters probes the cluster's voting members, each through its own endpoint.
func CurrentVoters(ctx context.Context, c *framework.Cluster) (VoterView, error) {
	tc, err := c.Net.ClientTLS()
	if err != nil {
		return VoterView{}, err
	}
	probe := framework.NewMemberProbe(tc, probeDeadline)
	defer probe.Close()
	return ProbeVoters(ctx, probe, c.Agent.RunningEndpoints())
}

// ProbeVoters reads the member list from whichever of endpoints answers first, then asks each
// voting member, all at once and each through its own client endpoint, for a linearizable
// read and then the member list: a member is healthy when both succeed and the list is the
// same. A member whose process runs but that is frozen, cut off, stalled, or whose raft loop
// has died fails the read.
func ProbeVoters(ctx context.Context, probe *framework.MemberProbe, endpoints []string) (VoterView, error) {
	var v VoterView
	if len(endpoints) == 0 {
		return v, fmt.Errorf("no running etcd member to ask for the member list")
	}
	type answer struct {
		members []*etcdserverpb.Member
		err     error
	}
	answers := make(chan answer, len(endpoints))
	for _, ep := range endpoints {
		go func() {
			l, err := probe.MemberList(ctx, ep)
			if err != nil {
				answers <- answer{err: fmt.Errorf("%s: %w", ep, err)}
				return
			}
			answers <- answer{members: l.Members}
		}()
	}
	var errs []string
	for range endpoints {
		a := <-answers
		if a.err != nil {
			errs = append(errs, a.err.Error())
			continue
		}
		v.Members = a.members
		break
	}
	if v.Members == nil {
		return v, fmt.Errorf("no member gave the member list: %s", strings.Join(errs, "; "))
	}
	want := membership(v.Members)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range v.Members {
		if m.IsLearner {
			v.Learners++
			continue
		}
		v.Voters++
		wg.Add(1)
		go func() {
			defer wg.Done()
			why := ""
			if len(m.ClientURLs) == 0 {
				why = "no client URL"
			} else if err := probe.Read(ctx, m.ClientURLs[0]); err != nil {
				why = "no linearizable read through its own endpoint: " + err.Error()
			} else if l, err := probe.MemberList(ctx, m.ClientURLs[0]); err != nil {
				why = "no member list after its read: " + err.Error()
			} else if got := membership(l.Members); got != want {
				why = "its member list " + memberNames(l.Members) + " differs"
			}
			mu.Lock()
			defer mu.Unlock()
			if why == "" {
				v.Healthy = append(v.Healthy, m)
			} else {
				v.Unhealthy = append(v.Unhealthy, memberName(m)+": "+why)
			}
		}()
	}
	wg.Wait()
	slices.Sort(v.Unhealthy)
	return v, nil
}

// Settled says why this membership is not a whole cluster on the Machines whose InternalIPs
// are given by name, or "": as many voting members as Machines and no learner, every voter
// healthy, and each voter's peer URLs on one Machine's address, one voter a Machine.
func (v VoterView) Settled(ips map[string]net.IP) string {
	if v.Learners > 0 {
		return "a learner remains: members " + memberNames(v.Members)
	}
	if v.Voters != len(ips) {
		return fmt.Sprintf("%d voting members for %d Machines: %s", v.Voters, len(ips), memberNames(v.Members))
	}
	if len(v.Unhealthy) > 0 {
		return "voting member " + strings.Join(v.Unhealthy, "; ")
	}
	byIP := map[string]string{}
	for name, ip := range ips {
		byIP[ip.String()] = name
	}
	on := map[string]string{} // Machine -> member
	for _, m := range v.Members {
		machine := ""
		for _, u := range m.PeerURLs {
			pu, err := url.Parse(u)
			if err != nil {
				return fmt.Sprintf("member %s has a peer URL %q that does not parse", memberName(m), u)
			}
			name, ok := byIP[pu.Hostname()]
			if !ok || machine != "" && machine != name {
				return fmt.Sprintf("member %s has peer URLs %v, not all on one Machine's InternalIP", memberName(m), m.PeerURLs)
			}
			machine = name
		}
		if machine == "" {
			return fmt.Sprintf("member %s has no peer URL", memberName(m))
		}
		if other, dup := on[machine]; dup {
			return fmt.Sprintf("members %s and %s are both on Machine %s", other, memberName(m), machine)
		}
		on[machine] = memberName(m)
	}
	return ""
}

// describe says what the Machines and members look like, for a scenario that did not settle.
func describe(ctx context.Context, c *framework.Cluster) string {
	var parts []string
	if all, err := listMasters(ctx, c); err == nil {
		for _, m := range all {
			s := m.Name
			if m.DeletionTimestamp != nil {
				s += " (deleting)"
			}
			if cond := framework.Condition(&m, masters.ConditionType); cond != nil {
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

func listMasters(ctx context.Context, c *framework.Cluster) ([]machinev1beta1.Machine, error) {
	var list machinev1beta1.MachineList
	err := c.Client.List(ctx, &list, client.InNamespace(framework.MachineNamespace), client.MatchingLabels{framework.RoleLabel: "master"})
	return list.Items, err
}

func liveMasters(ctx context.Context, c *framework.Cluster) []string {
	all, err := listMasters(ctx, c)
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
