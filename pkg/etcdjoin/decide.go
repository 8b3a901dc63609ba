package etcdjoin

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
)

// Input is what one look at the cluster and the disk gives.
type Input struct {
	// Members is the member list as the running members report it.
	Members []etcdmember.Member
	// PeerURL is this node's peer URL.
	PeerURL string
	// DataID is the member ID recorded in the data dir, 0 when the data dir holds no member.
	DataID uint64
}

// Kind is what the node does next.
type Kind int

const (
	// Wait: the peer URL is not in the member list yet (or belongs to a member this node
	// cannot be); look again later.
	Wait Kind = iota
	// Join: the peer URL was added and has never started; start etcd with state existing and
	// an empty data dir.
	Join
	// Restart: the data dir holds the member listed at this peer URL; start etcd at once.
	Restart
	// SetAside: the data dir holds a member the cluster no longer lists, or a different
	// member than the one now listed at this peer URL; keep it under another name and wait.
	SetAside
	// Refuse: the data dir holds a member that is listed under another peer URL; nothing
	// safe can be done without a person.
	Refuse
)

func (k Kind) String() string {
	return [...]string{"wait", "join", "restart", "move aside", "refuse"}[k]
}

// Step is the decision and the reason a person can read.
type Step struct {
	Kind   Kind
	Reason string
	// Member is the listed member at this peer URL for Join and Restart.
	Member etcdmember.Member
}

// Decide says what the node does next. The rules:
//   - a data dir whose member is listed at this peer URL is a restart;
//   - a data dir whose member the list no longer has was removed: it moves aside (etcd would
//     refuse to start from it, or worse, start a member the cluster has forgotten);
//   - a data dir whose member is listed at another peer URL is refused: the address of this
//     node changed and only a person can say which is right;
//   - with no data, a member listed at this peer URL that has never started is the learner
//     quorumguard added: join it. One that has started ran somewhere with data this node does
//     not have; starting it empty would bring back a member that forgot what it
//     acknowledged, so the node waits until that member is removed and added afresh.
func Decide(in Input) Step {
	self, listed := etcdmember.ByPeerURL(in.Members, in.PeerURL)
	if in.DataID != 0 {
		owner, known := byID(in.Members, in.DataID)
		switch {
		case known && listed && owner.ID == self.ID:
			return Step{Kind: Restart, Member: self, Reason: fmt.Sprintf("the data dir holds member %s, listed at %s: restarting it", hexID(in.DataID), in.PeerURL)}
		case known:
			return Step{Kind: Refuse, Reason: fmt.Sprintf("the data dir holds member %s, which the cluster lists at %s, not at %s: refusing to start or touch it", hexID(in.DataID), strings.Join(owner.PeerURLs, ","), in.PeerURL)}
		case listed:
			return Step{Kind: SetAside, Reason: fmt.Sprintf("the data dir holds member %s, but %s now belongs to member %s", hexID(in.DataID), in.PeerURL, hexID(self.ID))}
		default:
			return Step{Kind: SetAside, Reason: fmt.Sprintf("the data dir holds member %s, which is no longer in the cluster (removed)", hexID(in.DataID))}
		}
	}
	if !listed {
		return Step{Kind: Wait, Reason: fmt.Sprintf("waiting for quorumguard to add %s as a learner (%d members listed)", in.PeerURL, len(in.Members))}
	}
	if self.Started {
		return Step{Kind: Wait, Reason: fmt.Sprintf("%s belongs to member %s, which has already run with data this node does not have; waiting until it is removed and this node is added afresh", in.PeerURL, self)}
	}
	return Step{Kind: Join, Member: self, Reason: fmt.Sprintf("%s was added as %s %s: joining", in.PeerURL, role(self), hexID(self.ID))}
}

// InitialCluster is the member list as etcd's --initial-cluster gives it, with name as this
// member's name. etcd compares it with the running cluster by peer URLs, so every member is
// listed, including any other member that has not started yet (named after its ID).
func InitialCluster(members []etcdmember.Member, self uint64, name string) string {
	var parts []string
	for _, m := range members {
		n := m.Name
		switch {
		case m.ID == self:
			n = name
		case n == "":
			n = "unstarted-" + hexID(m.ID)
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, n+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

func role(m etcdmember.Member) string {
	if m.IsLearner {
		return "learner"
	}
	return "voting member"
}

func hexID(id uint64) string { return strconv.FormatUint(id, 16) }

func byID(members []etcdmember.Member, id uint64) (etcdmember.Member, bool) {
	for _, m := range members {
		if m.ID == id {
			return m, true
		}
	}
	return etcdmember.Member{}, false
}
