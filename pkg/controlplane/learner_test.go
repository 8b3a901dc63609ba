package controlplane

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
)

// learning is master-0 being replaced by master-3, whose learner 13 has joined; the
// learner start timeout is 5 minutes.
func learning(t *testing.T, l *fakeMember) *harness {
	return newHarness(t, replacing(), append(voters(0, 1, 2), l), 0x11)
}

// TestALearnersTimeStandingStillCountsOnlyPassesThatReadEtcd: a learner that has not
// answered for 4 minutes, after which etcd could not be read for 10 minutes, is not removed
// by the first pass that reads etcd again; it is removed once 5 minutes of passes that
// read etcd have found it standing still.
func TestALearnersTimeStandingStillCountsOnlyPassesThatReadEtcd(t *testing.T) {
	h := learning(t, learner(3, false, 0))
	removed := func(got []string) bool { return slices.Contains(got, "remove 13") }
	if got := h.pass(); removed(got) {
		t.Fatalf("removed on the first pass: %q", got)
	}
	h.clock.Advance(4 * time.Minute)
	if got := h.pass(); removed(got) {
		t.Fatalf("removed after 4 minutes standing still: %q", got)
	}
	// etcd cannot be read from minute 4 to minute 14: passes at minutes 5 to 13 fail.
	h.etcd.ObserveErr = &etcdmember.UnreachableError{Err: errors.New("connection refused")}
	for range 9 {
		h.clock.Advance(time.Minute)
		if got := h.pass(); len(changes(got)) > 0 {
			t.Fatalf("changed %q while etcd could not be read", changes(got))
		}
	}
	h.clock.Advance(time.Minute)
	h.etcd.ObserveErr = nil
	if got := h.pass(); removed(got) {
		t.Fatalf("removed on the first pass after a 10-minute outage, with 4 minutes of passes that read etcd: %q", got)
	}
	h.clock.Advance(59 * time.Second)
	if got := h.pass(); removed(got) {
		t.Fatalf("removed after 4m59s of passes that read etcd: %q", got)
	}
	h.clock.Advance(time.Second)
	if got := h.pass(); !removed(got) {
		t.Fatalf("not removed after 5 minutes of passes that read etcd: %q (decided %s)", got, h.last.Decision.Action)
	}
}

// TestALearnerWhoseIndexAdvancesEveryPassIsNeverRemoved: a learner far behind a busy
// leader, but committing more on every pass, is catching up, however long that takes.
func TestALearnerWhoseIndexAdvancesEveryPassIsNeverRemoved(t *testing.T) {
	h := learning(t, learner(3, true, 100))
	for i := range 60 {
		got := h.pass()
		if c := changes(got); len(c) > 0 {
			t.Fatalf("after %d minutes: changed %q", i, c)
		}
		h.clock.Advance(time.Minute)
		h.etcd.member(0x13).Index += 100
		for _, id := range []uint64{0x10, 0x11, 0x12} {
			h.etcd.member(id).Index += 1000
		}
	}
}

// TestALearnerThatAnswersButStandsStillIsNotPromoted: a learner that answers and names a
// leader, and holds more than 90% of the leader's log, but whose index stands still while
// the leader's grows, is cut off from the log and is not promoted.
func TestALearnerThatAnswersButStandsStillIsNotPromoted(t *testing.T) {
	h := learning(t, learner(3, true, 950))
	for i := range 5 {
		got := h.pass()
		if slices.ContainsFunc(got, func(e string) bool { return e == "promote 13" }) {
			t.Fatalf("pass %d promoted learner 13 at index 950 with the leader at %d: %q", i+1, h.etcd.leaderIndex(), got)
		}
		h.clock.Advance(time.Second)
		for _, id := range []uint64{0x10, 0x11, 0x12} {
			h.etcd.member(id).Index += 10
		}
	}
	if ids := h.etcd.ids(); ids != "10,11,12,13L" {
		t.Errorf("members %s; want 13 still a learner", ids)
	}
}

// TestALearnerReceivingASnapshotIsNotRemoved: a learner that has not started while the
// leader sends it a 4 GiB snapshot is receiving, not stuck: 20 minutes of passes do not
// remove it, and its Machine says what it receives. Once the leader no longer sends and it
// still has not started, it is removed after the learner start timeout, as before.
func TestALearnerReceivingASnapshotIsNotRemoved(t *testing.T) {
	// A learner receiving the snapshot it joins with has not started: it neither answers nor
	// has published its name.
	l := learner(3, false, 0)
	l.Name = ""
	l.Snapshot = &etcdmember.SnapshotSend{InFlight: true, Bytes: 4 << 30}
	h := learning(t, l)
	for i := range 20 {
		if c := changes(h.pass()); len(c) > 0 {
			t.Fatalf("after %d minutes receiving a snapshot: changed %q", i, c)
		}
		h.clock.Advance(time.Minute)
	}
	c := condition(h.machine("master-3"))
	if c == nil || !strings.Contains(c.Message, "receiving a 4.0 GiB snapshot from the leader for 19m0s") {
		t.Errorf("master-3's condition does not say it receives the snapshot: %+v", c)
	}
	l.Snapshot = &etcdmember.SnapshotSend{Bytes: 4 << 30}
	for i := range 4 {
		if got := h.pass(); slices.Contains(got, "remove 13") {
			t.Fatalf("removed %d minutes after the snapshot stopped, before the start timeout: %q", i, got)
		}
		h.clock.Advance(time.Minute)
	}
	if got := h.pass(); !slices.Contains(got, "remove 13") {
		t.Fatalf("not removed 5 minutes after the snapshot stopped with its index standing still: %q", got)
	}
}

// TestASnapshotThatFailsOrOutlastsItsAllowanceIsNoProgress: a send under way counts only
// while no send failed since the previous pass and only for SnapshotAllowance of its size;
// a learner that answers is then removed after the start timeout counted from there.
func TestASnapshotThatFailsOrOutlastsItsAllowanceIsNoProgress(t *testing.T) {
	for _, tc := range []struct {
		name string
		// each sets the pass's report; minute is the pass's time
		report  func(minute int) *etcdmember.SnapshotSend
		removed int // the minute by which it is removed
	}{
		{"every pass finds a failed send and a new one under way", func(m int) *etcdmember.SnapshotSend {
			return &etcdmember.SnapshotSend{InFlight: true, Failures: uint64(m), Bytes: 4 << 30}
		}, 6},
		{"a 60 MiB send under way for ever (allowed 2 minutes)", func(int) *etcdmember.SnapshotSend {
			return &etcdmember.SnapshotSend{InFlight: true, Bytes: 60 << 20}
		}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := learner(3, true, 5)
			h := learning(t, l)
			for m := 0; ; m++ {
				l.Snapshot = tc.report(m)
				got := h.pass()
				if slices.Contains(got, "remove 13") {
					if m < 5 {
						t.Fatalf("removed after %d minutes, before the start timeout", m)
					}
					break
				}
				if m >= tc.removed {
					t.Fatalf("not removed after %d minutes", m)
				}
				h.clock.Advance(time.Minute)
			}
		})
	}
}

// TestALearnerClosingTheGapShowsTheTimeLeft: a learner whose gap to the leader closes by 600
// entries a minute, with 3,000 left, says so on its Machine.
func TestALearnerClosingTheGapShowsTheTimeLeft(t *testing.T) {
	l := learner(3, true, 1000)
	h := learning(t, l)
	for _, id := range []uint64{0x10, 0x11, 0x12} {
		h.etcd.member(id).Index = 5000
	}
	h.pass()
	h.clock.Advance(time.Minute)
	l.Index = 1600
	for _, id := range []uint64{0x10, 0x11, 0x12} {
		h.etcd.member(id).Index = 5000 + 1000
	}
	h.pass()
	// The gap went from 4,000 to 4,400: it grew, so no time left is given.
	if c := condition(h.machine("master-3")); c == nil || strings.Contains(c.Message, "left") {
		t.Errorf("a growing gap gives a time left: %+v", c)
	}
	h.clock.Advance(time.Minute)
	l.Index = 4000
	h.pass()
	// Now it closed from 4,400 to 2,000 in a minute: 40 entries/s, about 50 s left.
	if c := condition(h.machine("master-3")); c == nil || !strings.Contains(c.Message, "closing the gap at 40 entries/s, about 50s left") {
		t.Errorf("master-3's condition does not give the rate and the time left: %+v", c)
	}
}
