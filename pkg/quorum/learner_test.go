package quorum

import (
	"strings"
	"testing"
	"time"
)

func TestLearnerHealth(t *testing.T) {
	r := func(answered bool, index, leader uint64) *LearnerReading {
		return &LearnerReading{Answered: answered, Index: index, LeaderIndex: leader}
	}
	snap := func(l *LearnerReading, inFlight bool, failures uint64, bytes int64, since time.Duration) *LearnerReading {
		l.Snapshot = SnapshotReading{InFlight: inFlight, Failures: failures, Bytes: bytes, For: since}
		return l
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
		{"not started, the leader sends it a snapshot", snap(r(false, 0, 100), true, 0, 4<<30, time.Hour), nil, false, true},
		{"answers, stands still, the leader sends it a snapshot", snap(r(true, 5, 100), true, 2, 4<<30, time.Minute), snap(r(true, 5, 90), true, 2, 4<<30, 0), false, true},
		{"a send failed since the previous reading", snap(r(false, 0, 100), true, 3, 4<<30, time.Minute), snap(r(false, 0, 100), true, 2, 4<<30, 0), false, false},
		{"a send under way past its allowance (1 minute + 60 s for 60 MiB)", snap(r(false, 0, 100), true, 0, 60<<20, 121*time.Second), nil, false, false},
		{"a send under way just within its allowance", snap(r(false, 0, 100), true, 0, 60<<20, 120*time.Second), nil, false, true},
		{"no send under way", snap(r(false, 0, 100), false, 0, 4<<30, 0), nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, p := LearnerHealth(*tc.now, tc.before)
			if h != tc.healthy || p != tc.progressing {
				t.Fatalf("LearnerHealth(%+v, %+v) = healthy %v, progressing %v; want %v, %v", *tc.now, tc.before, h, p, tc.healthy, tc.progressing)
			}
		})
	}
}

func TestLearnerProgressWording(t *testing.T) {
	for _, tc := range []struct {
		m    Member
		want string
	}{
		{Member{ID: 0x13, Progress: 0.5}, "learner 13 at 50% of the leader's index"},
		{Member{ID: 0x13, CatchUp: CatchUp{Snapshot: SnapshotReading{InFlight: true, Bytes: 3 << 29, For: 90 * time.Second}}},
			"learner 13 at 0% of the leader's index, receiving a 1.5 GiB snapshot from the leader for 1m30s (counted as progress for up to 26m36s"},
		{Member{ID: 0x13, Progress: 0.8, CatchUp: CatchUp{Rate: 250, Left: 12 * time.Second}}, "learner 13 at 80% of the leader's index, closing the gap at 250 entries/s, about 12s left"},
	} {
		if got := learnerProgress(tc.m); !strings.HasPrefix(got, tc.want) {
			t.Errorf("learnerProgress(%+v) = %q; want it to start %q", tc.m, got, tc.want)
		}
	}
	for n, want := range map[int64]string{512: "512 B", 1536: "1.5 KiB", 8 << 30: "8.0 GiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q; want %q", n, got, want)
		}
	}
}

func TestReadSnapshot(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := t0.Add(10 * time.Second)
	const gib = 1 << 30
	sending := SnapshotReading{InFlight: true, Failures: 1, Successes: 2, Bytes: gib, Since: t0}
	delivered := SnapshotReading{Delivered: true, Failures: 1, Successes: 3, Bytes: gib, Since: t0}
	was := func(s SnapshotReading) *LearnerReading { return &LearnerReading{Snapshot: s} }
	for _, tc := range []struct {
		name     string
		report   SnapshotReading
		answered bool
		before   *LearnerReading
		want     SnapshotReading
	}{
		{"a send first seen", SnapshotReading{InFlight: true, Failures: 1, Successes: 2, Bytes: gib}, false, nil,
			SnapshotReading{InFlight: true, Failures: 1, Successes: 2, Bytes: gib, Since: at}},
		{"the same send still under way", SnapshotReading{InFlight: true, Failures: 1, Successes: 2, Bytes: gib}, false, was(sending),
			SnapshotReading{InFlight: true, Failures: 1, Successes: 2, Bytes: gib, Since: t0, For: 10 * time.Second}},
		{"a new send after a failed one", SnapshotReading{InFlight: true, Failures: 2, Successes: 2, Bytes: gib}, false, was(sending),
			SnapshotReading{InFlight: true, Failures: 2, Successes: 2, Bytes: gib, Since: at}},
		{"the send completed, the learner not answering yet", SnapshotReading{Failures: 1, Successes: 3, Bytes: gib}, false, was(sending),
			SnapshotReading{Delivered: true, Failures: 1, Successes: 3, Bytes: gib, Since: t0, For: 10 * time.Second}},
		{"still applying it", SnapshotReading{Failures: 1, Successes: 3, Bytes: gib}, false, was(delivered),
			SnapshotReading{Delivered: true, Failures: 1, Successes: 3, Bytes: gib, Since: t0, For: 10 * time.Second}},
		{"the learner answers", SnapshotReading{Failures: 1, Successes: 3, Bytes: gib}, true, was(delivered),
			SnapshotReading{Failures: 1, Successes: 3, Bytes: gib}},
		{"the send ended neither failed nor completed (another leader)", SnapshotReading{Failures: 0, Successes: 0, Bytes: gib}, false, was(sending),
			SnapshotReading{Bytes: gib}},
		{"the send failed", SnapshotReading{Failures: 2, Successes: 2, Bytes: gib}, false, was(sending),
			SnapshotReading{Failures: 2, Successes: 2, Bytes: gib}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReadSnapshot(tc.report, tc.answered, tc.before, at); got != tc.want {
				t.Errorf("ReadSnapshot = %+v; want %+v", got, tc.want)
			}
		})
	}
}
