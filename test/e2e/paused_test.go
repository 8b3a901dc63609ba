package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// TestPausedLeaderCheck: the paused-leader check compares the etcd member list, the fence
// key's revision and the Machines before the old leader resumes and after it has stepped
// down, and the Events about those Machines (by UID) since. A leader that changes nothing
// passes; one that removes a member on resuming, before it steps down, fails it.
func TestPausedLeaderCheck(t *testing.T) {
	for _, acts := range []bool{false, true} {
		t.Run(map[bool]string{false: "a fenced leader changes nothing", true: "a leader that removes a member is caught"}[acts], func(t *testing.T) {
			ctx := t.Context()
			c := newCluster(t, "")
			rs, err := e2e.StartReplicas(ctx, c, e2e.ControllerOptions(c), "quorumguard-paused-check", 2)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rs.Stop() })
			waitHooks(t, c, "cluster-master-0", "cluster-master-1", "cluster-master-2")
			if acts {
				// As if the old leader, on resuming, removed the newest member with no fence.
				rs.Tamper = func(ctx context.Context) error {
					cli, err := c.EtcdClient()
					if err != nil {
						return err
					}
					defer func() { _ = cli.Close() }()
					list, err := cli.MemberList(ctx)
					if err != nil {
						return err
					}
					var victim *uint64
					for _, m := range list.Members {
						if m.IsLearner || victim == nil {
							victim = &m.ID
						}
					}
					// etcd refuses a change in its health window; try for a while.
					return framework.WaitFor(ctx, 30*time.Second, "the member's removal", func() (bool, error) {
						// Each attempt is bounded: a proposal dropped in a leader change is never answered.
						actx, cancel := context.WithTimeout(ctx, 10*time.Second)
						defer cancel()
						_, err := cli.MemberRemove(actx, *victim)
						return err == nil, err
					})
				}
			}
			logf := func(format string, args ...any) { t.Logf(format, args...) }
			err = e2e.PausedLeader(ctx, rs, logf, func() error {
				if err := e2e.CreateReplacement(ctx, c, "cluster-new-0"); err != nil {
					return err
				}
				return c.DeleteMachine(ctx, "cluster-master-0")
			})
			if !acts {
				if err != nil {
					t.Fatalf("a fenced leader failed the check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "acted between resuming and stepping down") || !strings.Contains(err.Error(), "etcd members") {
				t.Fatalf("a member removed while the old leader resumed was not caught: %v", err)
			}
			t.Log(err)
		})
	}
}
