package etcdmember

import (
	"fmt"
	"strconv"

	"github.com/quorumguard/quorumguard/pkg/quorum"
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
	// Healthy says the member answered a probe through its own endpoint (see Health) and
	// has no active alarm.
	Healthy bool
	// Alarms are the etcd alarms active for the member (quorum.AlarmNoSpace,
	// quorum.AlarmCorrupt), from the cluster's alarm list read with the member list.
	Alarms []string
	// AlarmsUnread says why that alarm list could not be read; "" when it was.
	AlarmsUnread string
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

// ChangeKind is one kind of membership change; the kinds are pkg/quorum's, whose rules
// CheckChange applies.
type ChangeKind = quorum.ChangeKind

// The membership changes.
const (
	ChangeAddLearner = quorum.ChangeAddLearner
	ChangePromote    = quorum.ChangePromote
	ChangeRemove     = quorum.ChangeRemove
)

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

// Count counts voting and healthy voting members with pkg/quorum's arithmetic. Learners
// never vote and never count.
func Count(members []Member) Counts {
	var c quorum.Census
	for _, m := range members {
		switch {
		case m.IsLearner:
			c.Learners++
		case m.Healthy:
			c.Voters++
			c.Healthy++
		default:
			c.Voters++
		}
	}
	return Counts{Voters: c.Voters, Healthy: c.Healthy, Learners: c.Learners, Quorum: c.Quorum(), Tolerance: c.Tolerance()}
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

// CheckChange says whether c may be made now, by quorum.Check, the one home of the rules
// (see it for the invariant and the worked counts), and quorum.AlarmHold. Promoting a member
// that is not listed is a *MemberNotFoundError. Refusals are *UnsafeChangeError with the
// counts before and after.
func CheckChange(members []Member, c Change) error {
	target, found := find(members, c.MemberID)
	if c.Kind == ChangePromote && !found {
		return &MemberNotFoundError{ID: c.MemberID}
	}
	t := quorum.Target{Listed: found && c.MemberID != 0, Learner: target.IsLearner, Healthy: target.Healthy}
	before := Count(members)
	if hold := alarmHold(members); hold != "" {
		return &UnsafeChangeError{Change: c, Before: before, After: before, Reason: hold}
	}
	census := quorum.Census{Voters: before.Voters, Healthy: before.Healthy, Learners: before.Learners}
	if ok, why := quorum.Check(census, c.Kind, t); !ok {
		return &UnsafeChangeError{Change: c, Before: before, After: Count(Apply(members, c)), Reason: why}
	}
	return nil
}

// alarmHold is quorum.AlarmHold over the members' alarms.
func alarmHold(members []Member) string {
	var alarms []quorum.MemberAlarm
	unread := ""
	for _, m := range members {
		for _, a := range m.Alarms {
			alarms = append(alarms, quorum.MemberAlarm{ID: m.ID, Name: m.Name, Alarm: a})
		}
		if m.AlarmsUnread != "" {
			unread = m.AlarmsUnread
		}
	}
	return quorum.AlarmHold(alarms, unread)
}

func find(members []Member, id uint64) (Member, bool) {
	for _, m := range members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}
