package release

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

func mach(name, ip string, deleting, hook bool) quorum.Machine {
	return quorum.Machine{Name: name, Deleting: deleting, Running: true, HasHook: hook, NodeName: name,
		Addresses: []quorum.Address{{Type: quorum.AddressInternalIP, Address: ip}}}
}

func voter(id uint64, name, ip string, healthy bool) quorum.Member {
	return quorum.Member{ID: id, Name: name, PeerURLs: []string{fmt.Sprintf("https://%s:2380", ip)}, Started: true, Healthy: healthy}
}

// three is master-0 (deleting, hooked) and master-1, master-2 with their healthy members.
func three() quorum.State {
	return quorum.State{Desired: 3,
		Machines: []quorum.Machine{mach("m0", "10.0.0.1", true, true), mach("m1", "10.0.0.2", false, true), mach("m2", "10.0.0.3", false, true)},
		Members:  []quorum.Member{voter(1, "m0", "10.0.0.1", true), voter(2, "m1", "10.0.0.2", true), voter(3, "m2", "10.0.0.3", true)}}
}

// promoted is three with m3's replacement promoted: 4 voters.
func promoted() quorum.State {
	s := three()
	s.Machines = append(s.Machines, mach("m3", "10.0.0.4", false, true))
	s.Members = append(s.Members, voter(4, "m3", "10.0.0.4", true))
	return s
}

func TestDecide(t *testing.T) {
	cases := []struct {
		name string
		req  Request
		st   func() quorum.State
		dead []uint64
		err  error
		// want is Plan.Refused's start, or "" for a plan that goes ahead; remove and release
		// are the plan then.
		want    string
		remove  uint64
		release bool
		risks   int
	}{
		{name: "a promoted replacement: the old member goes, then the hook", req: Request{Machine: "m0"}, st: promoted, remove: 1, release: true},
		{name: "no replacement yet: waits", req: Request{Machine: "m0"}, st: three, want: "quorumguard waits before removing member 1"},
		{name: "no replacement, forced: goes with the risk said", req: Request{Machine: "m0", Force: true}, st: three, remove: 1, release: true, risks: 2},
		{name: "a dead member elsewhere: removing a healthy one loses quorum, forced or not", req: Request{Machine: "m0", Force: true},
			st: func() quorum.State { s := three(); s.Members[1].Healthy = false; return s }, want: "removing member 1 (m0, voter) of Machine m0 would lose quorum"},
		{name: "the Machine's own member is dead: removed without force, as the controller does", req: Request{Machine: "m0"},
			st: func() quorum.State { s := three(); s.Members[0].Healthy = false; return s }, dead: []uint64{1}, remove: 1, release: true},
		{name: "a Machine that is not deleting", req: Request{Machine: "m1"}, st: three, want: "Machine m1 is not being deleted"},
		{name: "an unknown Machine", req: Request{Machine: "nope"}, st: three, want: "there is no control-plane Machine nope"},
		{name: "no member: only the hook", req: Request{Machine: "m3"},
			st: func() quorum.State {
				s := three()
				s.Machines = append(s.Machines, mach("m3", "10.0.0.4", true, true))
				return s
			}, release: true},
		{name: "no member, no hook: nothing", req: Request{Machine: "m3"},
			st: func() quorum.State {
				s := three()
				s.Machines = append(s.Machines, mach("m3", "10.0.0.4", true, false))
				return s
			}},
		{name: "a member placed with uncertainty is never guessed, forced or not", req: Request{Machine: "m3", Force: true},
			st: func() quorum.State {
				s := three()
				s.Machines = append(s.Machines, mach("m3", "10.0.0.4", true, true))
				// Both m2 and m3 report 10.0.0.3: member 3 may be either's.
				s.Machines[3].Addresses = append(s.Machines[3].Addresses, quorum.Address{Type: quorum.AddressExternalIP, Address: "10.0.0.3"})
				return s
			}, want: "member 3 may belong to Machine m3"},
		{name: "a voting member no Machine accounts for blocks the release", req: Request{Machine: "m3", Force: true},
			st: func() quorum.State {
				s := three()
				s.Machines = append(s.Machines, mach("m3", "10.0.0.4", true, true))
				s.Members = append(s.Members, voter(9, "", "10.0.0.9", false))
				s.Members[3].Started = false
				return s
			}, want: "voting member 9 is not accounted for"},
		{name: "etcd without quorum", req: Request{Machine: "m0"}, st: promoted, err: &etcdmember.NoQuorumError{Err: errors.New("gone")}, want: "etcd has lost quorum"},
		{name: "etcd unobserved", req: Request{Machine: "m0"}, st: promoted, err: errors.New("refused"), want: "etcd could not be observed"},

		{name: "--member: a dead member no Machine accounts for is removed", req: Request{Member: 9},
			st: func() quorum.State {
				s := three()
				s.Members = append(s.Members, voter(9, "", "10.0.0.9", false))
				return s
			}, dead: []uint64{9}, remove: 9},
		{name: "--member: a live one is refused, forced or not", req: Request{Member: 9, Force: true},
			st: func() quorum.State {
				s := three()
				s.Members = append(s.Members, voter(9, "x", "10.0.0.9", true))
				return s
			}, want: "member 9 (x, voter) answers its Status"},
		{name: "--member: an answering member cut off from the leader is alive too", req: Request{Member: 9},
			st: func() quorum.State {
				s := three()
				s.Members = append(s.Members, voter(9, "x", "10.0.0.9", false))
				return s
			}, want: "member 9 (x, voter) answers its Status"},
		{name: "--member: a member a Machine accounts for", req: Request{Member: 2}, st: three, dead: []uint64{2}, want: "member 2 (m1, voter) belongs to Machine m1; use `quorumguard release m1`"},
		{name: "--member: not listed", req: Request{Member: 0xabc}, st: three, want: "etcd lists no member abc"},
		{name: "--member: removing even a dead one must keep quorum", req: Request{Member: 9},
			st: func() quorum.State {
				s := three()
				s.Members[1].Healthy, s.Members[2].Healthy = false, false
				s.Members = append(s.Members, voter(9, "", "10.0.0.9", false))
				return s
			}, dead: []uint64{9}, want: "removing member 9 (unstarted, voter) would lose quorum"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Request: tc.req, State: tc.st(), EtcdErr: tc.err, Dead: map[uint64]bool{}}
			for _, id := range tc.dead {
				in.Dead[id] = true
			}
			p := Decide(in)
			if tc.want != "" {
				if !strings.HasPrefix(p.Refused, tc.want) || p.Remove != 0 || p.Release {
					t.Fatalf("Decide = %+v; want refused with %q and nothing done", p, tc.want)
				}
				return
			}
			if p.Refused != "" || p.Remove != tc.remove || p.Release != tc.release || len(p.Risks) != tc.risks {
				t.Fatalf("Decide = %+v; want remove %x, release %v, %d risks", p, tc.remove, tc.release, tc.risks)
			}
		})
	}
}
