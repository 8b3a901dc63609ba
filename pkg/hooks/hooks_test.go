package hooks_test

import (
	"fmt"
	"testing"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/test/framework"
)

var cp *framework.ControlPlane

func TestMain(m *testing.M) { framework.Main(m, framework.ControlPlaneOptions{}, &cp) }

var other = machinev1beta1.LifecycleHook{Name: "SomeoneElse", Owner: "team/other"}

func create(t *testing.T, name string, pre []machinev1beta1.LifecycleHook, deleting bool) *machinev1beta1.Machine {
	t.Helper()
	m := &machinev1beta1.Machine{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: framework.MachineNamespace,
		Labels: map[string]string{framework.RoleLabel: "master"}}}
	m.Spec.LifecycleHooks.PreDrain = pre
	if deleting {
		m.Finalizers = []string{framework.MachineFinalizer}
	}
	if err := cp.Client.Create(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cur := &machinev1beta1.Machine{}
		if cp.Client.Get(t.Context(), client.ObjectKeyFromObject(m), cur) == nil {
			cur.Finalizers = nil
			_ = cp.Client.Update(t.Context(), cur)
			_ = cp.Client.Delete(t.Context(), cur)
		}
	})
	if deleting {
		if err := cp.Client.Delete(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	got := &machinev1beta1.Machine{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(m), got); err != nil {
		t.Fatal(err)
	}
	return got
}

func reread(t *testing.T, m *machinev1beta1.Machine) []machinev1beta1.LifecycleHook {
	t.Helper()
	got := &machinev1beta1.Machine{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(m), got); err != nil {
		t.Fatal(err)
	}
	return got.Spec.LifecycleHooks.PreDrain
}

func TestEnsure(t *testing.T) {
	wrongOwner := hooks.Default
	wrongOwner.Owner = "somebody/else"
	cases := []struct {
		name     string
		pre      []machinev1beta1.LifecycleHook
		deleting bool
		want     hooks.Outcome
		after    []machinev1beta1.LifecycleHook
	}{
		{"a live machine without the hook gets it, other hooks kept", []machinev1beta1.LifecycleHook{other}, false, hooks.Added,
			[]machinev1beta1.LifecycleHook{other, hooks.Default}},
		{"a hook with the right name and wrong owner is repaired", []machinev1beta1.LifecycleHook{wrongOwner, other}, false, hooks.Repaired,
			[]machinev1beta1.LifecycleHook{hooks.Default, other}},
		{"a machine with the hook is left alone", []machinev1beta1.LifecycleHook{hooks.Default}, false, hooks.Unchanged,
			[]machinev1beta1.LifecycleHook{hooks.Default}},
		{"a deleting machine never gets the hook back", []machinev1beta1.LifecycleHook{other}, true, hooks.Missing,
			[]machinev1beta1.LifecycleHook{other}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := create(t, fmt.Sprintf("hooks-%d", i), tc.pre, tc.deleting)
			got, err := hooks.Ensure(t.Context(), cp.Client, m, hooks.Default)
			if err != nil || got != tc.want {
				t.Fatalf("Ensure = %s, %v; want %s", got, err, tc.want)
			}
			if after := reread(t, m); fmt.Sprint(after) != fmt.Sprint(tc.after) {
				t.Fatalf("hooks after: %v; want %v", after, tc.after)
			}
		})
	}
}

func TestStaleWritesAreRefused(t *testing.T) {
	m := create(t, "hooks-stale", nil, false)
	stale := m.DeepCopy()
	// Someone else changes the Machine after our read.
	m.Spec.LifecycleHooks.PreDrain = []machinev1beta1.LifecycleHook{other}
	if err := cp.Client.Update(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if _, err := hooks.Ensure(t.Context(), cp.Client, stale, hooks.Default); !apierrors.IsConflict(err) {
		t.Fatalf("Ensure on a stale copy: want a conflict, got %v", err)
	}
	if after := reread(t, m); fmt.Sprint(after) != fmt.Sprint([]machinev1beta1.LifecycleHook{other}) {
		t.Fatalf("a stale write went through: %v", after)
	}
	fresh := &machinev1beta1.Machine{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(m), fresh); err != nil {
		t.Fatal(err)
	}
	if _, err := hooks.Ensure(t.Context(), cp.Client, fresh, hooks.Default); err != nil {
		t.Fatal(err)
	}
	staleRelease := fresh.DeepCopy()
	fresh.Labels["touched"] = time.Now().Format("150405")
	if err := cp.Client.Update(t.Context(), fresh); err != nil {
		t.Fatal(err)
	}
	if err := hooks.Release(t.Context(), cp.Client, staleRelease, hooks.Default); !apierrors.IsConflict(err) {
		t.Fatalf("Release on a stale copy: want a conflict, got %v", err)
	}
	if !hooks.Has(&machinev1beta1.Machine{Spec: machinev1beta1.MachineSpec{LifecycleHooks: machinev1beta1.LifecycleHooks{PreDrain: reread(t, m)}}}, hooks.Default) {
		t.Fatal("a stale release removed the hook")
	}
}
