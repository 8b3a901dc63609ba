package operatorstatus

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/quorumguard/quorumguard/pkg/failuredomain"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// The reasons of the ClusterOperator conditions.
const (
	ReasonAsExpected = "AsExpected"
	// Available.
	ReasonEtcdQuorate     = "EtcdQuorate"
	ReasonNoQuorum        = "NoQuorum"
	ReasonEtcdUnreachable = "EtcdUnreachable"
	// Progressing and Upgradeable.
	ReasonReplacementInProgress = "ReplacementInProgress"
	// Degraded.
	ReasonMembersUnhealthy              = "MembersUnhealthy"
	ReasonHookHeldTooLong               = "HookHeldTooLong"
	ReasonInvalidControlPlaneMachineSet = "InvalidControlPlaneMachineSet"
	ReasonUnsafeMachineHealthCheck      = "UnsafeMachineHealthCheck"
	ReasonReconcileFailing              = "ReconcileFailing"
	// ReasonMachineHealthCheckRestricted: a MachineHealthCheck over the control-plane
	// Machines short-circuited (its RemediationAllowed condition is False: more Machines are
	// unhealthy than maxUnhealthy allows), so it remediates none of them.
	ReasonMachineHealthCheckRestricted = "MachineHealthCheckRestricted"
	// ReasonNodeDrainExcluded: a control-plane Machine carries the exclude-node-draining
	// annotation and no preTerminate hook would hold its instance.
	ReasonNodeDrainExcluded = "NodeDrainExcluded"
	// ReasonUnaccountedMembers: a voting member cannot be placed on exactly one Machine, so
	// no hook is released and no learner is added until a person resolves it.
	ReasonUnaccountedMembers = "UnaccountedMembers"
	// ReasonReplacementBlocked: a deleting Machine's replacement cannot go on safely; its
	// EtcdMember condition (reason Blocked) says what unblocks it.
	ReasonReplacementBlocked = "ReplacementBlocked"
	// Upgradeable.
	ReasonNoFaultTolerance = "NoFaultTolerance"
)

// ReasonControlPlaneMachinesDegraded (Degraded): the Machine controller reports the
// ControlPlaneMachineSet Degraded; the message carries its reason and message.
const ReasonControlPlaneMachinesDegraded = "ControlPlaneMachinesDegraded"

// DefaultFailingPasses is how many passes in a row must fail before Degraded says so.
const DefaultFailingPasses = 3

// OperatorVersionName is the name of the operator's own entry in status.versions.
const OperatorVersionName = "operator"

// Input is everything one status decision looks at.
type Input struct {
	Now time.Time
	// Machines, Members, Desired and Decision are the newest pass's; Observed is false when
	// that pass could not observe etcd (Members and Decision are then empty).
	Machines []machinev1beta1.Machine
	Members  []quorum.Member
	Desired  int
	Decision quorum.Decision
	Observed bool
	// History holds the samples of recent passes, oldest first, the newest pass's included.
	History []Sample
	Inertia Inertia
	// FailingPasses is how many failed passes in a row make the operator Degraded.
	FailingPasses int

	Hook              machinev1beta1.LifecycleHook
	HookHeldThreshold time.Duration
	// PreTerminateHook is the preTerminate hook kept beside Hook; no Name when none is.
	PreTerminateHook machinev1beta1.LifecycleHook
	// MachineHealthChecks are those in the Machines' namespace.
	MachineHealthChecks []machinev1beta1.MachineHealthCheck
	// ControlPlaneMachineSet is nil when there is none.
	ControlPlaneMachineSet *machinev1.ControlPlaneMachineSet

	// Previous is the status as it stands; conditions keep their transition times while
	// their status holds, and condition types this package does not own are kept.
	Previous configv1.ClusterOperatorStatus
	Version  string
	// Related are the related objects other than the MachineHealthChecks, which are added.
	Related []configv1.ObjectReference
	// MachineNamespace is where the MachineHealthChecks are.
	MachineNamespace string
}

// finding is one reason a condition is not in its good state.
type finding struct{ reason, message string }

// Decide returns the ClusterOperator status for in.
//
//   - Available is False while etcd has no quorum or cannot be observed.
//   - Progressing is True while a replacement is under way: a deleting Machine still holds
//     the hook, a learner exists, or the pass decided a step. Its message names the Machines
//     and the step.
//   - Degraded is True for unhealthy members, a lost quorum, etcd out of reach, a hook held
//     longer than HookHeldThreshold, an invalid ControlPlaneMachineSet (or any problem
//     the Machine controller reports on it through its Degraded condition), an unsafe
//     MachineHealthCheck, or FailingPasses failed passes in a row. Several reasons are
//     joined with "::", their messages by new lines.
//   - Upgradeable is False while etcd tolerates no failure, a replacement is under way, or
//     a MachineHealthCheck is unsafe.
//
// Probed findings (quorum, member health, fault tolerance, reachability) go through Settle.
func Decide(in Input) configv1.ClusterOperatorStatus {
	if in.Inertia == (Inertia{}) {
		in.Inertia = DefaultInertia
	}
	if in.FailingPasses == 0 {
		in.FailingPasses = DefaultFailingPasses
	}
	probedNow := Settle(in.History, in.Now, in.Inertia, func(reason string) bool { return priorReported(in.Previous, reason) })
	verdicts := CheckMachineHealthChecks(in.MachineHealthChecks, controlPlaneLabels(in.Machines), in.Desired)
	var unsafe, restricted []finding
	for _, v := range verdicts {
		if !v.Safe {
			unsafe = append(unsafe, finding{ReasonUnsafeMachineHealthCheck, v.Message})
		}
		if v.Restricted != "" {
			restricted = append(restricted, finding{ReasonMachineHealthCheckRestricted, fmt.Sprintf(
				"MachineHealthCheck %s remediates no control-plane Machine: %s. Deleting two masters at once could cost etcd its quorum; bring one of their Nodes back, or delete one Machine by hand (quorumguard still holds its member until a replacement is promoted)",
				v.Name, v.Restricted)})
		}
	}
	progressing := progress(in)
	unheld, held := drainExcluded(in)

	// Available follows lost quorum, and its return, at once: the newest pass decides when
	// it established either (a lost quorum on two signals; a linearizable member list with
	// a quorum of healthy voters). Inertia only smooths what lies between, such as one
	// member's slow probe, and still holds for Degraded.
	var newest *Sample
	if len(in.History) > 0 {
		newest = &in.History[len(in.History)-1]
	}
	quorateNow := newest != nil && newest.Observed && newest.Err == "" && newest.Healthy >= quorum.QuorumOf(newest.Voters)
	var available configv1.ClusterOperatorStatusCondition
	switch {
	case newest != nil && newest.QuorumLost:
		available = cond(configv1.OperatorAvailable, configv1.ConditionFalse, ReasonNoQuorum, newest.findings()[ReasonNoQuorum])
	case quorateNow:
		available = cond(configv1.OperatorAvailable, configv1.ConditionTrue, ReasonEtcdQuorate, quorateMessage(in.History)+held)
	case probedNow[ReasonEtcdUnreachable] != "":
		available = cond(configv1.OperatorAvailable, configv1.ConditionFalse, ReasonEtcdUnreachable, probedNow[ReasonEtcdUnreachable])
	case probedNow[ReasonNoQuorum] != "":
		available = cond(configv1.OperatorAvailable, configv1.ConditionFalse, ReasonNoQuorum, probedNow[ReasonNoQuorum])
	default:
		available = cond(configv1.OperatorAvailable, configv1.ConditionTrue, ReasonEtcdQuorate, quorateMessage(in.History)+held)
	}

	var degraded []finding
	for _, reason := range []string{ReasonMembersUnhealthy, ReasonNoQuorum, ReasonEtcdUnreachable} {
		if msg := probedNow[reason]; msg != "" {
			degraded = append(degraded, finding{reason, msg})
		}
	}
	if f, ok := heldTooLong(in); ok {
		degraded = append(degraded, f)
	}
	if unheld != "" {
		degraded = append(degraded, finding{ReasonNodeDrainExcluded, unheld})
	}
	degraded = append(degraded, blocked(in, probedNow[ReasonMembersUnhealthy] != "")...)
	if cpms := in.ControlPlaneMachineSet; cpms != nil {
		// The Machine controller's own verdict, when it wrote one for this generation, names
		// every problem it found (template, adoption, addresses, indexes); the failure
		// domains are read here only when it did not.
		if msg, ok := machinesDegraded(cpms); ok {
			degraded = append(degraded, finding{ReasonControlPlaneMachinesDegraded, msg})
		} else if _, err := failuredomain.FromControlPlaneMachineSet(cpms); err != nil {
			degraded = append(degraded, finding{ReasonInvalidControlPlaneMachineSet, err.Error()})
		}
	}
	degraded = append(degraded, merge(unsafe)...)
	degraded = append(degraded, merge(restricted)...)
	if failing, msg := Failing(in.History, in.FailingPasses); failing {
		degraded = append(degraded, finding{ReasonReconcileFailing, msg})
	}

	var upgradeable []finding
	if msg := probedNow[ReasonNoFaultTolerance]; msg != "" {
		upgradeable = append(upgradeable, finding{ReasonNoFaultTolerance, msg})
	}
	if progressing != "" {
		upgradeable = append(upgradeable, finding{ReasonReplacementInProgress, "a control-plane Machine is being replaced: " + progressing})
	}
	upgradeable = append(upgradeable, merge(unsafe)...)

	conds := []configv1.ClusterOperatorStatusCondition{available}
	if progressing != "" {
		conds = append(conds, cond(configv1.OperatorProgressing, configv1.ConditionTrue, ReasonReplacementInProgress, progressing))
	} else {
		conds = append(conds, cond(configv1.OperatorProgressing, configv1.ConditionFalse, ReasonAsExpected, "no control-plane Machine is being replaced"))
	}
	conds = append(conds, bad(configv1.OperatorDegraded, configv1.ConditionTrue, degraded, "etcd members are healthy and nothing needs attention"))
	conds = append(conds, bad(configv1.OperatorUpgradeable, configv1.ConditionFalse, upgradeable, "etcd tolerates a member failure and no replacement is under way"))

	out := configv1.ClusterOperatorStatus{Extension: in.Previous.Extension}
	now := metav1.NewTime(in.Now.Truncate(time.Second))
	for _, c := range conds {
		c.LastTransitionTime = now
		for _, p := range in.Previous.Conditions {
			if p.Type == c.Type && p.Status == c.Status {
				c.LastTransitionTime = p.LastTransitionTime
			}
		}
		out.Conditions = append(out.Conditions, c)
	}
	for _, p := range in.Previous.Conditions {
		if !owned(p.Type) {
			out.Conditions = append(out.Conditions, p)
		}
	}
	if in.Version != "" {
		out.Versions = []configv1.OperandVersion{{Name: OperatorVersionName, Version: in.Version}}
	}
	out.RelatedObjects = append(out.RelatedObjects, in.Related...)
	for _, v := range verdicts {
		out.RelatedObjects = append(out.RelatedObjects, configv1.ObjectReference{
			Group: machinev1beta1.GroupName, Resource: "machinehealthchecks", Namespace: in.MachineNamespace, Name: v.Name})
	}
	return out
}

// blocked reports the voting members the planner could not place on exactly one Machine,
// and the deleting Machines whose replacement is blocked, with the planner's own words. A
// replacement blocked by an unhealthy member shows only once that member's ill health has
// settled (unhealthySettled), so one failed probe does not flap Degraded.
func blocked(in Input, unhealthySettled bool) []finding {
	var out []finding
	if len(in.Decision.Unaccounted) > 0 {
		var msgs []string
		for _, id := range in.Decision.Unaccounted {
			msgs = append(msgs, fmt.Sprintf("voting member %x: %s", id, in.Decision.Mapping.Of[id].Problem))
		}
		out = append(out, finding{ReasonUnaccountedMembers, "no hook is released and no learner is added while " + strings.Join(msgs, "; ")})
	}
	var msgs []string
	for _, m := range in.Machines {
		c := in.Decision.Conditions[m.Name]
		if c.Reason == quorum.ReasonBlocked && m.DeletionTimestamp != nil && (unhealthySettled || len(in.Decision.Unaccounted) > 0) {
			msgs = append(msgs, "Machine "+m.Name+": "+c.Message)
		}
	}
	if len(msgs) > 0 {
		out = append(out, finding{ReasonReplacementBlocked, strings.Join(msgs, "\n")})
	}
	return out
}

func owned(t configv1.ClusterStatusConditionType) bool {
	switch t {
	case configv1.OperatorAvailable, configv1.OperatorProgressing, configv1.OperatorDegraded, configv1.OperatorUpgradeable:
		return true
	}
	return false
}

func cond(t configv1.ClusterStatusConditionType, s configv1.ConditionStatus, reason, msg string) configv1.ClusterOperatorStatusCondition {
	return configv1.ClusterOperatorStatusCondition{Type: t, Status: s, Reason: reason, Message: msg}
}

// bad is the condition of type t: status badStatus with the findings, or the opposite with
// reason AsExpected when there are none.
func bad(t configv1.ClusterStatusConditionType, badStatus configv1.ConditionStatus, fs []finding, fine string) configv1.ClusterOperatorStatusCondition {
	if len(fs) == 0 {
		good := configv1.ConditionTrue
		if badStatus == configv1.ConditionTrue {
			good = configv1.ConditionFalse
		}
		return cond(t, good, ReasonAsExpected, fine)
	}
	var reasons, msgs []string
	for _, f := range fs {
		reasons = append(reasons, f.reason)
		msgs = append(msgs, f.message)
	}
	return cond(t, badStatus, strings.Join(reasons, "::"), strings.Join(msgs, "\n"))
}

// merge folds findings of one reason into one.
func merge(fs []finding) []finding {
	if len(fs) == 0 {
		return nil
	}
	var msgs []string
	for _, f := range fs {
		msgs = append(msgs, f.message)
	}
	return []finding{{fs[0].reason, strings.Join(msgs, "\n")}}
}

// priorReported says whether the previous status showed a probed finding.
func priorReported(prev configv1.ClusterOperatorStatus, reason string) bool {
	want := map[string]configv1.ClusterStatusConditionType{
		ReasonEtcdUnreachable:  configv1.OperatorAvailable,
		ReasonNoQuorum:         configv1.OperatorAvailable,
		ReasonMembersUnhealthy: configv1.OperatorDegraded,
		ReasonNoFaultTolerance: configv1.OperatorUpgradeable,
	}[reason]
	for _, c := range prev.Conditions {
		if c.Type != want {
			continue
		}
		bad := c.Status == configv1.ConditionFalse
		if want == configv1.OperatorDegraded {
			bad = c.Status == configv1.ConditionTrue
		}
		return bad && containsReason(c.Reason, reason)
	}
	return false
}

func containsReason(joined, reason string) bool {
	for _, r := range strings.Split(joined, "::") {
		if r == reason {
			return true
		}
	}
	return false
}

// quorateMessage counts the members of the newest pass that observed etcd.
func quorateMessage(history []Sample) string {
	for i := len(history) - 1; i >= 0; i-- {
		s := history[i]
		if !s.Observed {
			continue
		}
		return fmt.Sprintf("etcd is quorate: %d of %d voting members healthy (quorum %d), %d learners, fault tolerance %d",
			s.Healthy, s.Voters, quorum.QuorumOf(s.Voters), s.Learners, max(s.FaultTolerance, 0))
	}
	return "etcd was quorate when last observed"
}

// progress describes the replacement under way, "" when there is none.
func progress(in Input) string {
	var parts []string
	for i := range in.Machines {
		m := &in.Machines[i]
		if m.DeletionTimestamp == nil || (!hasHook(m, in.Hook) && !hasPreTerminateHook(m, in.PreTerminateHook)) {
			continue
		}
		part := "Machine " + m.Name + " is being replaced"
		if c, ok := in.Decision.Conditions[m.Name]; ok {
			part += " (" + c.Reason + ")"
		} else if c := etcdMemberCondition(m); c != nil {
			part += " (" + c.Reason + ")"
		}
		parts = append(parts, part)
	}
	for _, mem := range in.Members {
		if !mem.Learner {
			continue
		}
		owner := mem.Machine
		if owner == "" {
			owner = "no Machine"
		}
		parts = append(parts, fmt.Sprintf("learner %x of %s is catching up", mem.ID, owner))
	}
	if a := in.Decision.Action; a.Kind != "" && a.Kind != quorum.None {
		parts = append(parts, "next step: "+Step(a))
	}
	return strings.Join(parts, "; ")
}

// Step names an action without the figures that change from pass to pass, so that a status
// that mentions it does not change while the step stays the same.
func Step(a quorum.Action) string {
	switch a.Kind {
	case quorum.AddLearner:
		return fmt.Sprintf("add a learner for Machine %s", a.Machine)
	case quorum.Promote:
		return fmt.Sprintf("promote learner %x of Machine %s", a.MemberID, a.Machine)
	case quorum.MoveLeader:
		return fmt.Sprintf("move leadership from %x to %x", a.MemberID, a.To)
	case quorum.RemoveMember:
		if a.Machine == "" {
			return fmt.Sprintf("remove member %x, which matches no Machine", a.MemberID)
		}
		return fmt.Sprintf("remove member %x of Machine %s", a.MemberID, a.Machine)
	case quorum.ReleaseHook:
		return fmt.Sprintf("release the hooks of Machine %s", a.Machine)
	case quorum.None, "":
		return "nothing to do"
	}
	return string(a.Kind)
}

func hasHook(m *machinev1beta1.Machine, hook machinev1beta1.LifecycleHook) bool {
	for _, h := range m.Spec.LifecycleHooks.PreDrain {
		if h == hook {
			return true
		}
	}
	return false
}

func hasPreTerminateHook(m *machinev1beta1.Machine, hook machinev1beta1.LifecycleHook) bool {
	return hook.Name != "" && slices.Contains(m.Spec.LifecycleHooks.PreTerminate, hook)
}

// drainExcluded reports the control-plane Machines that carry the exclude-node-draining
// annotation, with which OpenShift's Machine controller skips the drain and every preDrain
// hook. unheld names those no preTerminate hook would hold (none is kept, or a deleting one
// has lost it), for Degraded; held, a note for the Available message, those it holds.
func drainExcluded(in Input) (unheld, held string) {
	var bad, good []string
	for i := range in.Machines {
		m := &in.Machines[i]
		if _, ok := m.Annotations[hooks.ExcludeDrainAnnotation]; !ok {
			continue
		}
		switch {
		case in.PreTerminateHook.Name == "":
			bad = append(bad, fmt.Sprintf("Machine %s carries the %s annotation: its drain, and preDrain hook %s with it, is skipped, and no preTerminate hook is kept, so should it be deleted its instance is terminated while its etcd member votes", m.Name, hooks.ExcludeDrainAnnotation, in.Hook.Name))
		case m.DeletionTimestamp != nil && !hasPreTerminateHook(m, in.PreTerminateHook):
			bad = append(bad, fmt.Sprintf("Machine %s carries the %s annotation: its drain, and preDrain hook %s with it, is skipped, and preTerminate hook %s is not on it, so nothing holds its instance while its etcd member votes", m.Name, hooks.ExcludeDrainAnnotation, in.Hook.Name, in.PreTerminateHook.Name))
		default:
			good = append(good, m.Name)
		}
	}
	if len(good) > 0 {
		held = fmt.Sprintf("; Machines %s carry the %s annotation: their drain, and preDrain hook %s with it, is skipped, and preTerminate hook %s holds each instance until its etcd member is removed",
			strings.Join(good, ", "), hooks.ExcludeDrainAnnotation, in.Hook.Name, in.PreTerminateHook.Name)
	}
	return strings.Join(bad, "\n"), held
}

// EtcdMemberConditionType is the condition quorumguard keeps on every control-plane Machine.
const EtcdMemberConditionType machinev1beta1.ConditionType = "EtcdMember"

func etcdMemberCondition(m *machinev1beta1.Machine) *machinev1beta1.Condition {
	for i := range m.Status.Conditions {
		if m.Status.Conditions[i].Type == EtcdMemberConditionType {
			return &m.Status.Conditions[i]
		}
	}
	return nil
}

// heldTooLong finds deleting Machines that have held the hook longer than the threshold.
func heldTooLong(in Input) (finding, bool) {
	if in.HookHeldThreshold <= 0 {
		return finding{}, false
	}
	var msgs []string
	for i := range in.Machines {
		m := &in.Machines[i]
		if m.DeletionTimestamp == nil || !hasHook(m, in.Hook) {
			continue
		}
		if held := in.Now.Sub(m.DeletionTimestamp.Time); held > in.HookHeldThreshold {
			msg := fmt.Sprintf("Machine %s has been held in deletion by the preDrain hook %s since %s, longer than %s",
				m.Name, in.Hook.Name, m.DeletionTimestamp.UTC().Format(time.RFC3339), in.HookHeldThreshold)
			if c := in.Decision.Conditions[m.Name]; c.Reason != "" {
				msg += " (" + c.Reason + ")"
			}
			msgs = append(msgs, msg)
		}
	}
	if len(msgs) == 0 {
		return finding{}, false
	}
	return finding{ReasonHookHeldTooLong, strings.Join(msgs, "\n")}, true
}

func controlPlaneLabels(ms []machinev1beta1.Machine) []labels.Set {
	var out []labels.Set
	for i := range ms {
		out = append(out, labels.Set(ms[i].Labels))
	}
	return out
}

// Equal says whether two statuses would read the same.
func Equal(a, b configv1.ClusterOperatorStatus) bool {
	norm := func(s configv1.ClusterOperatorStatus) configv1.ClusterOperatorStatus {
		s = *s.DeepCopy()
		sort.SliceStable(s.Conditions, func(i, j int) bool { return s.Conditions[i].Type < s.Conditions[j].Type })
		for i := range s.Conditions {
			s.Conditions[i].LastTransitionTime = metav1.NewTime(s.Conditions[i].LastTransitionTime.UTC().Truncate(time.Second))
		}
		return s
	}
	return equality.Semantic.DeepEqual(norm(a), norm(b))
}

// machinesDegraded returns the ControlPlaneMachineSet's Degraded condition when the Machine
// controller set it True for the set's current generation.
func machinesDegraded(cpms *machinev1.ControlPlaneMachineSet) (string, bool) {
	for _, c := range cpms.Status.Conditions {
		if c.Type == "Degraded" && c.Status == metav1.ConditionTrue && c.ObservedGeneration == cpms.Generation {
			return fmt.Sprintf("ControlPlaneMachineSet %s/%s is Degraded (%s): %s", cpms.Namespace, cpms.Name, c.Reason, c.Message), true
		}
	}
	return "", false
}
