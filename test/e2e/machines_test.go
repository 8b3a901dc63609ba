package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/machines"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// zonedCluster starts a three-master cluster with master i in zone boot[i], stopped when the
// test ends.
func zonedCluster(t *testing.T, boot string) *framework.Cluster {
	t.Helper()
	return newCluster(t, boot)
}

// machineSetup starts a three-master cluster with master i in zone boot[i], and the quorum
// controller alone (ManageMachines off). With settled it waits until etcd accepts a
// reconfiguration.
func machineSetup(t *testing.T, boot string, settled bool) *framework.Cluster {
	t.Helper()
	c, _ := startCluster(t, clusterSpec{zones: boot, settle: settled})
	// The ControlPlaneMachineSet is a singleton in the shared apiserver: it goes first.
	t.Cleanup(func() { _ = e2e.DeleteCPMS(context.Background(), c) })
	return c
}

// startMachines starts the Machine controller; it is stopped before the cluster.
func startMachines(t *testing.T, c *framework.Cluster, mutate func(*e2e.MachinesOptions)) {
	t.Helper()
	o := e2e.MachinesOptions{App: e2e.ControllerOptions(c), IdleResync: 2 * time.Second}
	o.App.ManageMachines = true
	if mutate != nil {
		mutate(&o)
	}
	mc, err := e2e.StartMachines(t.Context(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e2e.DeleteCPMS(context.Background(), c)
		_ = mc.Stop()
	})
}

func createCPMS(t *testing.T, c *framework.Cluster, in e2e.CPMSInput) {
	t.Helper()
	if err := c.Client.Create(t.Context(), e2e.NewCPMS(c, in)); err != nil {
		t.Fatal(err)
	}
}

func rollout(t *testing.T, in e2e.RolloutInput) e2e.RolloutResult {
	t.Helper()
	res, err := e2e.RolloutSpec(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rollout to %s in %s: created %v, deleted %v, at most %d Machines; writer: %s; monitor: %s",
		in.Zones, res.Took.Round(time.Millisecond), res.Watch.Created, res.Watch.Deleted, res.Watch.MaxMachines, res.Writer, res.Monitor)
	return res
}

func progressedWith(res e2e.RolloutResult, text string) bool {
	return slices.ContainsFunc(res.Watch.Progressing, func(p string) bool { return strings.Contains(p, text) })
}

// TestMachinesRebalancing: a, b, a is right for two domains and left alone; adding c moves
// index 2 there; removing b moves index 1 to a, the least-used domain left (tied with c,
// alphabetically first).
func TestMachinesRebalancing(t *testing.T) {
	c := machineSetup(t, "aba", true)
	startMachines(t, c, nil)
	createCPMS(t, c, e2e.CPMSInput{Zones: "ab"})
	if _, err := e2e.WaitCPMSCondition(t.Context(), c, 30*time.Second, "Progressing", metav1.ConditionFalse, machines.ReasonAllReplicasUpdated); err != nil {
		t.Fatal(err)
	}
	if err := e2e.UntouchedSpec(t.Context(), c, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	cpms, err := e2e.GetCPMS(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if st := cpms.Status; st.Replicas != 3 || st.ReadyReplicas != 3 || st.UpdatedReplicas != 3 || st.UnavailableReplicas != 0 || st.ObservedGeneration != cpms.Generation {
		t.Fatalf("status %+v, want 3 replicas all ready and updated at generation %d", st, cpms.Generation)
	}

	res := rollout(t, e2e.RolloutInput{Cluster: c, Zones: "abc", Replaced: []int{2},
		Change: func(cpms *machinev1.ControlPlaneMachineSet) { e2e.SetZones(cpms, "abc") }})
	if len(res.Watch.Created) != 1 {
		t.Errorf("created %v, want exactly one Machine", res.Watch.Created)
	}
	if !progressedWith(res, machines.ReasonRebalancing+": ") || !progressedWith(res, "index 2 moves from us-east-1a") {
		t.Errorf("Progressing never said which Machine moves and why: %q", res.Watch.Progressing)
	}

	res = rollout(t, e2e.RolloutInput{Cluster: c, Zones: "aac", Replaced: []int{1},
		Change: func(cpms *machinev1.ControlPlaneMachineSet) { e2e.SetZones(cpms, "ac") }})
	// A Machine in a domain no longer listed matches none of the listed ones.
	if !progressedWith(res, machines.ReasonRebalancing+": ") || !progressedWith(res, "Machine cluster-master-1 is in no listed failure domain") {
		t.Errorf("Progressing never said why index 1 moves: %q", res.Watch.Progressing)
	}
}

// TestMachinesLayoutAndRollingUpdate: three Machines all in a are spread over a, b and c,
// then a template change replaces all three, one at a time.
func TestMachinesLayoutAndRollingUpdate(t *testing.T) {
	c := machineSetup(t, "aaa", true)
	startMachines(t, c, nil)
	res := rollout(t, e2e.RolloutInput{Cluster: c, Zones: "abc", Replaced: []int{1, 2},
		Act: func(ctx context.Context) error {
			return c.Client.Create(ctx, e2e.NewCPMS(c, e2e.CPMSInput{Zones: "abc"}))
		}})
	if len(res.Watch.Created) != 2 {
		t.Errorf("created %v, want two Machines", res.Watch.Created)
	}
	res = rollout(t, e2e.RolloutInput{Cluster: c, Zones: "abc", Instance: "m6i.2xlarge", Replaced: []int{0, 1, 2},
		Change: func(cpms *machinev1.ControlPlaneMachineSet) {
			cpms.Spec.Template.OpenShiftMachineV1Beta1Machine.Spec.ProviderSpec.Value = e2e.TemplateSpec("m6i.2xlarge")
		}, Timeout: 3 * time.Minute})
	var order []string
	for _, name := range res.Watch.Created {
		order = append(order, name[len(name)-1:])
	}
	if got := strings.Join(order, ","); got != "0,1,2" {
		t.Errorf("replacement order by index %s, want 0,1,2 (created %v)", got, res.Watch.Created)
	}
	if !progressedWith(res, machines.ReasonRollingUpdate+": ") || !progressedWith(res, "instanceType") {
		t.Errorf("Progressing never named the template difference: %q", res.Watch.Progressing)
	}
}

// TestMachinesOnDeleteAndStaleCache: under OnDelete a deleted Machine is replaced in its
// domain. Before that, with the controller's cache frozen before someone else created the
// replacement, the fresh read before creating finds it and nothing is duplicated.
func TestMachinesOnDeleteAndStaleCache(t *testing.T) {
	c := machineSetup(t, "abc", true)
	ctx := t.Context()
	createCPMS(t, c, e2e.CPMSInput{Strategy: machinev1.OnDelete, Zones: "abc"})

	// The cache will hold master-1 deleting and no replacement; the replacement exists.
	if err := c.DeleteMachine(ctx, "cluster-master-1"); err != nil {
		t.Fatal(err)
	}
	var stale machinev1beta1.MachineList
	if err := framework.WaitFor(ctx, 10*time.Second, "master-1 deleting", func() (bool, error) {
		err := c.Client.List(ctx, &stale, client.InNamespace(framework.MachineNamespace), client.MatchingLabels{framework.RoleLabel: "master"})
		return err == nil && slices.ContainsFunc(stale.Items, func(m machinev1beta1.Machine) bool {
			return m.Name == "cluster-master-1" && m.DeletionTimestamp != nil
		}), err
	}); err != nil {
		t.Fatal(err)
	}
	byHand := c.NewMaster("cluster-byhand-1", e2e.ZoneSpec('b'))
	if err := c.Client.Create(ctx, byHand); err != nil {
		t.Fatal(err)
	}
	staleClient := &e2e.StaleMachines{}
	staleClient.Freeze(&stale)
	startMachines(t, c, func(o *e2e.MachinesOptions) {
		o.WrapClient = func(cl client.Client) client.Client { staleClient.Client = cl; return staleClient }
	})
	// The controller decides on the stale list, again and again, and must find the
	// replacement on every fresh read.
	if _, err := e2e.WaitCPMSCondition(ctx, c, 30*time.Second, "Progressing", metav1.ConditionFalse, machines.ReasonAllReplicasUpdated); err != nil {
		t.Fatal(err)
	}
	layout, err := e2e.Layout(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var atOne []string
	for _, p := range layout {
		if p.Index == 1 {
			atOne = append(atOne, p.Name)
		}
	}
	if slices.ContainsFunc(atOne, func(n string) bool { return n != "cluster-master-1" && n != "cluster-byhand-1" }) {
		t.Fatalf("index 1 has %v: a duplicate was created from the stale cache", atOne)
	}
	if staleClient.Served() == 0 {
		t.Fatal("the controller never read the stale Machine list")
	}
	staleClient.Thaw()
	if err := framework.WaitFor(ctx, 2*time.Minute, "the hand-made replacement to take over", func() (bool, error) {
		l, err := e2e.Layout(ctx, c)
		return err == nil && e2e.Settled(l, "abc", "") && l[1].Name == "cluster-byhand-1", err
	}); err != nil {
		t.Fatal(err)
	}

	res := rollout(t, e2e.RolloutInput{Cluster: c, Zones: "abc", Replaced: []int{0},
		Act: func(ctx context.Context) error { return c.DeleteMachine(ctx, "cluster-master-0") }})
	if len(res.Watch.Created) != 1 || !strings.HasPrefix(res.Watch.Created[0], "cluster-master-") {
		t.Errorf("created %v, want one cluster-master-<random>-0", res.Watch.Created)
	}
	if !progressedWith(res, machines.ReasonReplacingDeleted+": ") {
		t.Errorf("Progressing never reported the replacement of the deleted Machine: %q", res.Watch.Progressing)
	}
	// OnDelete leaves an outdated Machine alone and says so.
	if err := e2e.UpdateCPMS(ctx, c, func(cpms *machinev1.ControlPlaneMachineSet) {
		cpms.Spec.Template.OpenShiftMachineV1Beta1Machine.Spec.ProviderSpec.Value = e2e.TemplateSpec("m6i.2xlarge")
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e2e.WaitCPMSCondition(ctx, c, 30*time.Second, "Progressing", metav1.ConditionTrue, machines.ReasonNeedsUpdate); err != nil {
		t.Fatal(err)
	}
	if err := e2e.UntouchedSpec(ctx, c, time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestMachinesActOnlyThroughTheEtcdFence: a Machine controller whose token the etcd fence
// refuses creates and deletes no Machine, though the lock (here a fixed token) says it
// leads and the plan has a Machine to create: when a newer leadership has claimed a token it
// steps down, and while quorum is lost it waits, and creates the Machine once quorum is back.
func TestMachinesActOnlyThroughTheEtcdFence(t *testing.T) {
	cases := []struct {
		name string
		// refuse makes the etcd fence refuse the controller's token; the function it returns,
		// when not nil, makes the fence accept it again.
		refuse func(t *testing.T, c *framework.Cluster, fence *etcdmember.Client, token uint64) func()
		// stepsDown: the refusal names a newer leadership, and the controller steps down.
		stepsDown bool
	}{
		{
			name: "a newer leadership has claimed a token",
			refuse: func(t *testing.T, _ *framework.Cluster, fence *etcdmember.Client, token uint64) func() {
				if newer, err := fence.ClaimToken(t.Context(), token); err != nil || newer <= token {
					t.Fatalf("claim a token above %d: %d, %v", token, newer, err)
				}
				return nil
			},
			stepsDown: true,
		},
		{
			name: "quorum is lost",
			refuse: func(t *testing.T, c *framework.Cluster, _ *etcdmember.Client, _ uint64) func() {
				for _, m := range []string{"cluster-master-1", "cluster-master-2"} {
					c.Agent.Member(m).Freeze()
				}
				return func() {
					for _, m := range []string{"cluster-master-1", "cluster-master-2"} {
						c.Agent.Member(m).Thaw()
					}
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := machineSetup(t, "aba", false)
			ctx := t.Context()
			ca, cert, key := c.Net.ClientFiles()
			fence, err := etcdmember.NewFromFiles(etcdmember.Config{Endpoints: c.Agent.RunningEndpoints()}, etcdmember.TLSFiles{CA: ca, Cert: cert, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = fence.Close() })
			token, err := fence.FenceToken(ctx)
			if err != nil || token == 0 {
				t.Fatalf("the quorum controller's token: %d, %v", token, err)
			}
			passed := &fenceAnswers{}
			stepped := make(chan error, 1)
			startMachines(t, c, func(o *e2e.MachinesOptions) {
				o.Token = token
				o.WrapEtcd = func(f machines.EtcdFence) machines.EtcdFence { passed.inner = f; return passed }
				o.StepDown = func(err error) {
					select {
					case stepped <- err:
					default:
					}
				}
			})
			undo := tc.refuse(t, c, fence, token)
			// Index 2 moves from a to c: the plan creates its replacement first.
			createCPMS(t, c, e2e.CPMSInput{Zones: "abc"})
			var steppedDown error
			if err := framework.WaitFor(ctx, 60*time.Second, "the etcd fence to refuse the controller twice, or it to step down", func() (bool, error) {
				if changed := machinesChanged(t, c); changed != "" {
					t.Fatalf("%s while the etcd fence refuses the controller's token (fence answers: %v)", changed, passed.errors())
				}
				select {
				case steppedDown = <-stepped:
					return true, nil
				default:
				}
				return !tc.stepsDown && passed.refused() >= 2, nil
			}); err != nil {
				t.Fatalf("%v; fence answers: %v", err, passed.errors())
			}
			if changed := machinesChanged(t, c); changed != "" {
				t.Fatalf("%s while the etcd fence refuses the controller's token", changed)
			}
			var fe *etcdmember.FencedError
			if tc.stepsDown != (steppedDown != nil) || tc.stepsDown && !errors.As(steppedDown, &fe) {
				t.Fatalf("stepped down with %v; want a step-down on a fenced token: %v", steppedDown, tc.stepsDown)
			}
			t.Logf("fence answers: %v", passed.errors())
			if undo == nil {
				return
			}
			undo()
			if err := framework.WaitFor(ctx, 90*time.Second, "the replacement to be created once the fence passes", func() (bool, error) {
				return machinesChanged(t, c) != "", nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// fenceAnswers records what the etcd fence answered the Machine controller.
type fenceAnswers struct {
	inner   machines.EtcdFence
	mu      sync.Mutex
	answers []error
}

func (f *fenceAnswers) Fence(ctx context.Context, token uint64) error {
	err := f.inner.Fence(ctx, token)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers = append(f.answers, err)
	return err
}

func (f *fenceAnswers) refused() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, err := range f.answers {
		if err != nil {
			n++
		}
	}
	return n
}

func (f *fenceAnswers) errors() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.answers)
}

// machinesChanged names a control-plane Machine created or deleting since machineSetup's
// three, or "".
func machinesChanged(t *testing.T, c *framework.Cluster) string {
	t.Helper()
	var list machinev1beta1.MachineList
	if err := c.Client.List(t.Context(), &list, client.InNamespace(framework.MachineNamespace), client.MatchingLabels{framework.RoleLabel: "master"}); err != nil {
		t.Fatal(err)
	}
	for _, m := range list.Items {
		switch {
		case !slices.Contains([]string{"cluster-master-0", "cluster-master-1", "cluster-master-2"}, m.Name):
			return "Machine " + m.Name + " was created"
		case m.DeletionTimestamp != nil:
			return "Machine " + m.Name + " is being deleted"
		}
	}
	return ""
}

// TestMachinesBadInputAndFailures: with ManageMachines off nothing is created or deleted;
// with it on, every invalid input leaves the Machines untouched and sets Degraded with a
// reason and the field; a replacement that keeps failing is retried with a backoff and
// given up after three attempts.
func TestMachinesBadInputAndFailures(t *testing.T) {
	c := machineSetup(t, "aba", false)
	ctx := t.Context()
	// A valid set that would move index 2 and replace every Machine.
	valid := e2e.CPMSInput{Zones: "abc", InstanceType: "m6i.2xlarge"}

	t.Run("ManageMachines=false creates and deletes nothing", func(t *testing.T) {
		o := e2e.MachinesOptions{App: e2e.ControllerOptions(c)}
		o.App.ManageMachines = false
		mc, err := e2e.StartMachines(ctx, c, o)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = mc.Stop() }()
		createCPMS(t, c, valid)
		defer func() { _ = e2e.DeleteCPMS(context.Background(), c) }()
		if err := e2e.UntouchedSpec(ctx, c, 3*time.Second); err != nil {
			t.Fatal(err)
		}
		if cpms, err := e2e.GetCPMS(ctx, c); err != nil || len(cpms.Status.Conditions) > 0 {
			t.Fatalf("status written while not managing Machines: %+v (%v)", cpms.Status, err)
		}
	})

	startMachines(t, c, func(o *e2e.MachinesOptions) { o.Backoff = 300 * time.Millisecond })
	cases := []struct {
		name, reason, field string
		cpms                func() *machinev1.ControlPlaneMachineSet
		before, after       func(ctx context.Context) error
	}{
		{
			name: "unknown platform", reason: machines.ReasonUnsupportedPlatform, field: "failureDomains.platform",
			cpms: func() *machinev1.ControlPlaneMachineSet {
				cpms := e2e.NewCPMS(c, valid)
				cpms.Spec.Template.OpenShiftMachineV1Beta1Machine.FailureDomains = &machinev1.FailureDomains{Platform: "BareMetal"}
				return cpms
			},
		},
		{
			name: "a selector that matches no Machine", reason: machines.ReasonNoMachinesSelected, field: "spec.selector",
			cpms: func() *machinev1.ControlPlaneMachineSet {
				cpms := e2e.NewCPMS(c, valid)
				cpms.Spec.Selector.MatchLabels[framework.ClusterLabel] = "another"
				cpms.Spec.Template.OpenShiftMachineV1Beta1Machine.ObjectMeta.Labels[framework.ClusterLabel] = "another"
				return cpms
			},
		},
		{
			name: "a template the platform cannot use", reason: machines.ReasonInvalidTemplate, field: "providerSpec.value.kind",
			cpms: func() *machinev1.ControlPlaneMachineSet {
				cpms := e2e.NewCPMS(c, valid)
				cpms.Spec.Template.OpenShiftMachineV1Beta1Machine.Spec.ProviderSpec.Value = &runtime.RawExtension{Raw: []byte(`{"kind":"GCPMachineProviderSpec","machineType":"n2-standard-4"}`)}
				return cpms
			},
		},
		{
			name: "more indexes than replicas", reason: machines.ReasonTooManyIndexes, field: "spec.replicas",
			cpms: func() *machinev1.ControlPlaneMachineSet { return e2e.NewCPMS(c, valid) },
			before: func(ctx context.Context) error {
				m := c.NewMaster("cluster-master-3", e2e.ZoneSpec('c'))
				m.Annotations = map[string]string{framework.FailProvisionAnnotation: "true"}
				return c.Client.Create(ctx, m)
			},
			after: func(ctx context.Context) error {
				if err := c.DeleteMachine(ctx, "cluster-master-3"); err != nil {
					return err
				}
				return e2e.WaitGone(ctx, c, 30*time.Second, "cluster-master-3")
			},
		},
		{
			name: "a control-plane Node without a Machine", reason: machines.ReasonNodeWithoutMachine, field: "Node stray-master",
			cpms: func() *machinev1.ControlPlaneMachineSet { return e2e.NewCPMS(c, valid) },
			before: func(ctx context.Context) error {
				return c.Client.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "stray-master", Labels: map[string]string{machines.MasterNodeLabel: ""}}})
			},
			after: func(ctx context.Context) error {
				return client.IgnoreNotFound(c.Client.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "stray-master"}}))
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				if err := tc.before(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if tc.after != nil {
				defer func() {
					if err := tc.after(context.Background()); err != nil {
						t.Error(err)
					}
				}()
			}
			if err := c.Client.Create(ctx, tc.cpms()); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = e2e.DeleteCPMS(context.Background(), c) }()
			cond, err := e2e.WaitCPMSCondition(ctx, c, 20*time.Second, "Degraded", metav1.ConditionTrue, tc.reason)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(cond.Message, tc.field) {
				t.Errorf("Degraded message %q does not name %s", cond.Message, tc.field)
			}
			if err := e2e.UntouchedSpec(ctx, c, 1500*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if !eventually(t, func() bool { return hasCPMSEvent(t, tc.reason) }) {
				t.Errorf("no %s event on the ControlPlaneMachineSet", tc.reason)
			}
		})
	}

	t.Run("a replacement that keeps failing is retried, then given up", func(t *testing.T) {
		in := e2e.CPMSInput{Zones: "ab", InstanceType: "m6i.2xlarge", Annotations: map[string]string{framework.FailProvisionAnnotation: "true"}}
		watch := e2e.WatchMachines(ctx, c)
		createCPMS(t, c, in)
		defer func() { _ = e2e.DeleteCPMS(context.Background(), c) }()
		cond, err := e2e.WaitCPMSCondition(ctx, c, time.Minute, "Degraded", metav1.ConditionTrue, machines.ReasonReplacementFailed)
		if err != nil {
			t.Fatal(err)
		}
		if err := e2e.UntouchedSpec(ctx, c, 1500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		r := watch.Stop()
		t.Logf("created %v, deleted %v; Degraded: %s", r.Created, r.Deleted, cond.Message)
		if len(r.Created) != 3 || slices.ContainsFunc(r.Created, func(n string) bool { return !strings.HasSuffix(n, "-0") }) {
			t.Fatalf("created %v, want three attempts at index 0", r.Created)
		}
		if want := r.Created[:2]; fmt.Sprint(r.Deleted) != fmt.Sprint(want) {
			t.Fatalf("deleted %v, want the first two attempts %v", r.Deleted, want)
		}
		if !strings.Contains(cond.Message, "attempt 3 of 3") {
			t.Errorf("Degraded message %q does not count the attempts", cond.Message)
		}
		m, err := c.Machine(ctx, "cluster-master-0")
		if err != nil || m.DeletionTimestamp != nil {
			t.Fatalf("the Machine being replaced must stay: %v", err)
		}
		if m.Annotations[machines.FailedAttemptsAnnotation] != "2" {
			t.Errorf("failed attempts recorded on cluster-master-0: %q, want 2", m.Annotations[machines.FailedAttemptsAnnotation])
		}
		if !gotEvent(t, r.Created[0], machines.ReasonMachineFailed) {
			t.Errorf("no %s event on %s", machines.ReasonMachineFailed, r.Created[0])
		}
	})
}

func hasCPMSEvent(t *testing.T, reason string) bool {
	t.Helper()
	var list corev1.EventList
	if err := cp.Client.List(t.Context(), &list, client.InNamespace(framework.MachineNamespace)); err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(list.Items, func(e corev1.Event) bool {
		return e.InvolvedObject.Kind == "ControlPlaneMachineSet" && e.Reason == reason && time.Since(e.CreationTimestamp.Time) < time.Minute
	})
}
