package controlplane

import (
	"slices"
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// TestALearnerThatAnswersAgainAfterTheFenceIsNotRemoved: a learner decided to be removed for
// standing still too long, which answers and holds the leader's index on the member list
// read after the fence, is kept.
func TestALearnerThatAnswersAgainAfterTheFenceIsNotRemoved(t *testing.T) {
	h := newHarness(t, replacing(), append(voters(0, 1, 2), learner(3, false, 0)), 0x11)
	h.pass()
	h.clock.Advance(5 * time.Minute)
	h.etcd.AfterFence = func(f *fakeEtcd) {
		l := f.member(0x13)
		l.Answers, l.Healthy, l.Index = true, true, f.leaderIndex()
	}
	got := h.pass()
	if a := h.last.Decision.Action; a.Kind != quorum.RemoveMember || !a.StartTimedOut || a.MemberID != 0x13 {
		t.Fatalf("decided %s; want the learner's removal for standing still", a)
	}
	if c := changes(got); len(c) > 0 {
		t.Errorf("changed %q; want nothing once the learner answers again (pass recorded %q)", c, got)
	}
	if ids := h.etcd.ids(); ids != "10,11,12,13L" {
		t.Errorf("members %s; want the learner kept", ids)
	}
	if h.last.Err != nil {
		t.Errorf("the pass reported %v; a reason gone after the fence is not a failure", h.last.Err)
	}
}

// TestAVoterIsNotRemovedWhenItsReasonIsGoneAfterTheFence: the removal of the member of a
// deleting Machine is decided on a list read before the fence; on the list read after it
// the planner must decide the very same removal, or nothing is removed.
func TestAVoterIsNotRemovedWhenItsReasonIsGoneAfterTheFence(t *testing.T) {
	for _, tc := range []struct {
		name      string
		meanwhile func(f *fakeEtcd)
		after     string
	}{
		{"a newer leader already removed it, so the Machine has no member", func(f *fakeEtcd) { f.remove(0x10) }, "11,12,13"},
		{"a newer leader removed it and added a learner for another Machine", func(f *fakeEtcd) {
			f.remove(0x10)
			f.members = append(f.members, &fakeMember{ID: 0x30, Peer: "https://10.0.0.4:2380", Learner: true})
		}, "11,12,13,30L"},
		{"it became the leader", func(f *fakeEtcd) { f.leader = 0x10 }, "10,11,12,13"},
		{"two voters of live Machines stopped answering", func(f *fakeEtcd) {
			for _, id := range []uint64{0x12, 0x13} {
				f.member(id).Healthy, f.member(id).Answers = false, false
			}
		}, "10,11,12,13"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, replacing(), voters(0, 1, 2, 3), 0x11)
			h.etcd.AfterFence = tc.meanwhile
			got := h.pass()
			if a := h.last.Decision.Action; a.Kind != quorum.RemoveMember || a.MemberID != 0x10 {
				t.Fatalf("decided %s; want the removal of 10", a)
			}
			if c := changes(got); len(c) > 0 {
				t.Errorf("changed %q (pass recorded %q)", c, got)
			}
			if count(got, "refused") != 1 {
				t.Errorf("recorded %q; want the removal refused by its recheck", got)
			}
			if ids := h.etcd.ids(); ids != tc.after {
				t.Errorf("members %s; want %s", ids, tc.after)
			}
			if h.last.Err != nil {
				t.Errorf("the pass reported %v; a reason gone after the fence is not a failure", h.last.Err)
			}
		})
	}
}

// releasing is master-0 deleting with no member left, so that its hook is released.
func releasing(t *testing.T) *harness {
	return newHarness(t, replacing(), voters(1, 2, 3), 0x11)
}

// memberAtMaster0 is a learner added at master-0's address, as a stale leader might.
func memberAtMaster0(f *fakeEtcd) {
	f.members = append(f.members, &fakeMember{ID: 0x30, Peer: "https://10.0.0.0:2380", Learner: true})
}

// TestAHookIsNotReleasedWhenTheListReadAfterTheFencePlacesAMemberOnTheMachine: a release
// rests on the member list read after the etcd fence, not on the one the decision was made
// on.
func TestAHookIsNotReleasedWhenTheListReadAfterTheFencePlacesAMemberOnTheMachine(t *testing.T) {
	for _, tc := range []struct {
		name      string
		meanwhile func(f *fakeEtcd)
	}{
		{"a learner at the Machine's address", memberAtMaster0},
		{"the old member listed again", func(f *fakeEtcd) { f.members = append(f.members, voter(0)) }},
		{"a voter that no Machine accounts for", func(f *fakeEtcd) {
			f.members = append(f.members, &fakeMember{ID: 0x30, Name: "etcd-x", Peer: "https://10.9.9.9:2380", Healthy: true, Answers: true, Index: 1000})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := releasing(t)
			h.etcd.AfterFence = tc.meanwhile
			got := h.pass()
			if a := h.last.Decision.Action; a.Kind != quorum.ReleaseHook || a.Machine != "master-0" {
				t.Fatalf("decided %s; want the release of master-0's hook", a)
			}
			if !h.hasHook("master-0") {
				t.Errorf("the hook was released (pass recorded %q)", got)
			}
			if slices.Contains(got, "patch master-0") {
				t.Errorf("recorded %q: master-0 was written", got)
			}
			if h.last.Err != nil {
				t.Errorf("the pass reported %v; a reason gone after the fence is not a failure", h.last.Err)
			}
		})
	}
}

// TestAReleaseRefusedForAConflictFencesAndReadsAgainBeforeItsRetry: the PATCH that removes
// the hook, refused once for a conflict, is tried again on the Machine read afresh only
// after the etcd fence has passed again and a member list read after it still allows it.
func TestAReleaseRefusedForAConflictFencesAndReadsAgainBeforeItsRetry(t *testing.T) {
	t.Run("nothing changed meanwhile: released on the retry", func(t *testing.T) {
		h := releasing(t)
		h.conflicts["master-0"] = 1
		got := h.pass()
		want := []string{"token", "observe", "token", "token", "fence", "observe", "patch status master-0",
			"patch master-0: conflict", "fence", "observe", "patch master-0"}
		if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
			t.Errorf("the pass recorded\n  %q\nwant it to start with\n  %q", got, want)
		}
		if n := count(got, "fence"); n != 2 {
			t.Errorf("fenced %d times; want 2, once before each PATCH", n)
		}
		if h.hasHook("master-0") {
			t.Error("the hook is still there")
		}
	})
	t.Run("a member is placed on the Machine before the retry: kept", func(t *testing.T) {
		h := releasing(t)
		h.conflicts["master-0"] = 1
		fences := 0
		h.etcd.AfterFence = func(f *fakeEtcd) {
			if fences++; fences == 2 {
				memberAtMaster0(f)
			}
		}
		got := h.pass()
		if n := count(got, "fence"); n != 2 {
			t.Errorf("fenced %d times; want 2 (pass recorded %q)", n, got)
		}
		if !h.hasHook("master-0") {
			t.Errorf("the hook was released on the retry (pass recorded %q)", got)
		}
	})
}

// TestAHookThatIsKeptIsNotRecordedAsReleased: when the release is not made (its reason is
// gone after the fence, or a newer leader passed the fence), the Machine's condition must
// not say HookReleased while the hook is still there.
func TestAHookThatIsKeptIsNotRecordedAsReleased(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(h *harness)
	}{
		{"the list read after the fence places a member on the Machine", func(h *harness) { h.etcd.AfterFence = memberAtMaster0 }},
		{"a newer leader passed the fence", func(h *harness) { h.etcd.stored = 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := releasing(t)
			tc.setup(h)
			h.pass()
			if !h.hasHook("master-0") {
				t.Fatal("the hook was released")
			}
			if c := condition(h.machine("master-0")); c != nil && c.Reason == quorum.ReasonHookReleased {
				t.Errorf("master-0 keeps its hook but its condition says %s: %s", c.Reason, c.Message)
			}
		})
	}
}
