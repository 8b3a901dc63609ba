package etcdmember

import (
	"errors"
	"strings"
	"testing"
)

func voter(id uint64) Member {
	return Member{ID: id, Name: string(rune('a' - 1 + id)), Started: true, Healthy: true}
}
func learner(id uint64) Member { m := voter(id); m.IsLearner = true; return m }
func dead(m Member) Member     { m.Healthy = false; return m }

func cluster(ms ...Member) []Member { return ms }

func TestQuorumAndTolerance(t *testing.T) {
	for _, tc := range []struct{ voters, quorum, tolerance int }{
		{1, 1, 0}, {2, 2, 0}, {3, 2, 1}, {4, 3, 1}, {5, 3, 2}, {6, 4, 2}, {7, 4, 3},
	} {
		var ms []Member
		for i := range tc.voters {
			ms = append(ms, voter(uint64(i+1)))
		}
		ms = append(ms, learner(99))
		c := Count(ms)
		if c.Quorum != tc.quorum || c.Tolerance != tc.tolerance || c.Learners != 1 {
			t.Errorf("%d healthy voters and a learner: got %s, %d learners; want quorum %d, tolerance %d",
				tc.voters, c, c.Learners, tc.quorum, tc.tolerance)
		}
	}
}

func TestCheckChange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members []Member
		change  Change
		// refused is a fragment of the UnsafeChangeError reason, empty when allowed.
		refused      string
		before       Counts
		after        Counts
		notFoundByID bool
	}{
		{name: "removing a healthy member of 3 healthy is allowed",
			members: cluster(voter(1), voter(2), voter(3)), change: Change{ChangeRemove, 3}},
		{name: "removing a healthy member of 3 with one dead is refused",
			members: cluster(voter(1), voter(2), dead(voter(3))), change: Change{ChangeRemove, 1},
			refused: "below the quorum of 2",
			before:  Counts{Voters: 3, Healthy: 2, Quorum: 2, Tolerance: 0},
			after:   Counts{Voters: 2, Healthy: 1, Quorum: 2, Tolerance: -1}},
		{name: "removing the dead member of 3 is allowed",
			members: cluster(voter(1), voter(2), dead(voter(3))), change: Change{ChangeRemove, 3}},
		{name: "removing a dead member of 4 with 2 dead is refused because quorum is lost now",
			members: cluster(voter(1), voter(2), dead(voter(3)), dead(voter(4))), change: Change{ChangeRemove, 4},
			refused: "quorum is lost now",
			before:  Counts{Voters: 4, Healthy: 2, Quorum: 3, Tolerance: -1},
			after:   Counts{Voters: 3, Healthy: 2, Quorum: 2, Tolerance: 0}},
		{name: "removing a learner while quorum holds is allowed",
			members: cluster(voter(1), voter(2), voter(3), dead(learner(4))), change: Change{ChangeRemove, 4}},
		{name: "removing a member that is not there is allowed",
			members: cluster(voter(1), dead(voter(2)), dead(voter(3))), change: Change{ChangeRemove, 9}},
		{name: "removing a healthy member of 5 with 2 dead is refused",
			members: cluster(voter(1), voter(2), voter(3), dead(voter(4)), dead(voter(5))), change: Change{ChangeRemove, 1},
			refused: "below the quorum of 3",
			before:  Counts{Voters: 5, Healthy: 3, Quorum: 3, Tolerance: 0},
			after:   Counts{Voters: 4, Healthy: 2, Quorum: 3, Tolerance: -1}},
		{name: "promoting a healthy learner into 2 healthy and 1 dead is allowed",
			members: cluster(voter(1), voter(2), dead(voter(3)), learner(4)), change: Change{ChangePromote, 4}},
		{name: "promoting an unhealthy learner is refused",
			members: cluster(voter(1), voter(2), voter(3), dead(learner(4))), change: Change{ChangePromote, 4},
			refused: "not healthy",
			before:  Counts{Voters: 3, Healthy: 3, Learners: 1, Quorum: 2, Tolerance: 1},
			after:   Counts{Voters: 4, Healthy: 3, Quorum: 3, Tolerance: 0}},
		{name: "promoting a voter changes nothing and is allowed",
			members: cluster(voter(1), voter(2), voter(3)), change: Change{ChangePromote, 2}},
		{name: "promoting a member that is not there is not found",
			members: cluster(voter(1)), change: Change{ChangePromote, 7}, notFoundByID: true},
		{name: "adding a learner to 3 healthy is allowed",
			members: cluster(voter(1), voter(2), voter(3)), change: Change{Kind: ChangeAddLearner}},
		{name: "adding a learner while another is unpromoted is refused",
			members: cluster(voter(1), voter(2), voter(3), learner(4)), change: Change{Kind: ChangeAddLearner},
			refused: "one membership change at a time",
			before:  Counts{Voters: 3, Healthy: 3, Learners: 1, Quorum: 2, Tolerance: 1},
			after:   Counts{Voters: 3, Healthy: 3, Learners: 2, Quorum: 2, Tolerance: 1}},
		{name: "adding a learner without quorum is refused",
			members: cluster(voter(1), dead(voter(2)), dead(voter(3))), change: Change{Kind: ChangeAddLearner},
			refused: "quorum is lost now",
			before:  Counts{Voters: 3, Healthy: 1, Quorum: 2, Tolerance: -1},
			after:   Counts{Voters: 3, Healthy: 1, Learners: 1, Quorum: 2, Tolerance: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckChange(tc.members, tc.change)
			var ue *UnsafeChangeError
			var nf *MemberNotFoundError
			switch {
			case tc.notFoundByID:
				if !errors.As(err, &nf) || nf.ID != tc.change.MemberID {
					t.Fatalf("CheckChange = %v, want a *MemberNotFoundError for %x", err, tc.change.MemberID)
				}
			case tc.refused == "":
				if err != nil {
					t.Fatalf("CheckChange = %v, want allowed", err)
				}
			case !errors.As(err, &ue):
				t.Fatalf("CheckChange = %v, want an *UnsafeChangeError", err)
			case !strings.Contains(ue.Reason, tc.refused) || ue.Before != tc.before || ue.After != tc.after || ue.Change != tc.change:
				t.Fatalf("CheckChange = %#v, want reason containing %q, before %+v, after %+v", ue, tc.refused, tc.before, tc.after)
			}
		})
	}
}
