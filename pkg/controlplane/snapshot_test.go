package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/quorum"
	etcdsnapshot "github.com/quorumguard/quorumguard/pkg/snapshot"
)

// fakeSnapshots records each snapshot in the journal, with the member it was asked for and
// the members it could stream from; Err fails every one.
type fakeSnapshots struct {
	j    *journal
	Err  error
	reqs []etcdsnapshot.Request
}

func (f *fakeSnapshots) Take(_ context.Context, req etcdsnapshot.Request) (etcdsnapshot.Result, error) {
	f.j.add("snapshot %x", req.Member)
	f.reqs = append(f.reqs, req)
	if f.Err != nil {
		return etcdsnapshot.Result{}, f.Err
	}
	return etcdsnapshot.Result{Path: fmt.Sprintf("/snapshots/etcd-member-%x.db", req.Member), Size: 1 << 20, From: 0x11}, nil
}

// journalRecorder records each Event in the journal as "event <type> <reason> <object>".
type journalRecorder struct {
	j     *journal
	notes []string
}

func (r *journalRecorder) Eventf(regarding runtime.Object, _ runtime.Object, typ, reason, _, note string, args ...any) {
	name := ""
	if o, ok := regarding.(client.Object); ok {
		name = o.GetName()
	}
	r.j.add("event %s %s %s", typ, reason, name)
	r.notes = append(r.notes, fmt.Sprintf(note, args...))
}

func (r *journalRecorder) AnnotatedEventf(regarding, related runtime.Object, _ map[string]string, typ, reason, action, note string, args ...any) {
	r.Eventf(regarding, related, typ, reason, action, note, args...)
}

// snapshotting is the harness of the removal step, with snapshots and a recorder.
func snapshotting(t *testing.T) (*harness, *fakeSnapshots, *journalRecorder) {
	h := newHarness(t, replacing(), voters(0, 1, 2, 3), 0x11)
	s := &fakeSnapshots{j: h.j}
	rec := &journalRecorder{j: h.j}
	h.r.Snapshots, h.r.Recorder = s, rec
	return h, s, rec
}

// TestASnapshotIsTakenBeforeAVoterIsRemoved: with snapshots configured, the member of the
// deleting Machine is removed only after its snapshot is taken, in the same pass, after the
// lock's token and before the fence and the removal.
func TestASnapshotIsTakenBeforeAVoterIsRemoved(t *testing.T) {
	h, s, _ := snapshotting(t)
	got := h.pass()
	if a := h.last.Decision.Action; a.Kind != quorum.RemoveMember || a.MemberID != 0x10 {
		t.Fatalf("decided %s; want the removal of 10", a)
	}
	snap, removed := slices.Index(got, "snapshot 10"), slices.Index(got, "remove 10")
	if snap < 0 || removed < 0 || snap > removed || slices.Index(got[snap:], "fence") < 0 {
		t.Fatalf("the pass recorded %q; want the snapshot of 10, then the fence and the removal", got)
	}
	if ids := h.etcd.ids(); ids != "11,12,13" {
		t.Errorf("members %s; want 10 removed", ids)
	}
	if len(s.reqs) != 1 || s.reqs[0].Machine != "master-0" || len(s.reqs[0].Members) != 4 {
		t.Errorf("asked for %+v; want one snapshot for master-0 over the four members", s.reqs)
	}
	if !slices.Contains(got, "event Normal SnapshotTaken master-0") {
		t.Errorf("the pass recorded %q; want a SnapshotTaken Event", got)
	}
}

// TestAFailedSnapshotHoldsTheRemoval: a snapshot that cannot be taken removes nothing, says
// why on the Machine's condition and in a Warning Event, and is tried again once the
// action's backoff has passed; when it then succeeds, the member is removed.
func TestAFailedSnapshotHoldsTheRemoval(t *testing.T) {
	h, s, rec := snapshotting(t)
	s.Err = &etcdsnapshot.Error{Stage: etcdsnapshot.StageWrite, Err: errors.New("write /snapshots/.etcd-1.part: no space left on device")}
	got := h.pass()
	if c := changes(got); len(c) > 0 {
		t.Fatalf("changed %q after a failed snapshot (pass recorded %q)", c, got)
	}
	if count(got, "fence") != 0 {
		t.Errorf("the pass recorded %q; a held removal does not even pass the fence", got)
	}
	if ids := h.etcd.ids(); ids != "10,11,12,13" {
		t.Errorf("members %s; want none removed", ids)
	}
	if !slices.Contains(got, "event Warning SnapshotFailed master-0") {
		t.Errorf("the pass recorded %q; want a SnapshotFailed Warning Event on master-0", got)
	}
	if len(rec.notes) == 0 || !strings.Contains(strings.Join(rec.notes, "\n"), "no space left on device") {
		t.Errorf("Events say %q; want the cause", rec.notes)
	}
	c := condition(h.machine("master-0"))
	if c == nil || c.Reason != ReasonSnapshotFailed || !strings.Contains(c.Message, "no space left on device") {
		t.Errorf("master-0's condition is %+v; want %s with the cause", c, ReasonSnapshotFailed)
	}
	if h.last.Err == nil {
		t.Error("the pass reported no error for a held removal")
	}

	// The same pass at once is in the backoff: no snapshot, no removal.
	if got := h.pass(); slices.Contains(got, "snapshot 10") || len(changes(got)) > 0 {
		t.Errorf("during the backoff the pass recorded %q", got)
	}
	s.Err = nil
	h.clock.Advance(maxActionBackoff)
	got = h.pass()
	if snap, removed := slices.Index(got, "snapshot 10"), slices.Index(got, "remove 10"); snap < 0 || removed < snap {
		t.Fatalf("after the backoff the pass recorded %q; want the snapshot, then the removal", got)
	}
	if ids := h.etcd.ids(); ids != "11,12,13" {
		t.Errorf("members %s; want 10 removed", ids)
	}
}

// TestALearnerIsRemovedWithoutASnapshot: a learner that never started holds nothing the
// voters lack; its removal takes no snapshot, even when snapshots fail.
func TestALearnerIsRemovedWithoutASnapshot(t *testing.T) {
	h := newHarness(t, replacing(), append(voters(0, 1, 2), learner(3, false, 0)), 0x11)
	s := &fakeSnapshots{j: h.j, Err: errors.New("must not be asked")}
	h.r.Snapshots = s
	h.pass()
	h.clock.Advance(5 * time.Minute)
	got := h.pass()
	if a := h.last.Decision.Action; a.Kind != quorum.RemoveMember || !a.StartTimedOut {
		t.Fatalf("decided %s; want the learner's removal", a)
	}
	if len(s.reqs) != 0 || !slices.Contains(got, "remove 13") {
		t.Errorf("the pass recorded %q; want the learner removed without a snapshot", got)
	}
}

// TestNoSnapshotsConfiguredRemovesAsBefore: without a snapshot directory, the removal step
// records exactly what it always did.
func TestNoSnapshotsConfiguredRemovesAsBefore(t *testing.T) {
	h := newHarness(t, replacing(), voters(0, 1, 2, 3), 0x11)
	got := h.pass()
	if !slices.Contains(got, "remove 10") || slices.ContainsFunc(got, func(e string) bool { return strings.HasPrefix(e, "snapshot") }) {
		t.Errorf("the pass recorded %q", got)
	}
}
