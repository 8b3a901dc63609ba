package etcdmember

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/pkg/quorum"
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

	s := quorum.State{Desired: 3, Machines: []quorum.Machine{{Name: "master-v6", Running: true, HasHook: true, Addresses: []quorum.Address{
		{Type: quorum.AddressInternalIP, Address: "10.9.9.9"}, {Type: quorum.AddressInternalIP, Address: "fd00::9"}, {Type: quorum.AddressInternalIP, Address: "::1"}}}}}
	for _, name := range []string{"a", "b", "c"} {
		s.Machines = append(s.Machines, quorum.Machine{Name: "master-" + name, Running: true, HasHook: true,
			Addresses: []quorum.Address{{Type: quorum.AddressInternalIP, Address: cl.members[name].IP.String()}}})
	}
	for _, m := range members {
		s.Members = append(s.Members, quorum.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, Learner: m.IsLearner, Started: m.Started, Healthy: m.Healthy})
	}
	d := quorum.Decide(s)
	if p := d.Mapping.Of[l.ID]; p.Kind != quorum.Placed || p.Machine != "master-v6" {
		t.Fatalf("learner on [::1] is placed %+v, want on master-v6", p)
	}
	for _, m := range members {
		if !d.Mapping.Accounted(m.ID) {
			t.Fatalf("member %s is not placed: %+v", m, d.Mapping.Of[m.ID])
		}
	}
	if d.Action.Kind != quorum.Promote || d.Action.MemberID != l.ID {
		t.Fatalf("the planner says %s, want the IPv6 learner promoted", d.Action)
	}
}
