package etcdmember

// Observed is one member as a controller observes it: its entry in the member list joined
// with its own status probe.
type Observed struct {
	Member
	Leader bool
	// Progress is a learner's raft index over the leader's, 0..1.
	Progress float64
	// Answered says the member's own Status answered and named a leader; Index is its
	// committed raft index and LeaderIndex the leader's, both from this observation (0 when
	// unread). For a learner, Healthy is only "answered" until the controller applies
	// quorum.LearnerHealth, which needs the previous pass.
	Answered           bool
	Index, LeaderIndex uint64
	// Err says why the member's own probe failed; nil when it passed or none was made.
	Err error
	// Snapshot is, for a learner behind the leader, the leader's report of the snapshot it
	// sends it; nil when it was not read.
	Snapshot *SnapshotSend
}

// JoinHealth joins the member list with the members' own status probes: the leader a
// healthy member names, each member's raft index and probe error, and each learner's index
// over the leader's. The controller's observation, the guards of a membership change and
// `quorumguard status` all see the members through it.
func JoinHealth(members []Member, health []Health) []Observed {
	var leader uint64
	index := map[uint64]uint64{}
	answered := map[uint64]bool{}
	errs := map[uint64]error{}
	for _, h := range health {
		if h.Err != nil {
			errs[h.ID] = h.Err
		}
		if h.Status == nil {
			continue
		}
		index[h.ID] = h.Status.Index
		answered[h.ID] = h.Status.Leader != 0
		if h.Healthy && leader == 0 && h.Status.Leader != 0 {
			leader = h.Status.Leader
		}
	}
	out := make([]Observed, len(members))
	for i, m := range members {
		out[i] = Observed{Member: m, Leader: m.ID == leader, Answered: answered[m.ID], Index: index[m.ID], LeaderIndex: index[leader], Err: errs[m.ID]}
		if m.IsLearner && index[leader] > 0 {
			out[i].Progress = min(1, float64(index[m.ID])/float64(index[leader]))
		}
	}
	return out
}
