package app_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/test/framework"
)

var cp *framework.ControlPlane

func TestMain(m *testing.M) { framework.Main(m, framework.ControlPlaneOptions{}, &cp) }

// options are a controller's options with placeholder etcd files: these tests exercise the
// election, not etcd.
func options(t *testing.T) app.Options {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"ca", "cert", "key"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return app.Options{Namespace: framework.MachineNamespace, Hook: hooks.Default, DefaultReplicas: 3,
		EtcdCA: filepath.Join(dir, "ca"), EtcdCert: filepath.Join(dir, "cert"), EtcdKey: filepath.Join(dir, "key"),
		MetricsAddr: "0", ProbeAddr: "0", LeaderElect: "lease", ElectionID: "quorumguard-lock",
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond}
}

type running struct {
	c      *app.Controller
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, o app.Options) *running {
	t.Helper()
	c, err := app.New(cp.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *running) stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
	}
}

func holder(t *testing.T, ns, name string) string {
	lease := &coordinationv1.Lease{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, lease); err != nil || lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

func waitHolder(t *testing.T, o app.Options, id string) time.Time {
	t.Helper()
	if err := framework.WaitFor(t.Context(), 30*time.Second, "lease held by "+id, func() (bool, error) {
		return holder(t, o.ElectionNS, o.ElectionID) == id, nil
	}); err != nil {
		t.Fatal(err)
	}
	return time.Now()
}

func newNamespace(t *testing.T) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "lease-"}}
	if err := cp.Client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func TestLeaseHandover(t *testing.T) {
	t.Run("a graceful stop releases the lease for a quick handover", func(t *testing.T) {
		o, _ := withEtcd(t, options(t))
		o.ElectionNS = newNamespace(t)
		a := start(t, o)
		waitHolder(t, o, a.c.Lease.Identity)
		b := start(t, o)
		time.Sleep(500 * time.Millisecond)
		if holder(t, o.ElectionNS, o.ElectionID) != a.c.Lease.Identity {
			t.Fatal("the standby took the lease from a live leader")
		}
		tokA, err := a.c.Lease.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		a.stop()
		took := waitHolder(t, o, b.c.Lease.Identity).Sub(stopped)
		t.Logf("handover after a graceful stop: %s", took.Round(time.Millisecond))
		if took > 2*time.Second {
			t.Errorf("handover after a graceful stop took %s; the lease should have been released", took)
		}
		tokB, err := b.c.Lease.Token(t.Context())
		if err != nil || tokB <= tokA {
			t.Fatalf("new leader's token %d (err %v) must exceed the old %d", tokB, err, tokA)
		}
		if _, err := a.c.Lease.Token(t.Context()); err == nil {
			t.Fatal("the stopped leader still gets a token")
		}
	})

	t.Run("a crashed leader's lease is taken over once it expires", func(t *testing.T) {
		o := options(t)
		o.ElectionNS = newNamespace(t)
		o.NoReleaseOnCancel = true
		a := start(t, o)
		waitHolder(t, o, a.c.Lease.Identity)
		b := start(t, o)
		crashed := time.Now()
		a.stop()
		took := waitHolder(t, o, b.c.Lease.Identity).Sub(crashed)
		t.Logf("takeover after a crash: %s (lease duration %s)", took.Round(time.Millisecond), o.LeaseDuration)
		if took < o.LeaseDuration/2 {
			t.Errorf("takeover after %s: a crashed leader's lease must be waited out", took)
		}
	})
}

func TestLeaseOutOfClusterNeedsNamespace(t *testing.T) {
	o := options(t)
	o.ElectionNS = ""
	_, err := app.New(cp.Config, o)
	if err == nil || !strings.Contains(err.Error(), "--leader-election-namespace") {
		t.Fatalf("want an error naming --leader-election-namespace, got %v", err)
	}
}

func TestMissingEtcdFilesAreNamed(t *testing.T) {
	o := options(t)
	o.LeaderElect = "none"
	o.EtcdKey = filepath.Join(t.TempDir(), "absent.key")
	_, err := app.New(cp.Config, o)
	if err == nil || !strings.Contains(err.Error(), "--etcd-key-file") {
		t.Fatalf("want an error naming --etcd-key-file, got %v", err)
	}
}

// TestControllersAreNotKeptAlive: a Controller that reported status is garbage once nothing
// refers to it. A process that builds many (the chaos suite builds hundreds) must not keep
// each one, with its clients and caches, for ever.
func TestControllersAreNotKeptAlive(t *testing.T) {
	var built []weak.Pointer[app.Controller]
	for range 3 {
		o := options(t)
		o.LeaderElect = "none"
		c, err := app.New(cp.Config, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.EnableStatus(); err != nil {
			t.Fatal(err)
		}
		built = append(built, weak.Make(c))
	}
	runtime.GC()
	runtime.GC()
	for i, w := range built {
		if w.Value() != nil {
			t.Errorf("controller %d is still reachable after its last use", i)
		}
	}
}
