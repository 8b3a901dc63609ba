package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/test/framework"
)

// hangingEtcd is an etcd whose Observe never returns: the control loop hangs in its pass.
type hangingEtcd struct{ controlplane.Etcd }

func (hangingEtcd) Observe(ctx context.Context) ([]etcdmember.Observed, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// startHung starts a controller whose passes hang on etcd.
func startHung(t *testing.T, o app.Options) *running {
	t.Helper()
	c, err := app.New(cp.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	c.Reconciler.Etcd = hangingEtcd{c.Reconciler.Etcd}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// TestLivenessFailsOnlyForAHungLeader: the leader's /healthz check fails once its control
// loop has finished no pass for the stall timeout, while the standby's passes throughout.
// A leader whose loop keeps finishing passes stays live past the same timeout.
func TestLivenessFailsOnlyForAHungLeader(t *testing.T) {
	app.SetMinStallTimeout(t, time.Second)
	t.Run("a leader whose loop keeps passing stays live", func(t *testing.T) {
		o := options(t)
		o.ElectionNS = newNamespace(t)
		// Without etcd a pass ends in an error and the next comes a second later.
		o.StallTimeout = 3 * time.Second
		a := start(t, o)
		waitHolder(t, o, a.c.Lease.Identity)
		deadline := time.Now().Add(2 * o.StallTimeout)
		for time.Now().Before(deadline) {
			if err := a.c.Liveness(nil); err != nil {
				t.Fatalf("a leader whose passes finish failed its liveness: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if a.c.Reconciler.LastPass().IsZero() {
			t.Fatal("no pass finished")
		}
	})
	t.Run("a hung leader fails, its standby does not", func(t *testing.T) {
		o := options(t)
		o.ElectionNS = newNamespace(t)
		o.StallTimeout = time.Second
		a := startHung(t, o)
		waitHolder(t, o, a.c.Lease.Identity)
		b := start(t, o)
		if err := framework.WaitFor(t.Context(), 30*time.Second, "the hung leader's liveness to fail", func() (bool, error) {
			if err := b.c.Liveness(nil); err != nil {
				t.Fatalf("the standby's liveness failed: %v", err)
			}
			return a.c.Liveness(nil) != nil, nil
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("leader: %v", a.c.Liveness(nil))
		if err := b.c.Liveness(nil); err != nil {
			t.Fatalf("the standby's liveness failed: %v", err)
		}
	})
}
