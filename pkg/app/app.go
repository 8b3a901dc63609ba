// Package app wires quorumguard's controllers into a controller-runtime manager: the cache that
// holds only control-plane Machines, the etcd View, leader election and fencing, the status
// reporter (pkg/clusteroperator), metrics and probes. cmd/quorumguard and the end-to-end tests
// both start the controller through it, so what is tested is what ships. It decides nothing
// itself.
package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/quorumguard/quorumguard/pkg/coexist"
	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/endpoints"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/leader"
	"github.com/quorumguard/quorumguard/pkg/machines"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/openshift"
	"github.com/quorumguard/quorumguard/pkg/snapshot"
)

// Scheme knows every type the controller reads or writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, machinev1beta1.Install, machinev1.Install, configv1.Install} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// Controller is a built, not yet started, quorumguard.
type Controller struct {
	Manager    manager.Manager
	Reconciler *controlplane.Reconciler
	ForLife    *leader.ForLife
	Lease      *leader.Lease
	// Guard says whether another operator manages etcd or the control-plane Machines; the
	// controllers hold their hands while it does.
	Guard *coexist.Guard
	// Token is the fencing token claimed at election (for-life) or at start (none, or
	// for-life outside a cluster); a lease's is Lease.Token.
	Token   atomic.Uint64
	elected atomic.Bool
	// holding says this replica holds the leader-for-life lock, token or not: it then
	// reports what it observes (a token is claimed from etcd, and etcd may be unreachable).
	holding atomic.Bool
	// leadingSince is when Liveness first saw this replica lead, Unix nanoseconds; 0 while
	// it does not.
	leadingSince atomic.Int64
	// statusEnabled makes EnableStatus idempotent.
	statusEnabled atomic.Bool
	fence         *electedFence
	etcd          *etcdmember.View
	// machines is the Machine controller, nil unless ManageMachines.
	machines *machines.Reconciler
	opts     Options
	cfg      *rest.Config
}

// New builds the manager and controllers. Options left at zero take their defaults
// (Complete); options it cannot run with are refused (Validate), as the binary refuses them.
func New(cfg *rest.Config, o Options) (*Controller, error) {
	o.Complete()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cfg = withFieldManager(cfg)
	role, err := controlPlaneRoles()
	if err != nil {
		return nil, err
	}
	machineCache := cache.ByObject{Label: role, Namespaces: map[string]cache.Config{o.Namespace: {}}}
	if o.UnfilteredCache {
		machineCache = cache.ByObject{}
	}
	mopts := ctrl.Options{
		Scheme:                 Scheme(),
		Metrics:                MetricsServerOptions(o),
		HealthProbeBindAddress: o.ProbeAddr,
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&machinev1beta1.Machine{}:            machineCache,
			&machinev1.ControlPlaneMachineSet{}:  {Namespaces: map[string]cache.Config{o.Namespace: {}}},
			&machinev1beta1.MachineHealthCheck{}: {Namespaces: map[string]cache.Config{o.Namespace: {}}},
		}},
		GracefulShutdownTimeout: ptrDuration(5 * time.Second),
		// One process runs one manager, but the end-to-end tests and the benchmarks start
		// and stop several in turn; the controller's name stays unique per manager.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}
	_, statErr := os.Stat(serviceAccountNamespaceFile)
	inCluster := statErr == nil
	if o.LeaderElect == "for-life" && o.PodName == "" && inCluster {
		return nil, fmt.Errorf("--leader-elect=for-life in a cluster (%s exists): %w", serviceAccountNamespaceFile, leader.ErrNoPodName)
	}
	if o.ElectionNS == "" {
		o.ElectionNS, _ = inClusterNamespace()
	}
	var fence masters.Fence
	var lease *leader.Lease
	var lock *leader.WatchedLock
	if o.LeaderElect == "lease" {
		if o.ElectionNS == "" {
			return nil, fmt.Errorf("--leader-elect=lease outside a cluster needs --leader-election-namespace (no service-account namespace file at %s)", serviceAccountNamespaceFile)
		}
		direct, err := client.New(cfg, client.Options{Scheme: Scheme()})
		if err != nil {
			return nil, err
		}
		lease, lock, err = leader.NewLease(cfg, direct, o.ElectionNS, o.ElectionID)
		if err != nil {
			return nil, err
		}
		// The lock paces the elector to the retry period and wakes it when the Lease is
		// released, so a graceful handover does not wait for the standby's next retry.
		lock.Retry = o.RetryPeriod
		tick := min(lock.Tick, o.RetryPeriod)
		fence = lease
		mopts.LeaderElection = true
		mopts.LeaderElectionID = o.ElectionID
		mopts.LeaderElectionNamespace = o.ElectionNS
		mopts.LeaderElectionResourceLockInterface = lock
		mopts.LeaderElectionReleaseOnCancel = !o.NoReleaseOnCancel
		mopts.LeaseDuration, mopts.RenewDeadline, mopts.RetryPeriod = &o.LeaseDuration, &o.RenewDeadline, &tick
	}
	registerRuntimeMetrics()
	mgr, err := ctrl.NewManager(cfg, mopts)
	if err != nil {
		return nil, fmt.Errorf("build manager: %w", err)
	}
	etcd, err := NewEtcdView(o, mgr.GetAPIReader())
	if err != nil {
		return nil, err
	}
	c := &Controller{Manager: mgr, etcd: etcd, opts: o, cfg: cfg, Lease: lease}
	if lock != nil {
		if err := mgr.Add(lock); err != nil {
			return nil, err
		}
	}
	if lease != nil {
		lease.Store = etcd
		// The token is claimed as soon as the lease is won, before the first pass acts, so
		// that an older leader is refused from that moment.
		if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { return c.claimLeaseToken(ctx) })); err != nil {
			return nil, err
		}
	} else {
		c.fence = &electedFence{holds: c.holdsWithoutToken}
		fence = c.fence
	}
	c.Reconciler = &controlplane.Reconciler{
		Client:    mgr.GetClient(),
		Reader:    mgr.GetAPIReader(),
		Namespace: o.Namespace,
		Hook:      o.Hook,
		// The preTerminate hook holds what a skipped drain lets through.
		PreTerminateHook: o.PreTerminate(),
		DefaultReplicas:  o.DefaultReplicas,
		Etcd:             etcd,
		Fence:            fence,
		Recorder:         mgr.GetEventRecorder("quorumguard"),
		PollInterval:     o.PollInterval,
		// A learner that never starts would hold etcd's one learner slot for ever.
		LearnerStartTimeout: o.LearnerStartTimeout,
	}
	if o.EndpointsConfigMap != "" || o.OpenShiftEndpoints {
		// The contracts read what their consumers write as it is now, not through the cache.
		direct, err := client.New(cfg, client.Options{Scheme: Scheme()})
		if err != nil {
			return nil, err
		}
		if o.EndpointsConfigMap != "" {
			ns := o.ElectionNS
			if ns == "" {
				ns = o.Namespace
			}
			c.Reconciler.Endpoints = &endpoints.Publisher{Client: direct, Namespace: ns, Name: o.EndpointsConfigMap, Consumers: o.EndpointConsumers}
		}
		if o.OpenShiftEndpoints {
			oc, err := openshift.NewClients(cfg)
			if err != nil {
				return nil, err
			}
			c.Reconciler.OpenShift = &endpoints.OpenShiftPublisher{Client: direct, KubeAPIServers: oc.Operator.OperatorV1().KubeAPIServers(), SkipRollout: o.SkipAPIServerRollout}
			if o.SkipAPIServerRollout {
				if err := warnSkipRollout(mgr, o); err != nil {
					return nil, err
				}
			}
		}
	}
	if o.SnapshotDir != "" {
		sm, err := snapshot.NewMetrics(ctrlmetrics.Registry)
		if err != nil {
			return nil, err
		}
		c.Reconciler.Snapshots = &snapshot.Taker{Dir: o.SnapshotDir, Keep: o.SnapshotKeep, Budget: o.SnapshotBudget, Metrics: sm,
			Streamer: snapshot.ClientStreamer{Files: snapshot.TLSFiles{CA: o.EtcdCA, Cert: o.EtcdCert, Key: o.EtcdKey}},
			Log:      ctrl.Log.WithName("snapshot")}
	}
	r := c.Reconciler
	if c.fence != nil {
		r.Elected = c.elected.Load
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("loop", c.Liveness); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("etcd", etcdReady(etcd)); err != nil {
		return nil, err
	}
	if o.LeaderElect == "for-life" {
		wc, err := client.NewWithWatch(cfg, client.Options{Scheme: Scheme()})
		if err != nil {
			return nil, err
		}
		c.ForLife = &leader.ForLife{Client: wc, Namespace: o.ElectionNS, LockName: o.ElectionID, PodName: o.PodName,
			Log: ctrl.Log.WithName("leader"), Store: etcd, InCluster: inCluster, Locked: func() { c.holding.Store(true) }}
	}
	if err := c.EnableStatus(); err != nil {
		return nil, err
	}
	if c.Guard, err = setupGuard(mgr, o); err != nil {
		return nil, err
	}
	r.Hold, r.Roles = c.Guard.Hold, c.Guard.Roles
	if c.machines, err = setupMachines(mgr, o, r.Fence, etcd, c.Guard.Machines); err != nil {
		return nil, err
	}
	return c, nil
}

// Run runs the controller until ctx ends or it steps down. With leader-for-life the manager
// (probes, metrics, caches) runs from the start, and the controller acts only once elected.
func (c *Controller) Run(ctx context.Context) error {
	defer c.etcd.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c.Reconciler.StepDown = func(err error) { cancel(fmt.Errorf("stepped down: %w", err)) }
	if c.machines != nil {
		c.machines.StepDown = c.Reconciler.StepDown
	}
	if c.fence != nil {
		go func() {
			var token uint64
			var err error
			var inner masters.Fence
			if c.ForLife != nil {
				token, err = c.ForLife.Become(ctx)
				inner = c.ForLife
			}
			if c.ForLife == nil || errors.Is(err, leader.ErrNotInCluster) {
				// No election: the token is claimed at start; a newer claim by any other
				// replica fences this one out.
				token, err = leader.Claim(ctx, leader.FromStore(c.etcd, 0), ctrl.Log.WithName("leader"))
				inner = masters.StaticFence(token)
			}
			if err != nil {
				cancel(fmt.Errorf("leader election: %w", err))
				return
			}
			c.fence.set(inner)
			c.Token.Store(token)
			c.elected.Store(true)
		}()
	}
	err := c.Manager.Start(ctx)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// claimLeaseToken runs once the lease is won: it claims the leadership's token at once,
// retrying with a backoff while etcd cannot be reached. A corrupt stored token stops the
// manager.
func (c *Controller) claimLeaseToken(ctx context.Context) error {
	log := ctrl.Log.WithName("leader")
	token, err := leader.Claim(ctx, c.Lease.Token, log)
	switch {
	case err == nil:
		log.Info("won the lease and claimed the fencing token", "token", token)
		c.Token.Store(token)
		return nil
	case errors.Is(err, leader.ErrNotLeader), ctx.Err() != nil:
		return nil //nolint:nilerr // the lease was lost or the manager stops: nothing to claim, and losing the lease stops the controllers anyway
	default:
		return fmt.Errorf("leader election: %w", err)
	}
}

// controlPlaneRoles selects the master and arbiter Machines: the cache holds both whatever
// the topology, and each pass lists those of the roles its topology gives (pkg/coexist).
func controlPlaneRoles() (labels.Selector, error) {
	req, err := labels.NewRequirement(masters.RoleLabel, selection.In, []string{masters.MasterRole, masters.ArbiterRole})
	if err != nil {
		return nil, err
	}
	return labels.NewSelector().Add(*req), nil
}

func ptrDuration(d time.Duration) *time.Duration { return &d }

// electedFence is the fence of a leader-for-life replica, or of one without election: empty
// until its token is claimed. Before that, holds says whether it holds the lock.
type electedFence struct {
	inner atomic.Pointer[masters.Fence]
	holds func(context.Context) error
}

var errNotElected = errors.New("not elected yet")

func (f *electedFence) set(inner masters.Fence) { f.inner.Store(&inner) }

// Holds says whether this replica holds the leader lock (controlplane.HoldsLock).
func (f *electedFence) Holds(ctx context.Context) error {
	if inner := f.inner.Load(); inner != nil {
		return controlplane.HoldsLock(ctx, *inner)
	}
	if f.holds == nil {
		return errNotElected
	}
	return f.holds(ctx)
}

// electionSkipped says there is no lock to hold: no election, or leader-for-life outside a
// cluster (Become returns leader.ErrNotInCluster).
func (c *Controller) electionSkipped() bool {
	return c.ForLife == nil || c.ForLife.PodName == "" || c.ForLife.Namespace == ""
}

// holdsWithoutToken says whether this replica holds the lock before it has its token: with
// no election (none, or leader-for-life outside a cluster) it does; under leader-for-life
// once Become has taken the lock, re-read here. A standby answers at once, without a read.
func (c *Controller) holdsWithoutToken(ctx context.Context) error {
	if c.electionSkipped() {
		return nil
	}
	if !c.holding.Load() {
		return errNotElected
	}
	return c.ForLife.Holds(ctx)
}

func (f *electedFence) Token(ctx context.Context) (uint64, error) {
	inner := f.inner.Load()
	if inner == nil {
		return 0, errNotElected
	}
	return (*inner).Token(ctx)
}

// warnSkipRollout says in the log, at once, and in a Warning Event about this replica's Pod
// once it leads, that the kube-apiserver rollout wait is off.
func warnSkipRollout(mgr manager.Manager, o Options) error {
	ctrl.Log.WithName("endpoints").Info("WARNING: " + SkipRolloutWarning)
	if o.PodName == "" || o.ElectionNS == "" {
		return nil
	}
	rec := mgr.GetEventRecorder("quorumguard")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: o.PodName, Namespace: o.ElectionNS}}
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		rec.Eventf(pod, nil, corev1.EventTypeWarning, "APIServerRolloutWaitOff", "Configure", "%s", SkipRolloutWarning)
		<-ctx.Done()
		return nil
	}))
}
