package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

var cp *framework.ControlPlane

func TestMain(m *testing.M) {
	framework.Main(m, framework.ControlPlaneOptions{NodeLifecycle: true}, &cp)
}

// setup starts a three-master cluster and a controller, and waits until every master carries
// the hook and the cluster accepts reconfiguration.
func setup(t *testing.T, mutate func(*app.Options)) (*framework.Cluster, *e2e.Controller) {
	t.Helper()
	return startCluster(t, clusterSpec{options: mutate, settle: true})
}

func replace(t *testing.T, in e2e.ReplaceInput) e2e.ReplaceResult {
	t.Helper()
	res, err := e2e.ReplaceSpec(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replaced %v with %v in %s; writer: %s; monitor: %s", in.Delete, in.Replacements, res.Took.Round(time.Millisecond), res.Writer, res.Monitor)
	// etcd itself refuses a second learner; a replacement begun before the last one's old
	// member was removed shows as one member too many instead.
	if res.Monitor.MaxMembers > res.StartVoters+1 {
		t.Errorf("%d etcd members at once, started with %d voters: two replacements overlapped", res.Monitor.MaxMembers, res.StartVoters)
	}
	return res
}

// inOrder says whether want appears in got in this order (other reasons may sit between).
func inOrder(got []string, want ...string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

func events(t *testing.T, machine string) []corev1.Event {
	t.Helper()
	var list corev1.EventList
	if err := cp.Client.List(t.Context(), &list, client.InNamespace(framework.MachineNamespace)); err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(list.Items, func(e corev1.Event) bool { return e.InvolvedObject.Name != machine })
}

func hasEvent(t *testing.T, machine, reason string) bool {
	return slices.ContainsFunc(events(t, machine), func(e corev1.Event) bool { return e.Reason == reason })
}

// eventually says whether cond holds within e2e.EventWait. The controller's recorder writes
// Events asynchronously, so a single read made as soon as an action shows can come before
// the Event's write; a check of an Event waits for it, and still fails when it never comes.
func eventually(t *testing.T, cond func() bool) bool {
	t.Helper()
	return framework.WaitFor(t.Context(), e2e.EventWait, "an Event", func() (bool, error) { return cond(), nil }) == nil
}

// gotEvent is hasEvent waited for (eventually).
func gotEvent(t *testing.T, machine, reason string) bool {
	t.Helper()
	return eventually(t, func() bool { return hasEvent(t, machine, reason) })
}

func TestReplaceOneMaster(t *testing.T) {
	c, _ := setup(t, nil)
	res := replace(t, e2e.ReplaceInput{Cluster: c, Delete: []string{"cluster-master-0"}, Replacements: []string{"cluster-new-0"}, MinVoters: 3})
	old := res.Reasons["cluster-master-0"]
	if !inOrder(old, quorum.ReasonRemovingMember, quorum.ReasonHookReleased) ||
		!slices.Contains(old, quorum.ReasonWaitingForReplacement) && !slices.Contains(old, quorum.ReasonReplacementCatchingUp) {
		t.Errorf("old Machine's EtcdMember reasons %v; want a wait for the replacement, then RemovingMember, then HookReleased", old)
	}
	if repl := res.Reasons["cluster-new-0"]; !inOrder(repl, quorum.ReasonVoting) || slices.Index(repl, quorum.ReasonVoting) < 0 {
		t.Errorf("replacement's reasons %v; want it to end Voting", repl)
	}
	for _, r := range []string{"LearnerAdded", "LearnerPromoted"} {
		if !gotEvent(t, "cluster-new-0", r) {
			t.Errorf("no %s event on the replacement", r)
		}
	}
	for _, r := range []string{"MemberRemoved", quorum.ReasonHookReleased} {
		if !gotEvent(t, "cluster-master-0", r) {
			t.Errorf("no %s event on the old Machine", r)
		}
	}
}

func TestReplaceTwoAtOnce(t *testing.T) {
	c, _ := setup(t, nil)
	replace(t, e2e.ReplaceInput{Cluster: c, Delete: []string{"cluster-master-0", "cluster-master-1"},
		Replacements: []string{"cluster-new-0", "cluster-new-1"}, MinVoters: 3})
}

func TestReplaceAllThreeAtOnce(t *testing.T) {
	c, _ := setup(t, nil)
	replace(t, e2e.ReplaceInput{Cluster: c, Delete: []string{"cluster-master-0", "cluster-master-1", "cluster-master-2"},
		Replacements: []string{"cluster-new-0", "cluster-new-1", "cluster-new-2"}, MinVoters: 3, Timeout: 4 * time.Minute})
}

func TestDeadMemberIsReplaced(t *testing.T) {
	c, _ := setup(t, nil)
	// One member is dead: two voting members stay healthy and quorum (2 of 3) holds.
	res := replace(t, e2e.ReplaceInput{Cluster: c, Delete: []string{"cluster-master-1"}, Replacements: []string{"cluster-new-1"}, KillFirst: true, MinVoters: 2})
	if res.Monitor.MinHealthy < 2 {
		t.Errorf("healthy voting members fell to %d", res.Monitor.MinHealthy)
	}
}

func TestLeaderMovesBeforeRemoval(t *testing.T) {
	c, _ := setup(t, nil)
	cli, err := c.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	st, err := cli.Status(t.Context(), c.Agent.Member("cluster-master-0").ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	var leaderMachine string
	for _, name := range []string{"cluster-master-0", "cluster-master-1", "cluster-master-2"} {
		if c.Agent.Member(name).ID() == st.Leader {
			leaderMachine = name
		}
	}
	if leaderMachine == "" {
		t.Fatalf("leader %x is no master's member", st.Leader)
	}
	replace(t, e2e.ReplaceInput{Cluster: c, Delete: []string{leaderMachine}, Replacements: []string{"cluster-new-l"}, MinVoters: 3})
	if !gotEvent(t, leaderMachine, "LeaderMoved") {
		t.Fatalf("no LeaderMoved event on %s, which hosted the leader", leaderMachine)
	}
	evs := events(t, leaderMachine)
	moved, removed := -1, -1
	for i, e := range evs {
		switch e.Reason {
		case "LeaderMoved":
			moved = i
		case "MemberRemoved":
			removed = i
		}
	}
	if moved < 0 || removed < 0 || evs[moved].CreationTimestamp.After(evs[removed].CreationTimestamp.Time) {
		t.Fatalf("leadership must move before the member is removed; events %v", reasons(evs))
	}
}

func reasons(evs []corev1.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Reason
	}
	return out
}

// TestControllerRestartsMidReplacement kills the controller at each step of a replacement and
// starts a new one; the replacement still finishes with one learner at a time.
func TestControllerRestartsMidReplacement(t *testing.T) {
	c, first := setup(t, nil)
	cli, err := c.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	current := first
	restarts := 0
	steps := []struct {
		name string
		at   func() bool
	}{
		{"after the learner is added", func() bool { return memberCount(t, cli, true) == 1 }},
		{"after the promotion", func() bool { return memberCount(t, cli, false) == 4 }},
		{"after the removal", func() bool { return memberCount(t, cli, false) == 3 && memberCount(t, cli, true) == 0 }},
	}
	during := func(ctx context.Context) error {
		for _, s := range steps {
			if err := framework.WaitFor(ctx, 2*time.Minute, s.name, func() (bool, error) { return s.at(), nil }); err != nil {
				return err
			}
			if err := current.Stop(); err != nil {
				return err
			}
			time.Sleep(300 * time.Millisecond)
			next, err := e2e.StartController(ctx, c, e2e.ControllerOptions(c))
			if err != nil {
				return err
			}
			current = next
			restarts++
		}
		t.Cleanup(func() { _ = current.Stop() })
		return nil
	}
	res := replace(t, e2e.ReplaceInput{Cluster: c, Delete: []string{"cluster-master-2"}, Replacements: []string{"cluster-new-2"}, MinVoters: 3, DuringReplacement: during})
	if restarts != len(steps) {
		t.Fatalf("controller restarted %d times, want %d", restarts, len(steps))
	}
	if !slices.Contains(res.Reasons["cluster-master-2"], quorum.ReasonHookReleased) {
		t.Errorf("old Machine reasons %v; want HookReleased", res.Reasons["cluster-master-2"])
	}
}

// memberCount counts learners, or voting members, in the current member list (-1 on error).
func memberCount(t *testing.T, cli *clientv3.Client, learners bool) int {
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	list, err := cli.MemberList(ctx)
	if err != nil {
		return -1
	}
	n := 0
	for _, m := range list.Members {
		if m.IsLearner == learners {
			n++
		}
	}
	return n
}

func TestHookRemovedByHandIsNotReAdded(t *testing.T) {
	c, _ := setup(t, nil)
	ctx := t.Context()
	// A long drain keeps the Machine around long enough to look at it.
	name := "cluster-master-1"
	if err := c.DeleteMachine(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitFor(ctx, 30*time.Second, "WaitingForReplacement", func() (bool, error) {
		m, err := c.Machine(ctx, name)
		cond := framework.Condition(m, masters.ConditionType)
		return err == nil && cond != nil && cond.Reason == quorum.ReasonWaitingForReplacement, err
	}); err != nil {
		t.Fatal(err)
	}
	// Add an unrelated preTerminate hook so the Machine stays after the drain.
	if err := c.UpdateMachine(ctx, name, func(m *machinev1beta1.Machine) {
		m.Spec.LifecycleHooks.PreTerminate = []machinev1beta1.LifecycleHook{{Name: "HoldForTest", Owner: "test/e2e"}}
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveHooks(ctx, name, hooks.Default.Name); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitFor(ctx, 30*time.Second, "HookRemovedExternally", func() (bool, error) {
		m, err := c.Machine(ctx, name)
		cond := framework.Condition(m, masters.ConditionType)
		return err == nil && cond != nil && cond.Reason == quorum.ReasonHookRemovedExternally, err
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	m, err := c.Machine(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if hooks.Has(m, hooks.Default) {
		t.Fatal("the hook was added back to a deleting Machine")
	}
	if !gotEvent(t, name, quorum.ReasonHookRemovedExternally) {
		t.Fatal("no event reports the hook's removal")
	}
	if err := c.UpdateMachine(ctx, name, func(m *machinev1beta1.Machine) { m.Spec.LifecycleHooks.PreTerminate = nil }); err != nil {
		t.Fatal(err)
	}
}

// TestSerialReplacementThenRediscovery replaces every original master one after another while
// the controller runs, then restarts the controller with no endpoints: it must find the new
// members from the Machines and carry out one more replacement.
func TestSerialReplacementThenRediscovery(t *testing.T) {
	c, rc := setup(t, nil)
	for i := range 3 {
		replace(t, e2e.ReplaceInput{Cluster: c, Delete: []string{fmt.Sprintf("cluster-master-%d", i)},
			Replacements: []string{fmt.Sprintf("cluster-gen1-%d", i)}, MinVoters: 3})
	}
	if err := rc.Stop(); err != nil {
		t.Fatal(err)
	}
	o := e2e.ControllerOptions(c)
	o.EtcdEndpoints = nil
	next, err := e2e.StartController(t.Context(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = next.Stop() })
	replace(t, e2e.ReplaceInput{Cluster: c, Delete: []string{"cluster-gen1-0"}, Replacements: []string{"cluster-gen2-0"}, MinVoters: 3})
}
