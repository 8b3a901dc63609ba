package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// clusterSpec says how startCluster starts a test's three-master cluster.
type clusterSpec struct {
	// zones, when set, puts master i in zone zones[i] (e2e.ZoneSpec); otherwise the
	// framework's default provider spec is used.
	zones string
	// options adjusts the controller's options; adjust the controller before it starts.
	options func(*app.Options)
	adjust  func(*app.Controller) error
	// noController starts the cluster alone.
	noController bool
	// settle waits until etcd accepts a membership change (e2e.WaitHealthWindow), for tests
	// that change the membership themselves or time what the controller does.
	settle bool
	// cluster adjusts the cluster's options.
	cluster func(*framework.ClusterOptions)
}

// newCluster starts a three-master cluster on the shared control plane, stopped when the
// test ends.
func newCluster(t *testing.T, zones string) *framework.Cluster {
	t.Helper()
	return newClusterWith(t, zones, nil)
}

// newClusterWith is newCluster with its options adjusted.
func newClusterWith(t *testing.T, zones string, adjust func(*framework.ClusterOptions)) *framework.Cluster {
	t.Helper()
	opts := framework.ClusterOptions{Dir: t.TempDir(), ProvisionDelay: 100 * time.Millisecond}
	if zones != "" {
		opts.ProviderSpec = func(i int) *runtime.RawExtension { return e2e.ZoneSpec(zones[i]) }
	}
	if adjust != nil {
		adjust(&opts)
	}
	c, err := framework.StartCluster(t.Context(), cp, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	return c
}

// startCluster starts a three-master cluster and, unless s.noController, a controller
// (ControllerOptions adjusted by s.options and s.adjust), and waits until every master
// carries the hook and a Voting condition. Everything stops when the test ends.
func startCluster(t *testing.T, s clusterSpec) (*framework.Cluster, *e2e.Controller) {
	t.Helper()
	c := newClusterWith(t, s.zones, s.cluster)
	if s.noController {
		return c, nil
	}
	o := e2e.ControllerOptions(c)
	if s.options != nil {
		s.options(&o)
	}
	rc, err := e2e.StartControllerWith(t.Context(), c, o, s.adjust)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Stop() })
	waitHooks(t, c, "cluster-master-0", "cluster-master-1", "cluster-master-2")
	if s.settle {
		settle(t, c)
	}
	return c, rc
}

// settle waits until etcd accepts a membership change.
func settle(t *testing.T, c *framework.Cluster) {
	t.Helper()
	if err := e2e.WaitHealthWindow(t.Context(), c, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

func waitHooks(t *testing.T, c *framework.Cluster, names ...string) {
	t.Helper()
	err := framework.WaitFor(t.Context(), 30*time.Second, "hooks and Voting conditions", func() (bool, error) {
		for _, n := range names {
			m, err := c.Machine(t.Context(), n)
			if err != nil || !hooks.Has(m, hooks.Default) {
				return false, err
			}
			if cond := framework.Condition(m, masters.ConditionType); cond == nil || cond.Reason != quorum.ReasonVoting {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWaitHealthWindow: right after a cluster turns quorate etcd refuses a new member (its
// strict reconfiguration check wants every voter connected for the health window), and once
// e2e.WaitHealthWindow returns it accepts one at once.
func TestWaitHealthWindow(t *testing.T) {
	c := newCluster(t, "")
	cli, err := c.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	ctx := t.Context()
	peer := "https://127.0.0.1:1"
	if _, err := cli.MemberAddAsLearner(ctx, []string{peer}); err == nil || !strings.Contains(err.Error(), "unhealthy cluster") {
		t.Fatalf("a learner added %s after the cluster turned quorate: %v; want etcd's unhealthy-cluster refusal (the window is real)",
			time.Since(c.Quorate).Round(time.Millisecond), err)
	}
	if err := e2e.WaitHealthWindow(ctx, c, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	waited := time.Since(c.Quorate)
	added, err := cli.MemberAddAsLearner(ctx, []string{peer})
	if err != nil {
		t.Fatalf("a learner added %s after the cluster turned quorate, once WaitHealthWindow returned: %v", waited.Round(time.Millisecond), err)
	}
	if _, err := cli.MemberRemove(ctx, added.Member.ID); err != nil {
		t.Fatal(err)
	}
	if waited < quorum.HealthWindow {
		t.Errorf("WaitHealthWindow returned %s after the cluster turned quorate, inside etcd's %s window", waited, quorum.HealthWindow)
	}
}
