package endpoints_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/quorumguard/quorumguard/pkg/endpoints"
)

func TestWant(t *testing.T) {
	m := func(id uint64, voting, leaving, healthy bool) endpoints.Member {
		return endpoints.Member{ID: id, ClientURLs: []string{fmt.Sprintf("https://10.0.0.%d:2379", id)}, Voting: voting, Leaving: leaving, Healthy: healthy}
	}
	for _, tc := range []struct {
		name    string
		members []endpoints.Member
		want    string // host numbers
	}{
		{"steady", []endpoints.Member{m(1, true, false, true), m(2, true, false, true), m(3, true, false, true)}, "1,2,3"},
		{"a leaving member stays until its replacement votes", []endpoints.Member{m(1, true, true, true), m(2, true, false, true), m(3, true, false, true), m(4, false, false, true)}, "1,2,3"},
		{"once the replacement votes the leaving member goes", []endpoints.Member{m(1, true, true, true), m(2, true, false, true), m(3, true, false, true), m(4, true, false, true)}, "2,3,4"},
		{"two leaving, one replacement voting: one leaving member stays", []endpoints.Member{m(1, true, true, true), m(2, true, true, true), m(3, true, false, true), m(4, true, false, true)}, "2,3,4"},
		{"a leaving member that does not answer goes at once", []endpoints.Member{m(1, true, true, false), m(2, true, false, true), m(3, true, false, true)}, "2,3"},
		{"an unhealthy staying member stays listed", []endpoints.Member{m(1, true, false, false), m(2, true, false, true), m(3, true, false, true)}, "1,2,3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hosts []string
			for _, u := range endpoints.Want(tc.members, 3) {
				hosts = append(hosts, strings.TrimSuffix(strings.TrimPrefix(u, "https://10.0.0."), ":2379"))
			}
			if got := strings.Join(hosts, ","); got != tc.want {
				t.Fatalf("Want = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestHolds(t *testing.T) {
	a := endpoints.Member{ID: 0xa, ClientURLs: []string{"https://10.0.0.1:2379"}, Voting: true, Leaving: true}
	b := endpoints.Member{ID: 0xb, ClientURLs: []string{"https://10.0.0.2:2379"}, Voting: true}
	ms := []endpoints.Member{a, b}
	without := endpoints.Published{Endpoints: []string{"https://10.0.0.2:2379"}, Generation: 7}
	with := endpoints.Published{Endpoints: []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"}, Generation: 6}
	for _, tc := range []struct {
		name      string
		pub       endpoints.Published
		acks      map[string]int64
		consumers []string
		held      string // what the hold on a says; "" for none
	}{
		{"no consumers: nothing waits", with, nil, nil, ""},
		{"every consumer acknowledged a list without it: it may go", without, map[string]int64{"kas": 7, "other": 8}, []string{"kas", "other"}, ""},
		{"a consumer one generation behind holds it", without, map[string]int64{"kas": 6, "other": 7}, []string{"kas", "other"}, "kas has acknowledged generation 6"},
		{"a consumer that never acknowledged holds it", without, map[string]int64{"kas": 7}, []string{"kas", "other"}, "other has acknowledged no generation"},
		{"still published: held whatever the acknowledgements", with, map[string]int64{"kas": 6}, []string{"kas"}, "still lists member a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.pub.Acks = tc.acks
			got := endpoints.Holds(ms, tc.pub, tc.consumers)
			if tc.held == "" && got[0xa] != "" || tc.held != "" && !strings.Contains(got[0xa], tc.held) {
				t.Fatalf("hold on a = %q, want %q", got[0xa], tc.held)
			}
		})
	}
}

func TestParseConsumers(t *testing.T) {
	if got, err := endpoints.ParseConsumers(" kube-apiserver, etcd-backup.v2 ,"); err != nil || strings.Join(got, "|") != "kube-apiserver|etcd-backup.v2" {
		t.Fatalf("ParseConsumers = %v, %v", got, err)
	}
	for _, bad := range []string{"Kube", "a/b", "-x", strings.Repeat("x", 60)} {
		if _, err := endpoints.ParseConsumers(bad); err == nil {
			t.Errorf("ParseConsumers(%q) accepted it", bad)
		}
	}
}
