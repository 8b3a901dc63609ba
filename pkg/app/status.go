package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/failuredomain"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/leader"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// statusResync is how often the stored ClusterOperator is read again even when the status
// to report has not changed, so that one deleted or edited by someone else is put right.
const statusResync = time.Minute

// EnableStatus makes the controller report: it updates the quorumguard_ metrics on the
// controller-runtime registry from every pass and, unless Options.ClusterOperator is empty,
// keeps that ClusterOperator's status true. The reconciler's Observer only records the pass
// (a few microseconds); a runnable on the manager decides and writes, only on change and
// only while this replica leads. Calling it again does nothing.
func (c *Controller) EnableStatus() error {
	// On the Controller, not in a package map: a map keyed by controllers would keep every
	// one ever built (a test process builds hundreds) and all it refers to.
	if c.statusEnabled.Swap(true) {
		return nil
	}
	m, err := operatorstatus.NewMetrics(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	r := &reporter{
		c: c, metrics: m, kick: make(chan struct{}, 1), clock: time.Now,
		inertia: operatorstatus.DefaultInertia, version: operatorVersion(),
		log: ctrl.Log.WithName("status"),
	}
	prev := c.Reconciler.Observer
	c.Reconciler.Observer = func(o controlplane.Observation) {
		if prev != nil {
			prev(o)
		}
		r.observe(o)
	}
	return c.Manager.Add(r)
}

// leads says whether this replica holds the leader lock (or needs no election), whether or
// not it has claimed its fencing token: it then reports, and its metrics count.
func (c *Controller) leads() bool {
	if c.ForLife != nil {
		return c.holding.Load() || c.electionSkipped()
	}
	select {
	case <-c.Manager.Elected():
		return true
	default:
		return false
	}
}

// operatorVersion is $RELEASE_VERSION, as OpenShift operators are told their release, or
// the module version the binary was built at.
func operatorVersion() string {
	if v := os.Getenv("RELEASE_VERSION"); v != "" {
		return v
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "0.0.0-dev"
}

// reporter turns passes into metrics and the ClusterOperator status.
type reporter struct {
	c       *Controller
	metrics *operatorstatus.Metrics
	inertia operatorstatus.Inertia
	version string
	clock   func() time.Time
	log     logr.Logger
	kick    chan struct{}

	mu      sync.Mutex
	history []operatorstatus.Sample
	last    *controlplane.Observation

	// Only Start's goroutine touches these.
	stored  *configv1.ClusterOperator
	missing bool
	readAt  time.Time
}

// etcdObserved says the pass saw the members: a pass that could not observe etcd reports
// a Decision without conditions, every other one has the planner's conditions map. With
// quorum lost a pass sees the members, but the planner is not asked.
func etcdObserved(o controlplane.Observation) bool {
	var nq *etcdmember.NoQuorumError
	return o.Decision.Conditions != nil || errors.As(o.Err, &nq) && len(o.Members) > 0
}

// NeedLeaderElection is false: every replica keeps its metrics; writes check leadership.
func (r *reporter) NeedLeaderElection() bool { return false }

// observe runs on the reconcile goroutine after every pass, so it only records.
func (r *reporter) observe(o controlplane.Observation) {
	observed := etcdObserved(o)
	var fe *etcdmember.FencedError
	fenced := o.Err != nil && (errors.As(o.Err, &fe) || errors.Is(o.Err, leader.ErrNotLeader))
	r.metrics.Update(operatorstatus.MetricsInput{
		Time: o.Time, Machines: o.Machines, Members: o.Members, Decision: o.Decision,
		Observed: observed, Err: o.Err, Fenced: fenced, Hook: r.c.opts.Hook,
	})
	r.metrics.SetLeader(true)
	r.mu.Lock()
	r.history = r.inertia.Record(r.history, operatorstatus.NewSample(o.Time, o.Members, o.Decision, observed, o.Err))
	r.last = &o
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Start writes the status after each pass, when a MachineHealthCheck changes, and every
// second (inertia and the hook-held threshold depend on time alone).
func (r *reporter) Start(ctx context.Context) error {
	if r.c.opts.ClusterOperator != "" {
		inf, err := r.c.Manager.GetCache().GetInformer(ctx, &machinev1beta1.MachineHealthCheck{})
		if err != nil {
			return fmt.Errorf("watch MachineHealthChecks: %w", err)
		}
		poke := func(any) {
			select {
			case r.kick <- struct{}{}:
			default:
			}
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke,
		}); err != nil {
			return fmt.Errorf("watch MachineHealthChecks: %w", err)
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		leads := r.c.leads()
		r.metrics.SetLeader(leads)
		if leads && r.c.opts.ClusterOperator != "" {
			if err := r.sync(ctx); err != nil && ctx.Err() == nil {
				r.log.Error(err, "could not write the ClusterOperator status", "clusterOperator", r.c.opts.ClusterOperator)
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
func (r *reporter) sync(ctx context.Context) error {
	r.mu.Lock()
	obs := r.last
	history := slices.Clone(r.history)
	r.mu.Unlock()
	if obs == nil {
		return nil // nothing observed yet: nothing true to say
	}
	now := r.clock()
	o := r.c.opts
	var mhcs machinev1beta1.MachineHealthCheckList
	if err := r.c.Manager.GetClient().List(ctx, &mhcs, client.InNamespace(o.Namespace)); err != nil {
		return fmt.Errorf("list MachineHealthChecks: %w", err)
	}
	cpms := &machinev1.ControlPlaneMachineSet{}
	if err := r.c.Manager.GetClient().Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: masters.CPMSName}, cpms); apierrors.IsNotFound(err) {
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
		Hook: o.Hook, HookHeldThreshold: o.HookHeldThreshold,
		MachineHealthChecks: mhcs.Items, ControlPlaneMachineSet: cpms,
		Previous: prev, Version: r.version, Related: relatedObjects(o), MachineNamespace: o.Namespace,
	})
	if g := r.c.Guard; g != nil {
		if !g.OwnsClusterOperator() {
			return nil // another operator writes this ClusterOperator, or that is not known yet
		}
		if why := g.Quorum(); why != "" {
			want = heldStatus(want, prev, why, metav1.NewTime(now))
		}
	}
	if r.stored != nil && operatorstatus.Equal(want, r.stored.Status) {
		return nil
	}
	// The lock is read again right before the write: a replica that lost it writes nothing.
	// A status is a report and needs no fencing token (controlplane.HoldsLock).
	if err := controlplane.HoldsLock(ctx, r.c.Reconciler.Fence); err != nil {
		return nil //nolint:nilerr // not the leader: write nothing, by design
	}
	cl := r.c.Manager.GetClient()
	if r.missing {
		co := &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: o.ClusterOperator}}
		if err := cl.Create(ctx, co); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create ClusterOperator %s: %w", o.ClusterOperator, err)
		} else if err != nil {
			r.stored, r.missing = nil, false
			return r.read(ctx, now)
		}
		r.stored, r.missing = co, false
		r.log.Info("created the ClusterOperator", "clusterOperator", o.ClusterOperator)
	}
	next := r.stored.DeepCopy()
	next.Status = want
	if err := cl.Status().Update(ctx, next); err != nil {
		// Read it again before the next try; a conflict is retried at once.
		r.stored, r.readAt = nil, time.Time{}
		if apierrors.IsConflict(err) {
			select {
			case r.kick <- struct{}{}:
			default:
			}
		}
		return fmt.Errorf("update ClusterOperator %s status: %w", o.ClusterOperator, err)
	}
	r.stored = next
	return nil
}

// read fetches the ClusterOperator from the API server, not a cache.
func (r *reporter) read(ctx context.Context, now time.Time) error {
	co := &configv1.ClusterOperator{}
	err := r.c.Manager.GetAPIReader().Get(ctx, client.ObjectKey{Name: r.c.opts.ClusterOperator}, co)
	switch {
	case apierrors.IsNotFound(err):
		r.stored, r.missing = nil, true
	case err != nil:
		return fmt.Errorf("read ClusterOperator %s: %w", r.c.opts.ClusterOperator, err)
	default:
		r.stored, r.missing = co, false
	}
	r.readAt = now
	return nil
}

// relatedObjects are what a person (or must-gather) looks at next: both namespaces, the
// Machines, the ControlPlaneMachineSet and the leader lock. The MachineHealthChecks are
// added by the decision.
func relatedObjects(o Options) []configv1.ObjectReference {
	const group = "machine.openshift.io"
	out := []configv1.ObjectReference{{Resource: "namespaces", Name: o.Namespace}}
	if o.ElectionNS != "" && o.ElectionNS != o.Namespace {
		out = append(out, configv1.ObjectReference{Resource: "namespaces", Name: o.ElectionNS})
	}
	out = append(out,
		configv1.ObjectReference{Group: group, Resource: "machines", Namespace: o.Namespace},
		configv1.ObjectReference{Group: group, Resource: "controlplanemachinesets", Namespace: o.Namespace, Name: masters.CPMSName},
	)
	if o.ElectionNS != "" {
		switch o.LeaderElect {
		case "for-life":
			out = append(out, configv1.ObjectReference{Resource: "configmaps", Namespace: o.ElectionNS, Name: o.ElectionID})
		case "lease":
			out = append(out, configv1.ObjectReference{Group: "coordination.k8s.io", Resource: "leases", Namespace: o.ElectionNS, Name: o.ElectionID})
		}
	}
	return out
}

// Inspect gathers, without changing anything, what `quorumguard status` prints: a fresh
// member list with each member's own status, the control-plane Machines with their failure
// domains, the ClusterOperator, the MachineHealthChecks, and the planner's next step on the
// same snapshot the controller would build.
func Inspect(ctx context.Context, cfg *rest.Config, o Options) (*operatorstatus.Report, error) {
	cl, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, err
	}
	rep := &operatorstatus.Report{Time: time.Now().UTC().Truncate(time.Second), Namespace: o.Namespace}
	var list machinev1beta1.MachineList
	if err := cl.List(ctx, &list, client.InNamespace(o.Namespace), client.MatchingLabels{masters.RoleLabel: "master"}); err != nil {
		return nil, fmt.Errorf("list control-plane Machines in %s: %w", o.Namespace, err)
	}
	machines := list.Items
	sort.Slice(machines, func(i, j int) bool { return machines[i].Name < machines[j].Name })

	rep.Desired = o.DefaultReplicas
	var cpms *machinev1.ControlPlaneMachineSet
	got := &machinev1.ControlPlaneMachineSet{}
	switch err := cl.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: masters.CPMSName}, got); {
	case err == nil:
		cpms = got
		if got.Spec.Replicas != nil {
			rep.Desired = int(*got.Spec.Replicas)
		}
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("read ControlPlaneMachineSet: %w", err)
	}
	var mhcs machinev1beta1.MachineHealthCheckList
	if err := cl.List(ctx, &mhcs, client.InNamespace(o.Namespace)); err != nil {
		return nil, fmt.Errorf("list MachineHealthChecks: %w", err)
	}
	var cpLabels []labels.Set
	for i := range machines {
		cpLabels = append(cpLabels, machines[i].Labels)
	}
	rep.MachineHealthChecks = operatorstatus.CheckMachineHealthChecks(mhcs.Items, cpLabels, rep.Desired)
	if o.ClusterOperator != "" {
		co := &configv1.ClusterOperator{}
		switch err := cl.Get(ctx, client.ObjectKey{Name: o.ClusterOperator}, co); {
		case err == nil:
			rep.ClusterOperator = &operatorstatus.ClusterOperatorReport{Name: co.Name, Conditions: co.Status.Conditions, Versions: co.Status.Versions}
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("read ClusterOperator %s: %w", o.ClusterOperator, err)
		}
	}

	members, health, etcdErr := inspectEtcd(ctx, o, machines)
	state := controlplane.StateOf(machines, etcdmember.JoinHealth(members, health), cpms, o.Hook, rep.Desired)
	// As the controller's pass does: the time decides whether etcd's health window after a
	// promotion has passed.
	state.Now = time.Now()
	var conds map[string]quorum.Condition
	if etcdErr != nil {
		rep.EtcdError = etcdErr.Error()
		step := "nothing: etcd could not be observed"
		var nq *etcdmember.NoQuorumError
		if errors.As(etcdErr, &nq) {
			step = "nothing: etcd has lost quorum"
			rep.QuorumLost = true
		}
		rep.Next = operatorstatus.NextStep{Action: string(quorum.None), Step: step, Reason: etcdErr.Error()}
	} else {
		d := quorum.Decide(state)
		conds = d.Conditions
		rep.Next = operatorstatus.Next(state, d)
	}
	byID := map[uint64]etcdmember.Health{}
	for _, h := range health {
		byID[h.ID] = h
	}
	placement := quorum.Map(state.Machines, state.Members)
	for _, m := range state.Members {
		mr := operatorstatus.MemberReport{ID: fmt.Sprintf("%x", m.ID), Name: m.Name, Machine: placement.Of[m.ID].Machine, Role: "voter",
			Health: "healthy", Leader: m.Leader, PeerURLs: m.PeerURLs}
		switch p := placement.Of[m.ID]; p.Kind {
		case quorum.Ambiguous:
			mr.Machine, mr.Placement = "ambiguous: "+strings.Join(p.Candidates, ", "), p.Problem
		case quorum.Unmatched:
			mr.Machine, mr.Placement = "matches no Machine", p.Problem
		case quorum.Invalid:
			mr.Machine, mr.Placement = "invalid peer URL", p.Problem
		}
		if m.Learner {
			mr.Role, mr.Progress = "learner", m.Progress
		}
		switch {
		case !m.Started:
			mr.Health = "not started"
		case !m.Healthy:
			mr.Health = "unhealthy"
		}
		if h, ok := byID[m.ID]; ok {
			if h.Status != nil {
				mr.RaftIndex = h.Status.Index
			}
			if h.Err != nil && m.Started {
				mr.Error = h.Err.Error()
			}
		}
		rep.Members = append(rep.Members, mr)
	}

	var domains []failuredomain.Domain
	if cpms != nil {
		domains, _ = failuredomain.FromControlPlaneMachineSet(cpms)
	}
	for i := range machines {
		m := &machines[i]
		mr := operatorstatus.MachineReport{Name: m.Name, Phase: ptr.Deref(m.Status.Phase, ""), Deleting: m.DeletionTimestamp != nil, Hook: hooks.Has(m, o.Hook)}
		if ips := internalIPs(m); len(ips) > 0 {
			mr.InternalIP = ips[0]
		}
		if len(domains) > 0 {
			if d, ok, err := failuredomain.MachineDomain(domains[0].Platform, m, domains); err == nil && ok {
				mr.FailureDomain = d.Name
			}
		}
		// The condition as stored; when etcd was observed, the planner's view of it now.
		for _, c := range m.Status.Conditions {
			if c.Type == masters.ConditionType {
				mr.EtcdMember, mr.Message = c.Reason, c.Message
			}
		}
		if c, ok := conds[m.Name]; ok {
			mr.EtcdMember, mr.Message = c.Reason, c.Message
		}
		rep.Machines = append(rep.Machines, mr)
	}
	return rep, nil
}

// inspectEtcd lists and probes the members through the given endpoints, or those of the
// Machines (port 2379) when none are given: running Machines first, then deleting ones,
// whose members a held hook keeps in the cluster and which may be the only ones left.
func inspectEtcd(ctx context.Context, o Options, machines []machinev1beta1.Machine) ([]etcdmember.Member, []etcdmember.Health, error) {
	endpoints := o.EtcdEndpoints
	if len(endpoints) == 0 {
		var deleting []string
		for i := range machines {
			for _, ip := range internalIPs(&machines[i]) {
				ep := "https://" + net.JoinHostPort(ip, "2379")
				if machines[i].DeletionTimestamp != nil {
					deleting = append(deleting, ep)
				} else {
					endpoints = append(endpoints, ep)
				}
			}
		}
		endpoints = append(endpoints, deleting...)
	}
	if len(endpoints) == 0 {
		return nil, nil, errors.New("no etcd endpoints: none were given and no control-plane Machine has an InternalIP")
	}
	cli, err := etcdmember.NewFromFiles(etcdmember.Config{Endpoints: endpoints}, etcdmember.TLSFiles{CA: o.EtcdCA, Cert: o.EtcdCert, Key: o.EtcdKey})
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = cli.Close() }()
	return cli.State(ctx)
}

func internalIPs(m *machinev1beta1.Machine) []string {
	var out []string
	for _, a := range m.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && a.Address != "" {
			out = append(out, a.Address)
		}
	}
	return out
}
