package machines

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// mc is a settled Machine: Running, voting, up to date, in domain.
func mc(name string, index int, domain string) Machine {
	return Machine{Name: name, Index: index, Domain: domain, Phase: PhaseRunning, Voting: true, Updated: true,
		Created: t0.Add(time.Duration(index) * time.Minute), NodeName: name}
}

type mod func(*Machine)

func with(m Machine, mods ...mod) Machine {
	for _, f := range mods {
		f(&m)
	}
	return m
}

func deleting(m *Machine)  { m.Deleting = true; m.Phase = "Deleting" }
func outdated(m *Machine)  { m.Updated = false; m.Diff = "instanceType" }
func notVoting(m *Machine) { m.Voting = false }
func phase(p string) mod {
	return func(m *Machine) { m.Phase = p; m.Voting = p == PhaseRunning && m.Voting }
}
func newer(m *Machine)  { m.Created = t0.Add(time.Hour) }
func attempt(n int) mod { return func(m *Machine) { m.Attempt = n } }
func failed(m *Machine) { m.Phase = PhaseFailed; m.Voting = false; m.ErrorMessage = "no capacity" }
func carries(n int, at time.Time) mod {
	return func(m *Machine) { m.FailedAttempts = n; m.LastFailure = at }
}

func input(strategy string, domains []string, ms ...Machine) Input {
	return Input{Active: true, Strategy: strategy, Replicas: 3, Domains: domains, Machines: ms, Now: t0.Add(2 * time.Hour), Backoff: 10 * time.Second}
}

var (
	ab  = []string{"a", "b"}
	abc = []string{"a", "b", "c"}
	ac  = []string{"a", "c"}
)

// want is what a case checks; empty fields are not checked.
type want struct {
	action      string // "None", "Create 2 c 1", "Delete m-0", "DeleteFailed f-1 m-1 1"
	progressing string // reason, with "=False" when the status must be False
	degraded    string // reason when Degraded must be True; "" means False
	inFlight    bool
	retryAfter  time.Duration
	message     string // a substring of the Progressing or Degraded message
	counts      *[4]int32
}

func actionString(a Action) string {
	switch a.Kind {
	case Create:
		return fmt.Sprintf("Create %d %s %d", a.Index, a.Domain, a.Attempt)
	case Delete:
		return "Delete " + a.Machine
	case DeleteFailed:
		return fmt.Sprintf("DeleteFailed %s %s %d", a.Machine, a.Carrier, a.Attempt)
	}
	return string(a.Kind)
}

func TestPlan(t *testing.T) {
	cases := []struct {
		name string
		in   Input
		want want
	}{
		{
			name: "three Machines in three domains are left alone",
			in:   input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), mc("m-2", 2, "c")),
			want: want{action: "None", progressing: ReasonAllReplicasUpdated + "=False", counts: &[4]int32{3, 3, 3, 0}},
		},
		{
			name: "a, b, a in two domains is left alone",
			in:   input(RollingUpdate, ab, mc("m-0", 0, "a"), mc("m-1", 1, "b"), mc("m-2", 2, "a")),
			want: want{action: "None", progressing: ReasonAllReplicasUpdated + "=False"},
		},
		{
			name: "all in a with three domains moves index 1 first",
			in:   input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "a"), mc("m-2", 2, "a")),
			want: want{action: "Create 1 b 1", progressing: ReasonRebalancing, inFlight: true, counts: &[4]int32{3, 3, 1, 0}},
		},
		{
			name: "adding domain c to a, b, a moves index 2 to c",
			in:   input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), mc("m-2", 2, "a")),
			want: want{action: "Create 2 c 1", progressing: ReasonRebalancing, message: "index 2 moves from a to c"},
		},
		{
			name: "the replacement in c is not yet voting: wait",
			in: input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), mc("m-2", 2, "a"),
				with(mc("m-x-2", 2, "c"), notVoting, newer, func(m *Machine) { m.Why = "index 2 moves from a to c" })),
			want: want{action: "None", progressing: ReasonRebalancing, inFlight: true, message: "m-x-2 replaces m-2 at index 2 (index 2 moves from a to c)"},
		},
		{
			name: "the replacement in c votes: the old Machine is deleted",
			in:   input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), mc("m-2", 2, "a"), with(mc("m-x-2", 2, "c"), newer)),
			want: want{action: "Delete m-2", progressing: ReasonRebalancing, inFlight: true},
		},
		{
			name: "the old Machine is deleting: wait for it to go",
			in:   input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), with(mc("m-2", 2, "a"), deleting), with(mc("m-x-2", 2, "c"), newer)),
			want: want{action: "None", progressing: ReasonRebalancing, inFlight: true, counts: &[4]int32{4, 3, 3, 0}, message: "m-2 is deleting"},
		},
		{
			name: "removing domain b moves its Machine to the least-used remaining domain",
			in:   input(RollingUpdate, ac, mc("m-0", 0, "a"), mc("m-1", 1, "b"), mc("m-2", 2, "c")),
			want: want{action: "Create 1 a 1", progressing: ReasonRebalancing, message: "b is not a listed failure domain"},
		},
		{
			name: "OnDelete: a deleted Machine is replaced in its domain",
			in:   input(OnDelete, abc, mc("m-0", 0, "a"), with(mc("m-1", 1, "b"), deleting), mc("m-2", 2, "c")),
			want: want{action: "Create 1 b 1", progressing: ReasonReplacingDeleted, counts: &[4]int32{3, 2, 2, 1}},
		},
		{
			name: "OnDelete: the deleted Machine goes once replaced",
			in: input(OnDelete, abc, mc("m-0", 0, "a"), with(mc("m-1", 1, "b"), deleting),
				with(mc("m-n-1", 1, "b"), newer, func(m *Machine) { m.Why = "Machine m-1 of index 1 is deleting" }), mc("m-2", 2, "c")),
			want: want{action: "None", progressing: ReasonReplacingDeleted, inFlight: true, message: "m-n-1 replaces m-1 at index 1 (Machine m-1 of index 1 is deleting); m-1 is deleting"},
		},
		{
			name: "OnDelete: outdated Machines are only reported",
			in:   input(OnDelete, abc, with(mc("m-0", 0, "a"), outdated), mc("m-1", 1, "b"), mc("m-2", 2, "c")),
			want: want{action: "None", progressing: ReasonNeedsUpdate, message: "m-0 (index 0)"},
		},
		{
			name: "OnDelete: a domain change is only reported",
			in:   input(OnDelete, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), mc("m-2", 2, "a")),
			want: want{action: "None", progressing: ReasonNeedsUpdate},
		},
		{
			name: "RollingUpdate: a template change replaces the lowest index first",
			in:   input(RollingUpdate, abc, with(mc("m-0", 0, "a"), outdated), with(mc("m-1", 1, "b"), outdated), with(mc("m-2", 2, "c"), outdated)),
			want: want{action: "Create 0 a 1", progressing: ReasonRollingUpdate, message: "instanceType", counts: &[4]int32{3, 3, 0, 0}},
		},
		{
			name: "RollingUpdate: the next index waits while one is deleting",
			in: input(RollingUpdate, abc, with(mc("m-0", 0, "a"), outdated, deleting), with(mc("m-n-0", 0, "a"), newer),
				with(mc("m-1", 1, "b"), outdated), with(mc("m-2", 2, "c"), outdated)),
			want: want{action: "None", progressing: ReasonWaitingForReplacement, inFlight: true},
		},
		{
			name: "RollingUpdate: a not-ready outdated Machine goes first, and its replacement is not waited for",
			in:   input(RollingUpdate, abc, with(mc("m-0", 0, "a"), outdated), with(mc("m-1", 1, "b"), outdated, phase("Provisioned"))),
			want: want{action: "Create 2 c 1"},
		},
		{
			name: "RollingUpdate: the not-ready outdated Machine is replaced first",
			in:   input(RollingUpdate, abc, with(mc("m-0", 0, "a"), outdated), with(mc("m-1", 1, "b"), outdated, phase("Provisioned")), mc("m-2", 2, "c")),
			want: want{action: "Create 1 b 1"},
		},
		{
			name: "RollingUpdate: the old Machine that never became ready is deleted without waiting",
			in: input(RollingUpdate, abc, mc("m-0", 0, "a"), with(mc("m-1", 1, "b"), outdated, phase("Provisioned")),
				with(mc("m-n-1", 1, "b"), phase("Provisioning"), notVoting, newer), mc("m-2", 2, "c")),
			want: want{action: "Delete m-1"},
		},
		{
			name: "two deleted at once: one replacement at a time within the surge",
			in: input(OnDelete, abc, with(mc("m-0", 0, "a"), deleting), with(mc("m-n-0", 0, "a"), newer, notVoting),
				with(mc("m-1", 1, "b"), deleting), mc("m-2", 2, "c")),
			want: want{action: "None", progressing: ReasonWaitingForSurge, inFlight: true, message: "at most 4"},
		},
		{
			name: "a missing index gets a Machine",
			in:   input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-2", 2, "c")),
			want: want{action: "Create 1 b 1", progressing: ReasonCreatingMissing, counts: &[4]int32{2, 2, 2, 1}},
		},
		{
			name: "a duplicate made through a stale cache: the newer is deleted once the older votes",
			in:   input(OnDelete, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), mc("m-2", 2, "c"), with(mc("m-dup-1", 1, "b"), newer, notVoting)),
			want: want{action: "Delete m-dup-1"},
		},
		{
			name: "no failure domains: only the template counts",
			in:   input(RollingUpdate, nil, mc("m-0", 0, ""), with(mc("m-1", 1, ""), outdated), mc("m-2", 2, "")),
			want: want{action: "Create 1  1"},
		},
		{
			name: "Inactive: nothing is done",
			in: func() Input {
				in := input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "a"), mc("m-2", 2, "a"))
				in.Active = false
				return in
			}(),
			want: want{action: "None", progressing: ReasonInactive + "=False"},
		},
		{
			name: "replicas other than 3 or 5 are refused",
			in: func() Input {
				in := input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "a"))
				in.Replicas = 4
				return in
			}(),
			want: want{action: "None", progressing: ReasonBlocked + "=False", degraded: ReasonInvalidReplicas, message: "spec.replicas"},
		},
		{
			name: "Recreate is refused",
			in:   input("Recreate", abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), mc("m-2", 2, "c")),
			want: want{action: "None", degraded: ReasonUnsupportedStrategy, message: "spec.strategy.type"},
		},
		{
			name: "problems found while gathering stop everything",
			in: func() Input {
				in := input(RollingUpdate, abc, mc("m-0", 0, "a"), with(mc("m-1", 1, "b"), deleting), mc("m-2", 2, "c"))
				in.Problems = []Problem{{ReasonUnsupportedPlatform, "spec.template.machines_v1beta1_machine_openshift_io.failureDomains.platform", "BareMetal"}}
				return in
			}(),
			want: want{action: "None", degraded: ReasonUnsupportedPlatform, message: "failureDomains.platform: BareMetal"},
		},
		{
			name: "a selector that matches no Machine",
			in:   input(RollingUpdate, abc),
			want: want{action: "None", degraded: ReasonNoMachinesSelected, message: "spec.selector"},
		},
		{
			name: "more indexes than replicas",
			in:   input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), mc("m-2", 2, "c"), mc("m-3", 3, "a")),
			want: want{action: "None", degraded: ReasonTooManyIndexes, message: "spec.replicas"},
		},
		{
			name: "a Machine name with no index",
			in:   input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), Machine{Name: "odd", IndexErr: "no index", Phase: PhaseRunning}),
			want: want{action: "None", degraded: ReasonMachineNameHasNoIndex, message: "Machine odd metadata.name"},
		},
		{
			name: "a control-plane Node with no Machine",
			in: func() Input {
				in := input(RollingUpdate, abc, mc("m-0", 0, "a"), with(mc("m-1", 1, "a"), deleting), mc("m-2", 2, "c"))
				in.Nodes = []Node{{Name: "m-0"}, {Name: "stray", InternalIPs: []string{"10.0.0.9"}}}
				return in
			}(),
			want: want{action: "None", degraded: ReasonNodeWithoutMachine, message: "Node stray"},
		},
		{
			name: "a Node is tied to its Machine by address before the nodeRef is set",
			in: func() Input {
				m2 := mc("m-2", 2, "c")
				m2.NodeName, m2.Addresses = "", []string{"10.0.0.3", "ip-10-0-0-3"}
				in := input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), m2)
				in.Nodes = []Node{{Name: "m-0"}, {Name: "m-1"}, {Name: "ip-10-0-0-3"}, {Name: "other", InternalIPs: []string{"10.0.0.3"}}}
				return in
			}(),
			want: want{action: "None", degraded: ""},
		},
		{
			name: "a Failed replacement is deleted and its count kept on the Machine it replaces",
			in: input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), with(mc("m-2", 2, "c"), outdated),
				with(mc("m-n-2", 2, "c"), failed, attempt(1), newer)),
			want: want{action: "DeleteFailed m-n-2 m-2 1", progressing: ReasonRetryingFailed, degraded: ReasonMachineFailed, message: "no capacity"},
		},
		{
			name: "after a failure the next attempt waits for the backoff",
			in: input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"),
				with(mc("m-2", 2, "c"), outdated, carries(2, t0.Add(2*time.Hour-5*time.Second)))),
			want: want{action: "None", progressing: ReasonRetryingFailed, retryAfter: 15 * time.Second, message: "attempt 3 of 3"},
		},
		{
			name: "after the backoff the next attempt is created",
			in: input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"),
				with(mc("m-2", 2, "c"), outdated, carries(1, t0.Add(time.Hour)))),
			want: want{action: "Create 2 c 2"},
		},
		{
			name: "OnDelete: the deleting Machine carries the count",
			in: input(OnDelete, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"),
				with(mc("m-2", 2, "c"), deleting, carries(1, t0.Add(time.Hour)))),
			want: want{action: "Create 2 c 2", progressing: ReasonReplacingDeleted},
		},
		{
			name: "the last attempt failed: Degraded, and nothing more is created or deleted",
			in: input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), with(mc("m-2", 2, "c"), outdated, carries(2, t0)),
				with(mc("m-n-2", 2, "c"), failed, attempt(3), newer)),
			want: want{action: "None", progressing: ReasonBlocked + "=False", degraded: ReasonReplacementFailed, message: "attempt 3 of 3"},
		},
		{
			name: "a Failed Machine alone at its index gets the next attempt beside it",
			in: input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"),
				with(mc("m-n-2", 2, "c"), failed, attempt(1), func(m *Machine) { m.Created = t0 })),
			want: want{action: "Create 2 c 2", degraded: ReasonMachineFailed},
		},
		{
			name: "then the Failed Machine is deleted at once",
			in: input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"),
				with(mc("m-n-2", 2, "c"), failed, attempt(1)), with(mc("m-m-2", 2, "c"), attempt(2), phase("Provisioning"), newer)),
			want: want{action: "Delete m-n-2", degraded: ReasonMachineFailed},
		},
		{
			name: "OnDelete: a Failed Machine this controller did not create is only reported",
			in:   input(OnDelete, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), with(mc("m-2", 2, "c"), failed)),
			want: want{action: "None", degraded: ReasonMachineFailed, message: "delete it to have it replaced"},
		},
		{
			name: "five replicas in three domains",
			in: func() Input {
				in := input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), mc("m-2", 2, "c"), mc("m-3", 3, "c"), mc("m-4", 4, "c"))
				in.Replicas = 5
				return in
			}(),
			want: want{action: "Create 3 a 1", progressing: ReasonRebalancing, message: "index 3 moves from c to a"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkDecision(t, Plan(tc.in), tc.want)
		})
	}
}

// TestPlanNeverExceedsSurge drives Plan through a full rolling update of three outdated
// Machines, playing the quorum controller and the machine controller, and checks the
// invariants at every step: never more than replicas+1 Machines, never fewer than replicas
// voting, one index at a time.
func TestPlanNeverExceedsSurge(t *testing.T) {
	ms := []Machine{with(mc("m-0", 0, "a"), outdated), with(mc("m-1", 1, "a"), outdated), with(mc("m-2", 2, "a"), outdated)}
	var order []string
	for step := 0; step < 100; step++ {
		in := input(RollingUpdate, abc, ms...)
		d := Plan(in)
		voting := 0
		for _, m := range ms {
			if m.Voting {
				voting++
			}
		}
		if len(ms) > 4 || voting < 3 {
			t.Fatalf("step %d: %d Machines, %d voting: %v", step, len(ms), voting, ms)
		}
		switch d.Action.Kind {
		case Create:
			name := fmt.Sprintf("m-new%d-%d", step, d.Action.Index)
			order = append(order, fmt.Sprintf("%d->%s", d.Action.Index, d.Action.Domain))
			ms = append(ms, Machine{Name: name, Index: d.Action.Index, Domain: d.Action.Domain, Updated: true, Phase: "Provisioning", Created: t0.Add(time.Duration(step) * time.Hour)})
		case Delete:
			for i := range ms {
				if ms[i].Name == d.Action.Machine {
					ms[i].Deleting = true
				}
			}
		case None:
			progressed := false
			for i := range ms {
				switch {
				case ms[i].Deleting:
					// The quorum controller removes the member once the replacement votes,
					// then the Machine goes.
					ms = append(ms[:i], ms[i+1:]...)
					progressed = true
				case ms[i].Phase == "Provisioning":
					ms[i].Phase = PhaseRunning
					progressed = true
				case ms[i].Phase == PhaseRunning && !ms[i].Voting:
					ms[i].Voting = true
					progressed = true
				}
				if progressed {
					break
				}
			}
			if !progressed {
				if got := strings.Join(order, " "); got != "0->a 1->b 2->c" {
					t.Fatalf("replacement order %q, want 0->a 1->b 2->c", got)
				}
				if d.Status.Progressing.Reason != ReasonAllReplicasUpdated {
					t.Fatalf("ended with Progressing %s: %s", d.Status.Progressing.Reason, d.Status.Progressing.Message)
				}
				return
			}
		default:
			t.Fatalf("unexpected %s", d.Action)
		}
	}
	t.Fatal("did not converge in 100 steps")
}

// checkDecision checks a Plan decision against w.
func checkDecision(t *testing.T, d Decision, w want) {
	t.Helper()
	if got := actionString(d.Action); w.action != "" && got != w.action {
		t.Errorf("action %q (%s), want %q", got, d.Action, w.action)
	}
	if w.progressing != "" {
		reason, status := w.progressing, metav1.ConditionTrue
		if r, ok := strings.CutSuffix(reason, "=False"); ok {
			reason, status = r, metav1.ConditionFalse
		}
		if p := d.Status.Progressing; p.Reason != reason || p.Status != status {
			t.Errorf("Progressing %s/%s (%s), want %s/%s", p.Status, p.Reason, p.Message, status, reason)
		}
	}
	deg := d.Status.Degraded
	switch {
	case w.degraded == "" && deg.Status != metav1.ConditionFalse:
		t.Errorf("Degraded %s/%s (%s), want False", deg.Status, deg.Reason, deg.Message)
	case w.degraded != "" && (deg.Status != metav1.ConditionTrue || deg.Reason != w.degraded):
		t.Errorf("Degraded %s/%s (%s), want True/%s", deg.Status, deg.Reason, deg.Message, w.degraded)
	}
	if w.degraded != "" && d.Action.Kind != None && !strings.HasPrefix(deg.Reason, "Machine") {
		t.Errorf("a problem (%s) must stop every action, got %s", deg.Reason, d.Action)
	}
	if w.inFlight && !d.InFlight {
		t.Errorf("InFlight false, want true")
	}
	if d.RetryAfter != w.retryAfter {
		t.Errorf("RetryAfter %s, want %s", d.RetryAfter, w.retryAfter)
	}
	if w.message != "" && !strings.Contains(d.Status.Progressing.Message+" | "+deg.Message, w.message) {
		t.Errorf("messages %q | %q do not mention %q", d.Status.Progressing.Message, deg.Message, w.message)
	}
	if c := w.counts; c != nil {
		got := [4]int32{d.Status.Replicas, d.Status.ReadyReplicas, d.Status.UpdatedReplicas, d.Status.UnavailableReplicas}
		if got != *c {
			t.Errorf("replicas/ready/updated/unavailable %v, want %v", got, *c)
		}
	}
}
