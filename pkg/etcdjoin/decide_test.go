package etcdjoin_test

import (
	"strings"
	"testing"

	"github.com/quorumguard/quorumguard/pkg/etcdjoin"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
)

func TestDecide(t *testing.T) {
	const self = "https://10.0.0.4:2380"
	voters := []etcdmember.Member{
		{ID: 0xa, Name: "m0", PeerURLs: []string{"https://10.0.0.1:2380"}, Started: true},
		{ID: 0xb, Name: "m1", PeerURLs: []string{"https://10.0.0.2:2380"}, Started: true},
	}
	learner := etcdmember.Member{ID: 0xc, PeerURLs: []string{self}, IsLearner: true}
	startedLearner := etcdmember.Member{ID: 0xc, Name: "m4", PeerURLs: []string{self}, IsLearner: true, Started: true}
	with := func(extra ...etcdmember.Member) []etcdmember.Member {
		return append(append([]etcdmember.Member{}, voters...), extra...)
	}
	for _, tc := range []struct {
		name   string
		in     etcdjoin.Input
		want   etcdjoin.Kind
		reason string
	}{
		{"not yet added: wait", etcdjoin.Input{Members: voters, PeerURL: self}, etcdjoin.Wait, "waiting for quorumguard to add"},
		{"added as an unstarted learner: join", etcdjoin.Input{Members: with(learner), PeerURL: self}, etcdjoin.Join, "joining"},
		{"peer URL written differently still matches", etcdjoin.Input{Members: with(learner), PeerURL: "HTTPS://10.0.0.4:2380"}, etcdjoin.Join, "joining"},
		{"data of the member listed here: restart", etcdjoin.Input{Members: with(startedLearner), PeerURL: self, DataID: 0xc}, etcdjoin.Restart, "restarting"},
		{"data of a removed member: set aside", etcdjoin.Input{Members: voters, PeerURL: self, DataID: 0xd}, etcdjoin.SetAside, "no longer in the cluster"},
		{"data of another ID than the one listed here: set aside", etcdjoin.Input{Members: with(learner), PeerURL: self, DataID: 0xd}, etcdjoin.SetAside, "now belongs to member c"},
		{"data of a member listed elsewhere: refuse", etcdjoin.Input{Members: with(learner), PeerURL: self, DataID: 0xa}, etcdjoin.Refuse, "10.0.0.1"},
		{"no data but the member here has run: wait for a fresh add", etcdjoin.Input{Members: with(startedLearner), PeerURL: self}, etcdjoin.Wait, "already run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := etcdjoin.Decide(tc.in)
			if got.Kind != tc.want || !strings.Contains(got.Reason, tc.reason) {
				t.Fatalf("Decide = %s %q, want %s with %q", got.Kind, got.Reason, tc.want, tc.reason)
			}
		})
	}
}

func TestInitialClusterListsEveryMember(t *testing.T) {
	ms := []etcdmember.Member{
		{ID: 0xa, Name: "m0", PeerURLs: []string{"https://10.0.0.1:2380", "https://[fd00::1]:2380"}},
		{ID: 0xc, PeerURLs: []string{"https://10.0.0.4:2380"}, IsLearner: true},
		{ID: 0xd, PeerURLs: []string{"https://10.0.0.5:2380"}},
	}
	got := etcdjoin.InitialCluster(ms, 0xc, "node-4")
	want := "m0=https://10.0.0.1:2380,m0=https://[fd00::1]:2380,node-4=https://10.0.0.4:2380,unstarted-d=https://10.0.0.5:2380"
	if got != want {
		t.Fatalf("InitialCluster = %s\nwant            %s", got, want)
	}
}
