package controlplane

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/masters"
)

// journal is the one ordered record of what a pass did: the lock's Token calls, the etcd
// calls (and, inside a membership change, the fence, the read after it, the recheck and the
// change itself) and the Machine writes.
type journal struct{ entries []string }

func (j *journal) add(format string, args ...any) {
	j.entries = append(j.entries, fmt.Sprintf(format, args...))
}

// since returns the entries recorded from mark on.
func (j *journal) since(mark int) []string { return slices.Clone(j.entries[mark:]) }

func count(entries []string, want string) int {
	n := 0
	for _, e := range entries {
		if e == want {
			n++
		}
	}
	return n
}

// fakeMember is one etcd member as the fake keeps it.
type fakeMember struct {
	ID      uint64
	Name    string // empty until the member has started
	Peer    string
	Client  string
	Learner bool
	// Healthy is the member's probe: a linearizable read for a voter, a Status naming a
	// leader for a learner.
	Healthy bool
	// Answers says its Status answers (naming the cluster's leader); Index is its committed
	// raft index.
	Answers bool
	Index   uint64
	// Snapshot, for a learner, is the leader's report of the snapshot it sends it; nil when
	// none was read.
	Snapshot *etcdmember.SnapshotSend
}

// fakeEtcd is the controller's Etcd with a member list in memory. Like the real one, a
// membership change passes the fence, then reads the state it acts on, then asks the
// action's guard about it, and only then changes anything. AfterFence, when set, runs each
// time the fence passes and before that read: what happened meanwhile.
type fakeEtcd struct {
	j       *journal
	members []*fakeMember
	leader  uint64
	// stored is the newest token that passed the fence.
	stored uint64
	// ObserveErr fails every Observe; with NoQuorumView the members are returned with it.
	ObserveErr   error
	NoQuorumView bool
	AfterFence   func(f *fakeEtcd)
	nextID       uint64
}

var _ Etcd = (*fakeEtcd)(nil)

func (f *fakeEtcd) member(id uint64) *fakeMember {
	for _, m := range f.members {
		if m.ID == id {
			return m
		}
	}
	return nil
}

func (f *fakeEtcd) remove(id uint64) {
	f.members = slices.DeleteFunc(f.members, func(m *fakeMember) bool { return m.ID == id })
}

// leaderIndex is the leader's committed index.
func (f *fakeEtcd) leaderIndex() uint64 {
	if l := f.member(f.leader); l != nil {
		return l.Index
	}
	return 0
}

// view is the member list with each member's probe, joined as the real client joins them.
func (f *fakeEtcd) view() []etcdmember.Observed {
	members := make([]etcdmember.Member, len(f.members))
	health := make([]etcdmember.Health, len(f.members))
	for i, m := range f.members {
		members[i] = etcdmember.Member{ID: m.ID, Name: m.Name, PeerURLs: []string{m.Peer}, IsLearner: m.Learner, Started: m.Name != "", Healthy: m.Healthy}
		if m.Name != "" {
			members[i].ClientURLs = []string{m.Client}
		}
		health[i] = etcdmember.Health{ID: m.ID, Healthy: m.Healthy}
		if m.Answers {
			health[i].Status = &etcdmember.Status{ID: m.ID, Leader: f.leader, Index: m.Index, IsLearner: m.Learner}
		}
	}
	out := etcdmember.JoinHealth(members, health)
	for i, m := range f.members {
		out[i].Snapshot = m.Snapshot
	}
	return out
}

func (f *fakeEtcd) Observe(context.Context) ([]etcdmember.Observed, error) {
	f.j.add("observe")
	if f.ObserveErr != nil {
		if f.NoQuorumView {
			return f.view(), f.ObserveErr
		}
		return nil, f.ObserveErr
	}
	return f.view(), nil
}

func (f *fakeEtcd) Fence(_ context.Context, token uint64) error {
	f.j.add("fence")
	if token < f.stored {
		return &etcdmember.FencedError{Stored: f.stored, Offered: token}
	}
	f.stored = token
	if f.AfterFence != nil {
		f.AfterFence(f)
	}
	return nil
}

// change is the prologue of every membership change: the fence, the read, the recheck.
func (f *fakeEtcd) change(ctx context.Context, token uint64, op string, still etcdmember.Guard) error {
	if err := f.Fence(ctx, token); err != nil {
		return err
	}
	f.j.add("read")
	fresh := f.view()
	if still != nil {
		f.j.add("recheck")
		if err := still(fresh); err != nil {
			f.j.add("refused")
			return &etcdmember.StaleError{Op: op, Err: err}
		}
	}
	f.j.add("%s", op)
	return nil
}

func (f *fakeEtcd) AddLearner(ctx context.Context, token uint64, peerURL string, still etcdmember.Guard) (uint64, error) {
	if err := f.change(ctx, token, "add "+peerURL, still); err != nil {
		return 0, err
	}
	for _, m := range f.members {
		if m.Peer == peerURL {
			return m.ID, nil
		}
	}
	f.nextID++
	id := 0x100 + f.nextID
	f.members = append(f.members, &fakeMember{ID: id, Peer: peerURL, Learner: true})
	return id, nil
}

func (f *fakeEtcd) Promote(ctx context.Context, token, id uint64, still etcdmember.Guard) error {
	if err := f.change(ctx, token, fmt.Sprintf("promote %x", id), still); err != nil {
		return err
	}
	m := f.member(id)
	if m == nil {
		return &etcdmember.MemberNotFoundError{ID: id}
	}
	// etcd's own rule: the learner holds 90% of the leader's log.
	if float64(m.Index) < 0.9*float64(f.leaderIndex()) {
		return &etcdmember.NotInSyncError{ID: id, Err: fmt.Errorf("learner %x at %d of %d", id, m.Index, f.leaderIndex())}
	}
	m.Learner = false
	return nil
}

func (f *fakeEtcd) Remove(ctx context.Context, token, id uint64, still etcdmember.Guard) error {
	if err := f.change(ctx, token, fmt.Sprintf("remove %x", id), still); err != nil {
		return err
	}
	if f.member(id) == nil {
		return &etcdmember.MemberNotFoundError{ID: id}
	}
	f.remove(id)
	return nil
}

func (f *fakeEtcd) MoveLeader(ctx context.Context, token, to uint64, still etcdmember.Guard) error {
	if err := f.change(ctx, token, fmt.Sprintf("move-leader %x", to), still); err != nil {
		return err
	}
	f.leader = to
	return nil
}

// ids lists the member IDs with L after a learner's, in order.
func (f *fakeEtcd) ids() string {
	var out []string
	for _, m := range f.members {
		s := fmt.Sprintf("%x", m.ID)
		if m.Learner {
			s += "L"
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

// fakeLock is the leadership: Token answers Err once the lock is lost.
type fakeLock struct {
	j     *journal
	token uint64
	err   error
}

func (l *fakeLock) Token(context.Context) (uint64, error) {
	l.j.add("token")
	return l.token, l.err
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

const testNamespace = "openshift-machine-api"

var testHook = machinev1beta1.LifecycleHook{Name: "EtcdQuorumOperator", Owner: "quorumguard"}

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, machinev1beta1.Install, machinev1.Install} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// master is control-plane Machine master-i, running with the hook, InternalIP 10.0.0.i and
// Node node-i.
func master(i int) *machinev1beta1.Machine {
	return &machinev1beta1.Machine{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("master-%d", i), Namespace: testNamespace, Labels: map[string]string{masters.RoleLabel: "master"}},
		Spec:       machinev1beta1.MachineSpec{LifecycleHooks: machinev1beta1.LifecycleHooks{PreDrain: []machinev1beta1.LifecycleHook{testHook}}},
		Status: machinev1beta1.MachineStatus{
			Phase:     ptr.To("Running"),
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip(i)}},
			NodeRef:   &corev1.ObjectReference{Kind: "Node", Name: fmt.Sprintf("node-%d", i)},
		},
	}
}

// deleting is master-i being deleted (the machine controller's finalizer keeps it).
func deleting(i int) *machinev1beta1.Machine {
	m := master(i)
	m.DeletionTimestamp = ptr.To(metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	m.Finalizers = []string{"machine.machine.openshift.io"}
	return m
}

func ip(i int) string { return fmt.Sprintf("10.0.0.%d", i) }

// voter is the started, healthy voting member of master-i, ID 0x10+i.
func voter(i int) *fakeMember {
	return &fakeMember{ID: uint64(0x10 + i), Name: fmt.Sprintf("node-%d", i), Peer: "https://" + net.JoinHostPort(ip(i), "2380"),
		Client: "https://" + net.JoinHostPort(ip(i), "2379"), Healthy: true, Answers: true, Index: 1000}
}

// learner is the started learner of master-i, ID 0x10+i, holding index; answers says its
// Status answers and names the leader.
func learner(i int, answers bool, index uint64) *fakeMember {
	m := voter(i)
	m.Learner, m.Healthy, m.Answers, m.Index = true, answers, answers, index
	return m
}

// harness is one Reconciler over a fake client and a fake etcd, called directly.
type harness struct {
	t      *testing.T
	j      *journal
	etcd   *fakeEtcd
	lock   *fakeLock
	clock  *fakeClock
	base   client.Client
	r      *Reconciler
	last   Observation
	downed []error
	// conflicts is how many spec PATCHes of each Machine are refused for a conflict first.
	conflicts map[string]int
}

func newHarness(t *testing.T, machines []*machinev1beta1.Machine, members []*fakeMember, leader uint64) *harness {
	t.Helper()
	h := &harness{t: t, j: &journal{}, clock: &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, conflicts: map[string]int{}}
	h.etcd = &fakeEtcd{j: h.j, members: members, leader: leader}
	h.lock = &fakeLock{j: h.j, token: 1}
	objs := make([]client.Object, len(machines))
	for i, m := range machines {
		objs[i] = m
	}
	h.base = fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).WithStatusSubresource(&machinev1beta1.Machine{}).Build()
	c := interceptor.NewClient(h.base.(client.WithWatch), interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if h.conflicts[obj.GetName()] > 0 {
				h.conflicts[obj.GetName()]--
				h.j.add("patch %s: conflict", obj.GetName())
				return apierrors.NewConflict(schema.GroupResource{Group: "machine.openshift.io", Resource: "machines"}, obj.GetName(), fmt.Errorf("the object has been modified"))
			}
			h.j.add("patch %s", obj.GetName())
			return c.Patch(ctx, obj, patch, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			h.j.add("patch %s %s", sub, obj.GetName())
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
	h.r = &Reconciler{
		Client: c, Reader: h.base, Namespace: testNamespace, Hook: testHook, DefaultReplicas: 3,
		Etcd: h.etcd, Fence: h.lock, PollInterval: 250 * time.Millisecond, IdleResync: time.Second,
		LearnerStartTimeout: 5 * time.Minute, clock: h.clock.Now,
		Observer: func(o Observation) { h.last = o },
		StepDown: func(err error) { h.downed = append(h.downed, err) },
	}
	return h
}

// pass runs one Reconcile and returns what it recorded.
func (h *harness) pass() []string {
	h.t.Helper()
	mark := len(h.j.entries)
	h.last = Observation{}
	if _, err := h.r.Reconcile(h.t.Context(), reconcile.Request{}); err != nil {
		h.t.Fatalf("Reconcile: %v", err)
	}
	return h.j.since(mark)
}

func (h *harness) machine(name string) *machinev1beta1.Machine {
	h.t.Helper()
	m := &machinev1beta1.Machine{}
	if err := h.base.Get(h.t.Context(), client.ObjectKey{Namespace: testNamespace, Name: name}, m); err != nil {
		h.t.Fatalf("get Machine %s: %v", name, err)
	}
	return m
}

func (h *harness) hasHook(name string) bool {
	return slices.ContainsFunc(h.machine(name).Spec.LifecycleHooks.PreDrain, func(x machinev1beta1.LifecycleHook) bool { return x.Name == testHook.Name })
}

func (h *harness) reason(name string) string {
	if c := condition(h.machine(name)); c != nil {
		return c.Reason
	}
	return ""
}

// changes are the entries that changed etcd membership or leadership.
func changes(entries []string) []string {
	var out []string
	for _, e := range entries {
		for _, p := range []string{"add ", "promote ", "remove ", "move-leader "} {
			if strings.HasPrefix(e, p) {
				out = append(out, e)
			}
		}
	}
	return out
}
