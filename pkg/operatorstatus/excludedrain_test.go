package operatorstatus

import (
	"strings"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"

	"github.com/quorumguard/quorumguard/pkg/hooks"
)

var preTerminate = machinev1beta1.LifecycleHook{Name: "QuorumGuard", Owner: "clusteroperator/quorumguard"}

// TestExcludeDrainAnnotationIsReported: a control-plane Machine that carries the
// exclude-node-draining annotation is named in the ClusterOperator: in the Available message
// while the preTerminate hook holds it, and as Degraded NodeDrainExcluded when nothing would.
func TestExcludeDrainAnnotationIsReported(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	annotate := func(in *Input) {
		in.Machines[0].Annotations = map[string]string{hooks.ExcludeDrainAnnotation: ""}
		for i := range in.Machines {
			in.Machines[i].Spec.LifecycleHooks.PreTerminate = []machinev1beta1.LifecycleHook{preTerminate}
		}
	}
	held := Decide(input(now, healthySample, func(in *Input) { annotate(in); in.PreTerminateHook = preTerminate }))
	if c := condition(held, configv1.OperatorAvailable); c == nil || !strings.Contains(c.Message, "m-0 carry the "+hooks.ExcludeDrainAnnotation) ||
		!strings.Contains(c.Message, "preTerminate hook QuorumGuard holds") {
		t.Fatalf("Available %+v; want it to name m-0 and the preTerminate hook", c)
	}
	if c := condition(held, configv1.OperatorDegraded); c == nil || c.Status != configv1.ConditionFalse {
		t.Fatalf("Degraded %+v; want False while the preTerminate hook holds", c)
	}

	unheld := Decide(input(now, healthySample, annotate))
	c := condition(unheld, configv1.OperatorDegraded)
	if c == nil || c.Status != configv1.ConditionTrue || c.Reason != ReasonNodeDrainExcluded || !strings.Contains(c.Message, "Machine m-0 carries the") {
		t.Fatalf("Degraded %+v; want True, %s, naming m-0", c, ReasonNodeDrainExcluded)
	}

	lost := Decide(input(now, healthySample, func(in *Input) {
		annotate(in)
		in.PreTerminateHook = preTerminate
		in.Machines[0] = machine("m-0", time.Minute, now, true)
		in.Machines[0].Annotations = map[string]string{hooks.ExcludeDrainAnnotation: ""}
	}))
	if c := condition(lost, configv1.OperatorDegraded); c == nil || c.Reason != ReasonNodeDrainExcluded || !strings.Contains(c.Message, "is not on it") {
		t.Fatalf("Degraded %+v; want %s for a deleting Machine without the preTerminate hook", c, ReasonNodeDrainExcluded)
	}
}
