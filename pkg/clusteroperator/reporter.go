package clusteroperator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	configapply "github.com/openshift/client-go/config/applyconfigurations/config/v1"
	configclientv1 "github.com/openshift/client-go/config/clientset/versioned/typed/config/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/coexist"
	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/leader"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
)

// statusResync is how often the stored ClusterOperator is read again even when the status
// to report has not changed, so that one deleted or edited by someone else is put right.
const statusResync = time.Minute

// Config says what a Reporter reports on, where it reads and writes, and when it may.
type Config struct {
	// Name is the ClusterOperator; "" writes none, and only the metrics are kept.
	Name string
	// Namespace holds the control-plane Machines, their MachineHealthChecks and the
	// ControlPlaneMachineSet.
	Namespace string
	Hook      machinev1beta1.LifecycleHook
	// PreTerminateHook is the preTerminate hook kept beside Hook; no Name when none is.
	PreTerminateHook  machinev1beta1.LifecycleHook
	HookHeldThreshold time.Duration
	// Related are the relatedObjects besides the MachineHealthChecks (RelatedObjects).
	Related []configv1.ObjectReference
	// Client reads the MachineHealthChecks and the ControlPlaneMachineSet (from the cache);
	// Informers tell of every change to a MachineHealthCheck.
	Client    client.Reader
	Informers cache.Informers
	// ClusterOperators reads the ClusterOperator from the API server, creates it when it is
	// missing, and applies its status (openshift.Clients' Config.ConfigV1().ClusterOperators()).
	ClusterOperators configclientv1.ClusterOperatorInterface

	Metrics *operatorstatus.Metrics
	// Leads says whether this replica holds the leader lock (or needs none), whether or not
	// it has claimed its fencing token: only then does it write, and its metrics count.
	Leads func() bool
	// HoldsLock reads the leader lock again right before a write: nil while this replica
	// holds it (controlplane.HoldsLock). A status is a report and needs no fencing token.
	HoldsLock func(context.Context) error
	// OwnsClusterOperator, when set, says whether quorumguard writes the ClusterOperator
	// (pkg/coexist); while it says no, or does not know yet, nothing is written.
	OwnsClusterOperator func() bool
	// Hold, when set and giving a reason, says another operator manages etcd; Degraded then
	// says so (operatorstatus.Held).
	Hold func() string
	// Warnings are configuration choices an administrator must not miss (a safety wait
	// turned off); each is added to the Available condition's message.
	Warnings []string
	Log      logr.Logger
}

// Reporter turns passes into the metrics and the ClusterOperator status. Observe is the
// Reconciler's Observer; the manager runs Start.
type Reporter struct {
	cfg     Config
	inertia operatorstatus.Inertia
	version string
	clock   func() time.Time
	kick    chan struct{}

	mu      sync.Mutex
	history []operatorstatus.Sample
	last    *controlplane.Observation

	// Only Start's goroutine touches these.
	stored  *configv1.ClusterOperator
	missing bool
	readAt  time.Time
}

// New returns a Reporter that reports the release's version (Version).
func New(cfg Config) *Reporter {
	return &Reporter{cfg: cfg, kick: make(chan struct{}, 1), clock: time.Now,
		inertia: operatorstatus.DefaultInertia, version: Version()}
}

// Version is $RELEASE_VERSION, as OpenShift operators are told their release, or the module
// version the binary was built at.
func Version() string {
	if v := os.Getenv("RELEASE_VERSION"); v != "" {
		return v
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "0.0.0-dev"
}

// etcdObserved says the pass saw the members: a pass that could not observe etcd reports
// a Decision without conditions, every other one has the planner's conditions map. With
// quorum lost a pass sees the members, but the planner is not asked.
func etcdObserved(o controlplane.Observation) bool {
	var nq *etcdmember.NoQuorumError
	return o.Decision.Conditions != nil || errors.As(o.Err, &nq) && len(o.Members) > 0
}

// NeedLeaderElection is false: every replica keeps its metrics; writes check leadership.
func (r *Reporter) NeedLeaderElection() bool { return false }

// Observe runs on the reconcile goroutine after every pass, so it only records (a few
// microseconds) and wakes Start.
func (r *Reporter) Observe(o controlplane.Observation) {
	observed := etcdObserved(o)
	var fe *etcdmember.FencedError
	fenced := o.Err != nil && (errors.As(o.Err, &fe) || errors.Is(o.Err, leader.ErrNotLeader))
	r.cfg.Metrics.Update(operatorstatus.MetricsInput{
		Time: o.Time, Machines: o.Machines, Members: o.Members, Decision: o.Decision,
		Observed: observed, Err: o.Err, Fenced: fenced, Hook: r.cfg.Hook,
	})
	r.cfg.Metrics.SetLeader(true)
	r.mu.Lock()
	r.history = r.inertia.Record(r.history, operatorstatus.NewSample(o.Time, o.Members, o.Decision, observed, o.Err))
	r.last = &o
	r.mu.Unlock()
	r.poke()
}

func (r *Reporter) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Start writes the status after each pass, when a MachineHealthCheck changes, and every
// second (inertia and the hook-held threshold depend on time alone).
func (r *Reporter) Start(ctx context.Context) error {
	if r.cfg.Name != "" {
		inf, err := r.cfg.Informers.GetInformer(ctx, &machinev1beta1.MachineHealthCheck{})
		if err != nil {
			return fmt.Errorf("watch MachineHealthChecks: %w", err)
		}
		poke := func(any) { r.poke() }
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke,
		}); err != nil {
			return fmt.Errorf("watch MachineHealthChecks: %w", err)
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		leads := r.cfg.Leads()
		r.cfg.Metrics.SetLeader(leads)
		if leads && r.cfg.Name != "" {
			if err := r.sync(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Log.Error(err, "could not write the ClusterOperator status", "clusterOperator", r.cfg.Name)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
		case <-tick.C:
		}
	}
}

// sync decides the status and writes it if it differs from the stored one.
func (r *Reporter) sync(ctx context.Context) error {
	r.mu.Lock()
	obs := r.last
	history := slices.Clone(r.history)
	r.mu.Unlock()
	if obs == nil {
		return nil // nothing observed yet: nothing true to say
	}
	now := r.clock()
	c := r.cfg
	var mhcs machinev1beta1.MachineHealthCheckList
	if err := c.Client.List(ctx, &mhcs, client.InNamespace(c.Namespace)); err != nil {
		return fmt.Errorf("list MachineHealthChecks: %w", err)
	}
	cpms := &machinev1.ControlPlaneMachineSet{}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: masters.CPMSName}, cpms); apierrors.IsNotFound(err) {
		cpms = nil
	} else if err != nil {
		return fmt.Errorf("read ControlPlaneMachineSet: %w", err)
	}
	if r.stored == nil && !r.missing || now.Sub(r.readAt) > statusResync {
		if err := r.read(ctx, now); err != nil {
			return err
		}
	}
	var prev configv1.ClusterOperatorStatus
	if r.stored != nil {
		prev = r.stored.Status
	}
	want := operatorstatus.Decide(operatorstatus.Input{
		Now: now, Machines: obs.Machines, Members: obs.Members, Desired: obs.Desired, Decision: obs.Decision,
		Observed: etcdObserved(*obs), History: history, Inertia: r.inertia,
		Hook: c.Hook, HookHeldThreshold: c.HookHeldThreshold, PreTerminateHook: c.PreTerminateHook,
		MachineHealthChecks: mhcs.Items, ControlPlaneMachineSet: cpms,
		Previous: prev, Version: r.version, Related: c.Related, MachineNamespace: c.Namespace,
	})
	if c.OwnsClusterOperator != nil && !c.OwnsClusterOperator() {
		return nil // another operator writes this ClusterOperator, or that is not known yet
	}
	if c.Hold != nil {
		if why := c.Hold(); why != "" {
			want = operatorstatus.Held(want, prev, why, metav1.NewTime(now))
		}
	}
	want = withWarnings(want, c.Warnings)
	if r.stored != nil && operatorstatus.Equal(want, r.stored.Status) {
		return nil
	}
	// The lock is read again right before the write: a replica that lost it writes nothing.
	if err := c.HoldsLock(ctx); err != nil {
		return nil //nolint:nilerr // not the leader: write nothing, by design
	}
	if r.missing {
		// A status is applied to an object that exists: the ClusterOperator is created first.
		co := &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: c.Name}}
		created, err := c.ClusterOperators.Create(ctx, co, metav1.CreateOptions{FieldManager: coexist.FieldManager})
		if apierrors.IsAlreadyExists(err) {
			r.stored, r.missing = nil, false
			return r.read(ctx, now)
		} else if err != nil {
			return fmt.Errorf("create ClusterOperator %s: %w", c.Name, err)
		}
		r.stored, r.missing = created, false
		c.Log.Info("created the ClusterOperator", "clusterOperator", c.Name)
	}
	applied, err := c.ClusterOperators.ApplyStatus(ctx, StatusApply(c.Name, want),
		metav1.ApplyOptions{FieldManager: coexist.FieldManager, Force: true})
	if err != nil {
		// Read it again before the next try; one deleted since it was read is created again
		// at once.
		r.stored, r.readAt = nil, time.Time{}
		if apierrors.IsNotFound(err) {
			r.poke()
		}
		return fmt.Errorf("apply ClusterOperator %s status: %w", c.Name, err)
	}
	r.stored = applied
	return nil
}

// ownedConditions are the condition types operatorstatus.Decide decides; every other one in
// its status was carried over from the stored status, and belongs to whoever wrote it.
var ownedConditions = []configv1.ClusterStatusConditionType{
	configv1.OperatorAvailable, configv1.OperatorProgressing, configv1.OperatorDegraded, configv1.OperatorUpgradeable,
}

// StatusApply is what quorumguard applies of status to the ClusterOperator name's status by
// server-side apply: the conditions it decides, its versions and its related objects. The
// conditions are a map keyed by type, so another writer's condition types stay its own;
// versions and relatedObjects are atomic lists, and quorumguard's whole. The extension is
// left to whoever sets it.
func StatusApply(name string, status configv1.ClusterOperatorStatus) *configapply.ClusterOperatorApplyConfiguration {
	st := configapply.ClusterOperatorStatus()
	for _, c := range status.Conditions {
		if !slices.Contains(ownedConditions, c.Type) {
			continue
		}
		st.WithConditions(configapply.ClusterOperatorStatusCondition().
			WithType(c.Type).WithStatus(c.Status).WithLastTransitionTime(c.LastTransitionTime).
			WithReason(c.Reason).WithMessage(c.Message))
	}
	for _, v := range status.Versions {
		st.WithVersions(configapply.OperandVersion().WithName(v.Name).WithVersion(v.Version))
	}
	for _, o := range status.RelatedObjects {
		// group, resource and name are required, if empty (every Machine has ""); the
		// namespace is left out when empty, as the typed object leaves it out.
		ref := configapply.ObjectReference().WithGroup(o.Group).WithResource(o.Resource).WithName(o.Name)
		if o.Namespace != "" {
			ref.WithNamespace(o.Namespace)
		}
		st.WithRelatedObjects(ref)
	}
	return configapply.ClusterOperator(name).WithStatus(st)
}

// read fetches the ClusterOperator from the API server, not a cache.
func (r *Reporter) read(ctx context.Context, now time.Time) error {
	co, err := r.cfg.ClusterOperators.Get(ctx, r.cfg.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		r.stored, r.missing = nil, true
	case err != nil:
		return fmt.Errorf("read ClusterOperator %s: %w", r.cfg.Name, err)
	default:
		r.stored, r.missing = co, false
	}
	r.readAt = now
	return nil
}

// RelatedObjects are what a person (or must-gather) looks at next: both namespaces, the
// Machines, the ControlPlaneMachineSet and the leader lock (nil when there is none). The
// MachineHealthChecks are added by the decision.
func RelatedObjects(namespace, electionNamespace string, lock *configv1.ObjectReference) []configv1.ObjectReference {
	const group = "machine.openshift.io"
	out := []configv1.ObjectReference{{Resource: "namespaces", Name: namespace}}
	if electionNamespace != "" && electionNamespace != namespace {
		out = append(out, configv1.ObjectReference{Resource: "namespaces", Name: electionNamespace})
	}
	out = append(out,
		configv1.ObjectReference{Group: group, Resource: "machines", Namespace: namespace},
		configv1.ObjectReference{Group: group, Resource: "controlplanemachinesets", Namespace: namespace, Name: masters.CPMSName},
	)
	if lock != nil {
		out = append(out, *lock)
	}
	return out
}

// withWarnings adds each warning to the Available condition's message.
func withWarnings(s configv1.ClusterOperatorStatus, warnings []string) configv1.ClusterOperatorStatus {
	if len(warnings) == 0 {
		return s
	}
	s.Conditions = slices.Clone(s.Conditions)
	for i, c := range s.Conditions {
		if c.Type == configv1.OperatorAvailable {
			s.Conditions[i].Message = strings.TrimSpace(c.Message + " WARNING: " + strings.Join(warnings, " WARNING: "))
		}
	}
	return s
}
