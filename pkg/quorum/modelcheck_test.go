package quorum

import (
	"fmt"
	"slices"
	"strings"
)

// The model checker: a breadth-first walk over every world reachable from a family of initial
// worlds, where the successors of a world are the planner's one action (Decide is
// deterministic) and every enabled environment event. Worlds are deduplicated by their
// canonical key, so the walk ends once nothing new is reached; parent pointers give the
// shortest path to any world.
//
// Checked on every planner step (against the model's truth, not against Map):
//   - quorum: an action never takes the healthy voting members below quorum when they were
//     not below it already;
//   - release: a hook is released only on a deleting Machine that truly runs no member, while
//     no voting member is unaccounted for (Decision.Unaccounted) and no voting member runs on
//     a Machine that is gone;
//   - learners: never two learners, and no learner is added for a Machine that is deleting,
//     may not hold a member, or already runs one;
//   - promotion: never of a learner whose Machine is deleting, gone or may not hold a member;
//   - connected promotion: no promotion that etcd applies makes a voter of a learner cut off
//     from the leader (the quorum property counts such a voter as unhealthy);
//   - no guess: an action names the Machine that truly runs the member it acts on, and no
//     member of a running Machine is removed (except a learner of an ineligible Machine or
//     one that never started in time).
//
// Liveness, once the faults stop: from every world, a fair run (the planner's action while it
// changes something, else the first benign event: a replacement appears, a learner starts or
// catches up, a learner that is down or cut off stays so past the timeout, the health window
// passes; no member dies or recovers, no link is cut or mends, no Machine is deleted and
// no learner fails to start any more, so a dead member stays dead) must within maxFairSteps reach a world with no deleting Machine
// (every hook released), or stop in a world that needs a person and says so: the cluster has
// no quorum, or every deleting Machine's EtcdMember condition has ReasonBlocked. A run that
// cycles, stops anywhere else, or takes longer fails.

// decider is the planner under check: Decide, or a mutation of it.
type decider func(State) Decision

type checkConfig struct {
	decide   decider
	initials []world
	// maxStates stops the walk (reported as not exhausted) rather than exhaust memory.
	maxStates    int
	maxFairSteps int
	// rules turns parts of the model off, for the mutant tests.
	rules modelRules
	// known are findings already reported: a liveness failure whose stuck world one of them
	// matches is counted under its name instead of failing the check.
	known []knownFinding
}

type knownFinding struct {
	name  string
	match func(w world, d Decision) bool
}

type violation struct {
	property string
	detail   string
	script   string
}

type checkResult struct {
	states, transitions, initials int
	depth                         int
	exhausted                     bool
	// livenessSteps is the longest fair run to a resolution; released and blocked count the
	// worlds whose fair run ends with every hook released, or in a world needing a person.
	livenessSteps     int
	released, blocked int
	// known counts the worlds whose fair run ends in a known finding, by its name.
	known map[string]int
	// violations holds the shortest counterexample of each broken property (and, for
	// liveness, of each way of getting stuck), in the order found.
	violations []*violation
}

func (r checkResult) String() string {
	s := fmt.Sprintf("%d distinct states from %d initial worlds, %d transitions, depth %d", r.states, r.initials, r.transitions, r.depth)
	if !r.exhausted {
		s += " (stopped at the state bound: not exhaustive)"
	}
	return s + fmt.Sprintf("; liveness: %d worlds release every hook within %d planner/benign steps at most, %d stop where a person is needed and the condition says so",
		r.released, r.livenessSteps, r.blocked)
}

const (
	noFair   = -1 // no planner change and no benign event: the world is stuck
	unknown  = -2 // successors not computed (the walk stopped at the state bound)
	stuckOK  = 1 << 0
	goalFlag = 1 << 1
)

type checker struct {
	cfg    checkConfig
	keys   []string
	index  map[string]int32
	parent []int32
	level  []uint16
	fair   []int32
	flags  []uint8
	trans  int
}

func (c *checker) visit(w world, from int32) int32 {
	k := w.key()
	if i, ok := c.index[k]; ok {
		return i
	}
	i := int32(len(c.keys))
	c.index[k] = i
	c.keys = append(c.keys, k)
	c.parent = append(c.parent, from)
	lvl := uint16(0)
	if from >= 0 {
		lvl = c.level[from] + 1
	}
	c.level = append(c.level, lvl)
	c.fair = append(c.fair, unknown)
	c.flags = append(c.flags, 0)
	return i
}

func modelCheck(cfg checkConfig) checkResult {
	if cfg.maxFairSteps == 0 {
		cfg.maxFairSteps = 64
	}
	c := &checker{cfg: cfg, index: map[string]int32{}}
	for _, w := range cfg.initials {
		w.settle()
		c.visit(w, -1)
	}
	res := checkResult{initials: len(c.keys), exhausted: true}
	broken := map[string]bool{}
	for i := int32(0); int(i) < len(c.keys); i++ {
		if cfg.maxStates > 0 && len(c.keys) >= cfg.maxStates {
			res.exhausted = false
			break
		}
		w := decodeWorld(c.keys[i])
		d := cfg.decide(w.state(cfg.rules))
		n, refused, err := w.apply(d.Action, c.cfg.rules)
		if v := checkStep(w, d, n, refused, err); v != nil {
			// The first is the shortest: the walk is breadth-first. Go on to find the others.
			if !broken[v.property] {
				broken[v.property] = true
				v.script = c.script(i) + stepScript(len(c.path(i)), "planner: "+d.Action.String(), refusedNote(refused), n, d)
				res.violations = append(res.violations, v)
			}
			if err != nil {
				continue
			}
		}
		p := c.visit(n, i)
		c.trans++
		var benign int32 = noFair
		for _, e := range w.events() {
			j := c.visit(e.next, i)
			c.trans++
			if e.benign && benign == noFair {
				benign = j
			}
		}
		switch {
		case n.key() != c.keys[i]:
			c.fair[i] = p
		default:
			c.fair[i] = benign
		}
		if !w.hasDeleting() {
			c.flags[i] |= goalFlag
		}
		if needsPerson(w, d) {
			c.flags[i] |= stuckOK
		}
	}
	res.states, res.transitions = len(c.keys), c.trans
	for _, l := range c.level {
		res.depth = max(res.depth, int(l))
	}
	c.liveness(&res)
	return res
}

func (w world) hasDeleting() bool {
	for _, m := range w.machines {
		if m.status == slotDeleting {
			return true
		}
	}
	return false
}

// needsPerson: the cluster has no quorum, or every deleting Machine's condition says it is
// blocked on something a person (or a recovery) must do.
func needsPerson(w world, d Decision) bool {
	if !w.quorate() {
		return true
	}
	for i, m := range w.machines {
		if m.status == slotDeleting && d.Conditions[slotName(i)].Reason != ReasonBlocked {
			return false
		}
	}
	return true
}

func refusedNote(refused string) string {
	if refused == "" {
		return ""
	}
	return " (refused: " + refused + ")"
}

// checkStep checks the planner's step from w (decision d) to n.
func checkStep(w world, d Decision, n world, refused string, err error) *violation {
	a := d.Action
	if err != nil {
		return &violation{property: "the action makes sense", detail: err.Error()}
	}
	before, after := w.census(), n.census()
	if after.Learners > 1 {
		return &violation{property: "never two learners", detail: fmt.Sprintf("%d learners after %s", after.Learners, a)}
	}
	if before.Healthy >= before.Quorum() && after.Healthy < after.Quorum() {
		return &violation{property: "quorum", detail: fmt.Sprintf("%s takes etcd from %s to %s", a, before, after)}
	}
	if strings.Contains(refused, "health window") {
		return &violation{property: "no hammering", detail: fmt.Sprintf("%s is refused by etcd for its health window, which the planner knows: %s", a, refused)}
	}
	slot := slotOf(a.Machine)
	switch a.Kind {
	case ReleaseHook:
		if w.machines[slot].status != slotDeleting {
			return &violation{property: "release", detail: fmt.Sprintf("the hook of %s is released but the Machine is not being deleted", a.Machine)}
		}
		for i, m := range w.members {
			if m.host == slot {
				return &violation{property: "release", detail: fmt.Sprintf("the hook of %s is released while member %x (%s) runs on it", a.Machine, i+1, peerURL(int(m.host), m.peer))}
			}
		}
		if len(d.Unaccounted) > 0 {
			return &violation{property: "release", detail: fmt.Sprintf("the hook of %s is released while voting members %v are unaccounted for", a.Machine, d.Unaccounted)}
		}
		for i, m := range w.members {
			if !m.learner && !w.exists(m.host) {
				return &violation{property: "release", detail: fmt.Sprintf("the hook of %s is released while voting member %x runs on no existing Machine", a.Machine, i+1)}
			}
		}
	case AddLearner:
		if before.Learners > 0 {
			return &violation{property: "never two learners", detail: fmt.Sprintf("%s while a learner exists", a)}
		}
		if m := w.machines[slot]; m.status != slotRunning || m.ineligible {
			return &violation{property: "learners", detail: fmt.Sprintf("%s: the Machine is %s or may not hold a member", a, [...]string{"", "running", "deleting", "gone"}[m.status])}
		}
		for i, m := range w.members {
			if m.host == slot {
				return &violation{property: "learners", detail: fmt.Sprintf("%s: member %x already runs on that Machine", a, i+1)}
			}
		}
	case Promote, RemoveMember, MoveLeader:
		if a.MemberID == 0 || int(a.MemberID) > len(w.members) {
			break // reported by apply
		}
		m := w.members[a.MemberID-1]
		host := w.machines[m.host]
		if a.Machine != "" && a.Machine != slotName(int(m.host)) {
			return &violation{property: "no guess", detail: fmt.Sprintf("%s, but member %x truly runs on %s", a, a.MemberID, slotName(int(m.host)))}
		}
		if a.Kind == Promote && m.learner && refused == "" && m.cut != linked {
			return &violation{property: "connected promotion", detail: fmt.Sprintf("%s: learner %x is cut off from the leader and etcd makes it a voter that receives no entries", a, a.MemberID)}
		}
		if a.Kind == Promote && m.learner && (host.status != slotRunning || host.ineligible) {
			return &violation{property: "promotion", detail: fmt.Sprintf("%s: learner %x runs on %s, which is %s or may not hold a member", a, a.MemberID, slotName(int(m.host)), [...]string{"", "running", "deleting", "gone"}[host.status])}
		}
		if a.Kind == RemoveMember && host.status == slotRunning && (!m.learner || !host.ineligible && !m.late) {
			return &violation{property: "no guess", detail: fmt.Sprintf("%s, but its Machine %s is running and not being deleted", a, slotName(int(m.host)))}
		}
	}
	return nil
}

// path is the chain of world indices from an initial world to i.
func (c *checker) path(i int32) []int32 {
	var p []int32
	for ; i >= 0; i = c.parent[i] {
		p = append(p, i)
	}
	slices.Reverse(p)
	return p
}

// label finds the step that leads from world `from` to world `to`.
func (c *checker) label(from, to int32) (string, Decision) {
	w := decodeWorld(c.keys[from])
	d := c.cfg.decide(w.state(c.cfg.rules))
	if n, refused, err := w.apply(d.Action, c.cfg.rules); err == nil && n.key() == c.keys[to] {
		return "planner: " + d.Action.String() + refusedNote(refused), d
	}
	for _, e := range w.events() {
		if e.next.key() == c.keys[to] {
			return "environment: " + e.label(), d
		}
	}
	return "?", d
}

// script is the shortest path to world i, one step and the world after it at a time.
func (c *checker) script(i int32) string {
	p := c.path(i)
	var b strings.Builder
	b.WriteString("(member IDs are renumbered 1, 2, ... in ID order after every step, as the model keeps them dense)\ninitial world:\n")
	b.WriteString(decodeWorld(c.keys[p[0]]).String())
	for s := 1; s < len(p); s++ {
		l, _ := c.label(p[s-1], p[s])
		n := decodeWorld(c.keys[p[s]])
		b.WriteString(stepScript(s, l, "", n, Decision{}))
	}
	return b.String()
}

func stepScript(step int, label, note string, after world, d Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "step %d: %s%s\n", step, label, note)
	b.WriteString(after.String())
	if d.Conditions != nil {
		b.WriteString(conditionsOf(d))
	}
	return b.String()
}

func conditionsOf(d Decision) string {
	var names []string
	for n := range d.Conditions {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "    condition %s: %s: %s\n", n, d.Conditions[n].Reason, d.Conditions[n].Message)
	}
	for _, r := range d.Reports {
		fmt.Fprintf(&b, "    report: %s\n", r)
	}
	return b.String()
}

// liveness walks the fair successor of every world, memoised: the fair run is deterministic,
// so a world's outcome is that of its successor one step later.
func (c *checker) liveness(res *checkResult) {
	const (
		todo     = -2
		onStack  = -3
		unknownV = -4
		bad      = -1
	)
	steps := make([]int32, len(c.keys))
	end := make([]int32, len(c.keys))
	for i := range steps {
		steps[i] = todo
	}
	// The first world of each way of getting stuck, keyed by the deleting Machines'
	// conditions where the fair run stops.
	var firstBad []int32
	kinds := map[string]bool{}
	var stack []int32
	for i := range int32(len(c.keys)) {
		if steps[i] != todo {
			continue
		}
		stack = stack[:0]
		j := i
		var outcome, at int32
		for {
			if steps[j] >= 0 || steps[j] == bad || steps[j] == unknownV {
				outcome, at = steps[j], end[j]
				break
			}
			if steps[j] == onStack { // the fair run cycles
				outcome = bad
				break
			}
			if c.flags[j]&goalFlag != 0 || (c.fair[j] == noFair && c.flags[j]&stuckOK != 0) {
				outcome, at = 0, j
				steps[j], end[j] = 0, j
				break
			}
			if c.fair[j] == unknown { // beyond the explored bound: no verdict
				outcome = unknownV
				break
			}
			if c.fair[j] == noFair {
				outcome = bad
				break
			}
			steps[j] = onStack
			stack = append(stack, j)
			j = c.fair[j]
		}
		for k := len(stack) - 1; k >= 0; k-- {
			if outcome >= 0 {
				outcome++
				if outcome > int32(c.cfg.maxFairSteps) {
					outcome = bad
				}
			}
			steps[stack[k]], end[stack[k]] = outcome, at
		}
		if steps[i] == bad {
			k, isKnown := c.stuckKind(i)
			if isKnown {
				if res.known == nil {
					res.known = map[string]int{}
				}
				res.known[k]++
				continue
			}
			if !kinds[k] {
				kinds[k] = true
				firstBad = append(firstBad, i)
			}
		}
	}
	for i, s := range steps {
		if s < 0 {
			continue
		}
		res.livenessSteps = max(res.livenessSteps, int(s))
		if c.flags[end[i]]&goalFlag != 0 {
			res.released++
		} else {
			res.blocked++
		}
	}
	for _, i := range firstBad {
		res.violations = append(res.violations, c.livenessViolation(i))
	}
}

func (c *checker) livenessViolation(i int32) *violation {
	var b strings.Builder
	b.WriteString(c.script(i))
	b.WriteString("faults stop here; the planner and a cooperative environment play on:\n")
	seen := map[int32]bool{}
	step := len(c.path(i))
	detail := ""
	for j := i; ; {
		if seen[j] {
			detail = "the fair run cycles without releasing every hook of a deleting Machine"
			break
		}
		seen[j] = true
		f := c.fair[j]
		if f == noFair {
			w := decodeWorld(c.keys[j])
			d := c.cfg.decide(w.state(c.cfg.rules))
			fmt.Fprintf(&b, "stuck: the planner says %q and no benign event is enabled\n", d.Action.String())
			b.WriteString(conditionsOf(d))
			detail = "stuck with a deleting Machine whose condition does not say it is Blocked, while etcd has quorum"
			break
		}
		if len(seen) > c.cfg.maxFairSteps {
			detail = fmt.Sprintf("no resolution within %d steps", c.cfg.maxFairSteps)
			break
		}
		l, _ := c.label(j, f)
		b.WriteString(stepScript(step, l, "", decodeWorld(c.keys[f]), Decision{}))
		step++
		j = f
	}
	return &violation{property: "liveness", detail: detail, script: b.String()}
}

// stuckKind names how the fair run from i fails: a known finding, or it cycles, or the reasons
// of the deleting Machines' conditions where it stops.
func (c *checker) stuckKind(i int32) (string, bool) {
	seen := map[int32]bool{}
	for c.fair[i] >= 0 && !seen[i] {
		seen[i] = true
		i = c.fair[i]
	}
	if c.fair[i] >= 0 {
		return "cycle", false
	}
	w := decodeWorld(c.keys[i])
	d := c.cfg.decide(w.state(c.cfg.rules))
	for _, k := range c.cfg.known {
		if k.match(w, d) {
			return k.name, true
		}
	}
	var reasons []string
	for j, m := range w.machines {
		if m.status == slotDeleting {
			reasons = append(reasons, d.Conditions[slotName(j)].Reason)
		}
	}
	slices.Sort(reasons)
	return string(d.Action.Kind) + ":" + strings.Join(slices.Compact(reasons), ","), false
}
