package controlplane

import (
	"errors"
	"slices"
	"testing"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
)

// dryRun is DryRun over the harness's Machines and etcd, read as its Reconciler reads them.
func (h *harness) dryRun() *Pass {
	h.t.Helper()
	p, err := DryRun(h.t.Context(), Source{Reader: h.r.Client, Etcd: h.etcd, Namespace: h.r.Namespace, Hook: h.r.Hook,
		DefaultReplicas: h.r.DefaultReplicas, LearnerStartTimeout: h.r.LearnerStartTimeout})
	if err != nil {
		h.t.Fatalf("DryRun: %v", err)
	}
	return p
}

// TestDryRunDecidesWhatThePassTakesAndChangesNothing: on each cluster of a replacement, a
// dry run only observes etcd (no lock read, no fence, no write) and decides the very action
// the pass then takes.
func TestDryRunDecidesWhatThePassTakesAndChangesNothing(t *testing.T) {
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			h := s.harness(t)
			mark := len(h.j.entries)
			p := h.dryRun()
			if got := h.j.since(mark); !slices.Equal(got, []string{"observe"}) {
				t.Errorf("the dry run recorded %q; want only the observation", got)
			}
			if ids := h.etcd.ids(); ids != memberList(s.members()).ids() {
				t.Errorf("members %s after the dry run; want %s unchanged", ids, memberList(s.members()).ids())
			}
			h.pass()
			// The time is the dry run's own (a health window's end may differ); all else is alike.
			got, want := p.Decision.Action, h.last.Decision.Action
			got.Until = want.Until
			if got != want {
				t.Errorf("the dry run decided %s; the pass took %s", got, want)
			}
			if len(p.Observed) != len(p.State.Members) || p.EtcdErr != nil {
				t.Errorf("observed %d members for %d in the state (etcd error %v)", len(p.Observed), len(p.State.Members), p.EtcdErr)
			}
		})
	}
}

// TestDryRunWithoutQuorumReportsTheView: without quorum a dry run, like a pass, decides
// nothing and reports the fault tolerance and the members one member sees; with etcd out of
// reach it sees no member.
func TestDryRunWithoutQuorumReportsTheView(t *testing.T) {
	noQuorum := &etcdmember.NoQuorumError{Counts: etcdmember.Counts{Voters: 4, Healthy: 1, Quorum: 3, Tolerance: -2}, Answering: 1, Err: errors.New("list members: context deadline exceeded")}
	for _, tc := range []struct {
		name      string
		err       error
		view      bool
		members   int
		tolerance int
	}{
		{"quorum is lost", noQuorum, true, 4, -2},
		{"etcd is unreachable", &etcdmember.UnreachableError{Err: errors.New("connection refused")}, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, replacing(), voters(0, 1, 2, 3), 0x11)
			h.etcd.ObserveErr, h.etcd.NoQuorumView = tc.err, tc.view
			p := h.dryRun()
			if !errors.Is(p.EtcdErr, tc.err) {
				t.Errorf("etcd error %v; want %v", p.EtcdErr, tc.err)
			}
			d := p.Decision
			if d.Action.Kind != "" || d.Conditions != nil || d.FaultTolerance != tc.tolerance || len(d.Members) != tc.members || len(p.Observed) != tc.members {
				t.Errorf("decided %s with conditions %v, tolerance %d, %d members placed and %d observed; want no action or condition, tolerance %d and %d members",
					d.Action, d.Conditions, d.FaultTolerance, len(d.Members), len(p.Observed), tc.tolerance, tc.members)
			}
			if len(p.Machines) != 4 || p.State.Desired != 3 {
				t.Errorf("%d Machines, %d desired; want 4 and 3", len(p.Machines), p.State.Desired)
			}
		})
	}
}
