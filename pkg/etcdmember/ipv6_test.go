package etcdmember

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestIPv6LearnerMapsToItsMachine runs a learner on [::1] in an IPv4 cluster, probes it
// through https://[::1]:2379, and maps it to a dual-stack Machine.
func TestIPv6LearnerMapsToItsMachine(t *testing.T) {
	ctx := t.Context()
	ip := net.IPv6loopback
	for _, port := range []int{2379, 2380, 22379, 22380} {
		l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), fmt.Sprint(port)))
		if err != nil {
			t.Skipf("[::1]:%d is not free here: %v", port, err)
		}
		l.Close()
	}
	cl := newCluster(t, ctx, "a", "b", "c")
	cl.settle(ctx)
	l, lm := cl.addLearner(ctx, 1, "v6", ip)
	if lm.PeerURL() != "https://[::1]:2380" {
		t.Fatalf("learner peer URL %s", lm.PeerURL())
	}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	members, _ := cl.waitHealth(hctx, l.ID, true)

	machines := []MachineAddrs{{Name: "master-v6", InternalIPs: []string{"10.9.9.9", "fd00::9", "::1"}}}
	for _, name := range []string{"a", "b", "c"} {
		machines = append(machines, MachineAddrs{Name: "master-" + name, InternalIPs: []string{cl.members[name].IP.String()}})
	}
	got := MapMachines(members, machines)
	if got.MachineOf[l.ID] != "master-v6" {
		t.Fatalf("learner on [::1] maps to %q, want master-v6 (mapping %+v)", got.MachineOf[l.ID], got)
	}
	if len(got.MachineOf) != 4 || len(got.UnmatchedMembers)+len(got.MachinesWithoutMember)+len(got.Conflicts) != 0 {
		t.Fatalf("mapping %+v, want all four members on their machines", got)
	}
}
