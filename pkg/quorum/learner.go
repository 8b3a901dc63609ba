package quorum

import (
	"fmt"
	"time"
)

// LearnerReading is one pass's reading of a learner through its own endpoint, with the
// leader's committed index read in the same pass.
type LearnerReading struct {
	// Answered says the learner's Status answered and named a leader.
	Answered bool
	// Index is the learner's committed raft index; LeaderIndex the leader's, 0 when unread.
	Index, LeaderIndex uint64
	// Snapshot is what the leader reported of the database snapshot it sends the learner;
	// zero when it was not read.
	Snapshot SnapshotReading
}

// SnapshotReading is a leader's report of the database snapshots it sends one learner, and
// what the controller made of it across passes (ReadSnapshot). etcd counts a snapshot's bytes
// only once it is sent whole, so a transfer shows as under way or not; how long it may take
// is bounded by its size (SnapshotAllowance).
type SnapshotReading struct {
	// InFlight says a send to the learner is under way; Failures and Successes count the
	// sends to it that failed and that completed since the leader started.
	InFlight            bool
	Failures, Successes uint64
	// Bytes is the size of the leader's database, what a snapshot carries.
	Bytes int64
	// Delivered says the send seen under way completed and the learner has not answered
	// since: it is applying the snapshot and publishing itself, which etcd does before the
	// learner serves anything.
	Delivered bool
	// Since is when the send was first seen under way, and For how long ago that was; both
	// zero while none is under way or delivered.
	Since time.Time
	For   time.Duration
}

// ReadSnapshot completes a pass's report of the snapshot sent to a learner (InFlight,
// Failures, Successes and Bytes as the leader gave them) with the previous pass's reading
// of the same learner (before, nil when none) and whether the learner answered in this pass:
// when the send was first seen, and whether one seen under way has been delivered and is
// being applied. A leader that changed between the passes reports counters of its own, which
// are not compared: a send is then seen afresh.
func ReadSnapshot(report SnapshotReading, answered bool, before *LearnerReading, at time.Time) SnapshotReading {
	out := SnapshotReading{InFlight: report.InFlight, Failures: report.Failures, Successes: report.Successes, Bytes: report.Bytes}
	var prev SnapshotReading
	if before != nil {
		prev = before.Snapshot
	}
	ongoing := (prev.InFlight || prev.Delivered) && !prev.Since.IsZero() && report.Failures == prev.Failures
	switch {
	case report.InFlight && ongoing:
		out.Since = prev.Since
	case report.InFlight:
		out.Since = at
	case !answered && ongoing && (prev.Delivered && report.Successes == prev.Successes || prev.InFlight && report.Successes == prev.Successes+1):
		out.Delivered, out.Since = true, prev.Since
	}
	if !out.Since.IsZero() {
		out.For = at.Sub(out.Since)
	}
	return out
}

// MinSnapshotRate is the slowest transfer counted as a snapshot still arriving: a send under
// way longer than SnapshotAllowance of its size no longer counts as progress.
const MinSnapshotRate = 1 << 20 // bytes per second

// SnapshotAllowance is how long a snapshot of the given size may stay under way and still
// count as progress: a minute, plus the size at MinSnapshotRate.
func SnapshotAllowance(bytes int64) time.Duration {
	return time.Minute + time.Duration(max(bytes, 0)/MinSnapshotRate)*time.Second
}

// receiving says the learner is taking a snapshot: the leader sends it one, or one it sent
// has just been delivered and is being applied, no send failed since the previous reading,
// and it has not outlasted its allowance counted from when the send was first seen. A
// learner does not answer, nor show as started, until it has applied the snapshot it joined
// with and published itself, so the leader's report is all there is to see meanwhile. A send
// to a learner that died fails (the learner's end times out a stalled read within seconds, a
// dead host resets or times out the connection), which shows in Failures even when the next
// send is under way; a send to a frozen learner blocks without failing, and one that died
// while applying answers nothing: the allowance bounds both.
func (r LearnerReading) receiving(before *LearnerReading) bool {
	s := r.Snapshot
	failed := before != nil && s.Failures > before.Snapshot.Failures
	return (s.InFlight || s.Delivered) && !failed && s.For <= SnapshotAllowance(s.Bytes)
}

// CaughtUp says the learner answered holding at least the leader's index read in the same
// pass.
func (r LearnerReading) CaughtUp() bool {
	return r.Answered && r.LeaderIndex > 0 && r.Index >= r.LeaderIndex
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
// pass, holds everything the leader holds, or is receiving a snapshot from the leader (it
// neither answers nor advances until the snapshot is in). A learner that is progressing is never
// removed for LearnerStartTimeout, however long a large catch-up takes; the time it stands
// still is what counts (see Member.DownFor).
func LearnerHealth(now LearnerReading, before *LearnerReading) (healthy, progressing bool) {
	if !now.Answered {
		return false, now.receiving(before)
	}
	caughtUp := now.CaughtUp()
	advanced := before != nil && before.Answered && now.Index > before.Index
	progressing = caughtUp || advanced || now.receiving(before)
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

// learnerProgress words a learner's progress for its Machine's condition: how much of the
// leader's index it holds and, as measured across passes, the snapshot it receives or how
// fast it closes the gap and the time left at that rate.
func learnerProgress(m Member) string {
	out := fmt.Sprintf("learner %x at %.0f%% of the leader's index", m.ID, 100*m.Progress)
	c := m.CatchUp
	switch {
	case c.Snapshot.Delivered:
		out += fmt.Sprintf(", applying the %s snapshot the leader sent it (%s after the send began)",
			byteSize(c.Snapshot.Bytes), c.Snapshot.For.Round(time.Second))
	case c.Snapshot.InFlight:
		out += fmt.Sprintf(", receiving a %s snapshot from the leader for %s (counted as progress for up to %s; etcd reports no bytes until it is in)",
			byteSize(c.Snapshot.Bytes), c.Snapshot.For.Round(time.Second), SnapshotAllowance(c.Snapshot.Bytes).Round(time.Second))
	case c.Left > 0:
		out += fmt.Sprintf(", closing the gap at %.0f entries/s, about %s left", c.Rate, c.Left.Round(time.Second))
	}
	return out
}

// byteSize is n in the largest binary unit that keeps it at least 1.
func byteSize(n int64) string {
	v, unit := float64(n), "B"
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	if unit == "B" {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
