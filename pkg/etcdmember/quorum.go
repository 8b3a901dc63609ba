package etcdmember

import (
	"fmt"
	"strconv"
)

// Member is one etcd member: what the member list says, plus whether a probe of its own
// endpoint succeeded.
type Member struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
	// Started is false for a member that was added but has never run: etcd lists it with
	// no name and no client URLs.
	Started bool
	// Healthy says the member answered a probe through its own endpoint (see Health).
	Healthy bool
}

func (m Member) String() string {
	id := strconv.FormatUint(m.ID, 16)
	switch {
	case m.Name != "":
		return m.Name + " (" + id + ")"
	case len(m.PeerURLs) > 0:
		return "unstarted " + id + " at " + m.PeerURLs[0]
	default:
		return id
	}
}

// ChangeKind is one kind of membership change.
type ChangeKind int

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
		return "change(" + strconv.Itoa(int(k)) + ")"
	}
}

// Change is one proposed membership change. MemberID is the member promoted or removed; for
// an add it is the new learner's ID when known, else 0.
type Change struct {
	Kind     ChangeKind
	MemberID uint64
}

func (c Change) String() string {
	if c.MemberID == 0 {
		return c.Kind.String()
	}
	return c.Kind.String() + " " + strconv.FormatUint(c.MemberID, 16)
}

// Counts are the numbers the quorum rules use.
type Counts struct {
	Voters, Healthy, Learners int
	// Quorum is Voters/2+1; Tolerance is Healthy-Quorum, negative once quorum is lost.
	Quorum, Tolerance int
}

func (c Counts) String() string {
	return fmt.Sprintf("%d voting (%d healthy), quorum %d, tolerance %d", c.Voters, c.Healthy, c.Quorum, c.Tolerance)
}

// Quorum is the number of voting members that must agree for etcd to commit anything.
func Quorum(voters int) int { return voters/2 + 1 }

// Count counts voting and healthy voting members. Learners never vote and never count.
func Count(members []Member) Counts {
	var c Counts
	for _, m := range members {
		if m.IsLearner {
			c.Learners++
			continue
		}
		c.Voters++
		if m.Healthy {
			c.Healthy++
		}
	}
	c.Quorum = Quorum(c.Voters)
	c.Tolerance = c.Healthy - c.Quorum
	return c
}

// FaultTolerance is how many more healthy voting members may fail before etcd loses quorum;
// negative means quorum is already lost by that many.
func FaultTolerance(members []Member) int { return Count(members).Tolerance }

// FaultToleranceAfter is FaultTolerance once c is made, as Apply makes it.
func FaultToleranceAfter(members []Member, c Change) int {
	return FaultTolerance(Apply(members, c))
}

// Apply returns a copy of members with c made. A promoted learner keeps its health; an added
// learner has not started and is not healthy. Promoting a voter or removing a member that
// is not there changes nothing.
func Apply(members []Member, c Change) []Member {
	out := make([]Member, 0, len(members)+1)
	for _, m := range members {
		if m.ID == c.MemberID && c.MemberID != 0 {
			switch c.Kind {
			case ChangeRemove:
				continue
			case ChangePromote:
				m.IsLearner = false
			}
		}
		out = append(out, m)
	}
	if c.Kind == ChangeAddLearner {
		out = append(out, Member{ID: c.MemberID, IsLearner: true})
	}
	return out
}

// CheckChange says whether c may be made now. It keeps this invariant:
//
//	after every change, healthy voting members >= quorum of the voting members.
//
// Quorum is n/2+1 of n voting members and tolerance is healthy minus quorum; learners count
// for nothing. With everyone healthy:
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
//
// Besides, a change is refused when:
//   - the voting members have no quorum now: a change is itself committed by the current
//     configuration, so nothing would take effect (and removing a dead member of 4 with 2
//     dead would otherwise look safe: 3 voters, quorum 2, 2 healthy);
//   - it adds a learner while another learner exists: one membership change at a time, so
//     a learner must be promoted or removed before the next is added. Promoting or removing
//     while a learner exists is allowed, since that is how a replacement completes;
//   - it promotes a learner that is not healthy: it would raise the quorum with a voter that
//     cannot vote.
//
// Promoting a voter or removing a member that is not listed changes nothing and is allowed.
// Promoting a member that is not listed is a *MemberNotFoundError. Refusals are
// *UnsafeChangeError with the counts before and after.
func CheckChange(members []Member, c Change) error {
	before, after := Count(members), Count(Apply(members, c))
	refuse := func(format string, args ...any) error {
		return &UnsafeChangeError{Change: c, Before: before, After: after, Reason: fmt.Sprintf(format, args...)}
	}
	target, found := find(members, c.MemberID)
	switch c.Kind {
	case ChangeAddLearner:
		for _, m := range members {
			if m.IsLearner {
				return refuse("learner %s is not promoted yet; one membership change at a time", m)
			}
		}
	case ChangePromote:
		if !found {
			return &MemberNotFoundError{ID: c.MemberID}
		}
		if !target.IsLearner {
			return nil
		}
		if !target.Healthy {
			return refuse("learner %s is not healthy", target)
		}
	case ChangeRemove:
		if !found {
			return nil
		}
	default:
		return refuse("unknown kind of change")
	}
	if before.Healthy < before.Quorum {
		return refuse("quorum is lost now: %d healthy of %d voting, quorum %d", before.Healthy, before.Voters, before.Quorum)
	}
	if after.Healthy < after.Quorum {
		return refuse("healthy voting members would be %d, below quorum %d of %d", after.Healthy, after.Quorum, after.Voters)
	}
	return nil
}

func find(members []Member, id uint64) (Member, bool) {
	for _, m := range members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}
