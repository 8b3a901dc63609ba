package e2e_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// TestChaos runs seeded chaos scenarios: QUORUMGUARD_CHAOS scenarios (default 2, which is what
// `make test` runs; `make chaos` runs 50) starting at seed QUORUMGUARD_CHAOS_SEED (default 1).
func TestChaos(t *testing.T) {
	n, first := envInt("QUORUMGUARD_CHAOS", 2), envInt("QUORUMGUARD_CHAOS_SEED", 1)
	events := envInt("QUORUMGUARD_CHAOS_EVENTS", 3)
	var results []e2e.ChaosResult
	for i := range n {
		seed := uint64(first + i)
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			ctx := t.Context()
			c, err := framework.StartCluster(ctx, cp, framework.ClusterOptions{Dir: t.TempDir(), ProvisionDelay: 100 * time.Millisecond, DrainDelay: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Stop(context.Background())
			rc, err := e2e.NewRestartableController(ctx, c, e2e.ControllerOptions(c))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Stop()
			waitHooks(t, c, "cluster-master-0", "cluster-master-1", "cluster-master-2")
			time.Sleep(5 * time.Second)
			res := e2e.ChaosSpec(ctx, e2e.ChaosInput{Seed: seed, Cluster: c, Restart: rc.Restart, Events: events})
			results = append(results, res)
			if res.Err != nil {
				t.Errorf("seed %d failed: %v\nevents: %v\ntimeline:\n  %s", seed, res.Err, res.Events, strings.Join(res.Timeline, "\n  "))
			}
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-6s %-62s %-8s %-7s %-6s %-9s %s\n", "SEED", "EVENTS", "TOOK", "WRITES", "LOST", "MIN-TOL", "RESULT")
	for _, r := range results {
		verdict := "ok"
		if r.Err != nil {
			verdict = "FAILED"
		}
		fmt.Fprintf(&b, "%-6d %-62s %-8s %-7d %-6d %-9d %s\n", r.Seed, strings.Join(r.Events, ","), r.Took.Round(time.Second), r.Writer.Acked, len(r.Writer.Lost), r.Monitor.MinTolerance, verdict)
	}
	t.Log(b.String())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
