package controlplane

import (
	"context"
	"fmt"
	"sort"
	"time"

	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/failuredomain"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// Etcd lists the etcd calls the controller makes; *etcdmember.View implements it and alone
// decides which endpoints are dialled. Every membership change carries the fencing token of
// the leadership that asks for it, and its own reason to be checked again after the fence
// (an etcdmember.Guard over the members read then).
type Etcd interface {
	// Observe returns a fresh member list (never cached) with health, leader and progress.
	// With quorum lost it may return a member's own view of the membership together with
	// an *etcdmember.NoQuorumError: that view is reported, never acted on.
	Observe(ctx context.Context) ([]etcdmember.Observed, error)
	AddLearner(ctx context.Context, token uint64, peerURL string, still etcdmember.Guard) (uint64, error)
	Promote(ctx context.Context, token, id uint64, still etcdmember.Guard) error
	Remove(ctx context.Context, token, id uint64, still etcdmember.Guard) error
	MoveLeader(ctx context.Context, token, to uint64, still etcdmember.Guard) error
	// Fence passes the fence in etcd with token: a write that needs quorum, refused with an
	// *etcdmember.FencedError once a newer leadership has passed it.
	Fence(ctx context.Context, token uint64) error
}

// snapshot is what one pass gathered.
type snapshot struct {
	machines []machinev1beta1.Machine
	cpms     *machinev1.ControlPlaneMachineSet
	state    quorum.State
	etcdErr  error
	// observed is the member list state.Members was built from, in the same order.
	observed []etcdmember.Observed
}

// Source is what a pass reads: the control-plane Machines and the ControlPlaneMachineSet
// through Reader, the members through Etcd. A Reconciler reads from its fields of the same
// names.
type Source struct {
	Reader    client.Reader
	Etcd      Etcd
	Namespace string
	Hook      machinev1beta1.LifecycleHook
	// PreTerminateHook is the preTerminate hook kept beside Hook; no Name keeps none.
	PreTerminateHook machinev1beta1.LifecycleHook
	DefaultReplicas  int
	// LearnerStartTimeout is handed to the planner (quorum.State.LearnerStartTimeout).
	LearnerStartTimeout time.Duration
	// Roles are the values of masters.RoleLabel whose Machines hold etcd members (see
	// coexist.Verdict.Roles); none means masters.MasterRole alone.
	Roles []string
}

func (r *Reconciler) source() Source {
	s := Source{Reader: r.Client, Etcd: r.Etcd, Namespace: r.Namespace, Hook: r.Hook, PreTerminateHook: r.PreTerminateHook,
		DefaultReplicas: r.DefaultReplicas, LearnerStartTimeout: r.LearnerStartTimeout}
	if r.Roles != nil {
		s.Roles = r.Roles()
	}
	return s
}

// Hooks is the Source's Set of hooks.
func (s Source) Hooks() hooks.Set {
	return hooks.Set{PreDrain: s.Hook, PreTerminate: s.PreTerminateHook}
}

// roleSelector selects the Machines of roles, masters alone when there are none.
func roleSelector(roles []string) (labels.Selector, error) {
	if len(roles) == 0 {
		roles = []string{masters.MasterRole}
	}
	req, err := labels.NewRequirement(masters.RoleLabel, selection.In, roles)
	if err != nil {
		return nil, err
	}
	return labels.NewSelector().Add(*req), nil
}

// withArbiters is the desired count of voting members when arbiter Machines hold members
// too: the masters' desired count, plus one for each arbiter Machine not being deleted, and
// at least one while any arbiter Machine exists, so that a deleted arbiter is replaced
// before its member is removed, as a master is.
func withArbiters(desired int, machines []machinev1beta1.Machine) int {
	arbiters, live := 0, 0
	for i := range machines {
		if machines[i].Labels[masters.RoleLabel] != masters.ArbiterRole {
			continue
		}
		arbiters++
		if machines[i].DeletionTimestamp == nil {
			live++
		}
	}
	if arbiters == 0 {
		return desired
	}
	return desired + max(1, live)
}

// gather is read, then each learner judged against the previous pass (learnerAges).
func (r *Reconciler) gather(ctx context.Context) (*snapshot, error) {
	st, err := r.source().read(ctx, r.own.apply, r.now)
	if err != nil {
		return nil, err
	}
	if st.etcdErr == nil {
		r.learnerAges(st)
	} else {
		// A pass that could not read etcd adds nothing to any learner's time standing still.
		r.etcdRead = false
	}
	return st, nil
}

// read is the part of a pass's gathering that needs no earlier pass: the Machines sorted by
// name (overlay, when set, puts this controller's own writes in place of versions the
// cache still holds), the desired count, a fresh observation of etcd, and the planner's
// input built from one reading. An etcd that cannot be observed is part of the snapshot,
// not an error.
func (s Source) read(ctx context.Context, overlay func([]machinev1beta1.Machine), now func() time.Time) (*snapshot, error) {
	var list machinev1beta1.MachineList
	sel, err := roleSelector(s.Roles)
	if err != nil {
		return nil, err
	}
	if err := s.Reader.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("list control-plane Machines in %s: %w", s.Namespace, err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	if overlay != nil {
		overlay(list.Items)
	}
	st := &snapshot{machines: list.Items}
	cpms, desired, err := s.desiredReplicas(ctx)
	if err != nil {
		return nil, err
	}
	st.cpms = cpms
	desired = withArbiters(desired, list.Items)

	observed, err := s.Etcd.Observe(ctx)
	if err != nil {
		st.etcdErr = err
		if len(observed) == 0 {
			st.state = StateOf(list.Items, nil, cpms, s.Hooks(), desired)
			return st, nil
		}
	}
	st.state = StateOf(list.Items, observed, st.cpms, s.Hooks(), desired)
	st.observed = observed
	st.state.LearnerStartTimeout = s.LearnerStartTimeout
	st.state.Now = now()
	return st, nil
}

// StateOf is the planner's input built from the objects and the observed members: the one
// place that turns them into a quorum.State, for the controller and `quorumguard status`
// alike. Members are placed on Machines by the planner itself (quorum.Map).
func StateOf(machines []machinev1beta1.Machine, members []etcdmember.Observed, cpms *machinev1.ControlPlaneMachineSet, set hooks.Set, desired int) quorum.State {
	s := quorum.State{Desired: desired, PreTerminateHook: set.WithPreTerminate()}
	for _, m := range members {
		healthy := m.Healthy
		if m.IsLearner {
			// One reading shows only that a learner is within reach of promotion; the
			// controller applies quorum.LearnerHealth with its previous pass (learnerAges).
			healthy = m.Healthy && quorum.WithinReach(readingOf(m))
		}
		s.Members = append(s.Members, quorum.Member{
			ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, Learner: m.IsLearner, Started: m.Started,
			Healthy: healthy, Leader: m.Leader, Progress: m.Progress, Index: m.Index, Alarms: m.Alarms,
		})
		if m.AlarmsUnread != "" {
			s.AlarmsUnread = m.AlarmsUnread
		}
	}
	var domains []failuredomain.Domain
	if cpms != nil {
		domains, _ = failuredomain.FromControlPlaneMachineSet(cpms) // unusable domains: none known
	}
	for i := range machines {
		m := &machines[i]
		qm := quorum.Machine{
			Name: m.Name, Deleting: m.DeletionTimestamp != nil, Running: ptr.Deref(m.Status.Phase, "") == "Running",
			HasHook: hooks.Has(m, set.PreDrain),
		}
		if set.WithPreTerminate() {
			qm.HasPreTerminateHook = hooks.HasPreTerminate(m, set.PreTerminate)
		}
		_, qm.ExcludeDrain = m.Annotations[hooks.ExcludeDrainAnnotation]
		if len(domains) > 0 {
			if d, ok, err := failuredomain.MachineDomain(domains[0].Platform, m, domains); err == nil && ok {
				qm.Domain = d.Key()
			}
		}
		for _, a := range m.Status.Addresses {
			qm.Addresses = append(qm.Addresses, quorum.Address{Type: string(a.Type), Address: a.Address})
		}
		if m.Status.NodeRef != nil {
			qm.NodeName = m.Status.NodeRef.Name
		}
		if ok, why := masters.MayHoldMember(m, machines, cpms); !ok {
			qm.Ineligible = why
		}
		if c := condition(m); c != nil && c.Reason == quorum.ReasonHookReleased {
			qm.ReleasedByUs = true
		}
		if c := condition(m); c != nil && c.Reason == quorum.ReasonVoting && c.Status == corev1.ConditionTrue {
			qm.VotingSince = c.LastTransitionTime.Time
		}
		s.Machines = append(s.Machines, qm)
	}
	return s
}

// learnerAges applies quorum.LearnerHealth to every learner, against the previous pass's
// reading, and tells the planner how long each learner has stood still (neither healthy
// nor progressing), and which Machines recently had a learner removed for it.
//
// Only passes that read etcd count: this runs only on them, and the time between two passes
// counts only when the earlier one read etcd too, so that an outage of etcd (or of the
// network to it) never adds to a learner's time standing still, and one unhealthy pass after
// it cannot remove a learner. The readings are kept in memory: a restarted controller starts
// counting again, which only ever waits longer.
func (r *Reconciler) learnerAges(st *snapshot) {
	now := r.now()
	var elapsed time.Duration
	if r.etcdRead && !r.lastRead.IsZero() {
		elapsed = now.Sub(r.lastRead)
	}
	r.etcdRead, r.lastRead = true, now
	seen := map[uint64]learnerSeen{}
	for i, m := range st.state.Members {
		if !m.Learner {
			continue
		}
		prev, ok := r.learners[m.ID]
		reading := readingOf(st.observed[i])
		reading.Answered = reading.Answered && st.observed[i].Healthy
		var before *quorum.LearnerReading
		if ok {
			before = &prev.reading
		}
		if snap := st.observed[i].Snapshot; snap != nil {
			reading.Snapshot = quorum.ReadSnapshot(quorum.SnapshotReading{InFlight: snap.InFlight, Failures: snap.Failures, Successes: snap.Successes, Bytes: snap.Bytes},
				reading.Answered, before, now)
		}
		healthy, progressing := quorum.LearnerHealth(reading, before)
		cur := learnerSeen{reading: reading}
		if !healthy && !progressing {
			cur.still = prev.still + elapsed
		}
		seen[m.ID] = cur
		st.state.Members[i].Healthy = healthy
		st.state.Members[i].DownFor = cur.still
		st.state.Members[i].CatchUp = catchUp(reading, before, elapsed)
	}
	r.learners = seen
	for i, m := range st.state.Machines {
		if t, ok := r.learnerTimedOut[m.Name]; ok {
			if now.Sub(t) < 2*max(r.LearnerStartTimeout, time.Minute) {
				st.state.Machines[i].LearnerTimedOut = true
			} else {
				delete(r.learnerTimedOut, m.Name)
			}
		}
	}
}

// learnerSeen is the last reading of a learner and how long it has stood still.
type learnerSeen struct {
	reading quorum.LearnerReading
	still   time.Duration
}

// catchUp measures a learner's catch-up between two readings elapsed apart: the snapshot it
// receives, or how fast the gap to the leader's index closed and the time left at that rate.
func catchUp(now quorum.LearnerReading, before *quorum.LearnerReading, elapsed time.Duration) quorum.CatchUp {
	c := quorum.CatchUp{Snapshot: now.Snapshot}
	if before == nil || elapsed <= 0 || !now.Answered || !before.Answered || now.LeaderIndex == 0 || before.LeaderIndex == 0 {
		return c
	}
	gap := func(r quorum.LearnerReading) float64 { return float64(r.LeaderIndex) - float64(r.Index) }
	closed := gap(*before) - gap(now)
	if closed <= 0 || gap(now) <= 0 {
		return c
	}
	c.Rate = closed / elapsed.Seconds()
	c.Left = time.Duration(gap(now) / c.Rate * float64(time.Second))
	return c
}

func readingOf(m etcdmember.Observed) quorum.LearnerReading {
	return quorum.LearnerReading{Answered: m.Answered, Index: m.Index, LeaderIndex: m.LeaderIndex}
}

// desiredReplicas comes from the ControlPlaneMachineSet, or the flag when there is none.
func (s Source) desiredReplicas(ctx context.Context) (*machinev1.ControlPlaneMachineSet, int, error) {
	cpms := &machinev1.ControlPlaneMachineSet{}
	err := s.Reader.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: masters.CPMSName}, cpms)
	switch {
	case apierrors.IsNotFound(err):
		return nil, s.DefaultReplicas, nil
	case err != nil:
		return nil, 0, fmt.Errorf("read ControlPlaneMachineSet %s/%s: %w", s.Namespace, masters.CPMSName, err)
	case cpms.Spec.Replicas == nil:
		return cpms, s.DefaultReplicas, nil
	default:
		return cpms, int(*cpms.Spec.Replicas), nil
	}
}

func condition(m *machinev1beta1.Machine) *machinev1beta1.Condition {
	for i := range m.Status.Conditions {
		if m.Status.Conditions[i].Type == masters.ConditionType {
			return &m.Status.Conditions[i]
		}
	}
	return nil
}
