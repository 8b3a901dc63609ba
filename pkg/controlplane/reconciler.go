// Package controlplane is quorumguard's quorum-protection controller. On every pass it gathers
// the control-plane Machines, the ControlPlaneMachineSet's replica count and a fresh etcd
// member list with health and learner progress; asks pkg/quorum for the one next step; takes
// it; and records why on each Machine's EtcdMember condition and in an Event. It keeps no
// state of its own: killed at any point and restarted, it carries on from what it observes.
package controlplane

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/quorumguard/quorumguard/pkg/endpoints"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/leader"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// Reconciler protects etcd quorum while control-plane Machines are replaced.
type Reconciler struct {
	Client client.Client
	// Reader reads a Machine afresh (not from the cache) after a write was refused for a
	// conflict, so that the write is tried again on the current object; nil tries once.
	Reader    client.Reader
	Namespace string
	Hook      machinev1beta1.LifecycleHook
	// PreTerminateHook is kept beside Hook and released with it, in the same write; it
	// holds a Machine whose drain, and so Hook, OpenShift's Machine controller skips. No
	// Name keeps none.
	PreTerminateHook machinev1beta1.LifecycleHook
	// DefaultReplicas is the desired voting members when there is no ControlPlaneMachineSet.
	DefaultReplicas int
	Etcd            Etcd
	Fence           masters.Fence
	Recorder        recorder.EventRecorder
	// PollInterval is how soon to look again while something is in flight; IdleResync how
	// often to look when nothing is.
	PollInterval, IdleResync time.Duration
	// Observer, when set, is told every decision (status, metrics).
	Observer func(Observation)
	// Elected, when set, says whether this replica has won the election and claimed its
	// token; until then a pass only reports, and only on the lock holder (reportWithoutToken).
	Elected func() bool
	// Hold, when set and answering a reason, says another operator manages etcd membership
	// and the hooks, or that the control-plane topology leaves quorumguard nothing to
	// change (pkg/coexist): a pass then only observes (see observeHeld).
	Hold func() string
	// Roles, when set, are the values of masters.RoleLabel whose Machines hold etcd members
	// (pkg/coexist): master, and arbiter on a HighlyAvailableArbiter control plane. Unset,
	// masters alone.
	Roles func() []string
	// StepDown is called when the fence says another replica leads now (a refused etcd fence
	// or a lost lock); the process must stop acting at once.
	StepDown func(error)
	clock    func() time.Time
	// BeforeAct, when set, runs after the fencing token is taken and before the action: the
	// seam the fencing tests use to pause a leader mid-step. Production leaves it nil.
	BeforeAct func(context.Context, quorum.Action)
	// LearnerStartTimeout is how long a learner may stay unstarted before it is removed to
	// free the learner slot; 0 never removes one.
	LearnerStartTimeout time.Duration
	// Snapshots, when set, takes an etcd snapshot before each voting member's removal; a
	// removal waits while one cannot be taken (see snapshotBefore).
	Snapshots Snapshotter
	// Endpoints, when set, publishes the voting members' client URLs for consumers such
	// as an apiserver operator and holds removals until they have rolled them out.
	Endpoints *endpoints.Publisher
	// OpenShift, when set, keeps OpenShift's contract (openshift-etcd/etcd-endpoints) on a
	// cluster with a kube-apiserver operator and holds removals until its rollout leaves the
	// member out on every node.
	OpenShift *endpoints.OpenShiftPublisher
	// published is the last generation published, for logging changes once.
	published int64
	// learners are the last pass's reading of each learner (see learnerAges); etcdRead says
	// the last pass read etcd, at lastRead. learnerTimedOut is when a Machine's learner was
	// removed for standing still too long. Only Reconcile touches them (one worker).
	learners        map[uint64]learnerSeen
	etcdRead        bool
	lastRead        time.Time
	learnerTimedOut map[string]time.Time
	// reported is the last set of planner reports sent as Events, so each is sent once.
	reported string
	// lastPass is when the last pass finished, in Unix nanoseconds (LastPass).
	lastPass atomic.Int64
	// own are this controller's writes the cache may not have seen yet.
	own ownWrites
	// backoff holds back an action that keeps failing (see actionBackoff).
	backoff actionBackoff
}

// LastPass is when the last pass finished, whatever its outcome; zero before the first. A
// leader whose passes stop finishing is hung (see pkg/app's liveness check).
func (r *Reconciler) LastPass() time.Time {
	if n := r.lastPass.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Observation is what one pass saw and decided, for status reporting.
type Observation struct {
	Time     time.Time
	Machines []machinev1beta1.Machine
	Members  []quorum.Member
	Desired  int
	Decision quorum.Decision
	// Err is set when the pass could not observe or act.
	Err error
}

// DefaultIdleResync is how often etcd is looked at when nothing is in flight: a pass then
// reads etcd (a member list and each member's Status and health) and the cache, and writes
// nothing unless something changed, so a member that stops answering, or a lost quorum,
// shows on the Machines within about a second.
const DefaultIdleResync = time.Second

var singleton = reconcile.Request{NamespacedName: types.NamespacedName{Name: "control-plane"}}

// SetupWithManager watches control-plane Machines and the ControlPlaneMachineSet; every event
// maps to one request, because the decision is over all Machines at once.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.PollInterval == 0 {
		r.PollInterval = 250 * time.Millisecond
	}
	if r.IdleResync == 0 {
		r.IdleResync = DefaultIdleResync
	}
	if r.clock == nil {
		r.clock = time.Now
	}
	toOne := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{singleton}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("quorumguard-controlplane").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Watches(&machinev1beta1.Machine{}, toOne, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			// Arbiter Machines are watched whatever the topology: a pass decides whether
			// they hold members (Roles).
			role := o.GetLabels()[masters.RoleLabel]
			return o.GetNamespace() == r.Namespace && (role == masters.MasterRole || role == masters.ArbiterRole)
		}))).
		Watches(&machinev1.ControlPlaneMachineSet{}, toOne, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetNamespace() == r.Namespace && o.GetName() == masters.CPMSName
		}))).
		// One pass at start even with no Machine to see, so that the loop runs (and etcd is
		// looked at) from the start.
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(singleton)
			return nil
		})).
		Complete(r)
}

// Reconcile gathers, decides, acts once and records.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	log := logr.FromContextOrDiscard(ctx)
	defer func() { r.lastPass.Store(time.Now().UnixNano()) }()
	if r.Elected != nil && !r.Elected() {
		// No token yet: a standby does nothing, the lock holder only reports.
		return r.reportWithoutToken(ctx), nil
	}
	// Every pass starts by re-reading the lock: a leader that was paused while another took
	// over finds out here, before it gathers or writes anything.
	if _, err := r.Fence.Token(ctx); fenced(err) && r.StepDown != nil {
		log.Error(err, "another replica leads now; stepping down")
		r.StepDown(err)
		return reconcile.Result{}, nil
	}
	st, err := r.gather(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	if r.Hold != nil {
		if why := r.Hold(); why != "" {
			r.observeHeld(st, why)
			log.V(1).Info("held: nothing is changed", "reason", why)
			return reconcile.Result{RequeueAfter: r.IdleResync}, nil
		}
	}
	r.ensureHooks(ctx, st)
	if st.etcdErr != nil {
		log.Error(st.etcdErr, "etcd unreachable or without quorum; nothing is changed")
		r.markUnreachable(ctx, st)
		r.observe(st, unobserved(st), st.etcdErr)
		return reconcile.Result{RequeueAfter: time.Second}, nil //nolint:nilerr // reported on every Machine; retried in a second
	}
	r.publish(ctx, st)
	d := quorum.Decide(st.state)
	r.report(st, d)
	retryIn, actErr := r.actWithBackoff(ctx, st, &d)
	if !fenced(actErr) {
		// A replica the fence refused writes nothing more: a newer leader decides now.
		r.writeConditions(ctx, st, d)
	}
	r.observe(st, d, actErr)
	if actErr != nil && fenced(actErr) && r.StepDown != nil {
		log.Error(actErr, "fenced: another replica leads now; stepping down", "action", d.Action.String())
		r.StepDown(actErr)
		return reconcile.Result{}, nil
	}
	if actErr != nil {
		log.Error(actErr, "action failed; tried again after a backoff", "action", d.Action.String(), "in", retryIn)
	}
	if retryIn > 0 {
		// Passes go on meanwhile (etcd and the Machines are still observed and the
		// conditions written), but the failed action waits for its backoff.
		return reconcile.Result{RequeueAfter: min(retryIn, r.IdleResync)}, nil
	}
	if d.InFlight {
		return reconcile.Result{RequeueAfter: r.PollInterval}, nil
	}
	return reconcile.Result{RequeueAfter: r.IdleResync}, nil
}

// fenced says err means this replica is no longer the leader.
func fenced(err error) bool {
	var f *etcdmember.FencedError
	return errors.As(err, &f) || errors.Is(err, leader.ErrNotLeader)
}

func (r *Reconciler) observe(st *snapshot, d quorum.Decision, err error) {
	if r.Observer == nil {
		return
	}
	r.Observer(Observation{Time: r.now(), Machines: st.machines, Members: d.Members, Desired: st.state.Desired, Decision: d, Err: err})
}

func (r *Reconciler) now() time.Time {
	if r.clock == nil {
		return time.Now()
	}
	return r.clock()
}
