package controlplane

import (
	"errors"
	"slices"
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
