package etcdmember

import (
	"fmt"
	"strings"
)

// Step is what to do next while an old member is replaced by a learner.
type Step int

const (
	// StepNone: the old member is gone and the learner votes; the replacement is done.
	StepNone Step = iota
	// StepWait: no step is safe or useful now; the reason says what is awaited.
	StepWait
	// StepRemoveOld: remove the old member.
	StepRemoveOld
	// StepPromoteLearner: promote the learner once etcd finds it in sync (see WaitPromote).
	StepPromoteLearner
)

func (s Step) String() string {
	switch s {
	case StepNone:
		return "none"
	case StepWait:
		return "wait"
	case StepRemoveOld:
		return "remove old member"
	case StepPromoteLearner:
		return "promote learner"
	default:
		return fmt.Sprintf("step(%d)", int(s))
	}
}

// DeadMemberOrder decides which comes first when member old is replaced by learner: removing
// old or promoting learner. Call it again after each step.
//
// Rule: take the step CheckChange allows that leaves the most fault tolerance; among equals
// the one with the smaller quorum, since fewer voters must then answer; and wait rather than
// take a step that lowers tolerance below what it is now.
//
// When old is dead (the usual case: its Machine is being deleted and is gone) removing first
// wins. Removing a dead voter and promoting a healthy learner always leave the same
// tolerance, but the promotion first makes a larger quorum that includes the newest member:
//
//	3 voters, 1 dead, now:       3 voting, 2 healthy, quorum 2, tolerance 0
//	  remove first:              2 voting, 2 healthy, quorum 2, tolerance 0 (A and B must answer)
//	  promote first:             4 voting, 3 healthy, quorum 3, tolerance 0 (A, B and the learner must)
//	  then the other step:       3 voting, 3 healthy, quorum 2, tolerance 1
//	5 voters, 1 dead, now:       5 voting, 4 healthy, quorum 3, tolerance 1
//	  remove first:              4 voting, 4 healthy, quorum 3, tolerance 1
//	  promote first:             6 voting, 5 healthy, quorum 4, tolerance 1
//
// Removing first can happen at once, while the learner still catches up, and a learner that
// then fails costs nothing. Promoting first must wait for the learner to sync, and a
// promoted learner that then fails loses quorum at 3 voters. The tolerance-0 window is the
// same either way, so removing first keeps the most tolerance for the shortest time.
//
// When old is healthy, promoting first wins: 3 healthy plus the learner promoted is 4
// voting, quorum 3, tolerance 1, where removing first gives 2 voting, quorum 2, tolerance 0.
// If the learner cannot be promoted yet, the answer is to wait.
func DeadMemberOrder(members []Member, old, learner uint64) (Step, string) {
	o, hasOld := find(members, old)
	l, hasLearner := find(members, learner)
	hasLearner = hasLearner && l.IsLearner
	now := Count(members)

	type option struct {
		step  Step
		after Counts
		err   error
	}
	var opts []option
	if hasOld {
		c := Change{Kind: ChangeRemove, MemberID: old}
		opts = append(opts, option{StepRemoveOld, Count(Apply(members, c)), CheckChange(members, c)})
	}
	if hasLearner {
		c := Change{Kind: ChangePromote, MemberID: learner}
		opts = append(opts, option{StepPromoteLearner, Count(Apply(members, c)), CheckChange(members, c)})
	}
	if len(opts) == 0 {
		return StepNone, "the old member is gone and the learner votes"
	}

	var best *option
	var refused []string
	for i := range opts {
		op := &opts[i]
		if op.err != nil {
			refused = append(refused, fmt.Sprintf("%s refused: %v", op.step, op.err))
			continue
		}
		if best == nil || op.after.Tolerance > best.after.Tolerance ||
			(op.after.Tolerance == best.after.Tolerance && op.after.Quorum < best.after.Quorum) {
			best = op
		}
	}
	if best == nil {
		return StepWait, strings.Join(refused, "; ")
	}
	if best.after.Tolerance < now.Tolerance {
		why := fmt.Sprintf("%s would lower tolerance from %d to %d", best.step, now.Tolerance, best.after.Tolerance)
		if len(refused) > 0 {
			why += "; " + strings.Join(refused, "; ")
		}
		return StepWait, why
	}
	state := "healthy"
	if !o.Healthy {
		state = "unhealthy"
	}
	switch {
	case !hasOld:
		return best.step, fmt.Sprintf("the old member is gone; promoting gives %s", best.after)
	case !hasLearner:
		return best.step, fmt.Sprintf("no learner to promote; removing %s member %s gives %s", state, o, best.after)
	case len(opts) == 2 && opts[0].err == nil && opts[1].err == nil:
		other := opts[0]
		if best.step == other.step {
			other = opts[1]
		}
		why := fmt.Sprintf("old member %s is %s: %s first gives %s, %s first would give %s",
			o, state, best.step, best.after, other.step, other.after)
		if best.after.Tolerance == other.after.Tolerance {
			why += "; same tolerance, fewer voters must answer"
		}
		return best.step, why
	default:
		return best.step, fmt.Sprintf("old member %s is %s: %s gives %s; %s", o, state, best.step, best.after, strings.Join(refused, "; "))
	}
}
