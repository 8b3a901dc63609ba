package release_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/endpoints"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/openshift"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/pkg/release"
	"github.com/quorumguard/quorumguard/pkg/snapshot"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// One real apiserver for the package, started by the first test that needs it; each test
// runs its own three-member TLS etcd cluster and simulated machine-api on it.
var (
	cpOnce sync.Once
	cp     *framework.ControlPlane
	cpErr  error
)

func controlPlane(t *testing.T) *framework.ControlPlane {
	t.Helper()
	cpOnce.Do(func() { cp, cpErr = framework.StartControlPlane(framework.ControlPlaneOptions{}) })
	if cpErr != nil {
		t.Fatal(cpErr)
	}
	return cp
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cp != nil {
		_ = cp.Stop()
	}
	os.Exit(code)
}

// env is one test's cluster and the release's view of it.
type env struct {
	t    *testing.T
	c    *framework.Cluster
	cl   client.Client
	view *etcdmember.View
}

// start runs a three-master cluster whose Machines carry quorumguard's hook from creation,
// as after an installer (no controller is needed to put it there).
func start(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	prefix := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	c, err := framework.StartCluster(ctx, controlPlane(t), framework.ClusterOptions{Dir: t.TempDir(), Prefix: prefix, Hook: &hooks.Default,
		ProvisionDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	cl, err := client.New(c.CP.Config, client.Options{Scheme: app.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	view, err := app.NewEtcdView(e2e.ControllerOptions(c), cl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(view.Close)
	return &env{t: t, c: c, cl: cl, view: view}
}

func (e *env) name(i int) string { return fmt.Sprintf("%s-master-%d", e.c.Opts.Prefix, i) }

// release runs a release as `quorumguard release` does and returns what it printed.
func (e *env) release(req release.Request) (string, *release.Result, error) {
	e.t.Helper()
	return e.releaseWith(nil, req)
}

// releaseWith is release taking its snapshots with s (none when nil).
func (e *env) releaseWith(s release.Snapshotter, req release.Request) (string, *release.Result, error) {
	e.t.Helper()
	return e.releaseConfig(func(c *release.Config) { c.Snapshots = s }, req)
}

// releaseConfig is release with its configuration changed by set.
func (e *env) releaseConfig(set func(*release.Config), req release.Request) (string, *release.Result, error) {
	e.t.Helper()
	var out bytes.Buffer
	cfg := release.Config{Client: e.cl, Etcd: e.view, Namespace: framework.MachineNamespace,
		Hook: hooks.Default, PreTerminateHook: hooks.DefaultPreTerminate, DefaultReplicas: 3, Out: &out, Instance: "test"}
	set(&cfg)
	res, err := release.Run(e.t.Context(), cfg, req)
	e.t.Logf("release %+v: %v\n%s", req, err, out.String())
	return out.String(), res, err
}

// refused wants a refusal whose reason holds want.
func (e *env) refused(req release.Request, want string) {
	e.t.Helper()
	out, res, err := e.release(req)
	var re *release.RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Plan.Refused, want) || !strings.Contains(out, want) {
		e.t.Fatalf("release %+v = %v; want a refusal saying %q, printed", req, err, want)
	}
	if res.Token != 0 || res.Removed || res.Released {
		e.t.Fatalf("a refused release changed something: %+v", res)
	}
}

// members lists etcd's members, by name ("" for one that never started).
func (e *env) members() []etcdmember.Observed {
	e.t.Helper()
	ms, err := e.view.Observe(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return ms
}

func (e *env) memberOf(name string) etcdmember.Observed {
	e.t.Helper()
	for _, m := range e.members() {
		if m.Name == name {
			return m
		}
	}
	e.t.Fatalf("no member named %s", name)
	return etcdmember.Observed{}
}

func (e *env) machine(name string) *machinev1beta1.Machine {
	e.t.Helper()
	m, err := e.c.Machine(e.t.Context(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// deleteMachine deletes a Machine and waits until the apiserver shows it deleting.
func (e *env) deleteMachine(name string) {
	e.t.Helper()
	if err := e.c.DeleteMachine(e.t.Context(), name); err != nil {
		e.t.Fatal(err)
	}
	e.waitFor(name+" deleting", func() bool { return e.machine(name).DeletionTimestamp != nil })
}

func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	if err := framework.WaitFor(e.t.Context(), 90*time.Second, what, func() (bool, error) { return cond(), nil }); err != nil {
		e.t.Fatal(err)
	}
}

// events are the ManualRelease Events on a Machine, oldest first, as "Type Action: note".
func (e *env) events(machine string) []string {
	e.t.Helper()
	var list eventsv1.EventList
	if err := e.cl.List(e.t.Context(), &list, client.InNamespace(framework.MachineNamespace)); err != nil {
		e.t.Fatal(err)
	}
	var evs []eventsv1.Event
	for _, ev := range list.Items {
		if ev.Regarding.Name == machine && ev.Reason == release.EventReason {
			evs = append(evs, ev)
		}
	}
	slices.SortFunc(evs, func(a, b eventsv1.Event) int { return a.EventTime.Compare(b.EventTime.Time) })
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type+" "+ev.Action+": "+ev.Note)
	}
	return out
}

func listed(ms []etcdmember.Observed, id uint64) bool {
	return slices.ContainsFunc(ms, func(m etcdmember.Observed) bool { return m.ID == id })
}

// TestReleaseRefusals: a deleting Machine whose member still votes, with no replacement,
// is refused (3 voters would become 2: fewer than desired, and no fault tolerance left);
// with a second member dead, --force is refused too (2 voters with 1 healthy, below the
// quorum of 2), and so is --member for a member a Machine accounts for. Nothing changes.
func TestReleaseRefusals(t *testing.T) {
	e := start(t)
	old := e.name(0)
	e.deleteMachine(old)
	id := e.memberOf(old).ID

	e.refused(release.Request{Machine: old}, "its replacement is not promoted yet: 2 voting members would remain, fewer than the desired 3")
	e.refused(release.Request{Machine: e.name(1)}, "is not being deleted")
	if ev := e.events(old); len(ev) == 0 || !strings.HasPrefix(ev[len(ev)-1], corev1.EventTypeWarning+" Refuse: quorumguard release refused") {
		t.Errorf("the refusal is not recorded on %s: %q", old, ev)
	}

	e.c.Agent.Member(e.name(1)).Kill()
	e.waitFor(e.name(1)+"'s member seen dead", func() bool { m := e.memberOf(e.name(1)); return !m.Healthy && !m.Answered })
	e.refused(release.Request{Machine: old, Force: true}, "would lose quorum: 1 healthy of 2 voting members would remain, below the quorum of 2")
	e.refused(release.Request{Member: e.memberOf(e.name(1)).ID}, "belongs to Machine "+e.name(1)+"; use `quorumguard release "+e.name(1)+"`")

	if !listed(e.members(), id) || !hooks.Has(e.machine(old), hooks.Default) {
		t.Fatalf("a refused release changed the cluster: member %x listed %v, hook %v", id, listed(e.members(), id), hooks.Has(e.machine(old), hooks.Default))
	}
}

// TestReleasePromotedReplacement: with the replacement promoted (4 voters), the old
// Machine's member is removed (4 voters become 3, quorum 2, tolerance 1) and only then its
// hook released, while a controller runs: the release fences it out.
func TestReleasePromotedReplacement(t *testing.T) {
	e := start(t)
	ctx := t.Context()
	o := e2e.ControllerOptions(e.c)
	// The controller brings the replacement to a vote and then waits for an endpoint
	// consumer that never acknowledges, so the old member stays for the release to remove.
	o.EndpointsConfigMap, o.EndpointConsumers = "quorumguard-etcd-endpoints", []string{"never"}
	ctrl, err := e2e.StartController(ctx, e.c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctrl.Stop() })
	old, repl := e.name(0), e.name(3)
	if err := e.cl.Create(ctx, e.c.NewMaster(repl, framework.AWSProviderSpec("us-east-1a", "subnet-us-east-1a"))); err != nil {
		t.Fatal(err)
	}
	e.deleteMachine(old)
	e.waitFor("the replacement promoted and the old member waiting", func() bool {
		c := framework.Condition(e.machine(old), masters.ConditionType)
		return c != nil && c.Reason == quorum.ReasonWaitingForEndpointConsumers
	})
	id := e.memberOf(old).ID
	if n := len(e.members()); n != 4 {
		t.Fatalf("%d members before the release, want 4", n)
	}

	// Told of the controller's endpoint consumers, the release waits for them as the
	// controller does: refused, nothing changed.
	ns := o.ElectionNS
	if ns == "" {
		ns = framework.MachineNamespace
	}
	consumers := func(c *release.Config) {
		c.EndpointsNamespace, c.EndpointsConfigMap, c.EndpointConsumers = ns, o.EndpointsConfigMap, o.EndpointConsumers
	}
	out, res, err := e.releaseConfig(consumers, release.Request{Machine: old})
	var re *release.RefusedError
	if !errors.As(err, &re) || res.Token != 0 || res.Removed || res.Released || !strings.Contains(out, "never has acknowledged no list") {
		t.Fatalf("release while endpoint consumer \"never\" has not acknowledged = %+v, %v; want refused with nothing changed", res, err)
	}

	// Told of OpenShift's contract, with every kube-apiserver node on a revision that still
	// dials the member, it waits as the controller would.
	rollout := openShiftRolloutDialling(t, e, id)
	out, res, err = e.releaseConfig(func(c *release.Config) { c.OpenShift = rollout }, release.Request{Machine: old})
	if !errors.As(err, &re) || res.Token != 0 || res.Removed || res.Released || !strings.Contains(out, "the latest, revision 1, still dials it") {
		t.Fatalf("release while kube-apiserver revision 1 dials the member = %+v, %v:\n%s\nwant refused with nothing changed", res, err, out)
	}

	// With snapshots asked for, one that cannot be taken refuses the release, and nothing
	// changes: no token, no removal, the hook kept.
	out, res, err = e.releaseWith(failingSnapshots{}, release.Request{Machine: old})
	if !errors.As(err, &re) || res.Token != 0 || res.Removed || res.Released || !strings.Contains(out, "no etcd snapshot could be taken") {
		t.Fatalf("release with a failing snapshot = %+v, %v; want refused with nothing changed", res, err)
	}
	if !listed(e.members(), id) || !hooks.Has(e.machine(old), hooks.Default) {
		t.Fatalf("a release refused for its snapshot removed the member or the hook")
	}
	// A real snapshot is taken, checked and kept before the removal.
	ca, cert, key := e.c.Net.ClientFiles()
	dir := t.TempDir()
	taker := &snapshot.Taker{Dir: dir, Streamer: snapshot.ClientStreamer{Files: snapshot.TLSFiles{CA: ca, Cert: cert, Key: key}}}
	// And --force goes past the consumers, naming the risk.
	out, res, err = e.releaseConfig(func(c *release.Config) { consumers(c); c.Snapshots = taker }, release.Request{Machine: old, Force: true})
	if !strings.Contains(out, "--force: going ahead although the endpoint consumers may still be configured with it") {
		t.Errorf("a forced release past the endpoint consumers did not name the risk:\n%s", out)
	}
	if err != nil || !res.Removed || !res.Released {
		t.Fatalf("release %s = %+v, %v; want the member removed and the hook released", old, res, err)
	}
	if m, err := e.c.Machine(ctx, old); err == nil && (hooks.Has(m, hooks.Default) || hooks.HasPreTerminate(m, hooks.DefaultPreTerminate)) {
		t.Fatalf("after the release %s still has %+v; want both hooks released", old, m.Spec.LifecycleHooks)
	}
	snap, removed, released := strings.Index(out, "etcd snapshot before the removal: "+dir), strings.Index(out, "removed etcd member"), strings.Index(out, "released preDrain hook QuorumGuard and preTerminate hook QuorumGuard of Machine "+old)
	if snap < 0 || removed < snap || released < removed {
		t.Fatalf("want a snapshot in %s, then the member removed, then the hook released; printed:\n%s", dir, out)
	}
	files, err := filepath.Glob(filepath.Join(dir, "etcd-*.db"))
	if err != nil || len(files) != 1 {
		t.Fatalf("snapshots in %s: %v, %v; want one", dir, files, err)
	}
	if err := snapshot.VerifyFile(files[0]); err != nil {
		t.Errorf("the snapshot taken before the removal does not verify: %v", err)
	}
	if listed(e.members(), id) {
		t.Fatalf("member %x still listed", id)
	}
	if ms := e.members(); len(ms) != 3 {
		t.Fatalf("%d members after the release, want 3", len(ms))
	}
	ev := e.events(old)
	if len(ev) < 5 || !strings.HasPrefix(ev[0], "Warning Refuse: quorumguard release refused: waiting for endpoint consumers") ||
		!strings.HasPrefix(ev[1], "Warning Refuse: quorumguard release refused: waiting for the kube-apiserver operator") ||
		!strings.HasPrefix(ev[2], "Warning SnapshotFailed: quorumguard release refused: no etcd snapshot could be taken") ||
		!strings.HasPrefix(ev[3], "Warning RemoveMember: quorumguard release: removed etcd member") ||
		!strings.HasPrefix(ev[4], "Warning ReleaseHook: quorumguard release released preDrain hook") {
		t.Errorf("Events on %s: %q; want the refusals for the consumers, the kube-apiserver rollout and the snapshot, then the forced removal and release", old, ev)
	}
	// The controller's token is refused from the release on: it cannot act on what it read
	// before, and a controller that tries steps down (and, in a Pod, restarts with a newer one).
	var fe *etcdmember.FencedError
	if err := e.view.Fence(ctx, ctrl.App.Token.Load()); !errors.As(err, &fe) || fe.Stored != res.Token {
		t.Errorf("the controller's token %d at the fence: %v; want refused for the release's %d", ctrl.App.Token.Load(), err, res.Token)
	}
	select {
	case err := <-ctrl.Done():
		if !strings.Contains(fmt.Sprint(err), "fenced") {
			t.Errorf("the controller stopped with %v; want a step-down for the fence", err)
		}
	default:
	}
}

// TestReleaseMember: --member refuses a live member (even one no Machine accounts for) and
// removes a dead voting member no Machine accounts for: 4 voters with 3 healthy become 3
// of 3. While that member is there, a Machine with no member keeps its hook (the member may
// be its own); once it is gone, the hook is released.
func TestReleaseMember(t *testing.T) {
	e := start(t)
	ctx := t.Context()
	cli, err := e.c.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ip, err := e.c.Net.AllocateIP()
	if err != nil {
		t.Fatal(err)
	}
	// A voting member that never starts, on an address no Machine has: what is left when a
	// member was added by hand for a node that never came. etcd refuses the addition for its
	// health window after the start.
	var ghost uint64
	e.waitFor("a voting member added at "+ip.String(), func() bool {
		resp, err := cli.MemberAdd(ctx, []string{fmt.Sprintf("https://%s:2380", ip)})
		if err == nil {
			ghost = resp.Member.ID
		}
		return err == nil
	})

	// A live member that no Machine accounts for: another Machine reports its address too.
	live := e.memberOf(e.name(1))
	other := e.machine(e.name(2))
	base := other.DeepCopy()
	other.Status.Addresses = append(other.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: framework.InternalIP(e.machine(e.name(1))).String()})
	if err := e.cl.Status().Patch(ctx, other, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	e.refused(release.Request{Member: live.ID, Force: true}, "answers its Status: it is alive")
	other = e.machine(e.name(2))
	undo := other.DeepCopy()
	undo.Status.Addresses = base.Status.Addresses
	if err := e.cl.Status().Patch(ctx, undo, client.MergeFrom(other)); err != nil {
		t.Fatal(err)
	}
	e.refused(release.Request{Member: live.ID}, "belongs to Machine "+e.name(1))

	// A Machine that never got a member: its provisioning fails, it is deleted, the hooks
	// hold it. With no Node its drain is skipped, and the preDrain hook with it: the
	// preTerminate hook is what holds it.
	never := e.name(5)
	m := e.c.NewMaster(never, framework.AWSProviderSpec("us-east-1a", "subnet-us-east-1a"))
	m.Annotations = map[string]string{framework.FailProvisionAnnotation: "true"}
	m.Spec.LifecycleHooks.PreDrain = []machinev1beta1.LifecycleHook{hooks.Default}
	m.Spec.LifecycleHooks.PreTerminate = []machinev1beta1.LifecycleHook{hooks.DefaultPreTerminate}
	if err := e.cl.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	e.waitFor(never+" failed", func() bool { return framework.Phase(e.machine(never)) == framework.PhaseFailed })
	e.deleteMachine(never)
	e.refused(release.Request{Machine: never, Force: true}, fmt.Sprintf("voting member %x is not accounted for", ghost))

	out, res, err := e.release(release.Request{Member: ghost})
	if err != nil || !res.Removed || res.Released || !strings.Contains(out, fmt.Sprintf("removed etcd member %x", ghost)) {
		t.Fatalf("release --member %x = %+v, %v; want it removed", ghost, res, err)
	}
	if ms := e.members(); listed(ms, ghost) || len(ms) != 3 {
		t.Fatalf("after --member %x: %d members, it listed %v", ghost, len(ms), listed(ms, ghost))
	}

	// A controller that claims a newer token after the release claimed its own (it restarted
	// after being fenced out) wins: the release changes nothing more.
	var fenced bytes.Buffer
	res, err = release.Run(ctx, release.Config{Client: e.cl, Etcd: newerAfterClaim{e.view}, Namespace: framework.MachineNamespace,
		Hook: hooks.Default, DefaultReplicas: 3, Out: &fenced}, release.Request{Machine: never})
	var fe *etcdmember.FencedError
	if !errors.As(err, &fe) || res.Released || !hooks.Has(e.machine(never), hooks.Default) || !strings.Contains(fenced.String(), "claimed a newer token meanwhile") {
		t.Fatalf("release %s after a newer claim = %+v, %v, printed:\n%s\nwant it fenced and the hook kept", never, res, err, fenced.String())
	}

	out, res, err = e.release(release.Request{Machine: never})
	if err != nil || res.Removed || !res.Released || !strings.Contains(out, "released preDrain hook") {
		t.Fatalf("release %s = %+v, %v; want only its hook released", never, res, err)
	}
	if ev := e.events(never); len(ev) == 0 || !strings.HasPrefix(ev[len(ev)-1], "Normal ReleaseHook: quorumguard release released preDrain hook QuorumGuard and preTerminate hook QuorumGuard: no etcd member is left") {
		t.Errorf("Events on %s: %q", never, ev)
	}
	e.waitFor(never+" gone once its hook is released", func() bool {
		_, err := e.c.Machine(ctx, never)
		return err != nil
	})
}

// newerAfterClaim is the View, where a newer token is claimed right after each claim of the
// release's own, as a controller restarted after being fenced out claims one.
type newerAfterClaim struct{ *etcdmember.View }

func (v newerAfterClaim) ClaimToken(ctx context.Context, floor uint64) (uint64, error) {
	token, err := v.View.ClaimToken(ctx, floor)
	if err != nil {
		return 0, err
	}
	_, err = v.View.ClaimToken(ctx, token)
	return token, err
}

// failingSnapshots is a snapshot store that cannot take one (a full disk, say).
type failingSnapshots struct{}

func (failingSnapshots) Take(context.Context, snapshot.Request) (snapshot.Result, error) {
	return snapshot.Result{}, errors.New("write: no space left on device")
}

// openShiftRolloutDialling writes the kube-apiserver operator's state as that operator would
// on a cluster whose one node runs revision 1, which dials member id, and returns the
// contract's reader. It is removed when the test ends.
func openShiftRolloutDialling(t *testing.T, e *env, id uint64) *endpoints.OpenShiftPublisher {
	t.Helper()
	ctx := t.Context()
	var ip string
	for _, m := range e.members() {
		if m.ID == id {
			got, err := endpoints.PeerIP(endpoints.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs})
			if err != nil {
				t.Fatal(err)
			}
			ip = got
		}
	}
	oc, err := openshift.NewClients(e.c.CP.Config)
	if err != nil {
		t.Fatal(err)
	}
	kases := oc.Operator.OperatorV1().KubeAPIServers()
	t.Cleanup(func() {
		_ = kases.Delete(context.Background(), endpoints.KubeAPIServerName, metav1.DeleteOptions{})
		_ = e.cl.Delete(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: endpoints.KubeAPIServerNamespace, Name: endpoints.RevisionConfigPrefix + "1"}})
	})
	if err := framework.CreateKubeAPIServer(ctx, e.cl, oc); err != nil {
		t.Fatal(err)
	}
	if err := framework.WriteRevision(ctx, e.cl, 1, []string{"https://" + ip + ":2379"}); err != nil {
		t.Fatal(err)
	}
	if err := framework.SetKubeAPIServerRevisions(ctx, oc, 1, map[string]int32{"master-a": 1}); err != nil {
		t.Fatal(err)
	}
	return &endpoints.OpenShiftPublisher{Client: e.cl, KubeAPIServers: kases}
}
