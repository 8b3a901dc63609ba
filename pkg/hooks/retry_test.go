package hooks_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/test/framework"
)

// counting counts the requests a client sends about Machines, by method (a new client's
// one-time discovery requests are left out).
type counting struct {
	next http.RoundTripper
	mu   sync.Mutex
	sent []string
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/machines/") {
		c.mu.Lock()
		c.sent = append(c.sent, r.Method)
		c.mu.Unlock()
	}
	return c.next.RoundTrip(r)
}

func (c *counting) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.sent
	c.sent = nil
	return out
}

// countingWriter is a Writer whose requests, writes and fresh reads alike, are counted.
func countingWriter(t *testing.T) (hooks.Writer, *counting) {
	t.Helper()
	cfg := rest.CopyConfig(cp.Config)
	rt := &counting{}
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper { rt.next = next; return rt })
	c, err := client.New(cfg, client.Options{Scheme: cp.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return hooks.Writer{Client: c, Reader: c}, rt
}

func sameAddresses(old *machinev1beta1.Machine) func(*machinev1beta1.Machine) error {
	return func(fresh *machinev1beta1.Machine) error {
		if fmt.Sprint(fresh.Status.Addresses) != fmt.Sprint(old.Status.Addresses) {
			return hooks.ErrChanged
		}
		return nil
	}
}

// TestReleaseAfterAPIServerRestart: after kube-apiserver restarts, a controller's cached
// Machine is stale until its watch is back; releasing the hook from it takes a refused
// PATCH, one fresh GET and one PATCH, not a refused PATCH every pass.
func TestReleaseAfterAPIServerRestart(t *testing.T) {
	m := create(t, "hooks-restart", []machinev1beta1.LifecycleHook{other, hooks.Default}, true)
	cached := m.DeepCopy()
	if err := cp.RestartAPIServer(time.Second); err != nil {
		t.Fatal(err)
	}
	// Changed after the restart, before the cache saw it: the cached copy is stale.
	if err := framework.WaitFor(t.Context(), 30*time.Second, "the apiserver back", func() (bool, error) {
		fresh := &machinev1beta1.Machine{}
		if cp.Client.Get(t.Context(), client.ObjectKeyFromObject(m), fresh) != nil {
			return false, nil //nolint:nilerr // the apiserver is not back yet: wait

		}
		fresh.Labels["touched"] = "after-restart"
		return cp.Client.Update(t.Context(), fresh) == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	w, rt := countingWriter(t)
	if err := w.Release(t.Context(), cached, hooks.Default, sameAddresses(cached)); err != nil {
		t.Fatalf("Release from a stale copy: %v", err)
	}
	sent := rt.take()
	if len(sent) > 3 {
		t.Errorf("the release took %d requests %v; want at most 3 (PATCH refused, GET, PATCH)", len(sent), sent)
	}
	t.Logf("requests: %v", sent)
	if after := reread(t, m); slices.Contains(after, hooks.Default) || !slices.Contains(after, other) {
		t.Fatalf("hooks after the release: %v; want only %v", after, other)
	}
}

// TestReleaseRefusedWhenTheMachineChanged: a fresh read that shows the Machine changed in
// what the release was decided on (its addresses) releases nothing.
func TestReleaseRefusedWhenTheMachineChanged(t *testing.T) {
	m := create(t, "hooks-moved", []machinev1beta1.LifecycleHook{hooks.Default}, true)
	cached := m.DeepCopy()
	m.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.9"}}
	if err := cp.Client.Status().Update(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	w, _ := countingWriter(t)
	if err := w.Release(t.Context(), cached, hooks.Default, sameAddresses(cached)); !errors.Is(err, hooks.ErrChanged) {
		t.Fatalf("Release after the addresses changed = %v; want ErrChanged", err)
	}
	if after := reread(t, m); !slices.Contains(after, hooks.Default) {
		t.Fatal("the hook was released although the Machine changed")
	}
}
