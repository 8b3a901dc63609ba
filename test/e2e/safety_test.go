package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/inspect"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// patchStatus changes a Machine's status, reading it again on a conflict.
func patchStatus(t *testing.T, c *framework.Cluster, name string, change func(*machinev1beta1.Machine)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		m, err := c.Machine(t.Context(), name)
		if err != nil {
			return err
		}
		change(m)
		return c.Client.Status().Update(t.Context(), m)
	})
	if err != nil {
		t.Fatalf("update the status of %s: %v", name, err)
	}
}

// waitReason waits until the Machine's EtcdMember condition has reason and a message holding
// every fragment, and returns the Machine.
func waitReason(t *testing.T, c *framework.Cluster, name, reason string, fragments ...string) *machinev1beta1.Machine {
	t.Helper()
	var m *machinev1beta1.Machine
	var last string
	err := framework.WaitFor(t.Context(), 30*time.Second, fmt.Sprintf("%s's EtcdMember to be %s", name, reason), func() (bool, error) {
		var err error
		if m, err = c.Machine(t.Context(), name); err != nil {
			return false, err
		}
		cond := framework.Condition(m, masters.ConditionType)
		if cond == nil {
			return false, nil
		}
		last = cond.Reason + ": " + cond.Message
		if cond.Reason != reason {
			return false, nil
		}
		for _, f := range fragments {
			if !strings.Contains(cond.Message, f) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%v; last condition %q", err, last)
	}
	return m
}

// holdsFor checks, pass after pass for d, that the Machine keeps the hook and that etcd
// still lists member id.
func holdsFor(t *testing.T, c *framework.Cluster, name string, id uint64, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		m, err := c.Machine(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if !hooks.Has(m, hooks.Default) {
			t.Fatalf("the hook of %s was released while its member %x still votes", name, id)
		}
		if !memberListed(t, c, id) {
			t.Fatalf("member %x of %s was removed", id, name)
		}
	}
}

func memberListed(t *testing.T, c *framework.Cluster, id uint64) bool {
	t.Helper()
	cli, err := c.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range resp.Members {
		if m.ID == id {
			return true
		}
	}
	return false
}

// countEvents counts the Events of this Machine (by UID: earlier tests in the shared
// apiserver used the same names) with reason and a message holding fragment.
func countEvents(t *testing.T, c *framework.Cluster, machine, reason, fragment string) int {
	t.Helper()
	m, err := c.Machine(t.Context(), machine)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events(t, machine) {
		if e.InvolvedObject.UID == m.UID && e.Reason == reason && strings.Contains(e.Message, fragment) {
			n += max(1, int(e.Count))
		}
	}
	return n
}

// TestVoterOffItsMachinesAddressesKeepsTheHook: a member whose peer URL is not among its
// Machine's addresses is still placed on it by its Node name, so deleting the Machine does
// not release the hook. Once nothing identifies the member at all, it is unaccounted for:
// the hook stays, and the Machine, an Event, the ClusterOperator and the status report say so.
func TestVoterOffItsMachinesAddressesKeepsTheHook(t *testing.T) {
	const co = "qg-unaccounted"
	c, rc := statusCluster(t, co, nil)
	settle(t, c) // etcd would take the removal, were the controller to ask for it
	name := "cluster-master-0"
	id := c.Agent.Member(name).ID()
	patchStatus(t, c, name, func(m *machinev1beta1.Machine) {
		for i, a := range m.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				m.Status.Addresses[i].Address = "10.255.255.1"
			}
		}
	})
	if err := c.DeleteMachine(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	waitReason(t, c, name, quorum.ReasonWaitingForReplacement, fmt.Sprintf("member %x stays", id))
	holdsFor(t, c, name, id, 2*time.Second)

	patchStatus(t, c, name, func(m *machinev1beta1.Machine) { m.Status.NodeRef = nil })
	waitReason(t, c, name, quorum.ReasonBlocked, fmt.Sprintf("%x", id), "not accounted for")
	holdsFor(t, c, name, id, 2*time.Second)
	if !eventually(t, func() bool { return countEvents(t, c, name, "MembershipUnclear", fmt.Sprintf("%x", id)) > 0 }) {
		t.Errorf("no MembershipUnclear Event on %s names member %x", name, id)
	}
	err := framework.WaitFor(t.Context(), 30*time.Second, "the ClusterOperator to name the unaccounted member", func() (bool, error) {
		conds, err := conditions(t.Context(), co)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		d := conds[configv1.OperatorDegraded]
		return d.Status == configv1.ConditionTrue && strings.Contains(d.Reason, "UnaccountedMembers") && strings.Contains(d.Message, fmt.Sprintf("%x", id)), err
	})
	if err != nil {
		t.Error(err)
	}
	ca, cert, key := c.Net.ClientFiles()
	rep, err := inspect.Cluster(t.Context(), cp.Config, app.Options{Namespace: framework.MachineNamespace, Hook: hooks.Default, DefaultReplicas: 3,
		EtcdCA: ca, EtcdCert: cert, EtcdKey: key, EtcdEndpoints: c.Agent.RunningEndpoints()})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range rep.Members {
		if m.ID == fmt.Sprintf("%x", id) {
			found = m.Machine == "matches no Machine" && m.Placement != ""
		}
	}
	if !found || rep.Next.Action != string(quorum.None) {
		t.Errorf("status report: members %+v, next %+v; want member %x shown as matching no Machine and nothing to do", rep.Members, rep.Next, id)
	}
	_ = rc
}

// TestAmbiguousDeadVoterIsNotRemoved: a dead member on an address two Machines report is
// ambiguous. It is reported as such and never removed on a guess.
func TestAmbiguousDeadVoterIsNotRemoved(t *testing.T) {
	c, _ := setup(t, nil)
	dead := c.Agent.Member("cluster-master-2")
	id := dead.ID()
	dead.Kill()
	patchStatus(t, c, "cluster-master-1", func(m *machinev1beta1.Machine) {
		m.Status.Addresses = append(m.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: dead.IP.String()})
	})
	waitReason(t, c, "cluster-master-2", quorum.ReasonBlocked, fmt.Sprintf("%x", id), "ambiguous")
	holdsFor(t, c, "cluster-master-2", id, 3*time.Second)
	if !eventually(t, func() bool { return countEvents(t, c, "cluster-master-2", "MembershipUnclear", "ambiguous") > 0 }) {
		t.Error("no MembershipUnclear Event calls the member ambiguous")
	}
}

// TestUnindexedMachineGetsNoMember: with an Active ControlPlaneMachineSet, a master Machine
// whose name carries no index is one the set can never manage; it gets no learner, so etcd
// never has more voters than the set's replicas.
func TestUnindexedMachineGetsNoMember(t *testing.T) {
	c, _ := setup(t, nil)
	t.Cleanup(func() { _ = e2e.DeleteCPMS(context.Background(), c) })
	createCPMS(t, c, e2e.CPMSInput{Strategy: "OnDelete", Zones: "a"})
	odd := "cluster-master-extra"
	if err := c.Client.Create(t.Context(), c.NewMaster(odd, framework.AWSProviderSpec("us-east-1a", "subnet-us-east-1a"))); err != nil {
		t.Fatal(err)
	}
	waitReason(t, c, odd, quorum.ReasonNotMember, "may not hold an etcd member", "index")
	time.Sleep(3 * time.Second)
	if n := countEvents(t, c, odd, "LearnerAdded", ""); n > 0 {
		t.Fatalf("%d learners were added for %s", n, odd)
	}
	voters, err := e2e.VotingMembers(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(voters) != 3 {
		t.Fatalf("voting members %v; want the three indexed masters", voters)
	}
}

// TestLearnerThatNeverStartsIsRemoved: a replacement whose etcd never starts holds etcd's
// one learner slot only until --learner-start-timeout; then it is removed and the Machine
// says why.
func TestLearnerThatNeverStartsIsRemoved(t *testing.T) {
	c, _ := setup(t, func(o *app.Options) { o.LearnerStartTimeout = 2 * time.Second })
	name := "cluster-new-0"
	c.Agent.Hold(name)
	if err := e2e.CreateReplacement(t.Context(), c, name); err != nil {
		t.Fatal(err)
	}
	err := framework.WaitFor(t.Context(), 60*time.Second, "the unstarted learner to be removed and added again", func() (bool, error) {
		return countEvents(t, c, name, "LearnerNotStarted", "for 2s") > 0 && countEvents(t, c, name, "LearnerAdded", "") >= 2, nil
	})
	if err != nil {
		t.Fatalf("%v; events %v", err, eventReasons(t, c, name))
	}
}

func eventReasons(t *testing.T, c *framework.Cluster, machine string) []string {
	m, err := c.Machine(t.Context(), machine)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range events(t, machine) {
		if e.InvolvedObject.UID != m.UID {
			continue
		}
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

// silentPromote answers the first promotion as done without making it, as etcd did when a
// promotion was reported but not applied.
type silentPromote struct {
	controlplane.Etcd
	dropped bool
}

func (s *silentPromote) Promote(ctx context.Context, token, id uint64, still etcdmember.Guard) error {
	if !s.dropped {
		s.dropped = true
		return nil
	}
	return s.Etcd.Promote(ctx, token, id, still)
}

// TestPromotionIsReadBack: a promotion etcd answers but does not apply is found by reading
// the member list again; it is reported, not announced, and tried again.
func TestPromotionIsReadBack(t *testing.T) {
	c, _ := startCluster(t, clusterSpec{settle: true, adjust: func(a *app.Controller) error {
		a.Reconciler.Etcd = &silentPromote{Etcd: a.Reconciler.Etcd}
		return nil
	}})
	replace(t, e2e.ReplaceInput{Cluster: c, Delete: []string{"cluster-master-0"}, Replacements: []string{"cluster-new-0"}, MinVoters: 3})
	eventually(t, func() bool {
		return countEvents(t, c, "cluster-new-0", "LearnerPromoted", "") > 0 && countEvents(t, c, "cluster-new-0", "PromoteFailed", "still shows a learner") > 0
	})
	if n := countEvents(t, c, "cluster-new-0", "LearnerPromoted", ""); n != 1 {
		t.Errorf("%d LearnerPromoted Events; want exactly one, for the promotion etcd applied", n)
	}
	if countEvents(t, c, "cluster-new-0", "PromoteFailed", "still shows a learner") != 1 {
		t.Errorf("no PromoteFailed Event says the member list still shows a learner; events %v", eventReasons(t, c, "cluster-new-0"))
	}
}

// TestDeadVoterOnRunningMachineIsNamed: with the member of a running Machine dead, neither
// promoting the replacement nor removing the deleting Machine's member leaves a margin; the
// deleting Machine names the dead member and what unblocks it, and the replacement goes on
// once that member answers again.
func TestDeadVoterOnRunningMachineIsNamed(t *testing.T) {
	c, _ := setup(t, nil)
	dead := c.Agent.Member("cluster-master-1")
	id := dead.ID()
	dead.Kill()
	if err := c.DeleteMachine(t.Context(), "cluster-master-0"); err != nil {
		t.Fatal(err)
	}
	if err := e2e.CreateReplacement(t.Context(), c, "cluster-new-0"); err != nil {
		t.Fatal(err)
	}
	waitReason(t, c, "cluster-master-0", quorum.ReasonBlocked, fmt.Sprintf("%x", id), "cluster-master-1", "answers again")
	if err := dead.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitGone(t.Context(), c, 2*time.Minute, "cluster-master-0"); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitVoters(t.Context(), c, 30*time.Second, "cluster-master-1", "cluster-master-2", "cluster-new-0"); err != nil {
		t.Fatal(err)
	}
}
