package quorum

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func host(name string, addrs ...Address) Machine {
	return Machine{Name: name, Addresses: addrs}
}

func ip(a string) Address  { return Address{Type: AddressInternalIP, Address: a} }
func dns(a string) Address { return Address{Type: AddressInternalDNS, Address: a} }

func peers(id uint64, name string, urls ...string) Member {
	return Member{ID: id, Name: name, PeerURLs: urls, Started: name != ""}
}

func TestMap(t *testing.T) {
	for _, tc := range []struct {
		name     string
		machines []Machine
		members  []Member
		// want gives, for each member, the Machine it is placed on or the kind of problem.
		want map[uint64]string
	}{
		{"IPv4 members are placed on their machines",
			[]Machine{host("m-1", ip("10.0.0.1")), host("m-2", ip("10.0.0.2"))},
			[]Member{peers(1, "", "https://10.0.0.1:2380"), peers(2, "", "https://10.0.0.2:2380")},
			map[uint64]string{1: "m-1", 2: "m-2"}},
		{"long, bracketed, zoned and 4in6 forms compare equal",
			[]Machine{host("m-1", ip("[fd00::a]")), host("m-2", ip("10.0.0.2")), host("m-3", ip("fe80::3"))},
			[]Member{peers(1, "", "https://[fd00:0:0:0:0:0:0:a]:2380"), peers(2, "", "https://[::ffff:10.0.0.2]:2380"), peers(3, "", "https://[fe80::3%25eth0]:2380")},
			map[uint64]string{1: "m-1", 2: "m-2", 3: "m-3"}},
		{"a dual-stack member with both peer URLs is placed once",
			[]Machine{host("m-1", ip("fd00::1"), ip("10.0.0.1"))},
			[]Member{peers(1, "", "https://10.0.0.1:2380", "https://[fd00::1]:2380")},
			map[uint64]string{1: "m-1"}},
		{"a DNS peer URL is placed by InternalDNS, without case or trailing dot",
			[]Machine{host("m-1", ip("10.0.0.1"), dns("Master-0.Example.com")), host("m-2", ip("10.0.0.2"), Address{Type: AddressHostname, Address: "master-1"})},
			[]Member{peers(1, "", "https://master-0.example.com.:2380"), peers(2, "", "https://MASTER-1:2380")},
			map[uint64]string{1: "m-1", 2: "m-2"}},
		{"an ExternalIP counts as an address of the machine",
			[]Machine{host("m-1", Address{Type: AddressExternalIP, Address: "192.0.2.1"})},
			[]Member{peers(1, "", "https://192.0.2.1:2380")},
			map[uint64]string{1: "m-1"}},
		{"a member is placed by its Node name when its address is not listed",
			[]Machine{{Name: "m-1", NodeName: "node-a", Addresses: []Address{ip("10.0.0.1")}}},
			[]Member{peers(1, "node-a", "https://10.9.9.9:2380")},
			map[uint64]string{1: "m-1"}},
		{"an address no machine lists matches nothing",
			[]Machine{host("m-1", ip("10.0.0.1"))},
			[]Member{peers(1, "etcd-x", "https://10.0.0.7:2380"), peers(2, "", "https://etcd-0.example:2380")},
			map[uint64]string{1: string(Unmatched), 2: string(Unmatched)}},
		{"an address two machines share is ambiguous, not a guess",
			[]Machine{host("m-1", ip("10.0.0.1")), host("m-1b", ip("10.0.0.1"), ip("10.0.0.11"))},
			[]Member{peers(1, "", "https://10.0.0.1:2380")},
			map[uint64]string{1: string(Ambiguous)}},
		{"signals that disagree are ambiguous",
			[]Machine{{Name: "m-1", NodeName: "node-a", Addresses: []Address{ip("10.0.0.1")}}, host("m-2", ip("10.0.0.2"))},
			[]Member{peers(1, "node-a", "https://10.0.0.2:2380"), peers(2, "", "https://10.0.0.1:2380", "https://10.0.0.2:2380")},
			map[uint64]string{1: string(Ambiguous), 2: string(Ambiguous)}},
		{"a peer URL that cannot be parsed makes the member invalid even if another matches",
			[]Machine{host("m-1", ip("10.0.0.1"))},
			[]Member{peers(1, "", "https://10.0.0.1:2380", "%zz"), peers(2, "", "https://bad_host:2380"), peers(3, "")},
			map[uint64]string{1: string(Invalid), 2: string(Invalid), 3: string(Invalid)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Map(tc.machines, tc.members)
			for id, want := range tc.want {
				p := got.Of[id]
				have := p.Machine
				if p.Kind != Placed {
					have = string(p.Kind)
					if p.Problem == "" {
						t.Errorf("member %d is %s with no problem stated", id, p.Kind)
					}
				}
				if have != want {
					t.Errorf("member %d: %s (%+v); want %s", id, have, p, want)
				}
				if (p.Kind == Placed) != got.Accounted(id) {
					t.Errorf("member %d: Accounted disagrees with %s", id, p.Kind)
				}
			}
			r := rand.New(rand.NewPCG(1, 2))
			for range 5 {
				ms, mcs := shuffled(r, tc.members), shuffled(r, tc.machines)
				if again := Map(mcs, ms); !reflect.DeepEqual(again, got) {
					t.Fatalf("Map depends on input order:\n%#v\nthen\n%#v", got, again)
				}
			}
		})
	}
}

func shuffled[T any](r *rand.Rand, in []T) []T {
	out := slices.Clone(in)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// FuzzMap checks that a member is placed only when every signal points at one Machine, and
// that every member gets a placement.
func FuzzMap(f *testing.F) {
	f.Add("https://[::1]:2380", "::1", "10.0.0.1", "https://10.0.0.1:2380", "m-2")
	f.Add("https://[fe80::1%25eth0]:2380", "[fe80::1]", "::ffff:10.0.0.2", "https://[::ffff:10.0.0.2]:2380", "")
	f.Add("%zz", "", "not-an-ip", "https://etcd:2380", "etcd")
	f.Fuzz(func(t *testing.T, peer1, addr1, addr2, peer2, name string) {
		machines := []Machine{
			{Name: "m-1", NodeName: "n-1", Addresses: []Address{ip(addr1), dns(addr2)}},
			{Name: "m-2", NodeName: name, Addresses: []Address{ip(addr2)}},
		}
		members := []Member{peers(1, name, peer1), peers(2, "n-1", peer2, peer1)}
		got := Map(machines, members)
		for _, m := range members {
			p, ok := got.Of[m.ID]
			if !ok {
				t.Fatalf("member %d has no placement", m.ID)
			}
			if p.Kind == Placed && (len(p.Candidates) != 1 || p.Candidates[0] != p.Machine || p.Problem != "") {
				t.Fatalf("member %d placed on %s with candidates %v and problem %q", m.ID, p.Machine, p.Candidates, p.Problem)
			}
			if p.Kind != Placed && (p.Machine != "" || p.Problem == "") {
				t.Fatalf("member %d is %s but has machine %q and problem %q", m.ID, p.Kind, p.Machine, p.Problem)
			}
		}
	})
}
