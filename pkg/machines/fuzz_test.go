package machines

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// FuzzPlan builds inputs from bytes and checks Plan's promises: it never panics, acts on no
// problem, creates only below replicas+1 Machines, deletes only a live Machine whose index
// keeps a live Machine that is not Failed, and does nothing while Inactive.
func FuzzPlan(f *testing.F) {
	f.Add([]byte{3, 1, 0, 0, 1, 1, 2, 2}, uint8(3), true)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(2), false)
	f.Add([]byte{1, 200, 37, 4, 9, 9, 100, 3, 5, 7, 11, 13, 17, 19, 23, 29}, uint8(1), true)
	f.Fuzz(func(t *testing.T, data []byte, ndomains uint8, rolling bool) {
		domains := []string{"a", "b", "c", "d"}[:ndomains%5]
		strategy := OnDelete
		if rolling {
			strategy = RollingUpdate
		}
		in := input(strategy, domains)
		phases := []string{PhaseRunning, PhaseRunning, "Provisioning", PhaseFailed}
		for i := 0; i+1 < len(data) && len(in.Machines) < 7; i += 2 {
			a, b := data[i], data[i+1]
			m := Machine{
				Name:     fmt.Sprintf("m-%d-%d", i, a%5),
				Index:    int(a % 5),
				Deleting: b&1 != 0,
				Phase:    phases[(b>>1)%4],
				Voting:   b&8 != 0,
				Updated:  b&16 != 0,
				Attempt:  int(b>>5) % 4,
				Created:  t0.Add(time.Duration(i) * time.Minute),
			}
			if len(domains) > 0 && b&32 == 0 {
				m.Domain = domains[int(a/5)%len(domains)]
			}
			in.Machines = append(in.Machines, m)
		}
		in.Active = len(data) == 0 || data[0]&128 == 0
		d := Plan(in)

		a := d.Action
		if a.Kind != None && !in.Active {
			t.Fatalf("acted while Inactive: %s", a)
		}
		if a.Kind != None && d.Degraded() && d.Status.Degraded.Reason != ReasonMachineFailed {
			t.Fatalf("acted (%s) on a problem: %s", a, d.Status.Degraded.Message)
		}
		switch a.Kind {
		case Create:
			if len(in.Machines) >= in.Replicas+1 {
				t.Fatalf("created with %d Machines: %s", len(in.Machines), a)
			}
			if a.Index < 0 || a.Attempt < 1 || a.Attempt > in.MaxAttempts && in.MaxAttempts > 0 {
				t.Fatalf("bad create %+v", a)
			}
			if len(domains) > 0 && !slices.Contains(domains, a.Domain) {
				t.Fatalf("create in unlisted domain %q", a.Domain)
			}
		case Delete, DeleteFailed:
			i := slices.IndexFunc(in.Machines, func(m Machine) bool { return m.Name == a.Machine })
			if i < 0 || in.Machines[i].Deleting {
				t.Fatalf("deletes a Machine that is not live: %s", a)
			}
			if a.Kind == DeleteFailed {
				if in.Machines[i].Phase != PhaseFailed || a.Carrier == "" || a.Carrier == a.Machine {
					t.Fatalf("bad DeleteFailed %+v", a)
				}
				break
			}
			if !slices.ContainsFunc(in.Machines, func(m Machine) bool {
				return m.Index == a.Index && m.Name != a.Machine && !m.Deleting && m.Phase != PhaseFailed && m.Updated
			}) {
				t.Fatalf("deletes %s leaving index %d without a live Machine that fits", a.Machine, a.Index)
			}
		}
	})
}
