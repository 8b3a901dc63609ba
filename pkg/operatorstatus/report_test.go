package operatorstatus

import (
	"strings"
	"testing"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// TestNextNamesWhatIsWaitedFor: `quorumguard status` says "nothing to do" only when nothing
// is under way. While a deleting Machine waits for its replacement, the next step names
// that Machine and, in the planner's words, what it waits for.
func TestNextNamesWhatIsWaitedFor(t *testing.T) {
	hooked := func(name, ip string, deleting, running bool) quorum.Machine {
		return quorum.Machine{Name: name, Deleting: deleting, Running: running, HasHook: true, NodeName: name,
			Addresses: []quorum.Address{{Type: quorum.AddressInternalIP, Address: ip}}}
	}
	voter := func(id uint64, name, ip string, healthy bool) quorum.Member {
		return quorum.Member{ID: id, Name: name, PeerURLs: []string{"https://" + ip + ":2380"}, Started: true, Healthy: healthy}
	}
	state := func(m0Deleting, m1Healthy bool, more ...quorum.Machine) quorum.State {
		return quorum.State{Desired: 3,
			Machines: append([]quorum.Machine{hooked("m-0", "10.0.0.1", m0Deleting, true), hooked("m-1", "10.0.0.2", false, true), hooked("m-2", "10.0.0.3", false, true)}, more...),
			Members:  []quorum.Member{voter(1, "m-0", "10.0.0.1", true), voter(2, "m-1", "10.0.0.2", m1Healthy), voter(3, "m-2", "10.0.0.3", true)},
		}
	}
	withLearner := func(s quorum.State) quorum.State {
		s.Members = append(s.Members, quorum.Member{ID: 4, Name: "m-3", PeerURLs: []string{"https://10.0.0.4:2380"}, Learner: true, Started: true, Healthy: true, Progress: 1})
		return s
	}
	for _, tc := range []struct {
		name  string
		state quorum.State
		// action is the decision's kind; step holds every one of the fragments.
		action quorum.Kind
		step   []string
	}{
		{name: "nothing is under way", state: state(false, true), action: quorum.None, step: []string{"nothing to do"}},
		{name: "a deleting Machine has no replacement yet", state: state(true, true), action: quorum.None,
			step: []string{"wait: Machine m-0 (" + quorum.ReasonWaitingForReplacement + ")", "waiting for a replacement Machine"}},
		{name: "the replacement is not running yet", state: state(true, true, hooked("m-3", "10.0.0.4", false, false)), action: quorum.None,
			step: []string{"wait: Machine m-0 (" + quorum.ReasonWaitingForReplacement + ")", "replacement m-3 has no etcd member yet"}},
		{name: "the replacement runs: its learner is added", state: state(true, true, hooked("m-3", "10.0.0.4", false, true)), action: quorum.AddLearner,
			step: []string{"add a learner for Machine m-3"}},
		{name: "a dead voter of a running Machine blocks the promotion", state: withLearner(state(true, false, hooked("m-3", "10.0.0.4", false, true))), action: quorum.None,
			step: []string{"wait: Machine m-0 (" + quorum.ReasonBlocked + ")", "member 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := quorum.Decide(tc.state)
			n := Next(tc.state, d)
			if n.Action != string(tc.action) {
				t.Fatalf("action %s (%s), want %s", n.Action, n.Reason, tc.action)
			}
			for _, f := range tc.step {
				if !strings.Contains(n.Step, f) {
					t.Errorf("next step %q lacks %q", n.Step, f)
				}
			}
			if tc.action == quorum.None && len(tc.step) > 0 && !strings.HasPrefix(tc.step[0], "nothing") && strings.Contains(n.Step, "nothing to do") {
				t.Errorf("next step %q says nothing is to be done while a Machine waits", n.Step)
			}
		})
	}
}
