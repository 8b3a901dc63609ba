package e2e_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// noPreTerminateEnv, when set, runs TestExcludedDrainHeldByPreTerminateHook with no
// preTerminate hook kept, to show what it holds: the test then fails.
const noPreTerminateEnv = "QUORUMGUARD_E2E_NO_PRETERMINATE"

// TestExcludedDrainHeldByPreTerminateHook deletes a master that carries the
// exclude-node-draining annotation while its member votes. The machine-api skips its drain
// and every preDrain hook with it, so only the preTerminate hook holds it: its instance (and
// the etcd member on it) must stay until a replacement was promoted and the member removed,
// and the replacement then completes. The annotation is reported on the Machine's condition
// and in an Event.
func TestExcludedDrainHeldByPreTerminateHook(t *testing.T) {
	off := os.Getenv(noPreTerminateEnv) != ""
	c, _ := setup(t, func(o *app.Options) { o.NoPreTerminateHook = off })
	ctx := t.Context()
	const old, repl = "cluster-master-0", "cluster-new-0"

	if !off {
		if err := framework.WaitFor(ctx, 30*time.Second, "the preTerminate hook on every master", func() (bool, error) {
			for i := range 3 {
				m, err := c.Machine(ctx, fmt.Sprintf("cluster-master-%d", i))
				if err != nil || !hooks.HasPreTerminate(m, hooks.DefaultPreTerminate) || !hooks.Has(m, hooks.Default) {
					return false, nil //nolint:nilerr // not there yet: wait
				}
			}
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	if err := c.UpdateMachine(ctx, old, func(m *machinev1beta1.Machine) {
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[framework.ExcludeDrainAnnotation] = ""
	}); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitFor(ctx, 30*time.Second, "the annotation on the EtcdMember condition", func() (bool, error) {
		m, err := c.Machine(ctx, old)
		cond := framework.Condition(m, masters.ConditionType)
		return err == nil && cond != nil && strings.Contains(cond.Message, quorum.NoteExcludeDrain), err
	}); err != nil {
		t.Fatal(err)
	}
	if !gotEvent(t, old, controlplane.ReasonExcludeDrain) {
		t.Error("no Event reports the exclude-node-draining annotation")
	}

	// From the deletion on, the old Machine's instance must not be terminated while its
	// member is still a voter.
	watch := watchTermination(t, c, old)
	if err := c.DeleteMachine(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitFor(ctx, 30*time.Second, "the drain skipped", func() (bool, error) {
		m, err := c.Machine(ctx, old)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		cond := framework.Condition(m, framework.ConditionDrained)
		return err == nil && cond != nil && cond.Status == corev1.ConditionTrue, err
	}); err != nil {
		t.Fatal(err)
	}
	// Some time with no replacement: the Machine waits at its preTerminate hook.
	time.Sleep(3 * time.Second)
	if err := e2e.CreateReplacement(ctx, c, repl); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitVoters(ctx, c, 3*time.Minute, "cluster-master-1", "cluster-master-2", repl); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitGone(ctx, c, time.Minute, old); err != nil {
		t.Fatal(err)
	}
	// The cloud's own record of the termination: the member was gone from the list by then.
	noTerminationWithMember(t, c, old)
	if bad := watch(); len(bad) > 0 {
		t.Fatalf("Machine %s was let through to termination while its etcd member voted: %s", old, strings.Join(bad, "; "))
	}
	if !hasEvent(t, old, quorum.ReasonHookReleased) {
		t.Error("no Event reports the hooks' release")
	}
}

// watchTermination polls the Machine and the voting members until the returned stop is
// called, and returns what it saw that lets the instance go while its member votes: the
// Machine gone, or its Terminable condition True.
func watchTermination(t *testing.T, c *framework.Cluster, name string) func() []string {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan []string, 1)
	ctx := t.Context()
	go func() {
		var bad []string
		for {
			select {
			case <-stop:
				done <- bad
				return
			case <-time.After(50 * time.Millisecond):
			}
			voters, err := e2e.VotingMembers(ctx, c)
			if err != nil || !slices.Contains(voters, name) || len(bad) >= 5 {
				continue
			}
			m, err := c.Machine(ctx, name)
			switch {
			case apierrors.IsNotFound(err):
				bad = append(bad, fmt.Sprintf("the Machine is gone while member %s votes (voters %v)", name, voters))
			case err != nil:
			default:
				if cond := framework.Condition(m, framework.ConditionTerminable); cond != nil && cond.Status == corev1.ConditionTrue {
					bad = append(bad, fmt.Sprintf("Terminable=True while member %s votes (voters %v)", name, voters))
				}
			}
		}
	}()
	var once []string
	stopped := false
	return func() []string {
		if !stopped {
			close(stop)
			once = <-done
			stopped = true
		}
		return once
	}
}

// TestNewMachineDeletedBeforeItsNode is the rollback that cost a cluster-api user their
// quorum: a replacement Machine whose learner was added is deleted before it has a Node
// (status.nodeRef). quorumguard itself adds a learner only for a Running Machine (one with a
// Node), which the test checks first; the learner here is added out of band, as a node-side
// join or an administrator's etcdctl would. OpenShift's Machine controller skips the drain of a
// Machine without a Node, and every preDrain hook with it, so only the preTerminate hook holds
// its instance: nothing may be terminated while its member is in the list. The cloud records
// each termination with the membership at that moment; with the preTerminate hook turned off
// (QUORUMGUARD_E2E_NO_PRETERMINATE=1) the record shows the learner's instance terminated while
// listed, and the test fails. A second replacement then completes.
func TestNewMachineDeletedBeforeItsNode(t *testing.T) {
	off := os.Getenv(noPreTerminateEnv) != ""
	c, _ := setup(t, func(o *app.Options) { o.NoPreTerminateHook = off })
	ctx := t.Context()
	const old, repl, second = "cluster-master-0", "cluster-new-0", "cluster-new-1"

	// The replacement's instance gets its address but never finishes booting.
	c.Cloud.HoldBoot(repl)
	if err := c.DeleteMachine(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := e2e.CreateReplacement(ctx, c, repl); err != nil {
		t.Fatal(err)
	}
	var ip string
	if err := framework.WaitFor(ctx, time.Minute, repl+"'s address and preTerminate hook", func() (bool, error) {
		m, err := c.Machine(ctx, repl)
		if err != nil || framework.InternalIP(m) == nil {
			return false, nil //nolint:nilerr // not provisioned yet
		}
		ip = framework.InternalIP(m).String()
		return off || hooks.HasPreTerminate(m, hooks.DefaultPreTerminate), nil
	}); err != nil {
		t.Fatal(err)
	}
	learnerOf := func() (uint64, bool) {
		members, err := e2e.MemberList(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, mem := range members {
			if slices.ContainsFunc(mem.PeerURLs, func(u string) bool { return strings.Contains(u, "://"+ip+":") }) {
				return mem.ID, true
			}
		}
		return 0, false
	}
	time.Sleep(3 * time.Second)
	if _, ok := learnerOf(); ok {
		t.Fatalf("a member was added for %s, which has no Node yet", repl)
	}
	cli, err := c.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	_, err = cli.MemberAddAsLearner(ctx, []string{"https://" + ip + ":2380"})
	_ = cli.Close()
	if err != nil {
		t.Fatal(err)
	}
	if m, err := c.Machine(ctx, repl); err != nil || m.Status.NodeRef != nil {
		t.Fatalf("%s should have no Node yet (%v)", repl, err)
	}

	// The rollback: the replacement is deleted before its Node ever registered.
	if err := c.DeleteMachine(ctx, repl); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitGone(ctx, c, 2*time.Minute, repl); err != nil {
		t.Fatal(err)
	}
	if _, ok := learnerOf(); ok {
		t.Fatalf("%s's learner is still listed after its Machine went", repl)
	}
	noTerminationWithMember(t, c, repl)
	if err := e2e.WaitVoters(ctx, c, time.Minute, old, "cluster-master-1", "cluster-master-2"); err != nil {
		t.Fatal(err)
	}

	// The old master still waits for a replacement, and the next one completes.
	if err := e2e.CreateReplacement(ctx, c, second); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitVoters(ctx, c, 3*time.Minute, "cluster-master-1", "cluster-master-2", second); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitGone(ctx, c, time.Minute, old); err != nil {
		t.Fatal(err)
	}
	noTerminationWithMember(t, c)
}

// noTerminationWithMember fails the test if the cloud's record shows an instance terminated
// while its etcd member was still listed, or shows no termination of a machine named.
func noTerminationWithMember(t *testing.T, c *framework.Cluster, terminated ...string) {
	t.Helper()
	if bad := c.TerminatedWithMember(); len(bad) > 0 {
		t.Fatalf("an instance was terminated with its etcd member still in the list: %v", bad)
	}
	for _, name := range terminated {
		if !slices.ContainsFunc(c.Terminations(), func(x framework.Termination) bool { return x.Machine == name }) {
			t.Fatalf("the cloud never terminated %s's instance: %v", name, c.Terminations())
		}
	}
}
