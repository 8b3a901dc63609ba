package endpoints_test

import (
	"strings"
	"testing"

	"github.com/quorumguard/quorumguard/pkg/endpoints"
)

func TestWantLeavesOutLeavingAndNonVotingMembers(t *testing.T) {
	got := endpoints.Want([]endpoints.Member{
		{ID: 1, ClientURLs: []string{"https://10.0.0.3:2379"}, Voting: true},
		{ID: 2, ClientURLs: []string{"https://10.0.0.1:2379"}, Voting: true, Leaving: true},
		{ID: 3, ClientURLs: []string{"https://10.0.0.2:2379"}, Voting: true},
		{ID: 4, ClientURLs: []string{"https://10.0.0.4:2379"}},
	})
	if strings.Join(got, ",") != "https://10.0.0.2:2379,https://10.0.0.3:2379" {
		t.Fatalf("Want = %v", got)
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
