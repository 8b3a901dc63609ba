package operatorstatus

import (
	"strings"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

var hook = machinev1beta1.LifecycleHook{Name: "EtcdQuorumOperator", Owner: "clusteroperator/etcd"}

func machine(name string, deletedAgo time.Duration, now time.Time, withHook bool) machinev1beta1.Machine {
	m := machinev1beta1.Machine{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "openshift-machine-api",
		Labels: map[string]string{RoleLabel: "master"}}}
	if deletedAgo > 0 {
		m.DeletionTimestamp = &metav1.Time{Time: now.Add(-deletedAgo)}
	}
	if withHook {
		m.Spec.LifecycleHooks.PreDrain = []machinev1beta1.LifecycleHook{hook}
	}
	return m
}

// input builds an Input whose history holds samples every 250 ms for the last ten seconds.
func input(now time.Time, sample func(time.Time) Sample, mutate func(*Input)) Input {
	in := Input{
		Now: now, Desired: 3, Observed: true, Hook: hook, HookHeldThreshold: 30 * time.Minute,
		Machines: []machinev1beta1.Machine{
			machine("m-0", 0, now, true), machine("m-1", 0, now, true), machine("m-2", 0, now, true),
		},
		Decision: quorum.Decision{Action: quorum.Action{Kind: quorum.None}, Conditions: map[string]quorum.Condition{}, FaultTolerance: 1},
		MachineHealthChecks: []machinev1beta1.MachineHealthCheck{
			mhc("control-plane", ptr(intstr.FromInt32(1)), masters),
		},
		Version:          "1.2.3",
		MachineNamespace: "openshift-machine-api",
		Related:          []configv1.ObjectReference{{Resource: "namespaces", Name: "openshift-machine-api"}},
	}
	for d := 10 * time.Second; d >= 0; d -= 250 * time.Millisecond {
		in.History = DefaultInertia.Record(in.History, sample(now.Add(-d)))
	}
	if mutate != nil {
		mutate(&in)
	}
	return in
}

type want struct {
	status, reason string
	// contains are substrings the message must hold.
	contains []string
}

func TestDecide(t *testing.T) {
	now := t0.Add(time.Hour)
	invalidCPMS := &machinev1.ControlPlaneMachineSet{ObjectMeta: metav1.ObjectMeta{Name: "cluster", Namespace: "openshift-machine-api"}}
	cases := []struct {
		name                                          string
		in                                            Input
		available, progressing, degraded, upgradeable want
	}{
		{
			name:        "a healthy idle cluster is available, not progressing, not degraded, upgradeable",
			in:          input(now, healthySample, nil),
			available:   want{"True", ReasonEtcdQuorate, []string{"3 of 3 voting members healthy (quorum 2)", "fault tolerance 1"}},
			progressing: want{"False", ReasonAsExpected, nil},
			degraded:    want{"False", ReasonAsExpected, nil},
			upgradeable: want{"True", ReasonAsExpected, nil},
		},
		{
			name: "a MachineHealthCheck that short-circuited degrades and says why it remediates nothing",
			in: input(now, healthySample, func(in *Input) {
				in.MachineHealthChecks[0].Status.Conditions = []machinev1beta1.Condition{{
					Type: machinev1beta1.RemediationAllowedCondition, Status: "False", Reason: machinev1beta1.TooManyUnhealthyReason,
					Message: "Remediation is not allowed, the number of not started or unhealthy machines exceeds maxUnhealthy (total: 3, unhealthy: 2, maxUnhealthy: 1)",
				}}
			}),
			available:   want{"True", ReasonEtcdQuorate, nil},
			progressing: want{"False", ReasonAsExpected, nil},
			degraded:    want{"True", ReasonMachineHealthCheckRestricted, []string{"MachineHealthCheck control-plane remediates no control-plane Machine", "unhealthy: 2, maxUnhealthy: 1", "could cost etcd its quorum"}},
			upgradeable: want{"True", ReasonAsExpected, nil},
		},
		{
			name: "a MachineHealthCheck allowed to remediate adds nothing",
			in: input(now, healthySample, func(in *Input) {
				in.MachineHealthChecks[0].Status.Conditions = []machinev1beta1.Condition{{Type: machinev1beta1.RemediationAllowedCondition, Status: "True"}}
			}),
			available:   want{"True", ReasonEtcdQuorate, nil},
			progressing: want{"False", ReasonAsExpected, nil},
			degraded:    want{"False", ReasonAsExpected, nil},
			upgradeable: want{"True", ReasonAsExpected, nil},
		},
		{
			name:        "a dead member degrades and blocks upgrades but keeps quorum",
			in:          input(now, oneDeadSample, nil),
			available:   want{"True", ReasonEtcdQuorate, []string{"2 of 3"}},
			progressing: want{"False", ReasonAsExpected, nil},
			degraded:    want{"True", ReasonMembersUnhealthy, []string{"m-1 (b)"}},
			upgradeable: want{"False", ReasonNoFaultTolerance, []string{"no further member failure"}},
		},
		{
			name:        "two dead members of three lose quorum",
			in:          input(now, twoDeadSample, nil),
			available:   want{"False", ReasonNoQuorum, []string{"1 of 3 voting members are healthy, below the quorum of 2"}},
			progressing: want{"False", ReasonAsExpected, nil},
			degraded:    want{"True", ReasonMembersUnhealthy + "::" + ReasonNoQuorum, []string{"m-1 (b), m-2 (c)", "below the quorum"}},
			upgradeable: want{"False", ReasonNoFaultTolerance, nil},
		},
		{
			name: "etcd out of reach is unavailable, and repeated failures degrade",
			in: input(now, unreachableSample, func(in *Input) {
				in.Observed, in.Decision = false, quorum.Decision{}
			}),
			available:   want{"False", ReasonEtcdUnreachable, []string{"context deadline exceeded"}},
			progressing: want{"False", ReasonAsExpected, nil},
			degraded:    want{"True", ReasonEtcdUnreachable + "::" + ReasonReconcileFailing, []string{"3 or more passes in a row failed", "context deadline exceeded"}},
			upgradeable: want{"False", ReasonNoFaultTolerance, []string{"unknown"}},
		},
		{
			name: "a deleting Machine holding the hook is progressing, named with its step",
			in: input(now, healthySample, func(in *Input) {
				in.Machines[0] = machine("m-0", time.Minute, now, true)
				in.Machines = append(in.Machines, machine("m-3", 0, now, true))
				in.Decision.Action = quorum.Action{Kind: quorum.AddLearner, Machine: "m-3", PeerURL: "https://10.0.0.4:2380", Reason: "new"}
				in.Decision.Conditions["m-0"] = quorum.Condition{Status: "False", Reason: quorum.ReasonWaitingForReplacement, Message: "waiting"}
			}),
			available:   want{"True", ReasonEtcdQuorate, nil},
			progressing: want{"True", ReasonReplacementInProgress, []string{"Machine m-0 is being replaced (WaitingForReplacement)", "next step: add a learner for Machine m-3"}},
			degraded:    want{"False", ReasonAsExpected, nil},
			upgradeable: want{"False", ReasonReplacementInProgress, []string{"m-0"}},
		},
		{
			name: "a learner catching up is progressing",
			in: input(now, healthySample, func(in *Input) {
				in.Members = []quorum.Member{{ID: 0xabc, Learner: true, Started: true, Healthy: true, Machine: "m-3", Progress: 0.5}}
				in.Decision.Action = quorum.Action{Kind: quorum.Promote, Machine: "m-3", MemberID: 0xabc, Reason: "learner has reached 50% of the leader's index"}
			}),
			available:   want{"True", ReasonEtcdQuorate, nil},
			progressing: want{"True", ReasonReplacementInProgress, []string{"learner abc of m-3 is catching up", "promote learner abc of Machine m-3"}},
			degraded:    want{"False", ReasonAsExpected, nil},
			upgradeable: want{"False", ReasonReplacementInProgress, nil},
		},
		{
			name: "a deleting Machine whose hook was released is no longer progressing",
			in: input(now, healthySample, func(in *Input) {
				in.Machines[0] = machine("m-0", time.Minute, now, false)
			}),
			available:   want{"True", ReasonEtcdQuorate, nil},
			progressing: want{"False", ReasonAsExpected, nil},
			degraded:    want{"False", ReasonAsExpected, nil},
			upgradeable: want{"True", ReasonAsExpected, nil},
		},
		{
			name: "a hook held past the threshold degrades",
			in: input(now, healthySample, func(in *Input) {
				in.Machines[1] = machine("m-1", 31*time.Minute, now, true)
				in.Decision.Conditions["m-1"] = quorum.Condition{Status: "False", Reason: quorum.ReasonWaitingForReplacement}
			}),
			available:   want{"True", ReasonEtcdQuorate, nil},
			progressing: want{"True", ReasonReplacementInProgress, []string{"m-1"}},
			degraded:    want{"True", ReasonHookHeldTooLong, []string{"Machine m-1", "longer than 30m0s", "WaitingForReplacement"}},
			upgradeable: want{"False", ReasonReplacementInProgress, nil},
		},
		{
			name: "a hook held under the threshold does not degrade",
			in: input(now, healthySample, func(in *Input) {
				in.Machines[1] = machine("m-1", 29*time.Minute, now, true)
			}),
			available:   want{"True", ReasonEtcdQuorate, nil},
			progressing: want{"True", ReasonReplacementInProgress, nil},
			degraded:    want{"False", ReasonAsExpected, nil},
			upgradeable: want{"False", ReasonReplacementInProgress, nil},
		},
		{
			name: "an unsafe MachineHealthCheck degrades and blocks upgrades, by name",
			in: input(now, healthySample, func(in *Input) {
				in.MachineHealthChecks = append(in.MachineHealthChecks, mhc("too-eager", ptr(intstr.FromInt32(3)), masters), mhc("no-limit", nil, masters))
			}),
			available:   want{"True", ReasonEtcdQuorate, nil},
			progressing: want{"False", ReasonAsExpected, nil},
			degraded:    want{"True", ReasonUnsafeMachineHealthCheck, []string{"too-eager", "no-limit"}},
			upgradeable: want{"False", ReasonUnsafeMachineHealthCheck, []string{"too-eager", "no-limit"}},
		},
		{
			name: "an invalid ControlPlaneMachineSet degrades",
			in: input(now, healthySample, func(in *Input) {
				in.ControlPlaneMachineSet = invalidCPMS
			}),
			available:   want{"True", ReasonEtcdQuorate, nil},
			progressing: want{"False", ReasonAsExpected, nil},
			degraded:    want{"True", ReasonInvalidControlPlaneMachineSet, []string{"machine template"}},
			upgradeable: want{"True", ReasonAsExpected, nil},
		},
		{
			name: "several problems are all named",
			in: input(now, oneDeadSample, func(in *Input) {
				in.MachineHealthChecks = []machinev1beta1.MachineHealthCheck{mhc("no-limit", nil, masters)}
			}),
			available:   want{"True", ReasonEtcdQuorate, nil},
			progressing: want{"False", ReasonAsExpected, nil},
			degraded:    want{"True", ReasonMembersUnhealthy + "::" + ReasonUnsafeMachineHealthCheck, []string{"m-1 (b)\n", "no-limit"}},
			upgradeable: want{"False", ReasonNoFaultTolerance + "::" + ReasonUnsafeMachineHealthCheck, nil},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(tc.in)
			check := func(typ configv1.ClusterStatusConditionType, w want) {
				t.Helper()
				c := condition(got, typ)
				if c == nil {
					t.Fatalf("no %s condition in %+v", typ, got.Conditions)
				}
				if string(c.Status) != w.status || c.Reason != w.reason {
					t.Errorf("%s = %s/%s (%q), want %s/%s", typ, c.Status, c.Reason, c.Message, w.status, w.reason)
				}
				for _, s := range w.contains {
					if !strings.Contains(c.Message, s) {
						t.Errorf("%s message %q does not contain %q", typ, c.Message, s)
					}
				}
				if c.LastTransitionTime.IsZero() {
					t.Errorf("%s has no transition time", typ)
				}
			}
			check(configv1.OperatorAvailable, tc.available)
			check(configv1.OperatorProgressing, tc.progressing)
			check(configv1.OperatorDegraded, tc.degraded)
			check(configv1.OperatorUpgradeable, tc.upgradeable)
		})
	}
}

func condition(s configv1.ClusterOperatorStatus, t configv1.ClusterStatusConditionType) *configv1.ClusterOperatorStatusCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

func TestDecideKeepsTransitionTimesAndForeignConditions(t *testing.T) {
	now := t0.Add(time.Hour)
	earlier := metav1.NewTime(t0)
	prev := configv1.ClusterOperatorStatus{Conditions: []configv1.ClusterOperatorStatusCondition{
		{Type: configv1.OperatorAvailable, Status: configv1.ConditionTrue, Reason: ReasonEtcdQuorate, LastTransitionTime: earlier},
		{Type: configv1.OperatorDegraded, Status: configv1.ConditionFalse, Reason: ReasonAsExpected, LastTransitionTime: earlier},
		{Type: "EvaluationConditionsDetected", Status: configv1.ConditionFalse, Reason: "Other", LastTransitionTime: earlier},
	}}
	got := Decide(input(now, oneDeadSample, func(in *Input) { in.Previous = prev }))
	if c := condition(got, configv1.OperatorAvailable); !c.LastTransitionTime.Equal(&earlier) {
		t.Errorf("Available kept its status but its transition time moved to %s", c.LastTransitionTime)
	}
	if c := condition(got, configv1.OperatorDegraded); c.Status != configv1.ConditionTrue || !c.LastTransitionTime.Time.Equal(now) {
		t.Errorf("Degraded = %s at %s, want True at %s", c.Status, c.LastTransitionTime, now)
	}
	if c := condition(got, "EvaluationConditionsDetected"); c == nil || c.Reason != "Other" {
		t.Errorf("a condition type owned by someone else was not kept: %+v", got.Conditions)
	}
}

func TestDecideFallsBackToThePreviousStatusRightAfterAStart(t *testing.T) {
	now := t0
	prev := configv1.ClusterOperatorStatus{Conditions: []configv1.ClusterOperatorStatusCondition{
		{Type: configv1.OperatorAvailable, Status: configv1.ConditionFalse, Reason: ReasonNoQuorum, Message: "1 of 3"},
	}}
	in := input(now, healthySample, func(in *Input) {
		in.History = []Sample{twoDeadSample(now)}
		in.Previous = prev
	})
	if c := condition(Decide(in), configv1.OperatorAvailable); c.Status != configv1.ConditionFalse || c.Reason != ReasonNoQuorum {
		t.Errorf("one pass after a start, Available = %s/%s; want the previous False/NoQuorum to stand", c.Status, c.Reason)
	}
	in.Previous = configv1.ClusterOperatorStatus{}
	if c := condition(Decide(in), configv1.OperatorAvailable); c.Status != configv1.ConditionTrue {
		t.Errorf("one pass after a start with no previous status, Available = %s/%s; want True until the loss holds", c.Status, c.Reason)
	}
}

func TestDecideVersionsAndRelatedObjects(t *testing.T) {
	got := Decide(input(t0, healthySample, func(in *Input) {
		in.MachineHealthChecks = append(in.MachineHealthChecks, mhc("workers", nil, workers))
	}))
	if len(got.Versions) != 1 || got.Versions[0] != (configv1.OperandVersion{Name: OperatorVersionName, Version: "1.2.3"}) {
		t.Errorf("versions %+v", got.Versions)
	}
	wantRelated := []configv1.ObjectReference{
		{Resource: "namespaces", Name: "openshift-machine-api"},
		{Group: "machine.openshift.io", Resource: "machinehealthchecks", Namespace: "openshift-machine-api", Name: "control-plane"},
	}
	if len(got.RelatedObjects) != len(wantRelated) {
		t.Fatalf("related objects %+v, want %+v", got.RelatedObjects, wantRelated)
	}
	for i := range wantRelated {
		if got.RelatedObjects[i] != wantRelated[i] {
			t.Errorf("related object %d = %+v, want %+v", i, got.RelatedObjects[i], wantRelated[i])
		}
	}
}

func TestDecideIsStableFromPassToPass(t *testing.T) {
	// The learner's progress and the time change between passes; the status must not, so
	// that nothing is written while the step stays the same.
	a := input(t0, healthySample, func(in *Input) {
		in.Members = []quorum.Member{{ID: 1, Learner: true, Started: true, Healthy: true, Machine: "m-3", Progress: 0.2}}
		in.Decision.Action = quorum.Action{Kind: quorum.Promote, Machine: "m-3", MemberID: 1, Reason: "learner has reached 20% of the leader's index"}
	})
	first := Decide(a)
	b := input(t0.Add(700*time.Millisecond), healthySample, func(in *Input) {
		in.Members = []quorum.Member{{ID: 1, Learner: true, Started: true, Healthy: true, Machine: "m-3", Progress: 0.7}}
		in.Decision.Action = quorum.Action{Kind: quorum.Promote, Machine: "m-3", MemberID: 1, Reason: "learner has reached 70% of the leader's index"}
		in.Previous = first
	})
	if second := Decide(b); !Equal(first, second) {
		t.Errorf("status changed between two passes of the same step:\n%+v\n%+v", first, second)
	}
}

func TestEqual(t *testing.T) {
	a := configv1.ClusterOperatorStatus{Conditions: []configv1.ClusterOperatorStatusCondition{
		{Type: configv1.OperatorAvailable, Status: configv1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(300 * time.Millisecond))},
		{Type: configv1.OperatorDegraded, Status: configv1.ConditionFalse, LastTransitionTime: metav1.NewTime(t0)},
	}}
	b := configv1.ClusterOperatorStatus{Conditions: []configv1.ClusterOperatorStatusCondition{
		{Type: configv1.OperatorDegraded, Status: configv1.ConditionFalse, LastTransitionTime: metav1.NewTime(t0)},
		{Type: configv1.OperatorAvailable, Status: configv1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)},
	}, RelatedObjects: []configv1.ObjectReference{}}
	if !Equal(a, b) {
		t.Error("statuses that differ only in order, sub-second times and empty lists are not Equal")
	}
	b.Conditions[0].Status = configv1.ConditionTrue
	if Equal(a, b) {
		t.Error("statuses with different condition statuses are Equal")
	}
}

// TestAvailableFollowsQuorumAtOnce: one pass that finds quorum lost turns Available False at
// once, and the first pass that lists the members with a quorum healthy turns it back,
// while Degraded keeps its inertia both ways.
func TestAvailableFollowsQuorumAtOnce(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	healthy := func(at time.Time) Sample {
		return Sample{Time: at, Observed: true, Voters: 3, Healthy: 3, FaultTolerance: 1}
	}
	lost := Sample{Time: now, Observed: true, Err: "etcd has no quorum: 1 of 3 voting members are healthy", Voters: 3, Healthy: 1, FaultTolerance: -1, QuorumLost: true}

	in := input(now, func(at time.Time) Sample { return healthy(at.Add(-time.Second)) }, func(in *Input) {
		in.History = DefaultInertia.Record(in.History, lost)
	})
	st := Decide(in)
	if c := condition(st, configv1.OperatorAvailable); c.Status != configv1.ConditionFalse || c.Reason != ReasonNoQuorum {
		t.Errorf("Available after the pass that found quorum lost: %s %s %q; want False NoQuorum", c.Status, c.Reason, c.Message)
	}
	if c := condition(st, configv1.OperatorDegraded); c.Status != configv1.ConditionFalse {
		t.Errorf("Degraded after one pass: %s %s; want it held back by inertia", c.Status, c.Reason)
	}

	// Quorum lost for ten seconds, then one pass that lists the members again.
	in = input(now, func(at time.Time) Sample { l := lost; l.Time = at.Add(-time.Second); return l }, func(in *Input) {
		in.History = DefaultInertia.Record(in.History, healthy(now))
	})
	st = Decide(in)
	if c := condition(st, configv1.OperatorAvailable); c.Status != configv1.ConditionTrue {
		t.Errorf("Available after the pass that found quorum back: %s %s %q; want True", c.Status, c.Reason, c.Message)
	}
	if c := condition(st, configv1.OperatorDegraded); c.Status != configv1.ConditionTrue || !strings.Contains(c.Reason, ReasonNoQuorum) {
		t.Errorf("Degraded one pass after the recovery: %s %s; want NoQuorum still, until inertia passes", c.Status, c.Reason)
	}
}
