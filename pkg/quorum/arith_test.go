package quorum

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	healthy3 := Census{Voters: 3, Healthy: 3}
	oneDead := Census{Voters: 3, Healthy: 2}
	for _, tc := range []struct {
		name   string
		before Census
		kind   ChangeKind
		target Target
		// refused is a fragment of the reason, empty when the change is allowed.
		refused string
		after   Census
	}{
		{"remove a healthy member of 3 healthy", healthy3, ChangeRemove, Target{Listed: true, Healthy: true}, "", Census{Voters: 2, Healthy: 2}},
		{"remove a healthy member of 3 with one dead", oneDead, ChangeRemove, Target{Listed: true, Healthy: true}, "below the quorum of 2", Census{Voters: 2, Healthy: 1}},
		{"remove the dead member of 3", oneDead, ChangeRemove, Target{Listed: true}, "", Census{Voters: 2, Healthy: 2}},
		{"remove a dead member of 4 with 2 dead: quorum is lost now", Census{Voters: 4, Healthy: 2}, ChangeRemove, Target{Listed: true}, "quorum is lost now", Census{Voters: 3, Healthy: 2}},
		{"remove a healthy member of 5 with 2 dead", Census{Voters: 5, Healthy: 3}, ChangeRemove, Target{Listed: true, Healthy: true}, "below the quorum of 3", Census{Voters: 4, Healthy: 2}},
		{"remove the last voter", Census{Voters: 1, Healthy: 1}, ChangeRemove, Target{Listed: true, Healthy: true}, "last voting member", Census{}},
		{"remove a learner", Census{Voters: 3, Healthy: 3, Learners: 1}, ChangeRemove, Target{Listed: true, Learner: true}, "", healthy3},
		{"remove a member that is not listed", Census{Voters: 3, Healthy: 1}, ChangeRemove, Target{}, "", Census{Voters: 3, Healthy: 1}},
		{"promote a healthy learner into 3 healthy", Census{Voters: 3, Healthy: 3, Learners: 1}, ChangePromote, Target{Listed: true, Learner: true, Healthy: true}, "", Census{Voters: 4, Healthy: 4}},
		{"promote a healthy learner into 2 healthy and 1 dead", Census{Voters: 3, Healthy: 2, Learners: 1}, ChangePromote, Target{Listed: true, Learner: true, Healthy: true}, "", Census{Voters: 4, Healthy: 3}},
		{"promote an unhealthy learner", Census{Voters: 3, Healthy: 3, Learners: 1}, ChangePromote, Target{Listed: true, Learner: true}, "not healthy", Census{Voters: 4, Healthy: 3}},
		// The planner's old promotion check passed this one: 5 voters with 3 healthy after
		// it is enough, but a change needs quorum now to be committed at all.
		{"promote while quorum is lost", Census{Voters: 4, Healthy: 2, Learners: 1}, ChangePromote, Target{Listed: true, Learner: true, Healthy: true}, "quorum is lost now", Census{Voters: 5, Healthy: 3}},
		{"promote a voter", healthy3, ChangePromote, Target{Listed: true, Healthy: true}, "", healthy3},
		{"add a learner to 3 healthy", healthy3, ChangeAddLearner, Target{}, "", Census{Voters: 3, Healthy: 3, Learners: 1}},
		{"add a second learner", Census{Voters: 3, Healthy: 3, Learners: 1}, ChangeAddLearner, Target{}, "one membership change at a time", Census{Voters: 3, Healthy: 3, Learners: 2}},
		{"add a learner without quorum", Census{Voters: 3, Healthy: 1}, ChangeAddLearner, Target{}, "quorum is lost now", Census{Voters: 3, Healthy: 1, Learners: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := After(tc.before, tc.kind, tc.target); got != tc.after {
				t.Errorf("After = %s, want %s", got, tc.after)
			}
			ok, why := Check(tc.before, tc.kind, tc.target)
			switch {
			case tc.refused == "" && !ok:
				t.Errorf("Check refused: %s", why)
			case tc.refused != "" && (ok || !strings.Contains(why, tc.refused)):
				t.Errorf("Check = %v, %q; want refused with %q", ok, why, tc.refused)
			}
		})
	}
}

func TestQuorumAndTolerance(t *testing.T) {
	for _, tc := range []struct{ voters, quorum, tolerance int }{
		{1, 1, 0}, {2, 2, 0}, {3, 2, 1}, {4, 3, 1}, {5, 3, 2}, {6, 4, 2}, {7, 4, 3},
	} {
		c := Census{Voters: tc.voters, Healthy: tc.voters, Learners: 1}
		if c.Quorum() != tc.quorum || c.Tolerance() != tc.tolerance || QuorumOf(tc.voters) != tc.quorum || Tolerance(tc.voters, tc.voters) != tc.tolerance {
			t.Errorf("%d healthy voters: %s; want quorum %d, tolerance %d", tc.voters, c, tc.quorum, tc.tolerance)
		}
	}
}
