package framework_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/test/framework"
)

// failOnce fails the first write that records a Machine's providerID, as an apiserver that
// times out or refuses a write does.
type failOnce struct {
	client.Client
	mu     sync.Mutex
	failed bool
}

func (f *failOnce) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if m, ok := obj.(*machinev1beta1.Machine); ok && m.Spec.ProviderID != nil {
		f.mu.Lock()
		first := !f.failed
		f.failed = true
		f.mu.Unlock()
		if first {
			return errors.New("injected: the write timed out")
		}
	}
	return f.Client.Patch(ctx, obj, patch, opts...)
}

// startMachineAPI runs machine-api-operator's controllers on a cloud whose instances get
// addresses from allocate, for the Machines labelled label.
func startMachineAPI(t *testing.T, c client.Client, label map[string]string, allocate func(string) (net.IP, error)) *framework.Cloud {
	t.Helper()
	cctx, cancel := context.WithCancel(context.Background())
	cloud := framework.NewCloud(cctx, framework.CloudOptions{Client: c, AllocateIP: allocate})
	api, err := framework.StartMachineAPI(t.Context(), framework.MachineAPIOptions{Config: cp.Config, Cloud: cloud, Machines: label})
	must(t, err)
	t.Cleanup(func() { api.Stop(); cloud.Close(); cancel() })
	return cloud
}

func labelledMachine(t *testing.T, name string, label map[string]string) *machinev1beta1.Machine {
	t.Helper()
	m := &machinev1beta1.Machine{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: framework.MachineNamespace, Labels: label},
		Spec:       machinev1beta1.MachineSpec{ProviderSpec: machinev1beta1.ProviderSpec{Value: &runtime.RawExtension{Raw: []byte(`{}`)}}},
	}
	must(t, cp.Client.Create(t.Context(), m))
	t.Cleanup(func() {
		bg := context.Background()
		var cur machinev1beta1.Machine
		if cp.Client.Get(bg, client.ObjectKeyFromObject(m), &cur) == nil {
			cur.Finalizers = nil
			cur.Spec.LifecycleHooks = machinev1beta1.LifecycleHooks{}
			_ = cp.Client.Update(bg, &cur)
			_ = cp.Client.Delete(bg, &cur)
		}
		_ = cp.Client.Delete(bg, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: m.Name}})
	})
	return m
}

// TestProvisioningRetryKeepsTheAddress: an instance whose addresses could not be recorded is
// recorded again with the address it was given, as a cloud keeps an instance's address. A
// bootstrap member started before its Machine (StartProtected) runs on the address reserved
// for that Machine; a second address would leave the member off its Machine's InternalIP.
func TestProvisioningRetryKeepsTheAddress(t *testing.T) {
	ctx := t.Context()
	var mu sync.Mutex
	var given []net.IP
	label := map[string]string{framework.ClusterLabel: "provisioning-retry"}
	startMachineAPI(t, &failOnce{Client: cp.Client}, label, func(string) (net.IP, error) {
		mu.Lock()
		defer mu.Unlock()
		ip := net.IPv4(127, 77, 0, byte(10+len(given)))
		given = append(given, ip)
		return ip, nil
	})
	m := labelledMachine(t, "retry-master-0", label)
	var ip net.IP
	must(t, framework.WaitFor(ctx, 60*time.Second, "the Machine to run on its Node", func() (bool, error) {
		var cur machinev1beta1.Machine
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(m), &cur); err != nil {
			return false, err
		}
		ip = framework.InternalIP(&cur)
		return ptr.Deref(cur.Status.Phase, "") == framework.PhaseRunning && cur.Status.NodeRef != nil, nil
	}))
	mu.Lock()
	defer mu.Unlock()
	if len(given) != 1 || !ip.Equal(given[0]) {
		t.Fatalf("the Machine has InternalIP %v after %d addresses were handed out (%v); want the first and only one", ip, len(given), given)
	}
}

// TestMachineAPIHoldsAtHooks: machine-api-operator's own controllers hold a deleted Machine's
// drain at a preDrain hook and its instance at a preTerminate hook, and skip the drain (and
// so the preDrain hook) of a Machine with the exclude annotation. The cloud stand-in's
// instance table shows when an instance was terminated.
func TestMachineAPIHoldsAtHooks(t *testing.T) {
	ctx := t.Context()
	label := map[string]string{framework.ClusterLabel: "holds-at-hooks"}
	var n byte
	var mu sync.Mutex
	cloud := startMachineAPI(t, cp.Client, label, func(string) (net.IP, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		return net.IPv4(127, 78, 0, 10+n), nil
	})
	hook := machinev1beta1.LifecycleHook{Name: "test-hook", Owner: "framework-test"}
	running := func(name string) *machinev1beta1.Machine {
		m := labelledMachine(t, name, label)
		var cur machinev1beta1.Machine
		must(t, framework.WaitFor(ctx, 60*time.Second, name+" to run", func() (bool, error) {
			err := cp.Client.Get(ctx, client.ObjectKeyFromObject(m), &cur)
			return err == nil && cur.Status.NodeRef != nil && ptr.Deref(cur.Status.Phase, "") == framework.PhaseRunning, err
		}))
		return &cur
	}
	update := func(m *machinev1beta1.Machine, change func(*machinev1beta1.Machine)) {
		must(t, framework.WaitFor(ctx, 10*time.Second, "update "+m.Name, func() (bool, error) {
			var cur machinev1beta1.Machine
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(m), &cur); err != nil {
				return false, err
			}
			change(&cur)
			return cp.Client.Update(ctx, &cur) == nil, nil
		}))
	}
	condition := func(m *machinev1beta1.Machine, ct machinev1beta1.ConditionType) *machinev1beta1.Condition {
		var cur machinev1beta1.Machine
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(m), &cur); err != nil {
			return nil
		}
		return framework.Condition(&cur, ct)
	}
	held := func(m *machinev1beta1.Machine, what string, d time.Duration) {
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			if cloud.Terminated(m.UID) {
				t.Fatalf("%s: the instance of %s was terminated", what, m.Name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// A preDrain hook holds the drain, and so the termination.
	a := running("hooks-a")
	update(a, func(m *machinev1beta1.Machine) { m.Spec.LifecycleHooks.PreDrain = []machinev1beta1.LifecycleHook{hook} })
	must(t, cp.Client.Delete(ctx, a))
	held(a, "with a preDrain hook", 2*time.Second)
	if c := condition(a, framework.ConditionDrained); c != nil && c.Status == corev1.ConditionTrue {
		t.Fatalf("hooks-a is Drained (%s) while its preDrain hook is on", c.Message)
	}
	update(a, func(m *machinev1beta1.Machine) { m.Spec.LifecycleHooks.PreDrain = nil })
	must(t, framework.WaitFor(ctx, 60*time.Second, "hooks-a's instance to be terminated", func() (bool, error) { return cloud.Terminated(a.UID), nil }))

	// The exclude annotation skips the drain and the preDrain hook; a preTerminate hook holds.
	b := running("hooks-b")
	update(b, func(m *machinev1beta1.Machine) {
		m.Spec.LifecycleHooks.PreDrain = []machinev1beta1.LifecycleHook{hook}
		m.Spec.LifecycleHooks.PreTerminate = []machinev1beta1.LifecycleHook{hook}
		m.Annotations = map[string]string{framework.ExcludeDrainAnnotation: ""}
	})
	must(t, cp.Client.Delete(ctx, b))
	must(t, framework.WaitFor(ctx, 30*time.Second, "hooks-b's drain to be skipped", func() (bool, error) {
		c := condition(b, framework.ConditionDrained)
		return c != nil && c.Status == corev1.ConditionTrue, nil
	}))
	held(b, "with a preTerminate hook", 2*time.Second)
	update(b, func(m *machinev1beta1.Machine) { m.Spec.LifecycleHooks.PreTerminate = nil })
	must(t, framework.WaitFor(ctx, 60*time.Second, "hooks-b's instance to be terminated", func() (bool, error) { return cloud.Terminated(b.UID), nil }))
}
