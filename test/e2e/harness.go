// Package e2e holds quorumguard's end-to-end scenarios as exported XSpec(ctx, input)
// functions over test/framework: the real apiserver, the simulated machine-api, real TLS
// etcd, a writer and a quorum monitor running throughout.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/framework"
)

// Controller is an in-process quorumguard started through pkg/app, as the binary starts it.
type Controller struct {
	App    *app.Controller
	cancel context.CancelFunc
	done   chan error
}

// ControllerOptions are the options a test controller runs with: leader election off,
// metrics and probes off, the cluster's etcd client certificate, no endpoints (discovered).
func ControllerOptions(c *framework.Cluster) app.Options {
	ca, cert, key := c.Net.ClientFiles()
	return app.Options{
		Namespace: framework.MachineNamespace, Hook: hooks.Default, DefaultReplicas: 3,
		PollInterval: 100 * time.Millisecond, EtcdCA: ca, EtcdCert: cert, EtcdKey: key,
		MetricsAddr: "0", ProbeAddr: "0", LeaderElect: "none",
	}
}

// StartController starts a controller against the cluster's apiserver.
func StartController(ctx context.Context, c *framework.Cluster, o app.Options) (*Controller, error) {
	return StartControllerWith(ctx, c, o, nil)
}

// StartControllerWith is StartController with a chance to adjust the built controller (test
// seams, extra controllers) before it runs.
func StartControllerWith(ctx context.Context, c *framework.Cluster, o app.Options, adjust func(*app.Controller) error) (*Controller, error) {
	a, err := app.New(c.CP.Config, o)
	if err != nil {
		return nil, err
	}
	if adjust != nil {
		if err := adjust(a); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	rc := &Controller{App: a, cancel: cancel, done: make(chan error, 1)}
	go func() { rc.done <- a.Run(ctx) }()
	return rc, nil
}

// Done is closed with Run's result when the controller stops by itself (a step-down).
func (rc *Controller) Done() <-chan error { return rc.done }

// Stop stops the controller, as a crash would from the cluster's point of view: nothing is
// handed over or cleaned up.
func (rc *Controller) Stop() error {
	rc.cancel()
	select {
	case err := <-rc.done:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("controller did not stop within 30s")
	}
}

// Guards are the checks every scenario runs throughout: the writer and the quorum monitor.
type Guards struct {
	Writer  *framework.Writer
	Monitor *framework.QuorumMonitor
	// History records concurrent clients for the linearizability check; Linearizability is
	// its result, set by Check.
	History         *framework.History
	Linearizability framework.LinearizabilityReport
	// ExplainedLoss counts the monitor's samples below quorum that an announced window
	// (ExpectLoss) explains; set by Check.
	ExplainedLoss int
	expected      expectations
}

// StartGuards starts the writer and the monitor.
func StartGuards(ctx context.Context, c *framework.Cluster) (*Guards, error) {
	w, err := c.StartWriter(ctx)
	if err != nil {
		return nil, err
	}
	m, err := c.StartQuorumMonitor(ctx)
	if err != nil {
		return nil, err
	}
	tc, err := c.Net.ClientTLS()
	if err != nil {
		return nil, err
	}
	h := framework.StartHistory(ctx, framework.HistoryOptions{Endpoints: c.Agent.RunningEndpoints, TLS: tc, Seed: uint64(time.Now().UnixNano())})
	g := &Guards{Writer: w, Monitor: m, History: h}
	// Armed before any fault: a scenario that finished before the writer's first write had
	// been acknowledged, or the monitor's first sample taken, would check nothing.
	if err := framework.WaitFor(ctx, 30*time.Second, "the writer's first write and the monitor's first sample", func() (bool, error) {
		return w.Acked() > 0 && m.Report().Samples > 0, nil
	}); err != nil {
		g.Monitor.Stop()
		_, _ = g.Writer.Stop(ctx)
		_, _ = g.History.Stop("", time.Second)
		return nil, err
	}
	return g, nil
}

// Check stops all three and fails if a write was lost, the clients' history is not
// linearizable, quorum fell outside the windows announced with ExpectLoss (and their
// recovery grace), or voting members went below minVoters. A history that is not
// linearizable is written out with its visualisation, and the error names where.
func (g *Guards) Check(ctx context.Context, minVoters int) (framework.WriterReport, framework.MonitorReport, error) {
	mon := g.Monitor.Stop()
	rep, err := g.Writer.Stop(ctx)
	if err != nil {
		return rep, mon, err
	}
	var problems []string
	lin, err := g.History.Stop("", 2*time.Minute)
	g.Linearizability = lin
	if err != nil {
		problems = append(problems, "linearizability check: "+err.Error())
	} else if lin.Result == porcupine.Illegal {
		problems = append(problems, "the clients' history is not linearizable: "+lin.String())
	} else if lin.Result != porcupine.Ok {
		// A check that ran out of time has shown nothing: the scenario is not counted as passed.
		problems = append(problems, "the clients' history could not be checked: "+lin.String())
	}
	if len(rep.Lost) > 0 {
		problems = append(problems, fmt.Sprintf("%d acknowledged writes lost: %v", len(rep.Lost), rep.Lost[:min(5, len(rep.Lost))]))
	}
	explained, unexplained := Explain(mon.Losses, g.Windows(), RecoveryGrace)
	g.ExplainedLoss = explained
	if len(unexplained) > 0 {
		problems = append(problems, fmt.Sprintf("quorum lost with no fault to explain it in %d samples: %v", len(unexplained), unexplained[:min(5, len(unexplained))]))
	}
	if mon.MinVoters < minVoters {
		problems = append(problems, fmt.Sprintf("voting members fell to %d (want at least %d)", mon.MinVoters, minVoters))
	}
	if rep.Acked == 0 {
		problems = append(problems, "the writer wrote nothing")
	}
	if len(problems) > 0 {
		return rep, mon, fmt.Errorf("%s (writer: %s; monitor: %s)", strings.Join(problems, "; "), rep, mon)
	}
	return rep, mon, nil
}

// TooManyMembers says so when the monitor saw more than limit etcd members, voting or not, in
// one member list, or "". One replacement at a time means at most one member more than the
// replicas. etcd itself refuses a second learner, so "never two learners" could not fail; a
// second replacement begun before the first one's old member is removed shows here instead.
func TooManyMembers(mon framework.MonitorReport, limit int) string {
	if mon.MaxMembers > limit {
		return fmt.Sprintf("%d etcd members at once (at most %d): two replacements overlapped", mon.MaxMembers, limit)
	}
	return ""
}

// CreateReplacement creates a new control-plane Machine named name, as a ControlPlaneMachineSet
// or a person would.
func CreateReplacement(ctx context.Context, c *framework.Cluster, name string) error {
	return c.Client.Create(ctx, c.NewMaster(name, framework.AWSProviderSpec("us-east-1a", "subnet-us-east-1a")))
}

// WaitGone waits until every named Machine has disappeared.
func WaitGone(ctx context.Context, c *framework.Cluster, timeout time.Duration, names ...string) error {
	return framework.WaitFor(ctx, timeout, "Machines "+strings.Join(names, ", ")+" to disappear", func() (bool, error) {
		for _, n := range names {
			if _, err := c.Machine(ctx, n); !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		return true, nil
	})
}

// memberList lists the etcd members.
func memberList(ctx context.Context, c *framework.Cluster) ([]*etcdserverpb.Member, error) {
	cli, err := c.EtcdClient()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	list, err := cli.MemberList(lctx)
	if err != nil {
		return nil, err
	}
	return list.Members, nil
}

// VotingMembers are the started voting members' names, sorted.
func VotingMembers(ctx context.Context, c *framework.Cluster) ([]string, error) {
	members, err := memberList(ctx, c)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range members {
		if !m.IsLearner {
			out = append(out, m.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// WaitVoters waits until the voting members are exactly names.
func WaitVoters(ctx context.Context, c *framework.Cluster, timeout time.Duration, names ...string) error {
	sort.Strings(names)
	var last []string
	err := framework.WaitFor(ctx, timeout, "voting members "+strings.Join(names, ","), func() (bool, error) {
		got, err := VotingMembers(ctx, c)
		last = got
		return err == nil && strings.Join(got, ",") == strings.Join(names, ","), err
	})
	if err != nil {
		return fmt.Errorf("%w; last seen %v", err, last)
	}
	return nil
}

// ReasonTracker records every EtcdMember reason a Machine shows, in order.
type ReasonTracker struct {
	seen   map[string][]string
	cancel context.CancelFunc
	done   chan struct{}
}

// TrackReasons polls the named Machines' EtcdMember conditions every 20 ms.
func TrackReasons(ctx context.Context, c *framework.Cluster, names ...string) *ReasonTracker {
	ctx, cancel := context.WithCancel(ctx)
	rt := &ReasonTracker{seen: map[string][]string{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rt.done)
		for ctx.Err() == nil {
			for _, n := range names {
				m := &machinev1beta1.Machine{}
				if err := c.Client.Get(ctx, client.ObjectKey{Namespace: framework.MachineNamespace, Name: n}, m); err != nil {
					continue
				}
				if cond := framework.Condition(m, masters.ConditionType); cond != nil {
					s := rt.seen[n]
					if len(s) == 0 || s[len(s)-1] != cond.Reason {
						rt.seen[n] = append(s, cond.Reason)
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return rt
}

// Stop stops tracking and returns the reasons seen per Machine.
func (rt *ReasonTracker) Stop() map[string][]string {
	rt.cancel()
	<-rt.done
	return rt.seen
}

// WaitHealthWindow waits until every voting member of the member list has voted for etcd's
// health window (quorum.HealthWindow): with strict reconfiguration checks etcd refuses a
// membership change before that. A bootstrap member counts from when the cluster turned
// quorate (framework.Cluster.Quorate); a member promoted since counts from when its
// Machine's EtcdMember condition turned Voting, plus the second that time is rounded to.
// A voter whose Machine shows no Voting condition yet is waited for.
func WaitHealthWindow(ctx context.Context, c *framework.Cluster, timeout time.Duration) error {
	boot := map[string]bool{}
	for i := range c.Opts.Masters {
		boot[fmt.Sprintf("%s-master-%d", c.Opts.Prefix, i)] = true
	}
	var why string
	err := framework.WaitFor(ctx, timeout, "every voting member to have voted for etcd's health window", func() (bool, error) {
		members, err := memberList(ctx, c)
		if err != nil {
			why = err.Error()
			return false, nil //nolint:nilerr // a failed read is tried again until the timeout, which reports it
		}
		var until time.Time
		for _, m := range members {
			if m.IsLearner {
				continue
			}
			since := c.Quorate
			if !boot[m.Name] {
				mach, err := c.Machine(ctx, m.Name)
				if err != nil {
					why = fmt.Sprintf("voting member %s: %v", m.Name, err)
					return false, nil
				}
				cond := framework.Condition(mach, masters.ConditionType)
				if cond == nil || cond.Reason != quorum.ReasonVoting {
					why = fmt.Sprintf("voting member %s: its Machine does not show Voting yet", m.Name)
					return false, nil
				}
				since = cond.LastTransitionTime.Add(time.Second)
			}
			if end := since.Add(quorum.HealthWindow); end.After(until) {
				until = end
			}
		}
		if wait := time.Until(until); wait > 0 {
			why = fmt.Sprintf("the youngest voter's window ends in %s", wait.Round(time.Millisecond))
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(wait):
			}
			// The members may have changed meanwhile: look again.
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("%w (%s)", err, why)
	}
	return nil
}

// MemberList lists the etcd members, learners included.
func MemberList(ctx context.Context, c *framework.Cluster) ([]*etcdserverpb.Member, error) {
	return memberList(ctx, c)
}
