package clusteroperator

import (
	"errors"
	"fmt"
	"testing"

	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// A pass that lost quorum saw the members, so the status reports NoQuorum from them; a pass
// that reached no member saw nothing.
func TestEtcdObserved(t *testing.T) {
	members := []quorum.Member{{ID: 1}, {ID: 2}, {ID: 3}}
	noQuorum := &etcdmember.NoQuorumError{Counts: etcdmember.Counts{Voters: 3, Quorum: 2}, Answering: 1, Err: errors.New("timed out")}
	unreachable := &etcdmember.UnreachableError{Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name string
		o    controlplane.Observation
		want bool
	}{
		{"a planned pass", controlplane.Observation{Members: members, Decision: quorum.Decision{Conditions: map[string]quorum.Condition{}}}, true},
		{"a pass that failed acting still observed", controlplane.Observation{Members: members, Decision: quorum.Decision{Conditions: map[string]quorum.Condition{}}, Err: unreachable}, true},
		{"etcd unreachable", controlplane.Observation{Err: unreachable}, false},
		{"quorum lost, members seen", controlplane.Observation{Members: members, Err: fmt.Errorf("observe: %w", noQuorum)}, true},
		{"quorum lost, no members", controlplane.Observation{Err: noQuorum}, false},
	} {
		if got := etcdObserved(tc.o); got != tc.want {
			t.Errorf("%s: etcdObserved = %v, want %v", tc.name, got, tc.want)
		}
	}
}
