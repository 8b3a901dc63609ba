package etcdmember

import (
	"fmt"
	"testing"
)

// TestJoinHealth: the leader is the one a healthy member names, each member carries its own
// index, the leader's and its probe's error, and a learner's progress is its index over the
// leader's.
func TestJoinHealth(t *testing.T) {
	members := []Member{{ID: 1, Started: true}, {ID: 2, Started: true}, {ID: 3, IsLearner: true, Started: true}, {ID: 4}}
	status := func(id, leader, index uint64) *Status { return &Status{ID: id, Leader: leader, Index: index} }
	refused := fmt.Errorf("refused")
	for _, tc := range []struct {
		name   string
		health []Health
		want   []Observed
	}{
		{"a leader named by a healthy member",
			[]Health{{ID: 1, Healthy: true, Status: status(1, 2, 100)}, {ID: 2, Healthy: true, Status: status(2, 2, 100)}, {ID: 3, Healthy: true, Status: status(3, 2, 50)}, {ID: 4}},
			[]Observed{
				{Member: members[0], Answered: true, Index: 100, LeaderIndex: 100},
				{Member: members[1], Leader: true, Answered: true, Index: 100, LeaderIndex: 100},
				{Member: members[2], Progress: 0.5, Answered: true, Index: 50, LeaderIndex: 100},
				{Member: members[3], LeaderIndex: 100},
			}},
		{"an unhealthy member's leader is not taken",
			[]Health{{ID: 1, Status: status(1, 2, 100)}, {ID: 2, Err: refused}},
			[]Observed{
				{Member: members[0], Answered: true, Index: 100},
				{Member: members[1], Err: refused},
				{Member: members[2]},
				{Member: members[3]},
			}},
		{"a learner ahead of the leader's reading counts as caught up",
			[]Health{{ID: 1, Healthy: true, Status: status(1, 1, 100)}, {ID: 3, Healthy: true, Status: status(3, 1, 120)}},
			[]Observed{
				{Member: members[0], Leader: true, Answered: true, Index: 100, LeaderIndex: 100},
				{Member: members[1], LeaderIndex: 100},
				{Member: members[2], Progress: 1, Answered: true, Index: 120, LeaderIndex: 100},
				{Member: members[3], LeaderIndex: 100},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := JoinHealth(members, tc.health)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("JoinHealth =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}
