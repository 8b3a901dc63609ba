package quorum

import (
	"fmt"
	"slices"
	"strings"
)

// The etcd alarms (etcdserverpb.AlarmType names).
const (
	// AlarmNoSpace: a member's backend reached its quota. While any member has it, etcd
	// refuses every write cluster-wide, the controller's fence included.
	AlarmNoSpace = "NOSPACE"
	// AlarmCorrupt: etcd's corruption check found members whose data disagree.
	AlarmCorrupt = "CORRUPT"
)

// MemberAlarm is one active alarm of one member.
type MemberAlarm struct {
	ID    uint64
	Name  string
	Alarm string
}

func (a MemberAlarm) String() string {
	if a.Name == "" {
		return fmt.Sprintf("member %x has etcd alarm %s", a.ID, a.Alarm)
	}
	return fmt.Sprintf("member %x (%s) has etcd alarm %s", a.ID, a.Name, a.Alarm)
}

// AlarmsOf lists the members' active alarms, by member ID then alarm.
func AlarmsOf(members []Member) []MemberAlarm {
	var out []MemberAlarm
	for _, m := range members {
		for _, a := range m.Alarms {
			out = append(out, MemberAlarm{ID: m.ID, Name: m.Name, Alarm: a})
		}
	}
	slices.SortFunc(out, func(a, b MemberAlarm) int {
		if a.ID != b.ID {
			return cmpUint(a.ID, b.ID)
		}
		return strings.Compare(a.Alarm, b.Alarm)
	})
	return out
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// AlarmHold says why no membership change may be made now, "" when alarms allow one. It is
// the one rule, which the planner and the etcd client's guard (pkg/etcdmember.CheckChange)
// both apply:
//   - a CORRUPT alarm on any member holds every change (add learner, promote, remove, move
//     leadership): the members' data disagree, so a learner could be seeded, or a quorum
//     formed, from the wrong copy; a person must find the corrupt member first;
//   - alarms that could not be read (unread, non-empty) hold every change too: a change is
//     never made on the assumption that no CORRUPT alarm is active.
//
// NOSPACE holds nothing here: its member counts as unhealthy, which the quorum arithmetic
// already weighs, and etcd refuses the fence write every change starts with while it lasts.
// Releasing the hook of a Machine no member points at changes no membership and is not held.
func AlarmHold(alarms []MemberAlarm, unread string) string {
	var corrupt []string
	for _, a := range alarms {
		if a.Alarm == AlarmCorrupt {
			corrupt = append(corrupt, a.String())
		}
	}
	switch {
	case len(corrupt) > 0:
		return strings.Join(corrupt, "; ") + ": no membership change is made while it is active. " + CorruptAdvice
	case unread != "":
		return "etcd's alarm list could not be read (" + unread + "): no membership change is made until it can, since a CORRUPT alarm may be active"
	}
	return ""
}

// CorruptAdvice is what a person does about a CORRUPT alarm.
const CorruptAdvice = "Find the member whose data is wrong (etcd's corruption check logs it; compare `etcdctl endpoint hashkv` across members), " +
	"replace it or restore the cluster from a snapshot, and only once that is resolved clear the alarm with `etcdctl alarm disarm`"
