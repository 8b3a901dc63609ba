package framework_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/test/framework"
)

// failOnce fails the first Update that records a Machine's providerID, as an apiserver that
// times out or refuses a write does.
type failOnce struct {
	client.Client
	mu     sync.Mutex
	failed bool
}

func (f *failOnce) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if m, ok := obj.(*machinev1beta1.Machine); ok && m.Spec.ProviderID != nil {
		f.mu.Lock()
		first := !f.failed
		f.failed = true
		f.mu.Unlock()
		if first {
			return errors.New("injected: the write timed out")
		}
	}
	return f.Client.Update(ctx, obj, opts...)
}

// TestProvisioningRetryKeepsTheAddress: a provisioning pass whose write fails is tried again
// with the address it was given, as a cloud keeps an instance's address. A bootstrap member
// started before its Machine (StartProtected) runs on the address reserved for that Machine;
// a second address would leave the member off its Machine's InternalIP for good.
func TestProvisioningRetryKeepsTheAddress(t *testing.T) {
	ctx := t.Context()
	var mu sync.Mutex
	var given []net.IP
	label := map[string]string{"framework-test": "provisioning-retry"}
	sim := framework.NewSimulator(framework.SimulatorOptions{
		Client: &failOnce{Client: cp.Client}, Labels: label, Interval: 20 * time.Millisecond,
		AllocateIP: func(string) (net.IP, error) {
			mu.Lock()
			defer mu.Unlock()
			ip := net.IPv4(127, 77, 0, byte(10+len(given)))
			given = append(given, ip)
			return ip, nil
		},
	})
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); sim.Run(sctx) }()
	t.Cleanup(func() { cancel(); <-done })

	m := &machinev1beta1.Machine{ObjectMeta: metav1.ObjectMeta{Name: "retry-master-0", Namespace: framework.MachineNamespace, Labels: label}}
	must(t, cp.Client.Create(ctx, m))
	t.Cleanup(func() {
		bg := context.Background()
		var cur machinev1beta1.Machine
		if cp.Client.Get(bg, client.ObjectKeyFromObject(m), &cur) == nil {
			cur.Finalizers = nil
			_ = cp.Client.Update(bg, &cur)
			_ = cp.Client.Delete(bg, &cur)
		}
	})
	var ip net.IP
	must(t, framework.WaitFor(ctx, 30*time.Second, "the Machine to be provisioned", func() (bool, error) {
		var cur machinev1beta1.Machine
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(m), &cur); err != nil {
			return false, err
		}
		if ptr.Deref(cur.Status.Phase, "") == framework.PhaseProvisioning || ptr.Deref(cur.Status.Phase, "") == "" {
			return false, nil
		}
		ip = framework.InternalIP(&cur)
		return ip != nil, nil
	}))
	mu.Lock()
	defer mu.Unlock()
	if len(given) != 1 || !ip.Equal(given[0]) {
		t.Fatalf("the Machine has InternalIP %v after %d addresses were handed out (%v); want the first and only one", ip, len(given), given)
	}
}
