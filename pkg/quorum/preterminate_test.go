package quorum

import (
	"strings"
	"testing"
)

// withPreTerminate is s with the preTerminate hook kept, and on every Machine.
func withPreTerminate(s State) State {
	s.PreTerminateHook = true
	for i := range s.Machines {
		s.Machines[i].HasPreTerminateHook = true
	}
	return s
}

func TestPreTerminateHook(t *testing.T) {
	cases := []struct {
		name    string
		state   func() State
		want    Kind
		target  string
		reason  string // m-0's condition reason
		message string // in m-0's condition message
	}{
		{"a deleting Machine whose preDrain hook this controller released has the preTerminate one released too", func() State {
			s := withPreTerminate(steady())
			s.Machines[0].Deleting, s.Machines[0].HasHook = true, false
			s.Machines[0].ReleasedByUs = true
			return s
		}, ReleaseHook, "m-0", ReasonHookReleased, ""},
		{"a deleting Machine whose preDrain hook was removed by hand has its preTerminate hook released at once", func() State {
			s := withPreTerminate(steady())
			s.Machines[0].Deleting, s.Machines[0].HasHook = true, false
			return s
		}, ReleaseHook, "m-0", ReasonHookRemovedExternally, "the preTerminate hook is released with it"},
		{"a deleting Machine with both hooks and a voting member waits for its replacement", func() State {
			s := withPreTerminate(steady())
			s.Machines[0].Deleting = true
			return s
		}, None, "", ReasonWaitingForReplacement, ""},
		{"a deleting Machine with no member and only the preTerminate hook has it released", func() State {
			s := withPreTerminate(steady())
			s.Machines[0].Deleting, s.Machines[0].HasHook = true, false
			s.Machines[0].ReleasedByUs = true
			s.Members = s.Members[1:]
			return s
		}, ReleaseHook, "m-0", ReasonHookReleased, ""},
		{"a deleting Machine with both hooks and no member has them released", func() State {
			s := withPreTerminate(steady())
			s.Machines[0].Deleting = true
			s.Members = s.Members[1:]
			return s
		}, ReleaseHook, "m-0", ReasonHookReleased, ""},
		{"a running Machine without the preTerminate hook gets no learner", func() State {
			s := withPreTerminate(steady())
			s.Machines[0].Deleting = true
			s.Machines = append(s.Machines, machine("m-3", "10.0.0.4", false))
			return s
		}, None, "", ReasonWaitingForReplacement, ""},
		{"a deleting Machine that lost its preTerminate hook says so", func() State {
			s := withPreTerminate(steady())
			s.Machines[0].Deleting, s.Machines[0].HasPreTerminateHook = true, false
			return s
		}, None, "", ReasonWaitingForReplacement, NoteNoPreTerminateHook},
		{"the exclude annotation is named on the condition, held by the preTerminate hook", func() State {
			s := withPreTerminate(steady())
			s.Machines[0].ExcludeDrain = true
			return s
		}, None, "", ReasonVoting, NoteExcludeDrain + ": its drain, and the preDrain hook with it, is skipped; the preTerminate hook holds"},
		{"the exclude annotation with no preTerminate hook kept says nothing holds the instance", func() State {
			s := steady()
			s.Machines[0].ExcludeDrain = true
			return s
		}, None, "", ReasonVoting, "nothing holds its instance while its etcd member votes"},
		{"with no preTerminate hook kept, a deleting Machine without the preDrain hook is removed by hand as before", func() State {
			s := steady()
			s.Machines[0].Deleting, s.Machines[0].HasHook = true, false
			return s
		}, None, "", ReasonHookRemovedExternally, "it is not added back, and member"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.state())
			if d.Action.Kind != tc.want || d.Action.Machine != tc.target {
				t.Fatalf("action %s; want %s on %q", d.Action, tc.want, tc.target)
			}
			c := d.Conditions["m-0"]
			if c.Reason != tc.reason || !strings.Contains(c.Message, tc.message) {
				t.Fatalf("m-0: %s %q; want %s containing %q", c.Reason, c.Message, tc.reason, tc.message)
			}
		})
	}
}

// TestPreTerminateHookNeededForALearner: a live Machine is protected, and gets a learner,
// only once both hooks are on it.
func TestPreTerminateHookNeededForALearner(t *testing.T) {
	s := withPreTerminate(steady())
	s.Machines[0].Deleting = true
	m := machine("m-3", "10.0.0.4", false)
	s.Machines = append(s.Machines, m)
	d := Decide(s)
	if d.Action.Kind != None {
		t.Fatalf("action %s; want none while m-3 lacks the preTerminate hook", d.Action)
	}
	if c := d.Conditions["m-3"]; !strings.Contains(c.Message, "waiting for the preTerminate hook") {
		t.Fatalf("m-3: %q; want it to wait for the preTerminate hook", c.Message)
	}
	s.Machines[3].HasPreTerminateHook = true
	if d := Decide(s); d.Action.Kind != AddLearner || d.Action.Machine != "m-3" {
		t.Fatalf("action %s; want a learner for m-3 once it has both hooks", d.Action)
	}
}
