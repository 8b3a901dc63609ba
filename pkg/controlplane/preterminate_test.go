package controlplane

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

var testPreTerminate = machinev1beta1.LifecycleHook{Name: "QuorumGuardTerminate", Owner: "quorumguard"}

// events records the Events a Reconciler sends, as "Type Reason: note" on "machine".
type events struct{ sent []string }

func (e *events) Eventf(regarding runtime.Object, _ runtime.Object, typ, reason, _, note string, args ...any) {
	name := ""
	if o, ok := regarding.(client.Object); ok {
		name = o.GetName()
	}
	e.sent = append(e.sent, fmt.Sprintf("%s %s %s: %s", name, typ, reason, fmt.Sprintf(note, args...)))
}

func (e *events) AnnotatedEventf(regarding runtime.Object, related runtime.Object, _ map[string]string, typ, reason, action, note string, args ...any) {
	e.Eventf(regarding, related, typ, reason, action, note, args...)
}

func (e *events) about(machine, reason string) []string {
	var out []string
	for _, s := range e.sent {
		if strings.HasPrefix(s, machine+" ") && strings.Contains(s, " "+reason+": ") {
			out = append(out, s)
		}
	}
	return out
}

// withBoth gives every Machine the preTerminate hook beside the preDrain one.
func withBoth(ms ...*machinev1beta1.Machine) []*machinev1beta1.Machine {
	for _, m := range ms {
		m.Spec.LifecycleHooks.PreTerminate = append(m.Spec.LifecycleHooks.PreTerminate, testPreTerminate)
	}
	return ms
}

func preTerminateHarness(t *testing.T, machines []*machinev1beta1.Machine, members []*fakeMember) (*harness, *events) {
	t.Helper()
	h := newHarness(t, machines, members, 0x11)
	ev := &events{}
	h.r.PreTerminateHook, h.r.Recorder = testPreTerminate, ev
	return h, ev
}

// TestBothHooksReleasedInOneWrite: once the deleting Machine has no member, its preDrain and
// preTerminate hooks go in one PATCH, after the condition that records the release.
func TestBothHooksReleasedInOneWrite(t *testing.T) {
	h, ev := preTerminateHarness(t, withBoth(deleting(0), master(1), master(2), master(3)), voters(1, 2, 3))
	got := h.pass()
	var writes []string
	for _, e := range got {
		if strings.HasPrefix(e, "patch ") && strings.HasSuffix(e, " master-0") {
			writes = append(writes, e)
		}
	}
	if !slices.Equal(writes, []string{"patch status master-0", "patch master-0"}) {
		t.Fatalf("writes %v; want the condition, then one PATCH releasing both hooks", writes)
	}
	m := h.machine("master-0")
	if hooks.Has(m, testHook) || hooks.HasPreTerminate(m, testPreTerminate) {
		t.Fatalf("hooks after the release: %+v; want neither of quorumguard's", m.Spec.LifecycleHooks)
	}
	if r := h.reason("master-0"); r != quorum.ReasonHookReleased {
		t.Fatalf("condition %s; want %s", r, quorum.ReasonHookReleased)
	}
	if e := ev.about("master-0", quorum.ReasonHookReleased); len(e) != 1 || !strings.Contains(e[0], "preTerminate hook "+testPreTerminate.Name) {
		t.Fatalf("Events %v; want one naming both hooks", e)
	}
}

// TestPreTerminateHeldWhileTheMemberVotes: a deleting Machine whose drain is skipped (the
// exclude annotation) keeps both hooks while its member votes; the annotation is reported on
// its condition and in one Event.
func TestPreTerminateHeldWhileTheMemberVotes(t *testing.T) {
	old := deleting(0)
	old.Annotations = map[string]string{hooks.ExcludeDrainAnnotation: ""}
	h, ev := preTerminateHarness(t, withBoth(old, master(1), master(2)), voters(0, 1, 2))
	for range 3 {
		h.pass()
	}
	m := h.machine("master-0")
	if !hooks.Has(m, testHook) || !hooks.HasPreTerminate(m, testPreTerminate) {
		t.Fatalf("hooks %+v; want both kept while member 10 votes", m.Spec.LifecycleHooks)
	}
	c := condition(m)
	if c == nil || c.Reason != quorum.ReasonWaitingForReplacement || !strings.Contains(c.Message, quorum.NoteExcludeDrain) {
		t.Fatalf("condition %+v; want WaitingForReplacement naming the exclude annotation", c)
	}
	if e := ev.about("master-0", ReasonExcludeDrain); len(e) != 1 || !strings.Contains(e[0], "preTerminate hook "+testPreTerminate.Name+" holds") {
		t.Fatalf("Events %v; want one %s naming the preTerminate hook", e, ReasonExcludeDrain)
	}
}

// TestUpgradeAddsThePreTerminateHook: Machines that have only the preDrain hook get the
// preTerminate one, unless they are being deleted, where its absence is reported once.
func TestUpgradeAddsThePreTerminateHook(t *testing.T) {
	h, ev := preTerminateHarness(t, []*machinev1beta1.Machine{deleting(0), master(1), master(2), master(3)}, voters(0, 1, 2))
	h.pass()
	h.pass()
	for _, name := range []string{"master-1", "master-2", "master-3"} {
		if m := h.machine(name); !hooks.HasPreTerminate(m, testPreTerminate) || !hooks.Has(m, testHook) {
			t.Fatalf("%s: hooks %+v; want both", name, m.Spec.LifecycleHooks)
		}
		if e := ev.about(name, "HookAdded"); len(e) != 1 || !strings.Contains(e[0], "preTerminate hook") {
			t.Fatalf("%s: Events %v; want one HookAdded for the preTerminate hook", name, e)
		}
	}
	m := h.machine("master-0")
	if hooks.HasPreTerminate(m, testPreTerminate) {
		t.Fatal("the preTerminate hook was added to a deleting Machine")
	}
	if c := condition(m); c == nil || !strings.Contains(c.Message, quorum.NoteNoPreTerminateHook) {
		t.Fatalf("condition %+v; want it to say the preTerminate hook is not on the Machine", c)
	}
	if e := ev.about("master-0", quorum.ReasonHookRemovedExternally); len(e) != 1 {
		t.Fatalf("Events %v; want the missing preTerminate hook reported once", e)
	}
}

// TestPreDrainRemovedByHandReleasesThePreTerminateHook: removing the preDrain hook by hand
// stays the escape hatch: the preTerminate hook goes with it, and the removal is reported
// as before.
func TestPreDrainRemovedByHandReleasesThePreTerminateHook(t *testing.T) {
	old := deleting(0)
	old.Spec.LifecycleHooks.PreDrain = nil
	h, ev := preTerminateHarness(t, withBoth(old, master(1), master(2)), voters(0, 1, 2))
	h.pass()
	h.pass()
	m := h.machine("master-0")
	if hooks.HasPreTerminate(m, testPreTerminate) {
		t.Fatalf("hooks %+v; want the preTerminate hook released with the preDrain one gone", m.Spec.LifecycleHooks)
	}
	if r := h.reason("master-0"); r != quorum.ReasonHookRemovedExternally {
		t.Fatalf("condition %s; want %s", r, quorum.ReasonHookRemovedExternally)
	}
	if e := ev.about("master-0", quorum.ReasonHookRemovedExternally); len(e) != 1 {
		t.Fatalf("Events %v; want the removal by hand reported once", e)
	}
}
