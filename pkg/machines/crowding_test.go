package machines

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestRebalanceNeverCrowdsAZone plays whole rolling rebalances step by step (create the
// replacement where Plan says, then delete the old Machine once Plan asks) from every layout
// of three Machines over up to four zones, to every failure-domain list, and checks at every
// step that no zone holds more Machines, deleting ones included, than both at the start and at
// the end: the list itself may force a zone to fill up, the walk never does.
func TestRebalanceNeverCrowdsAZone(t *testing.T) {
	zones := []string{"a", "b", "c", "d"}
	lists := [][]string{{"a"}, {"a", "b"}, {"a", "c"}, {"b", "c"}, {"a", "b", "c"}, {"a", "b", "c", "d"}, {"b", "c", "d"}}
	walks := 0
	for l0 := range zones {
		for l1 := range zones {
			for l2 := range zones {
				layout := []string{zones[l0], zones[l1], zones[l2]}
				for _, list := range lists {
					walks++
					if msg := walk(layout, list); msg != "" {
						t.Errorf("layout %v to domains %v: %s", layout, list, msg)
					}
				}
			}
		}
	}
	if walks != 64*len(lists) {
		t.Fatalf("walked %d rebalances", walks)
	}
}

// walk plays a RollingUpdate rebalance of layout to domains and returns what went wrong.
func walk(layout, domains []string) string {
	var ms []Machine
	for i, z := range layout {
		ms = append(ms, mc(fmt.Sprintf("m-%d", i), i, z))
	}
	count := func(ms []Machine) map[string]int {
		c := map[string]int{}
		for _, m := range ms {
			c[m.Domain]++
		}
		return c
	}
	var history [][]Machine
	var steps []string
	for step := 0; step < 20; step++ {
		history = append(history, slices.Clone(ms))
		d := Plan(input(RollingUpdate, domains, ms...))
		a := d.Action
		switch a.Kind {
		case None:
			history = append(history, slices.Clone(ms))
			if msg := crowded(history, count); msg != "" {
				return msg + " after " + strings.Join(steps, "; ")
			}
			for _, m := range ms {
				if !slices.Contains(domains, m.Domain) {
					return fmt.Sprintf("ends with %s in unlisted zone %s after %s", m.Name, m.Domain, strings.Join(steps, "; "))
				}
			}
			return ""
		case Create:
			steps = append(steps, fmt.Sprintf("create %d in %s", a.Index, a.Domain))
			ms = append(ms, mc(fmt.Sprintf("r%d-%d", step, a.Index), a.Index, a.Domain))
		case Delete:
			steps = append(steps, "delete "+a.Machine)
			ms = slices.DeleteFunc(ms, func(m Machine) bool { return m.Name == a.Machine })
		default:
			return fmt.Sprintf("unexpected %s", a)
		}
	}
	return "no end after 20 steps: " + strings.Join(steps, "; ")
}

// crowded says which zone, at which step of history, holds more Machines than both at the
// start and at the end.
func crowded(history [][]Machine, count func([]Machine) map[string]int) string {
	start, end := count(history[0]), count(history[len(history)-1])
	for i, snap := range history {
		for z, n := range count(snap) {
			if n > start[z] && n > end[z] {
				return fmt.Sprintf("zone %s holds %d Machines at step %d (%d at the start, %d at the end)", z, n, i, start[z], end[z])
			}
		}
	}
	return ""
}

// TestCrowdedSeesACrowdedStep: the check fires on a walk that moves index 1 from b to a and
// then on to c, passing through three Machines in a where there were two and end up two.
func TestCrowdedSeesACrowdedStep(t *testing.T) {
	count := func(ms []Machine) map[string]int {
		c := map[string]int{}
		for _, m := range ms {
			c[m.Domain]++
		}
		return c
	}
	a0, b1, a2 := mc("m-0", 0, "a"), mc("m-1", 1, "b"), mc("m-2", 2, "a")
	history := [][]Machine{
		{a0, b1, a2},
		{a0, b1, a2, mc("r-1", 1, "a")},
		{a0, a2, mc("r-1", 1, "a")},
		{a0, a2, mc("r-1", 1, "a"), mc("s-1", 1, "c")},
		{a0, a2, mc("s-1", 1, "c")},
	}
	if msg := crowded(history, count); !strings.Contains(msg, "zone a holds 3 Machines at step 1") {
		t.Fatalf("crowded = %q; want zone a at step 1", msg)
	}
}
