package quorum

// LearnerReading is one pass's reading of a learner through its own endpoint, with the
// leader's committed index read in the same pass.
type LearnerReading struct {
	// Answered says the learner's Status answered and named a leader.
	Answered bool
	// Index is the learner's committed raft index; LeaderIndex the leader's, 0 when unread.
	Index, LeaderIndex uint64
}

// PromotableFraction is how much of the leader's log a learner must hold before etcd lets it
// be promoted (etcd compares the learner's match index with 90% of the leader's).
const PromotableFraction = 0.9

// LearnerHealth is the one rule for a learner's health; before is the previous pass's
// reading of the same learner, nil when there was none.
//
// A learner never campaigns, so one cut off from its leader keeps answering Status and naming
// the old leader for ever: "answers and names a leader" says nothing about whether it still
// receives the log. So a learner is healthy (may be promoted) only when it answered, holds at
// least PromotableFraction of the leader's index read in the same pass, and shows it is
// connected: it holds everything the leader held in this pass, or what the leader held in
// the previous pass, or its index advanced since then. A learner cut off while the cluster
// takes writes fails all three within a pass. One cut off in a quiet cluster is told apart
// only by a write: etcdmember's Promote passes the fence (a write) and then requires the
// learner to commit the leader's new index.
//
// progressing says the learner is not stuck: it answered and advanced since the previous
// pass, or holds everything the leader holds. A learner that is progressing is never removed
// for LearnerStartTimeout, however long a large catch-up takes; the time it stands still is
// what counts (see Member.DownFor).
func LearnerHealth(now LearnerReading, before *LearnerReading) (healthy, progressing bool) {
	if !now.Answered {
		return false, false
	}
	caughtUp := now.LeaderIndex > 0 && now.Index >= now.LeaderIndex
	advanced := before != nil && before.Answered && now.Index > before.Index
	progressing = caughtUp || advanced
	near := WithinReach(now)
	heldBefore := before != nil && before.LeaderIndex > 0 && now.Index >= before.LeaderIndex
	healthy = near && (caughtUp || advanced || heldBefore)
	return healthy, progressing
}

// WithinReach says the learner answered and holds at least PromotableFraction of the
// leader's index read in the same pass: all that one reading can show. A view made of one
// reading (`quorumguard status`) counts such a learner healthy; the controller also wants it
// shown connected (LearnerHealth), which a learner that receives the log is within a pass.
func WithinReach(r LearnerReading) bool {
	return r.Answered && r.LeaderIndex > 0 && float64(r.Index) >= PromotableFraction*float64(r.LeaderIndex)
}
