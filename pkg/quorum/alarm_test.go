package quorum

import (
	"strings"
	"testing"
)

// changing are states in which Decide makes each kind of membership change, and one in
// which it releases a hook.
func changing() []struct {
	name  string
	state func() State
	want  Kind
} {
	replaced := func(leads bool) func() State {
		return func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			s.Members = append(s.Members, voter(4, "m-3", "10.0.0.4", true))
			s.Members[0].Leader = leads
			return s
		}
	}
	return []struct {
		name  string
		state func() State
		want  Kind
	}{
		{"a learner for a new Machine", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			return s
		}, AddLearner},
		{"a started learner's promotion", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			s.Members = append(s.Members, learner(4, "10.0.0.4", true))
			return s
		}, Promote},
		{"the replaced member's removal", replaced(false), RemoveMember},
		{"the leadership's move off the replaced member", replaced(true), MoveLeader},
		{"the dead member's removal", func() State {
			s := steady()
			s.Machines[0].Deleting = true
			s.Members[0].Healthy = false
			return s
		}, RemoveMember},
		{"a hopeless learner's removal", func() State {
			s := steady()
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", true))
			s.Members = append(s.Members, learner(4, "10.0.0.4", true))
			return s
		}, RemoveMember},
	}
}

func TestDecideCorruptAlarmHoldsEveryMembershipChange(t *testing.T) {
	for _, c := range changing() {
		t.Run(c.name, func(t *testing.T) {
			if d := Decide(c.state()); d.Action.Kind != c.want {
				t.Fatalf("without an alarm: got %s, want %s", d.Action, c.want)
			}
			s := c.state()
			s.Members[1].Alarms = []string{AlarmCorrupt}
			d := Decide(s)
			if d.Action.Kind != None || !d.InFlight {
				t.Fatalf("got %s (in flight %v), want nothing done and a look again soon", d.Action, d.InFlight)
			}
			for _, want := range []string{"member 2 (m-1) has etcd alarm CORRUPT", "etcdctl alarm disarm"} {
				if !strings.Contains(d.Action.Reason, want) {
					t.Errorf("reason %q does not say %q", d.Action.Reason, want)
				}
			}
			for _, m := range s.Machines {
				if got := d.Conditions[m.Name]; got.Reason != ReasonBlocked || !strings.Contains(got.Message, "CORRUPT") {
					t.Errorf("Machine %s: got %+v, want Blocked naming the alarm", m.Name, got)
				}
			}
			if got := d.Conditions["m-1"]; got.Status != "True" || !strings.Contains(got.Message, "voting member 2, unhealthy: etcd alarm CORRUPT is active") {
				t.Errorf("the alarmed member's Machine: got %+v", got)
			}
		})
	}
}

func TestDecideUnreadAlarmsHoldEveryMembershipChange(t *testing.T) {
	for _, c := range changing() {
		t.Run(c.name, func(t *testing.T) {
			s := c.state()
			s.AlarmsUnread = "context deadline exceeded"
			d := Decide(s)
			if d.Action.Kind != None || !strings.Contains(d.Action.Reason, "alarm list could not be read (context deadline exceeded)") {
				t.Fatalf("got %s, want nothing done while the alarms are unread", d.Action)
			}
		})
	}
}

// Releasing the hook of a Machine no member points at changes no membership, so an alarm
// does not hold it.
func TestDecideCorruptAlarmReleasesHooks(t *testing.T) {
	s := steady()
	s.Machines[0].Deleting = true
	s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
	s.Members = []Member{voter(2, "m-1", "10.0.0.2", true), voter(3, "m-2", "10.0.0.3", true), voter(4, "m-3", "10.0.0.4", true)}
	s.Members[0].Alarms = []string{AlarmCorrupt}
	d := Decide(s)
	if d.Action.Kind != ReleaseHook || d.Action.Machine != "m-0" {
		t.Fatalf("got %s, want the hook of m-0 released", d.Action)
	}
}

func TestDecideNoSpaceMemberIsUnhealthy(t *testing.T) {
	s := steady()
	s.Members[1].Alarms = []string{AlarmNoSpace}
	d := Decide(s)
	if d.FaultTolerance != 0 {
		t.Errorf("fault tolerance %d, want 0: the NOSPACE member does not count as healthy", d.FaultTolerance)
	}
	if got := d.Conditions["m-1"]; got.Reason != ReasonVoting || !strings.Contains(got.Message, "unhealthy: etcd alarm NOSPACE is active") {
		t.Errorf("m-1: got %+v", got)
	}
	if d.Members[1].Healthy {
		t.Error("the NOSPACE member is reported healthy")
	}

	// A learner is not promoted while a voting member has NOSPACE, as with any unhealthy
	// voting member; NOSPACE alone holds nothing else.
	s.Machines[0].Deleting = true
	s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
	s.Members = append(s.Members, learner(4, "10.0.0.4", true))
	if d := Decide(s); d.Action.Kind == Promote {
		t.Fatalf("got %s: a learner promoted while a voting member has NOSPACE", d.Action)
	}
	if got := Decide(s).Conditions["m-3"]; !strings.Contains(got.Message, "not promoted while 1 of 3 voting members are unhealthy") {
		t.Errorf("m-3: got %+v", got)
	}
}

func TestCensusOfAlarmedMember(t *testing.T) {
	s := steady()
	s.Members[0].Alarms = []string{AlarmNoSpace}
	if c := CensusOf(s.Members); c.Healthy != 2 || c.Voters != 3 {
		t.Errorf("got %s, want 2 healthy of 3", c)
	}
}
