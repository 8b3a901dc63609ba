package etcdmember

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

func peer(id uint64, urls ...string) Member {
	return Member{ID: id, Name: string(rune('a' - 1 + id)), PeerURLs: urls, Started: true}
}

func TestMapMachines(t *testing.T) {
	for _, tc := range []struct {
		name     string
		members  []Member
		machines []MachineAddrs
		want     Mapping
	}{
		{
			name:     "IPv4 members map to their machines",
			members:  []Member{peer(1, "https://10.0.0.1:2380"), peer(2, "https://10.0.0.2:2380")},
			machines: []MachineAddrs{{"m-1", []string{"10.0.0.1"}}, {"m-2", []string{"10.0.0.2"}}},
			want: Mapping{MachineOf: map[uint64]string{1: "m-1", 2: "m-2"},
				MembersOf: map[string][]uint64{"m-1": {1}, "m-2": {2}}},
		},
		{
			name:     "IPv6 loopback peer URL maps to a dual-stack machine",
			members:  []Member{peer(1, "https://[::1]:2380")},
			machines: []MachineAddrs{{"m-0", []string{"10.0.0.9", "::1"}}},
			want: Mapping{MachineOf: map[uint64]string{1: "m-0"},
				MembersOf: map[string][]uint64{"m-0": {1}}},
		},
		{
			name: "long, bracketed, zoned and 4in6 forms compare equal",
			members: []Member{
				peer(1, "https://[fd00:0:0:0:0:0:0:a]:2380"),
				peer(2, "https://[::ffff:10.0.0.2]:2380"),
				peer(3, "https://[fe80::3%25eth0]:2380"),
			},
			machines: []MachineAddrs{
				{"m-1", []string{"[fd00::a]"}},
				{"m-2", []string{"10.0.0.2"}},
				{"m-3", []string{"fe80::3"}},
			},
			want: Mapping{MachineOf: map[uint64]string{1: "m-1", 2: "m-2", 3: "m-3"},
				MembersOf: map[string][]uint64{"m-1": {1}, "m-2": {2}, "m-3": {3}}},
		},
		{
			name:     "a dual-stack member with both peer URLs maps once",
			members:  []Member{peer(1, "https://10.0.0.1:2380", "https://[fd00::1]:2380")},
			machines: []MachineAddrs{{"m-1", []string{"fd00::1", "10.0.0.1"}}},
			want: Mapping{MachineOf: map[uint64]string{1: "m-1"},
				MembersOf: map[string][]uint64{"m-1": {1}}},
		},
		{
			name:     "members and machines without a match are reported",
			members:  []Member{peer(1, "https://10.0.0.1:2380"), peer(2, "https://10.0.0.7:2380")},
			machines: []MachineAddrs{{"m-1", []string{"10.0.0.1"}}, {"m-3", []string{"10.0.0.3"}}},
			want: Mapping{MachineOf: map[uint64]string{1: "m-1"},
				MembersOf:             map[string][]uint64{"m-1": {1}},
				UnmatchedMembers:      []uint64{2},
				MachinesWithoutMember: []string{"m-3"}},
		},
		{
			name:    "two machines sharing an address are a conflict, not a guess",
			members: []Member{peer(1, "https://10.0.0.1:2380")},
			machines: []MachineAddrs{
				{"m-1", []string{"10.0.0.1"}}, {"m-1b", []string{"10.0.0.1", "10.0.0.11"}}, {"m-2", []string{"10.0.0.2"}},
			},
			want: Mapping{MachineOf: map[uint64]string{}, MembersOf: map[string][]uint64{},
				MachinesWithoutMember: []string{"m-2"},
				Conflicts:             []Conflict{{Address: "10.0.0.1", Machines: []string{"m-1", "m-1b"}, Members: []uint64{1}}}},
		},
		{
			name:     "a member matching two machines through two addresses is a conflict",
			members:  []Member{peer(1, "https://10.0.0.1:2380", "https://10.0.0.2:2380")},
			machines: []MachineAddrs{{"m-1", []string{"10.0.0.1"}}, {"m-2", []string{"10.0.0.2"}}},
			want: Mapping{MachineOf: map[uint64]string{}, MembersOf: map[string][]uint64{},
				Conflicts: []Conflict{{Machines: []string{"m-1", "m-2"}, Members: []uint64{1}}}},
		},
		{
			name:     "host names and bad addresses match nothing and are reported",
			members:  []Member{peer(1, "https://etcd-0.example:2380"), {ID: 2, PeerURLs: []string{"https://10.0.0.2:2380"}}},
			machines: []MachineAddrs{{"m-2", []string{"10.0.0.2", "not-an-ip"}}},
			want: Mapping{MachineOf: map[uint64]string{2: "m-2"},
				MembersOf:        map[string][]uint64{"m-2": {2}},
				UnmatchedMembers: []uint64{1},
				Invalid: []string{
					`machine m-2: "not-an-ip" is not an IP address`,
					`member a (1): peer URL "https://etcd-0.example:2380": "etcd-0.example" is not an IP address`,
				}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := MapMachines(tc.members, tc.machines)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("MapMachines =\n%#v\nwant\n%#v", got, tc.want)
			}
			r := rand.New(rand.NewPCG(1, 2))
			for range 5 {
				ms, mcs := shuffle(r, tc.members), shuffle(r, tc.machines)
				if again := MapMachines(ms, mcs); !reflect.DeepEqual(again, got) {
					t.Fatalf("MapMachines depends on input order:\n%#v\nthen\n%#v", got, again)
				}
			}
		})
	}
}

func shuffle[T any](r *rand.Rand, in []T) []T {
	out := append([]T(nil), in...)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func FuzzMapMachines(f *testing.F) {
	f.Add("https://[::1]:2380", "::1", "10.0.0.1", "https://10.0.0.1:2380")
	f.Add("https://[fe80::1%25eth0]:2380", "[fe80::1]", "::ffff:10.0.0.2", "https://[::ffff:10.0.0.2]:2380")
	f.Add("%zz", "", "not-an-ip", "https://etcd:2380")
	f.Fuzz(func(t *testing.T, peer1, addr1, addr2, peer2 string) {
		members := []Member{peer(1, peer1), peer(2, peer2, peer1)}
		machines := []MachineAddrs{{"m-1", []string{addr1, addr2}}, {"m-2", []string{addr2}}}
		got := MapMachines(members, machines)
		placed := len(got.MachineOf) + len(got.UnmatchedMembers)
		for _, c := range got.Conflicts {
			for _, id := range c.Members {
				if _, ok := got.MachineOf[id]; ok {
					t.Fatalf("member %x is both mapped and in conflict %s", id, c)
				}
			}
		}
		if placed > len(members) {
			t.Fatalf("%d members placed out of %d: %+v", placed, len(members), got)
		}
	})
}
