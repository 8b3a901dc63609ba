package framework_test

import (
	"strings"
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/test/framework"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// TestMonitorIsNotFooledByAPartition: with two of three members cut off from their peers,
// quorum is gone though every member still answers Status. The monitor records the loss,
// with the faults in force; the Status-based probe it replaced does not.
func TestMonitorIsNotFooledByAPartition(t *testing.T) {
	for _, weak := range []bool{false, true} {
		t.Run(map[bool]string{false: "linearizable probes", true: "status probes"}[weak], func(t *testing.T) {
			n, ms, tc := etcdnet.StartTest(t, "m0", "m1", "m2")
			eps := etcdnet.ClientURLs(ms)
			mon, err := framework.StartMonitor(t.Context(), framework.MonitorOptions{Endpoints: func() []string { return eps }, TLS: tc, Faults: n.Faults, StatusProbe: weak})
			if err != nil {
				t.Fatal(err)
			}
			if err := framework.WaitFor(t.Context(), 30*time.Second, "a first sample", func() (bool, error) { return mon.Report().Samples > 0, nil }); err != nil {
				t.Fatal(err)
			}
			if lost := mon.Report().QuorumLost; len(lost) > 0 {
				t.Fatalf("a healthy cluster recorded as below quorum: %v", lost)
			}
			ms[1].Partition()
			ms[2].Partition()
			time.Sleep(4 * time.Second)
			ms[1].Heal()
			ms[2].Heal()
			rep := mon.Stop()
			t.Logf("%s; first loss: %v", rep, first(rep.QuorumLost))
			if weak {
				if len(rep.QuorumLost) > 0 {
					t.Fatalf("the status probe saw the loss after all (then this test no longer shows what it claims): %v", rep.QuorumLost[0])
				}
				return
			}
			if len(rep.QuorumLost) == 0 {
				t.Fatal("two of three members partitioned and no sample recorded below quorum")
			}
			if all := strings.Join(rep.QuorumLost, "\n"); !strings.Contains(all, "m1 partitioned") || !strings.Contains(all, "m2 partitioned") {
				t.Fatalf("the losses do not name the faults in force: %v", rep.QuorumLost[0])
			}
		})
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return s[0]
}
