package app

import (
	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
)

// observedMembers joins the member list with the members' own status probes: the leader a
// healthy member names, and each learner's raft index over the leader's. The controller's
// Observe and `quorumguard status` both build their members here.
func observedMembers(members []etcdmember.Member, health []etcdmember.Health) []controlplane.EtcdMember {
	leader, index := raftView(health)
	out := make([]controlplane.EtcdMember, len(members))
	for i, m := range members {
		out[i] = controlplane.EtcdMember{Member: m, Leader: m.ID == leader}
		if m.IsLearner && index[leader] > 0 {
			out[i].Progress = min(1, float64(index[m.ID])/float64(index[leader]))
		}
	}
	return out
}
