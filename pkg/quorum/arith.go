package quorum

import "fmt"

// This file is the one home of the quorum arithmetic. The planner, the etcd client's guard
// (pkg/etcdmember.CheckChange), the status reports, the CLI and the test monitors all call it.

// QuorumOf is the number of voting members that must agree: n/2+1.
func QuorumOf(voters int) int { return voters/2 + 1 }

// Tolerance is how many of voters may fail, given how many are healthy now, before quorum is
// lost; negative when quorum is already lost.
func Tolerance(voters, healthy int) int { return healthy - QuorumOf(voters) }

// Census is what the quorum rules count. Learners never vote and never count.
type Census struct {
	Voters, Healthy, Learners int
}

// Quorum is QuorumOf(Voters).
func (c Census) Quorum() int { return QuorumOf(c.Voters) }

// CensusOf counts members: learners apart, voting members and the healthy among them. A
// member with an active etcd alarm is not healthy.
func CensusOf(members []Member) Census {
	var c Census
	for _, m := range members {
		switch {
		case m.Learner:
			c.Learners++
		case m.Healthy && len(m.Alarms) == 0:
			c.Voters++
			c.Healthy++
		default:
			c.Voters++
		}
	}
	return c
}

// Tolerance is Tolerance(Voters, Healthy).
func (c Census) Tolerance() int { return Tolerance(c.Voters, c.Healthy) }

func (c Census) String() string {
	return fmt.Sprintf("%d voting (%d healthy), quorum %d, tolerance %d", c.Voters, c.Healthy, c.Quorum(), c.Tolerance())
}

// ChangeKind is one kind of membership change.
type ChangeKind int

// The membership changes the rules know.
const (
	ChangeAddLearner ChangeKind = iota + 1
	ChangePromote
	ChangeRemove
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeAddLearner:
		return "add learner"
	case ChangePromote:
		return "promote"
	case ChangeRemove:
		return "remove"
	default:
		return fmt.Sprintf("change(%d)", int(k))
	}
}

// Target is what the rules need to know of the member a change is about.
type Target struct {
	// Listed says the member is in the member list; a removal of a member that is not
	// listed changes nothing.
	Listed, Learner, Healthy bool
}

// After is the census once the change is made. A promoted learner keeps its health; an added
// learner counts as a learner.
func After(c Census, k ChangeKind, t Target) Census {
	switch {
	case k == ChangeAddLearner:
		c.Learners++
	case !t.Listed:
	case k == ChangePromote && t.Learner:
		c.Learners--
		c.Voters++
		if t.Healthy {
			c.Healthy++
		}
	case k == ChangeRemove && t.Learner:
		c.Learners--
	case k == ChangeRemove:
		c.Voters--
		if t.Healthy {
			c.Healthy--
		}
	}
	return c
}

// Check says whether a change may be made now, and why not. It keeps this invariant:
//
//	after every change, healthy voting members >= quorum of the voting members.
//
// Quorum is n/2+1 of n voting members and tolerance is healthy minus quorum. With everyone
// healthy:
//
//	voters  1  2  3  4  5  6  7
//	quorum  1  2  2  3  3  4  4
//	tol.    0  0  1  1  2  2  3
//
// so a fourth voter buys no tolerance over three, only a larger quorum. Worked through:
//   - remove a healthy member of 3 healthy: 2 voters, quorum 2, 2 healthy: allowed, tolerance 0.
//   - remove a healthy member of 3 with one dead: 2 voters, quorum 2, 1 healthy: refused.
//   - remove the dead member of 3 with one dead: 2 voters, quorum 2, 2 healthy: allowed.
//   - promote a healthy learner into 3 healthy: 4 voters, quorum 3, 4 healthy: allowed.
//   - promote a healthy learner into 2 healthy + 1 dead: 4 voters, quorum 3, 3 healthy: allowed.
//   - promote an unreachable learner into 2 healthy + 1 dead: 4 voters, 2 healthy: refused.
//
// Besides, a change is refused when:
//   - the voting members have no quorum now: a change is itself committed by the current
//     configuration, so nothing would take effect (and removing a dead member of 4 with 2
//     dead would otherwise look safe: 3 voters, quorum 2, 2 healthy);
//   - it adds a learner while another learner exists: one membership change at a time;
//   - it promotes a learner that is not healthy: it would raise the quorum with a voter that
//     cannot vote;
//   - it removes the last voting member.
//
// Promoting a voter, or removing a member that is not listed, changes nothing and is allowed
// (ok with an empty reason). A refusal returns false and a sentence a person can read.
func Check(before Census, k ChangeKind, t Target) (ok bool, why string) {
	after := After(before, k, t)
	switch k {
	case ChangeAddLearner:
		if before.Learners > 0 {
			return false, "a learner is not promoted yet; one membership change at a time"
		}
	case ChangePromote:
		if !t.Listed || !t.Learner {
			return true, ""
		}
		if !t.Healthy {
			return false, "the learner is not healthy"
		}
	case ChangeRemove:
		if !t.Listed {
			return true, ""
		}
		if !t.Learner && after.Voters < 1 {
			return false, "it is the last voting member"
		}
	default:
		return false, "unknown kind of change"
	}
	if before.Healthy < before.Quorum() {
		return false, fmt.Sprintf("quorum is lost now: %d healthy of %d voting, quorum %d", before.Healthy, before.Voters, before.Quorum())
	}
	if after.Healthy < after.Quorum() {
		return false, fmt.Sprintf("%d healthy of %d voting members would remain, below the quorum of %d", after.Healthy, after.Voters, after.Quorum())
	}
	return true, fmt.Sprintf("%d healthy of %d voting members after it, quorum %d", after.Healthy, after.Voters, after.Quorum())
}
