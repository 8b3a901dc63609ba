package controlplane

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	etcdsnapshot "github.com/quorumguard/quorumguard/pkg/snapshot"
)

// Snapshotter takes the etcd snapshot a voting member's removal waits for (pkg/snapshot).
type Snapshotter interface {
	Take(ctx context.Context, req etcdsnapshot.Request) (etcdsnapshot.Result, error)
}

// ReasonSnapshotFailed is the EtcdMember condition's reason, and the Warning Event's, while
// a member's removal waits for an etcd snapshot that could not be taken.
const ReasonSnapshotFailed = "SnapshotFailed"

// ensureHooks puts the hooks on every live control-plane Machine, and reports a hook that
// someone removed from a deleting one and the exclude-node-draining annotation.
func (r *Reconciler) ensureHooks(ctx context.Context, st *snapshot) {
	set := r.hooks()
	writes := false
	for i := range st.machines {
		if _, out := hooks.DesiredSet(&st.machines[i], set); out.Writes() {
			writes = true
		}
	}
	// Leadership is read again before writing; with nothing to write there is nothing to
	// check (a missing hook on a deleting Machine is only reported).
	if writes {
		if _, err := r.Fence.Token(ctx); err != nil {
			return // not the leader any more: write nothing
		}
	}
	for i := range st.machines {
		m := &st.machines[i]
		rv := m.ResourceVersion
		out, err := r.writer().EnsureSet(ctx, m, set)
		if err == nil && m.ResourceVersion != rv {
			r.own.record(rv, m)
		}
		if err != nil {
			r.event(m, corev1.EventTypeWarning, "HookWriteFailed", "Ensure", err.Error())
			continue
		}
		r.reportHook(m, "preDrain", set.PreDrain, out.PreDrain)
		if set.WithPreTerminate() {
			r.reportHook(m, "preTerminate", set.PreTerminate, out.PreTerminate)
		}
		r.reportExcludeDrain(m, set)
	}
}

// reportHook sends the Event for what EnsureSet did with one hook of m. A hook missing
// from a deleting Machine is reported once: the condition records it after this pass.
func (r *Reconciler) reportHook(m *machinev1beta1.Machine, kind string, hook machinev1beta1.LifecycleHook, out hooks.Outcome) {
	switch out {
	case hooks.Added:
		r.event(m, corev1.EventTypeNormal, "HookAdded", "Ensure", fmt.Sprintf("added %s hook %s (owner %s)", kind, hook.Name, hook.Owner))
	case hooks.Repaired:
		r.event(m, corev1.EventTypeNormal, "HookRepaired", "Ensure", fmt.Sprintf("set the owner of %s hook %s to %s", kind, hook.Name, hook.Owner))
	case hooks.Missing:
		c := condition(m)
		if c != nil && (c.Reason == quorum.ReasonHookReleased || c.Reason == quorum.ReasonHookRemovedExternally) {
			return
		}
		if kind == "preDrain" {
			r.event(m, corev1.EventTypeWarning, quorum.ReasonHookRemovedExternally, "Observe",
				fmt.Sprintf("preDrain hook %s was removed from the deleting Machine by someone else; it is not added back, so etcd quorum is no longer protected for this Machine", hook.Name))
			return
		}
		if c != nil && strings.Contains(c.Message, quorum.NoteNoPreTerminateHook) {
			return
		}
		r.event(m, corev1.EventTypeWarning, quorum.ReasonHookRemovedExternally, "Observe",
			fmt.Sprintf("preTerminate hook %s is not on the deleting Machine (removed by someone else, or the Machine was deleting before quorumguard kept one); it is not added back, so should its drain be skipped nothing holds its instance while its etcd member votes", hook.Name))
	}
}

// ReasonExcludeDrain is the Warning Event's reason on a control-plane Machine that carries
// the exclude-node-draining annotation.
const ReasonExcludeDrain = "NodeDrainExcluded"

// reportExcludeDrain sends a Warning Event on a control-plane Machine that carries the
// exclude-node-draining annotation, once: the condition records it after this pass.
func (r *Reconciler) reportExcludeDrain(m *machinev1beta1.Machine, set hooks.Set) {
	if _, ok := m.Annotations[hooks.ExcludeDrainAnnotation]; !ok {
		return
	}
	if c := condition(m); c != nil && strings.Contains(c.Message, quorum.NoteExcludeDrain) {
		return
	}
	msg := fmt.Sprintf("the Machine carries the %s annotation: OpenShift's Machine controller skips its drain, and preDrain hook %s with it", hooks.ExcludeDrainAnnotation, set.PreDrain.Name)
	if set.WithPreTerminate() {
		msg += fmt.Sprintf("; preTerminate hook %s holds its instance until its etcd member is removed", set.PreTerminate.Name)
	} else {
		msg += "; no preTerminate hook is kept, so nothing holds its instance while its etcd member votes"
	}
	r.event(m, corev1.EventTypeWarning, ReasonExcludeDrain, "Observe", msg)
}

// act takes the decided action. A refused promotion (learner not yet in sync) is not an
// error: the learner's progress is recorded and the next pass tries again.
func (r *Reconciler) act(ctx context.Context, st *snapshot, d *quorum.Decision) error {
	a := d.Action
	if a.Kind == quorum.None {
		return nil
	}
	token, err := r.Fence.Token(ctx)
	if err != nil {
		return fmt.Errorf("not acting (%s): %w", a, err)
	}
	if r.BeforeAct != nil {
		r.BeforeAct(ctx, a)
	}
	m := machineNamed(st.machines, a.Machine)
	recheck := r.still(st, a)
	switch a.Kind {
	case quorum.AddLearner:
		id, err := r.Etcd.AddLearner(ctx, token, a.PeerURL, recheck)
		if r.waiting(ctx, d, a, err) || r.stale(ctx, a, err) {
			return nil
		}
		if err != nil {
			return r.failed(m, a, err)
		}
		r.event(m, corev1.EventTypeNormal, "LearnerAdded", "AddLearner", fmt.Sprintf("added etcd learner %x at %s: %s", id, a.PeerURL, a.Reason))
	case quorum.Promote:
		err := r.Etcd.Promote(ctx, token, a.MemberID, recheck)
		var notInSync *etcdmember.NotInSyncError
		if errors.As(err, &notInSync) {
			logr.FromContextOrDiscard(ctx).V(1).Info("learner not promoted yet; tried again on the next pass", "member", fmt.Sprintf("%x", a.MemberID), "why", err.Error())
			return nil
		}
		if r.stale(ctx, a, err) {
			return nil
		}
		if err != nil {
			return r.failed(m, a, err)
		}
		// etcd's answer is not taken on trust: the member list must show the promotion.
		if err := r.verifyPromoted(ctx, a.MemberID); err != nil {
			return r.failed(m, a, err)
		}
		// The condition says Voting from this pass on: its lastTransitionTime is when the
		// planner starts counting etcd's health window before the old member's removal.
		d.Conditions[a.Machine] = quorum.Condition{Status: "True", Reason: quorum.ReasonVoting, Message: fmt.Sprintf("voting member %x, healthy", a.MemberID)}
		r.event(m, corev1.EventTypeNormal, "LearnerPromoted", "Promote", fmt.Sprintf("promoted etcd learner %x to a voting member: %s", a.MemberID, a.Reason))
	case quorum.MoveLeader:
		err := r.Etcd.MoveLeader(ctx, token, a.To, recheck)
		if r.stale(ctx, a, err) {
			return nil
		}
		if err != nil {
			return r.failed(m, a, err)
		}
		r.event(m, corev1.EventTypeNormal, "LeaderMoved", "MoveLeader", fmt.Sprintf("moved etcd leadership from %x to %x before removing the member", a.MemberID, a.To))
	case quorum.RemoveMember:
		if err := r.snapshotBefore(ctx, st, d, a, m); err != nil {
			return err
		}
		err := r.Etcd.Remove(ctx, token, a.MemberID, recheck)
		if r.waiting(ctx, d, a, err) || r.stale(ctx, a, err) {
			return nil
		}
		if err != nil {
			return r.failed(m, a, err)
		}
		if a.StartTimedOut {
			if r.learnerTimedOut == nil {
				r.learnerTimedOut = map[string]time.Time{}
			}
			r.learnerTimedOut[a.Machine] = r.now()
			r.event(m, corev1.EventTypeWarning, "LearnerNotStarted", "RemoveMember", fmt.Sprintf("etcd learner %x was not healthy (never started, or stopped answering) for %s and was removed to free the learner slot; a new one is added later", a.MemberID, r.LearnerStartTimeout))
		}
		r.event(m, corev1.EventTypeNormal, "MemberRemoved", "RemoveMember", fmt.Sprintf("removed etcd member %x: %s", a.MemberID, a.Reason))
	case quorum.ReleaseHook:
		if m == nil {
			return nil
		}
		// Leadership is checked again right before the write: a paused old leader that woke
		// up must not release a hook the new leader is holding.
		// A release that is not made leaves the Machine's condition as it was: the planner's
		// HookReleased would say the hook went when it stayed.
		kept := func() { delete(d.Conditions, m.Name) }
		if _, err := r.Fence.Token(ctx); err != nil {
			kept()
			return fmt.Errorf("not releasing the hook of %s: %w", m.Name, err)
		}
		// And etcd is asked, through the fence, whether it still has quorum and this
		// leadership is still the newest: a release decided on a member list read just
		// before quorum went is not made while it is gone (on the protected store the
		// apiserver could not write it then anyway). Then the member list is read afresh:
		// the release goes ahead only if the planner, on that list, still releases this
		// Machine's hook.
		if err := r.releaseFence(ctx, token, recheck); err != nil {
			kept()
			if r.stale(ctx, a, err) {
				return nil
			}
			return fmt.Errorf("not releasing the hook of %s: %w", m.Name, err)
		}
		// The HookReleased condition goes first, so that the next pass, seeing the hook gone,
		// knows it was this controller that released it (not someone else) even if it runs
		// before this pass's conditions are written. Like the release, it is refused if the
		// Machine changed since it was read, and then nothing is released. A write refused
		// for a conflict is tried again on the Machine read afresh, only after the fence and
		// the fresh member list have been checked again as above.
		same := sameDecision(m)
		still := func(fresh *machinev1beta1.Machine) error {
			if err := same(fresh); err != nil {
				return err
			}
			return r.releaseFence(ctx, token, recheck)
		}
		if want, ok := d.Conditions[m.Name]; ok {
			if err := r.patchCondition(ctx, m, want, still); err != nil {
				kept()
				if r.stale(ctx, a, err) {
					return nil
				}
				return r.failed(m, a, fmt.Errorf("record the release before making it: %w", err))
			}
		}
		// The member list this release rests on was read after the fence. A write refused
		// for a conflict is tried again on the Machine read afresh, but only while it is
		// still deleting and still shows the addresses and Node the placement used, and
		// after the fence and a fresh member list allow it again.
		rv := m.ResourceVersion
		if err := r.writer().ReleaseSet(ctx, m, r.hooks(), still); err != nil {
			return r.failed(m, a, err)
		}
		if m.ResourceVersion != rv {
			r.own.record(rv, m)
		}
		r.event(m, corev1.EventTypeNormal, quorum.ReasonHookReleased, "ReleaseHook", "released "+r.hooks().Names()+": "+a.Reason)
	}
	return nil
}

// snapshotBefore takes an etcd snapshot before a voting member is removed, when snapshots
// are configured: a removal that cannot be undone gets a restore point first. A failed
// snapshot holds the removal: nothing is removed, the Machine's condition and a Warning
// Event say why, and the error sends the action to its backoff, after which the next pass
// decides and tries again. A learner's removal (one that never started, or stopped) needs
// none: a learner holds no data the voters lack and its removal leaves quorum as it was,
// and a learner removed every few minutes would push the voters' snapshots out of
// retention.
func (r *Reconciler) snapshotBefore(ctx context.Context, st *snapshot, d *quorum.Decision, a quorum.Action, m *machinev1beta1.Machine) error {
	if r.Snapshots == nil || a.StartTimedOut {
		return nil
	}
	req, needed := SnapshotRequest(st.observed, a.MemberID, a.Machine)
	if !needed {
		return nil
	}
	res, err := r.Snapshots.Take(ctx, req)
	if err != nil {
		msg := fmt.Sprintf("etcd member %x is not removed until an etcd snapshot is taken; it is tried again on the next pass: %v", a.MemberID, err)
		d.Conditions[a.Machine] = quorum.Condition{Status: "False", Reason: ReasonSnapshotFailed, Message: msg}
		r.event(m, corev1.EventTypeWarning, ReasonSnapshotFailed, string(a.Kind), msg)
		return fmt.Errorf("%s held: %w", a, err)
	}
	if !res.Reused {
		r.event(m, corev1.EventTypeNormal, "SnapshotTaken", string(a.Kind), fmt.Sprintf("took etcd snapshot %s (%d bytes, from member %x) before removing member %x", res.Path, res.Size, res.From, a.MemberID))
	}
	return nil
}

// SnapshotRequest is the snapshot to take, from the members observed, before member id of
// machine is removed; false when none is needed: a learner holds nothing the voters lack.
// The controller and `quorumguard release` both ask for it so.
func SnapshotRequest(observed []etcdmember.Observed, id uint64, machine string) (etcdsnapshot.Request, bool) {
	req := etcdsnapshot.Request{Member: id, Machine: machine}
	for _, o := range observed {
		if o.ID == id && o.IsLearner {
			return etcdsnapshot.Request{}, false
		}
		req.Members = append(req.Members, etcdsnapshot.Member{ID: o.ID, Name: o.Name, ClientURLs: o.ClientURLs, Healthy: o.Healthy, Learner: o.IsLearner})
	}
	return req, true
}

// releaseFence passes the etcd fence with token, reads the member list afresh and checks
// the release's reason on it: the step a hook release takes before each of its writes.
func (r *Reconciler) releaseFence(ctx context.Context, token uint64, still etcdmember.Guard) error {
	if err := r.Etcd.Fence(ctx, token); err != nil {
		return err
	}
	fresh, err := r.Etcd.Observe(ctx)
	if err != nil {
		return fmt.Errorf("read the member list after the fence: %w", err)
	}
	if err := still(fresh); err != nil {
		return &etcdmember.StaleError{Op: "hook release", Err: err}
	}
	return nil
}

// still is action a's own reason, checked again on a member list read after the fence: the
// planner, given the same Machines and that list (learners judged against this pass's
// readings, their time standing still carried over), must decide the very same action. A
// learner removed for standing still must still be a learner that is neither healthy nor
// progressing; a voter removed must still be placed on its deleting Machine, or still be
// dead; a hook released must still have no member placed on its Machine; a learner
// promoted must still be healthy and every voter healthy. Anything else waits for the
// next pass, which decides again on what it reads.
func (r *Reconciler) still(st *snapshot, a quorum.Action) etcdmember.Guard {
	return func(fresh []etcdmember.Observed) error {
		s := StateOf(st.machines, fresh, st.cpms, r.hooks(), st.state.Desired)
		s.LearnerStartTimeout, s.Now, s.RemovalHeld = st.state.LearnerStartTimeout, st.state.Now, st.state.RemovalHeld
		down := map[uint64]time.Duration{}
		for _, m := range st.state.Members {
			down[m.ID] = m.DownFor
		}
		for i, m := range fresh {
			if !m.IsLearner {
				continue
			}
			var before *quorum.LearnerReading
			reading := readingOf(m)
			reading.Answered = reading.Answered && m.Healthy
			if prev, ok := r.learners[m.ID]; ok {
				// The list read after the fence carries no snapshot report: a learner this
				// pass found receiving one was not decided against, so none is needed.
				before = &prev.reading
			}
			healthy, progressing := quorum.LearnerHealth(reading, before)
			s.Members[i].Healthy = healthy
			if !healthy && !progressing {
				s.Members[i].DownFor = down[m.ID]
			}
		}
		for i, mach := range s.Machines {
			if _, ok := r.learnerTimedOut[mach.Name]; ok {
				s.Machines[i].LearnerTimedOut = true
			}
		}
		now := quorum.Decide(s).Action
		if now.Kind != a.Kind || now.Machine != a.Machine || now.MemberID != a.MemberID || now.PeerURL != a.PeerURL || now.To != a.To {
			return fmt.Errorf("decided %q, but on the member list read after the fence the planner decides %q", a.String(), now.String())
		}
		return nil
	}
}

// stale says err is a refusal because the action's reason no longer held after the fence
// (see still): nothing was changed, and the next pass decides again. It is logged, not an
// error and not a Warning Event.
func (r *Reconciler) stale(ctx context.Context, a quorum.Action, err error) bool {
	var se *etcdmember.StaleError
	if !errors.As(err, &se) {
		return false
	}
	logr.FromContextOrDiscard(ctx).Info("not acting: the reason no longer holds after the fence; deciding again on the next pass", "action", a.String(), "why", se.Err.Error())
	return true
}

// waiting says err is etcd's refusal for its health window, which passes by itself: the
// step waits (the Machine's condition says so, and it is tried again on the next pass)
// instead of failing, with no Warning Event and no error. The planner waits for the window
// itself (quorum.HealthWindow); this covers what it cannot see, such as a member restarted
// a moment ago.
func (r *Reconciler) waiting(ctx context.Context, d *quorum.Decision, a quorum.Action, err error) bool {
	var refused *etcdmember.UnsafeChangeError
	if !errors.As(err, &refused) || !refused.Passes {
		return false
	}
	logr.FromContextOrDiscard(ctx).V(1).Info("etcd refuses the change until its health window passes; it is tried again", "action", a.String(), "refusal", refused.Reason)
	msg := fmt.Sprintf("etcd refuses this for now (%s): it allows it once its voting members have been connected for its health interval (%s); it is tried again on the next pass", refused.Reason, quorum.HealthWindow)
	switch a.Kind {
	case quorum.RemoveMember:
		if c, ok := d.Conditions[a.Machine]; ok && c.Reason == quorum.ReasonRemovingMember {
			d.Conditions[a.Machine] = quorum.Condition{Status: "False", Reason: quorum.ReasonWaitingForHealthWindow, Message: fmt.Sprintf("member %x is removed once etcd allows it: %s", a.MemberID, msg)}
		}
	case quorum.AddLearner:
		d.Conditions[a.Machine] = quorum.Condition{Status: "False", Reason: quorum.ReasonNotMember, Message: "a learner is added once etcd allows it: " + msg}
	}
	return true
}

// hooks is the Set of hooks the controller keeps.
func (r *Reconciler) hooks() hooks.Set {
	return hooks.Set{PreDrain: r.Hook, PreTerminate: r.PreTerminateHook}
}

func (r *Reconciler) writer() hooks.Writer {
	return hooks.Writer{Client: r.Client, Reader: r.Reader}
}

// sameDecision says whether a fresh copy of m still allows what was decided on m: it is
// still deleting and shows the same addresses and Node, the signals members are placed by.
func sameDecision(m *machinev1beta1.Machine) func(*machinev1beta1.Machine) error {
	addrs, node := fmt.Sprint(m.Status.Addresses), fmt.Sprint(m.Status.NodeRef)
	return func(fresh *machinev1beta1.Machine) error {
		if fresh.DeletionTimestamp == nil || fmt.Sprint(fresh.Status.Addresses) != addrs || fmt.Sprint(fresh.Status.NodeRef) != node {
			return hooks.ErrChanged
		}
		return nil
	}
}

// errPromotionNotApplied: etcd answered a promotion but its member list still shows a learner.
var errPromotionNotApplied = errors.New("etcd accepted the promotion but the member list, read again, still shows a learner; it is tried again on the next pass")

// verifyPromoted re-reads the member list after a promotion and fails unless member id
// now votes.
func (r *Reconciler) verifyPromoted(ctx context.Context, id uint64) error {
	ms, err := r.Etcd.Observe(ctx)
	if err != nil {
		return fmt.Errorf("re-read the member list after the promotion: %w", err)
	}
	for _, m := range ms {
		if m.ID == id && !m.IsLearner {
			return nil
		}
		if m.ID == id {
			return errPromotionNotApplied
		}
	}
	return fmt.Errorf("member %x is not in the member list read after its promotion", id)
}

// report sends each new set of planner reports (members not accounted for, shared
// addresses) as Warning Events on the Machines concerned, once.
func (r *Reconciler) report(st *snapshot, d quorum.Decision) {
	key := strings.Join(d.Reports, "\n")
	if key == r.reported {
		return
	}
	r.reported = key
	if key == "" {
		return
	}
	targets := map[string]bool{}
	for _, id := range d.Unaccounted {
		for _, name := range d.Mapping.Of[id].Candidates {
			targets[name] = true
		}
	}
	for i := range st.machines {
		m := &st.machines[i]
		if c := d.Conditions[m.Name]; c.Reason == quorum.ReasonBlocked {
			targets[m.Name] = true
		}
		if _, ok := d.Mapping.Shared[m.Name]; ok {
			targets[m.Name] = true
		}
	}
	for i := range st.machines {
		if m := &st.machines[i]; targets[m.Name] || len(targets) == 0 {
			r.event(m, corev1.EventTypeWarning, "MembershipUnclear", "Map", strings.Join(d.Reports, "; "))
		}
	}
}

func (r *Reconciler) failed(m *machinev1beta1.Machine, a quorum.Action, err error) error {
	r.event(m, corev1.EventTypeWarning, string(a.Kind)+"Failed", string(a.Kind), fmt.Sprintf("%s: %v", a, err))
	return fmt.Errorf("%s: %w", a, err)
}

func (r *Reconciler) event(m *machinev1beta1.Machine, typ, reason, action, note string) {
	if r.Recorder == nil || m == nil {
		return
	}
	r.Recorder.Eventf(m, nil, typ, reason, action, "%s", note)
}

func machineNamed(ms []machinev1beta1.Machine, name string) *machinev1beta1.Machine {
	for i := range ms {
		if ms[i].Name == name {
			return &ms[i]
		}
	}
	return nil
}

var _ client.Object = &machinev1beta1.Machine{}
