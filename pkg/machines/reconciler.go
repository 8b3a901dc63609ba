package machines

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/leader"
	"github.com/quorumguard/quorumguard/pkg/masters"
)

// Annotations this controller keeps on the Machines it creates and replaces.
const (
	// AttemptAnnotation is the attempt number of a Machine created for its index, and
	// ReasonAnnotation why it was created.
	AttemptAnnotation = "machines.quorumguard.io/attempt"
	ReasonAnnotation  = "machines.quorumguard.io/reason"
	// FailedAttemptsAnnotation and LastFailureAnnotation are carried by a Machine being
	// replaced whose replacements failed: how many, and when the last was deleted (RFC 3339).
	FailedAttemptsAnnotation = "machines.quorumguard.io/failed-attempts"
	LastFailureAnnotation    = "machines.quorumguard.io/last-failure"
)

// Reconciler keeps the control-plane Machines the ControlPlaneMachineSet describes.
type Reconciler struct {
	// Client reads from the manager's cache and writes.
	Client client.Client
	// APIReader reads from the API server; every action is confirmed on it.
	APIReader client.Reader
	Namespace string
	// Hook, when its name is set, is put on every Machine at creation, so the quorum
	// protection holds from the Machine's first moment.
	Hook machinev1beta1.LifecycleHook
	// PreTerminate, when its name is set, is the preTerminate hook put on every Machine at
	// creation beside Hook.
	PreTerminate machinev1beta1.LifecycleHook
	// Fence gives this leadership's token, re-reading the lock; Etcd passes the etcd fence
	// with it. Both are required: every creation, deletion or adoption is made only after
	// the lock is still ours and the etcd fence, a write that needs quorum, accepts the
	// token, so a paused old leader, or one deciding on a list read just before quorum went,
	// changes no Machine.
	Fence masters.Fence
	Etcd  EtcdFence
	// StepDown, when set, is called when the etcd fence says a newer leadership exists.
	StepDown func(error)
	// Recorder, when set, gets one event per action and per new problem.
	Recorder recorder.EventRecorder
	// PollInterval is how soon to look again while a replacement is under way; IdleResync
	// how often otherwise (it is also how soon a new control-plane Node is checked, since
	// Nodes are read, not watched).
	PollInterval, IdleResync time.Duration
	// MaxAttempts and Backoff bound the retries of a replacement that ends Failed; 3 and
	// 10 s when zero.
	MaxAttempts int
	Backoff     time.Duration
	// Hold, when set and answering a reason, says another operator (the
	// ControlPlaneMachineSet operator) manages the control-plane Machines: a pass then
	// reads and writes nothing, the set's status included.
	Hold func() string

	clock  func() time.Time
	random func() string
	// verified is when the cache was last compared with a fresh read; distrustCache says
	// they differed then, so passes decide on a fresh read until they agree again.
	verified      time.Time
	distrustCache bool
}

// EtcdFence is the etcd fence the quorum controller passes before each membership change
// (the Fence of the quorum controller's etcd view): refused with an *etcdmember.FencedError once a newer
// leadership has passed it, and failing while etcd has no quorum.
type EtcdFence interface {
	Fence(ctx context.Context, token uint64) error
}

var singleton = reconcile.Request{NamespacedName: types.NamespacedName{Name: "control-plane-machines"}}

// SetupWithManager watches the ControlPlaneMachineSet and the control-plane Machines; every
// event maps to one request, because the decision is over all Machines at once.
// A Reconciler without a Fence and an Etcd fence is refused: there is no token to act with
// by default.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Fence == nil || r.Etcd == nil {
		return errors.New("the Machine controller needs the leadership's fence and the etcd fence: it creates and deletes Machines only through both")
	}
	if r.PollInterval < 0 || r.IdleResync < 0 || r.Backoff < 0 {
		return fmt.Errorf("the Machine controller's intervals must not be negative (poll %s, idle %s, backoff %s)", r.PollInterval, r.IdleResync, r.Backoff)
	}
	if r.PollInterval == 0 {
		r.PollInterval = 250 * time.Millisecond
	}
	if r.IdleResync == 0 {
		r.IdleResync = 30 * time.Second
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.clock == nil {
		r.clock = time.Now
	}
	if r.random == nil {
		r.random = func() string { return utilrand.String(randomLen) }
	}
	toOne := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{singleton}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("quorumguard-machines").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Watches(&machinev1beta1.Machine{}, toOne, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetNamespace() == r.Namespace && o.GetLabels()[masters.RoleLabel] == "master"
		}))).
		Watches(&machinev1.ControlPlaneMachineSet{}, toOne, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetNamespace() == r.Namespace && o.GetName() == masters.CPMSName
		}))).
		Complete(r)
}

// Reconcile gathers from the cache and decides; an action, or a problem to report, is
// decided again on a fresh read from the API server, and only that decision is taken. The
// status is written last.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	log := logr.FromContextOrDiscard(ctx)
	if r.Hold != nil {
		if why := r.Hold(); why != "" {
			log.V(1).Info("another operator manages the control-plane Machines; nothing is changed", "reason", why)
			return reconcile.Result{RequeueAfter: r.IdleResync}, nil
		}
	}
	snap, err := r.gather(ctx, r.Client)
	if err != nil || snap == nil {
		return reconcile.Result{}, err
	}
	d := Plan(snap.input)
	if r.distrustCache || (d.InFlight && r.now().Sub(r.verified) >= verifyInterval) {
		// The cache lags the API server for as long as its watch takes to come back after
		// the apiserver was away (client-go backs a failed watch off up to 30 s), and the
		// status would report a Machine that is gone as deleting all that time. So while
		// something is in flight the cache is compared with a fresh read every
		// verifyInterval; once they differ, every pass decides and reports on a fresh read
		// until the cache shows the same Machines again.
		fresh, err := r.gather(ctx, r.APIReader)
		if err != nil || fresh == nil {
			return reconcile.Result{RequeueAfter: r.PollInterval}, err
		}
		r.verified = r.now()
		r.distrustCache = !sameMachines(snap, fresh)
		if r.distrustCache {
			snap = fresh
			d = Plan(snap.input)
		}
	}
	if d.Action.Kind != None || d.Degraded() {
		if snap, err = r.gather(ctx, r.APIReader); err != nil || snap == nil {
			return reconcile.Result{}, err
		}
		d = Plan(snap.input)
	}
	token, err := r.Fence.Token(ctx)
	if err != nil {
		log.V(1).Info("not the leader; nothing is changed", "reason", err.Error())
		return reconcile.Result{RequeueAfter: time.Second}, nil
	}
	var actErr error
	if d.Action.Kind != None {
		// The etcd fence, not only the lock: a newer leadership may have claimed its token
		// while this one was paused, and with quorum gone the fence cannot be passed.
		actErr = r.Etcd.Fence(ctx, token)
		if fenced(actErr) {
			log.Error(actErr, "a newer leadership has passed the etcd fence; stepping down", "action", d.Action.String())
			if r.StepDown != nil {
				r.StepDown(actErr)
			}
			return reconcile.Result{}, nil
		}
		if actErr != nil {
			actErr = fmt.Errorf("not acting (%s): the etcd fence was not passed: %w", d.Action, actErr)
		}
	}
	if actErr == nil {
		actErr = r.act(ctx, snap, d.Action)
	}
	if actErr != nil {
		log.Error(actErr, "action failed", "action", d.Action.String())
	}
	if err := r.writeStatus(ctx, snap, d); err != nil {
		// A conflict only means the cache had not yet seen the latest change (an edit of
		// the set, say): the next pass, on the newer object, writes it.
		if apierrors.IsConflict(err) {
			log.V(1).Info("the ControlPlaneMachineSet changed since it was read; its status is written on the next pass", "error", err.Error())
		} else {
			log.Error(err, "writing the ControlPlaneMachineSet status")
		}
		return reconcile.Result{RequeueAfter: r.PollInterval}, nil
	}
	switch {
	case actErr != nil:
		return reconcile.Result{RequeueAfter: r.PollInterval}, nil //nolint:nilerr // logged and reported in status; retried after the poll interval
	case d.RetryAfter > 0:
		return reconcile.Result{RequeueAfter: d.RetryAfter}, nil
	case d.InFlight:
		return reconcile.Result{RequeueAfter: r.PollInterval}, nil
	}
	return reconcile.Result{RequeueAfter: r.IdleResync}, nil
}

// fenced says err means a newer leadership leads now.
func fenced(err error) bool {
	var f *etcdmember.FencedError
	return errors.As(err, &f) || errors.Is(err, leader.ErrNotLeader)
}

// verifyInterval is how often, while something is in flight, the cache is compared with a
// fresh read of the ControlPlaneMachineSet and the Machines.
const verifyInterval = 2 * time.Second

// sameMachines says the two snapshots hold the same Machines at the same resourceVersions.
func sameMachines(a, b *snapshot) bool {
	if len(a.machines) != len(b.machines) {
		return false
	}
	for name, m := range a.machines {
		if o, ok := b.machines[name]; !ok || o.ResourceVersion != m.ResourceVersion {
			return false
		}
	}
	return true
}

func (r *Reconciler) now() time.Time {
	if r.clock == nil {
		return time.Now()
	}
	return r.clock()
}
