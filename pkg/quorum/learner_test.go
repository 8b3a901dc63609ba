package quorum

import "testing"

func TestLearnerHealth(t *testing.T) {
	r := func(answered bool, index, leader uint64) *LearnerReading {
		return &LearnerReading{Answered: answered, Index: index, LeaderIndex: leader}
	}
	for _, tc := range []struct {
		name                 string
		now, before          *LearnerReading
		healthy, progressing bool
	}{
		{"a learner that does not answer is neither", r(false, 100, 100), r(true, 90, 100), false, false},
		{"first reading, caught up", r(true, 100, 100), nil, true, true},
		{"first reading, at 95% but not shown connected yet", r(true, 95, 100), nil, false, false},
		{"advancing and within 90%", r(true, 95, 100), r(true, 80, 90), true, true},
		{"advancing but below 90% is catching up: progressing, not promotable", r(true, 50, 100), r(true, 40, 100), false, true},
		{"cut off while the cluster takes writes: stuck below what the leader held before", r(true, 95, 100), r(true, 95, 97), false, false},
		{"quiet cluster: holds what the leader held before", r(true, 100, 101), r(true, 100, 100), true, false},
		{"no leader index read this pass", r(true, 100, 0), r(true, 90, 100), false, true},
		{"the previous reading did not answer: no advance can be shown", r(true, 95, 100), r(false, 0, 0), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, p := LearnerHealth(*tc.now, tc.before)
			if h != tc.healthy || p != tc.progressing {
				t.Fatalf("LearnerHealth(%+v, %+v) = healthy %v, progressing %v; want %v, %v", *tc.now, tc.before, h, p, tc.healthy, tc.progressing)
			}
		})
	}
}
