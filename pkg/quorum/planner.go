package quorum

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"
)

// Decide returns the one next step for s and the condition of every Machine.
//
// Members are placed on Machines by Map first. A voting member that Map cannot place on
// exactly one Machine is unaccounted for: while one exists, no hook is released (it may be
// the member of the Machine being released) and no learner is added (it may be the member
// of the Machine the learner would be for); it is itself never acted on.
//
// The phases run in this order of precedence, each returning as soon as it decides an
// action; the invariant each keeps is written above it:
//  1. dropHopelessLearners removes a learner that will never be promoted;
//  2. releaseUnclaimedHooks releases the hooks (preDrain and preTerminate, together) of a
//     deleting Machine no member points at;
//  3. removeDeadOfDeleting removes the unhealthy voting member of a deleting Machine;
//  4. promoteLearner promotes a started learner of a live Machine;
//  5. removeReplaced removes the voting member of a deleting Machine once its replacement
//     was promoted;
//  6. addLearner adds a learner for a Machine that has no member.
//
// Between 5 and 6, blockDeleting names on the deleting Machines the dead voting members of
// live Machines that hold them back; when no phase applies, idle says why nothing is done.
//
// While AlarmHold holds membership changes (a CORRUPT alarm, or alarms unread), only phase 2
// runs, since releasing a hook changes no membership, and holdChanges says on every Machine
// why nothing else is done.
func Decide(s State) Decision {
	v := newView(s)
	d := v.decide()
	for _, m := range v.machines {
		if note := hookNote(m, s.PreTerminateHook); note != "" {
			if c, ok := d.Conditions[m.Name]; ok {
				c.Message += "; " + note
				d.Conditions[m.Name] = c
			}
		}
	}
	return d
}

// Notes the planner adds to a Machine's condition message, after what it says otherwise.
const (
	// NoteExcludeDrain begins the note on a Machine that carries the exclude-node-draining
	// annotation.
	NoteExcludeDrain = "the Machine carries the exclude-node-draining annotation"
	// NoteNoPreTerminateHook begins the note on a deleting Machine that still has the
	// preDrain hook but not the preTerminate one.
	NoteNoPreTerminateHook = "the preTerminate hook is not on this deleting Machine"
)

// hookNote is what a Machine's condition adds about the hooks that hold it: the
// exclude-node-draining annotation, with which OpenShift's Machine controller skips the
// drain and every preDrain hook, so that only the preTerminate hook holds the instance; and
// a deleting Machine whose preTerminate hook is gone (removed by hand, or the Machine was
// deleting before the controller kept one) while its preDrain hook is still held.
func hookNote(m Machine, preTerminate bool) string {
	var notes []string
	if m.ExcludeDrain {
		switch {
		case !preTerminate:
			notes = append(notes, NoteExcludeDrain+": its drain, and the preDrain hook with it, is skipped, and no preTerminate hook is kept, so nothing holds its instance while its etcd member votes")
		case m.Deleting && !m.HasHook && !m.HasPreTerminateHook:
			notes = append(notes, NoteExcludeDrain+": its drain, and the preDrain hook with it, is skipped")
		case m.Deleting && !m.HasPreTerminateHook:
			notes = append(notes, NoteExcludeDrain+": its drain, and the preDrain hook with it, is skipped, and its preTerminate hook is gone, so nothing holds its instance while its etcd member votes")
		default:
			notes = append(notes, NoteExcludeDrain+": its drain, and the preDrain hook with it, is skipped; the preTerminate hook holds its instance until its etcd member is removed")
		}
	}
	if preTerminate && m.Deleting && m.HasHook && !m.HasPreTerminateHook {
		notes = append(notes, NoteNoPreTerminateHook+" and is not added back: should its drain be skipped, the preDrain hook does not hold it")
	}
	return strings.Join(notes, "; ")
}

func (v *view) decide() Decision {
	if v.held != "" {
		if d, ok := v.releaseUnclaimedHooks(); ok {
			return d
		}
		return v.holdChanges()
	}
	if d, ok := v.dropHopelessLearners(); ok {
		return d
	}
	if d, ok := v.releaseUnclaimedHooks(); ok {
		return d
	}
	if d, ok := v.removeDeadOfDeleting(); ok {
		return d
	}
	if d, ok := v.promoteLearner(); ok {
		return d
	}
	if d, ok := v.removeReplaced(); ok {
		return d
	}
	v.blockDeleting()
	if d, ok := v.addLearner(); ok {
		return d
	}
	return v.idle()
}

// view is what the phases of Decide share: computed once from the State, then read by every
// phase, which fills in the Decision d.
type view struct {
	s State
	d Decision
	// machines is s.Machines sorted by name, byName the same Machines by name.
	machines []Machine
	byName   map[string]Machine
	// members holds every member by ID, with the Machine Map placed it on.
	members map[uint64]Member
	census  Census
	// learners holds the learners sorted by ID.
	learners []Member
	// blockedByUnaccounted says, while a voting member is unaccounted for, which ones and
	// that no hook is released and no learner is added; "" when every one is accounted for.
	blockedByUnaccounted string
	// deadLive holds the unhealthy voting members that are not of a deleting Machine: those
	// of live Machines and those that match no Machine.
	deadLive []Member
	// held is AlarmHold's reason, "" when alarms hold no membership change.
	held string
}

// newView places the members, counts them, and fills in the parts of the Decision that
// describe the state rather than the step: the mapping, the members, the unaccounted voting
// members, the fault tolerance, every Machine's base condition, whether a change is in
// flight, and the reports of what is never acted on.
func newView(s State) *view {
	v := &view{s: s, d: Decision{Conditions: map[string]Condition{}}, byName: map[string]Machine{}, members: map[uint64]Member{}}
	d := &v.d
	v.machines = slices.Clone(s.Machines)
	sort.Slice(v.machines, func(i, j int) bool { return v.machines[i].Name < v.machines[j].Name })
	for _, m := range v.machines {
		v.byName[m.Name] = m
	}
	d.Mapping = Map(v.machines, s.Members)
	d.Members = make([]Member, len(s.Members))
	v.census = CensusOf(s.Members)
	for i, m := range s.Members {
		m.Machine = d.Mapping.Of[m.ID].Machine
		m.Healthy = m.Healthy && len(m.Alarms) == 0
		d.Members[i] = m
		v.members[m.ID] = m
		if m.Learner {
			v.learners = append(v.learners, m)
			continue
		}
		if !d.Mapping.Accounted(m.ID) {
			d.Unaccounted = append(d.Unaccounted, m.ID)
		}
	}
	slices.Sort(d.Unaccounted)
	sort.Slice(v.learners, func(i, j int) bool { return v.learners[i].ID < v.learners[j].ID })
	d.FaultTolerance = v.census.Tolerance()
	v.held = AlarmHold(AlarmsOf(s.Members), s.AlarmsUnread)
	d.AlarmsUnread = s.AlarmsUnread

	for _, m := range v.machines {
		d.Conditions[m.Name] = baseCondition(m, *d, v.memberOf, v.learners, v.machines, s.PreTerminateHook)
		if m.Deleting && v.holds(m) {
			d.InFlight = true
		}
	}
	if v.census.Healthy < v.census.Voters || len(v.learners) > 0 || len(d.Unaccounted) > 0 {
		d.InFlight = true
	}
	for _, m := range d.Members {
		if p := d.Mapping.Of[m.ID]; p.Problem != "" {
			role := "voting member"
			if m.Learner {
				role = "learner"
			}
			d.Reports = append(d.Reports, fmt.Sprintf("%s %s is not acted on: %s", role, describe(m), p.Problem))
		}
	}
	for _, m := range v.machines {
		if addr, ok := d.Mapping.Shared[m.Name]; ok {
			d.Reports = append(d.Reports, fmt.Sprintf("Machine %s reports address %s, which another Machine reports too; no learner is added for it", m.Name, addr))
		}
	}
	if len(d.Unaccounted) > 0 {
		var names []string
		for _, id := range d.Unaccounted {
			names = append(names, fmt.Sprintf("%s (%s)", describe(v.members[id]), d.Mapping.Of[id].Problem))
		}
		v.blockedByUnaccounted = "voting member " + strings.Join(names, "; voting member ") +
			" is not accounted for, so no hook is released and no learner is added: give the Machine that runs it an address or Node name that identifies it, or remove the member by hand if no Machine runs it"
	}
	for _, m := range d.Members {
		if m.Learner || m.Healthy {
			continue
		}
		if owner, ok := v.byName[m.Machine]; ok && owner.Deleting {
			continue
		}
		v.deadLive = append(v.deadLive, m)
	}
	return v
}

// memberOf returns the member Map placed on the named Machine, if any.
func (v *view) memberOf(machine string) (Member, bool) {
	id, ok := v.d.Mapping.MemberOf[machine]
	if !ok {
		return Member{}, false
	}
	return v.members[id], true
}

// act makes a the Decision's action. A change is then in flight, and a deleting Machine whose
// member is removed, or has leadership moved away, says so in its condition.
func (v *view) act(a Action) Decision {
	v.d.Action = a
	v.d.InFlight = true
	if m, ok := v.byName[a.Machine]; ok && m.Deleting && (a.Kind == RemoveMember || a.Kind == MoveLeader) {
		v.d.Conditions[a.Machine] = Condition{Status: "False", Reason: ReasonRemovingMember, Message: a.String()}
	}
	return v.d
}

// dropHopelessLearners removes a learner that will never be promoted: a placed learner whose
// Machine is deleting, gone or may not hold a member, a learner that matches no Machine at
// all, and a learner that has not been healthy (never started, or stopped answering) for
// LearnerStartTimeout, whose Machine's condition then says it is removed and why. Learners
// never count, so this is always safe, and etcd admits one learner at a time, so such a
// learner would keep any other from being added. An ambiguous or invalid learner is only
// reported, never acted on. Learners are taken by ID; the first that qualifies is removed.
func (v *view) dropHopelessLearners() (Decision, bool) {
	s := v.s
	for _, l := range v.learners {
		p := v.d.Mapping.Of[l.ID]
		owner, ok := v.byName[p.Machine]
		var why string
		timedOut := false
		switch p.Kind {
		case Ambiguous, Invalid:
			continue // reported, never acted on
		case Unmatched:
			why = "it matches no Machine"
		}
		switch {
		case why != "":
		case ok && owner.Deleting:
			why = "its Machine is being deleted"
		case ok && owner.Ineligible != "":
			why = "its Machine may not hold an etcd member: " + owner.Ineligible
		case !l.Healthy && s.LearnerStartTimeout > 0 && l.DownFor >= s.LearnerStartTimeout:
			what := "has not started"
			if l.Started {
				what = "has not answered"
			}
			why = fmt.Sprintf("it %s for %s; the slot is freed for another learner", what, s.LearnerStartTimeout)
			timedOut = true
			v.d.Conditions[p.Machine] = Condition{Status: "False", Reason: ReasonLearner,
				Message: fmt.Sprintf("learner %x %s for %s and is removed; a new learner is added once no other Machine waits for the slot. Check that etcd runs on this Machine", l.ID, what, s.LearnerStartTimeout)}
		default:
			continue
		}
		return v.act(Action{Kind: RemoveMember, Machine: p.Machine, MemberID: l.ID, StartTimedOut: timedOut, Reason: "learner is not promoted because " + why}), true
	}
	return Decision{}, false
}

// releaseUnclaimedHooks releases the hook of a deleting Machine that no member points at,
// once every voting member is accounted for. The hook is kept while any member claims the
// Machine, placed on it or not (a claim that cannot be placed with certainty is named in the
// condition), and while a voting member is unaccounted for, since that member may be the one
// the Machine runs. Machines are taken by name; the first that qualifies is released.
//
// A deleting Machine whose preDrain hook someone removed while its preTerminate hook is still
// on it has its preTerminate hook released at once, whatever its member: removing the
// preDrain hook by hand is the escape hatch, and the preTerminate hook is never kept past it.
func (v *view) releaseUnclaimedHooks() (Decision, bool) {
	for _, m := range v.machines {
		if !m.Deleting || !v.holds(m) {
			continue
		}
		if !m.HasHook {
			why := "the preDrain hook was removed by someone else; the preTerminate hook goes with it"
			if m.ReleasedByUs {
				why = "the preDrain hook was released; the preTerminate hook goes with it"
			}
			return v.act(Action{Kind: ReleaseHook, Machine: m.Name, Reason: why}), true
		}
		if claimed := v.d.Mapping.Claimed[m.Name]; len(claimed) > 0 {
			if _, placed := v.d.Mapping.MemberOf[m.Name]; !placed {
				v.d.Conditions[m.Name] = Condition{Status: "False", Reason: ReasonBlocked,
					Message: fmt.Sprintf("member %s may belong to this Machine but cannot be placed with certainty (%s); the hook is kept", hexIDs(claimed), v.d.Mapping.Of[claimed[0]].Problem)}
			}
			continue
		}
		if v.blockedByUnaccounted != "" {
			v.d.Conditions[m.Name] = Condition{Status: "False", Reason: ReasonBlocked, Message: "the hook is kept: " + v.blockedByUnaccounted}
			continue
		}
		why := "no etcd member's peer URL or name points at this Machine, and every voting member is accounted for"
		v.d.Conditions[m.Name] = Condition{Status: "False", Reason: ReasonHookReleased, Message: "hook released: " + why}
		return v.act(Action{Kind: ReleaseHook, Machine: m.Name, Reason: why}), true
	}
	return Decision{}, false
}

// removeDeadOfDeleting removes the unhealthy voting member of a deleting Machine, if quorum is
// kept, before anything is promoted. A dead member is removed before its replacement learner
// is promoted: removing it shrinks the quorum at once (3 voters with 1 dead become 2 of 2),
// while promoting first would make a 4-member cluster whose quorum of 3 needs every live
// member, for as long as the learner takes to be promoted.
func (v *view) removeDeadOfDeleting() (Decision, bool) {
	if a, ok := v.removeDeleting(false); ok {
		return v.act(a), true
	}
	return Decision{}, false
}

// promoteLearner promotes a started learner of a live Machine that may hold a member (etcd
// refuses until it has caught up), only while every voting member answers and the promotion
// passes Check. A promotion turns 3 voters into 4 whose quorum of 3 needs every healthy one,
// so a dead voting member blocks it, whether of a Machine that is being deleted (whose removal
// by removeDeadOfDeleting comes first) or of one that is not: a promotion would make a
// cluster whose larger quorum needs every live member. A learner held back says why in its
// Machine's condition. Learners are taken by ID; the first that qualifies is promoted.
func (v *view) promoteLearner() (Decision, bool) {
	census := v.census
	for _, l := range v.learners {
		p := v.d.Mapping.Of[l.ID]
		owner, ok := v.byName[p.Machine]
		if !l.Started || p.Kind != Placed || !ok || owner.Deleting || owner.Ineligible != "" {
			continue
		}
		if census.Healthy < census.Voters {
			v.d.Conditions[l.Machine] = Condition{Status: "False", Reason: ReasonLearner,
				Message: fmt.Sprintf("learner %x at %.0f%%, not promoted while %d of %d voting members are unhealthy", l.ID, 100*l.Progress, census.Voters-census.Healthy, census.Voters)}
			continue
		}
		if ok, why := Check(census, ChangePromote, Target{Listed: true, Learner: true, Healthy: l.Healthy}); !ok {
			v.d.Conditions[l.Machine] = Condition{Status: "False", Reason: ReasonLearner, Message: fmt.Sprintf("%s; not promoted yet: %s", learnerProgress(l), why)}
			continue
		}
		return v.act(Action{Kind: Promote, Machine: l.Machine, MemberID: l.ID,
			Reason: fmt.Sprintf("learner has reached %.0f%% of the leader's index", 100*l.Progress)}), true
	}
	return Decision{}, false
}

// removeReplaced removes the voting member of a deleting Machine once a replacement has been
// promoted (voters exceed the desired count), if quorum is kept; leadership is moved away
// first if it leads. While the replacement was promoted less than HealthWindow ago, the
// removal waits (etcd would refuse it) and the Machine's condition says until when
// (settling). While consumers of the published endpoints hold the removal and no other member
// can go instead, it waits too. Either wait is a decided step with no change.
//
// A dead voting member of a Machine that is not being deleted does not block this: removing
// a surplus healthy member of a deleting Machine passes the same quorum check as any removal,
// and leaves the tolerance where it was before the replacement was promoted (4 voters with 1
// dead, tolerance 0, become 3 with 1 dead, tolerance 0), so the cluster is no worse.
func (v *view) removeReplaced() (Decision, bool) {
	a, ok := v.removeDeleting(true)
	if !ok {
		return Decision{}, false
	}
	if a.Kind == None {
		v.d.Action, v.d.InFlight = a, true
		return v.d, true
	}
	return v.act(a), true
}

// blockDeleting runs once no removal applies. It names, with ReasonBlocked, on every deleting
// Machine that still has its hook and a voting member, the dead voting members of live
// Machines (or of no Machine) that keep its replacement from being promoted, and what
// unblocks it; nothing is named when there are none. A learner may still be added afterwards.
func (v *view) blockDeleting() {
	if len(v.deadLive) == 0 {
		return
	}
	var names []string
	for _, m := range v.deadLive {
		where := "which matches no Machine"
		if m.Machine != "" {
			where = "of running Machine " + m.Machine
		}
		names = append(names, fmt.Sprintf("%s %s", describe(m), where))
	}
	subject := "voting member " + names[0] + " is"
	if len(names) > 1 {
		subject = "voting members " + strings.Join(names, " and ") + " are"
	}
	for _, m := range v.machines {
		mem, ok := v.memberOf(m.Name)
		if !m.Deleting || !m.HasHook || !ok || mem.Learner {
			continue
		}
		v.d.Conditions[m.Name] = Condition{Status: "False", Reason: ReasonBlocked, Message: fmt.Sprintf(
			"member %x stays and no replacement is promoted while %s unhealthy: either change would leave no margin. It goes on once that member answers again, or once its Machine is deleted (a MachineHealthCheck with maxUnhealthy 1 does this) so that its dead member is removed first",
			mem.ID, subject)}
	}
}

// addLearner adds a learner for a running, hooked Machine that may hold a member, has an
// InternalIP no other Machine reports (the first of which parses as an address), and has no
// member, placed or claimed, when no learner exists and every voting member is accounted for,
// and no voting member turned Voting less than HealthWindow ago (etcd would refuse the
// addition; settling). While one did, the addition waits: a decided step with no change,
// whose Machine's condition says until when. Machines are taken by name, except that those
// whose last learner timed out go last; the first that qualifies gets the learner.
func (v *view) addLearner() (Decision, bool) {
	if len(v.learners) > 0 || v.blockedByUnaccounted != "" {
		return Decision{}, false
	}
	candidates := slices.Clone(v.machines)
	sort.SliceStable(candidates, func(i, j int) bool { return !candidates[i].LearnerTimedOut && candidates[j].LearnerTimedOut })
	for _, m := range candidates {
		ips := m.InternalIPs()
		_, shared := v.d.Mapping.Shared[m.Name]
		if m.Deleting || !m.Running || !v.hooked(m) || m.Ineligible != "" || len(v.d.Mapping.Claimed[m.Name]) > 0 || len(ips) == 0 || shared {
			continue
		}
		if _, err := ParseIP(ips[0]); err != nil {
			continue
		}
		peer := "https://" + net.JoinHostPort(strings.Trim(ips[0], "[]"), "2380")
		if fresh, until := settling(v.s, v.d.Members, v.byName); fresh != nil {
			msg := fmt.Sprintf("a learner is added for this Machine at %s, once member %x of Machine %s has voted for etcd's health interval (%s): etcd refuses an addition before then",
				until.UTC().Format(time.RFC3339), fresh.ID, fresh.Machine, HealthWindow)
			v.d.Conditions[m.Name] = Condition{Status: "False", Reason: ReasonNotMember, Message: msg}
			v.d.Action, v.d.InFlight = Action{Kind: None, Machine: m.Name, Reason: msg, Until: until}, true
			return v.d, true
		}
		return v.act(Action{Kind: AddLearner, Machine: m.Name, PeerURL: peer,
			Reason: "running control-plane Machine has no etcd member"}), true
	}
	return Decision{}, false
}

// holdChanges is the Decision while AlarmHold holds membership changes: nothing is done, and
// every Machine whose hook is still to be acted on, or that holds or waits for a member,
// says why with ReasonBlocked after what its condition would otherwise say (its Status is
// kept: a voting member is still one).
func (v *view) holdChanges() Decision {
	for _, m := range v.machines {
		c := v.d.Conditions[m.Name]
		if c.Reason == ReasonHookReleased || c.Reason == ReasonHookRemovedExternally {
			continue
		}
		v.d.Conditions[m.Name] = Condition{Status: c.Status, Reason: ReasonBlocked, Message: c.Message + "; " + v.held}
	}
	v.d.Action, v.d.InFlight = Action{Kind: None, Reason: v.held}, true
	return v.d
}

// idle is the Decision when no phase applies. While a voting member is unaccounted for, the
// action says so, and so does every deleting, hooked Machine whose voting member stays;
// otherwise the action sums up the members and the fault tolerance.
func (v *view) idle() Decision {
	if v.blockedByUnaccounted != "" {
		for _, m := range v.machines {
			if mem, ok := v.memberOf(m.Name); ok && m.Deleting && m.HasHook && !mem.Learner {
				v.d.Conditions[m.Name] = Condition{Status: "False", Reason: ReasonBlocked,
					Message: fmt.Sprintf("member %x stays and its replacement gets no learner: %s", mem.ID, v.blockedByUnaccounted)}
			}
		}
		v.d.Action = Action{Kind: None, Reason: v.blockedByUnaccounted}
		return v.d
	}
	v.d.Action = Action{Kind: None, Reason: fmt.Sprintf("%d voting members (%d healthy), %d learners, fault tolerance %d", v.census.Voters, v.census.Healthy, len(v.learners), v.d.FaultTolerance)}
	return v.d
}

// removeDeleting picks the voting member of a deleting Machine to remove: with surplus false,
// only unhealthy ones; with surplus true, any one once voters exceed the desired count. Each
// removal must keep quorum, and a leader has leadership moved away first.
func (v *view) removeDeleting(surplus bool) (Action, bool) {
	var candidates []Member
	for _, m := range v.machines {
		if !m.Deleting {
			continue
		}
		if mem, ok := v.memberOf(m.Name); ok && !mem.Learner {
			candidates = append(candidates, mem)
		}
	}
	// Unhealthy first; then the one whose failure domain holds the most voting members, as
	// the reference etcd operator and cluster-api do, so the domains even out; then by
	// Machine name. Example: voters on Machines in a, a, b, c with the a and b ones deleting
	// and healthy: the a one goes first (a holds 2, b holds 1).
	voters := map[string]int{}
	for _, m := range v.machines {
		if mem, ok := v.memberOf(m.Name); ok && !mem.Learner && m.Domain != "" {
			voters[m.Domain]++
		}
	}
	used := func(mem Member) int { return voters[v.byName[mem.Machine].Domain] }
	sort.SliceStable(candidates, func(i, j int) bool {
		a, b := candidates[i], candidates[j]
		if a.Healthy != b.Healthy {
			return !a.Healthy
		}
		if ua, ub := used(a), used(b); ua != ub {
			return ua > ub
		}
		return a.Machine < b.Machine
	})
	var waiting Action
	for _, c := range candidates {
		if surplus && v.census.Voters <= v.s.Desired {
			continue
		}
		if !surplus && c.Healthy {
			continue
		}
		ok, why := Check(v.census, ChangeRemove, Target{Listed: true, Healthy: c.Healthy})
		if !ok {
			v.d.Conditions[c.Machine] = Condition{Status: "False", Reason: ReasonWaitingForReplacement,
				Message: fmt.Sprintf("member %x is not removed: %s", c.ID, why)}
			continue
		}
		// Consumers of the published endpoints (pkg/endpoints) must have moved off the
		// member first; another candidate they have moved off may go meanwhile. A dead
		// member's hold lets the plan go on to its replacement.
		if held := v.s.RemovalHeld[c.ID]; held != "" {
			v.d.Conditions[c.Machine] = Condition{Status: "False", Reason: ReasonWaitingForEndpointConsumers, Message: held}
			if surplus && waiting.Kind == "" {
				waiting = Action{Kind: None, Machine: c.Machine, MemberID: c.ID, Reason: held}
			}
			continue
		}
		if c.Healthy {
			if fresh, until := settling(v.s, v.d.Members, v.byName); fresh != nil {
				msg := fmt.Sprintf("member %x is removed at %s, once member %x of Machine %s has voted for etcd's health interval (%s): etcd refuses the removal before then",
					c.ID, until.UTC().Format(time.RFC3339), fresh.ID, fresh.Machine, HealthWindow)
				v.d.Conditions[c.Machine] = Condition{Status: "False", Reason: ReasonWaitingForHealthWindow, Message: msg}
				return Action{Kind: None, Machine: c.Machine, MemberID: c.ID, Reason: msg, Until: until}, true
			}
		}
		if c.Leader {
			if to := pickLeader(v.d.Members, v.byName, c.ID); to != 0 {
				return Action{Kind: MoveLeader, Machine: c.Machine, MemberID: c.ID, To: to,
					Reason: "the member to remove leads the cluster"}, true
			}
			v.d.Conditions[c.Machine] = Condition{Status: "False", Reason: ReasonWaitingForReplacement,
				Message: fmt.Sprintf("member %x leads and no healthy voting member of a live Machine can take over", c.ID)}
			continue
		}
		reason := fmt.Sprintf("a replacement was promoted (%d voting members, %d desired); %s", v.census.Voters, v.s.Desired, why)
		if !c.Healthy {
			reason = "the member is unhealthy; " + why
		}
		return Action{Kind: RemoveMember, Machine: c.Machine, MemberID: c.ID, Reason: reason}, true
	}
	if waiting.Kind != "" {
		return waiting, true
	}
	return Action{}, false
}

// settling returns the healthy voting member whose Machine's condition turned Voting most
// recently, less than HealthWindow (and the second a stored time may be short by) before
// s.Now, and when that window ends; nil when there is none.
//
// etcd (strict reconfiguration checks, on by default) refuses, with "unhealthy cluster":
//   - to remove a healthy voting member unless, leaving it out, the members connected to the
//     one handling the request for the last HealthWindow still reach the quorum of those
//     left. A replacement was started just before its promotion, so for about HealthWindow
//     its own connections are too young: with 3 voters and the new one promoted (4 voters),
//     a removal it handles counts only itself as connected, leaving 0 of the 3 others where
//     etcd wants 2;
//   - to add a member, a learner too, unless every voting member has been connected for the
//     last HealthWindow: right after the cluster (or a member) started, it is not.
//
// So those changes wait for the window instead of being refused. The condition turns Voting
// in the pass that promotes the member, or the first pass that sees it, never before the
// member started.
func settling(s State, members []Member, machines map[string]Machine) (*Member, time.Time) {
	if s.Now.IsZero() {
		return nil, time.Time{}
	}
	var fresh *Member
	var until time.Time
	for i, m := range members {
		mach, ok := machines[m.Machine]
		if m.Learner || !m.Healthy || !ok || mach.VotingSince.IsZero() {
			continue
		}
		// A condition's lastTransitionTime is stored to the second, so a second is added.
		if end := mach.VotingSince.Add(HealthWindow + time.Second); s.Now.Before(end) && end.After(until) {
			fresh, until = &members[i], end
		}
	}
	return fresh, until
}

// pickLeader chooses who leads once the leader's member is removed, among the healthy
// voting members of live Machines (not one being deleted, which would hand leadership on
// again; never a learner, which cannot lead): ChooseLeader's rule. 0 when there is none.
func pickLeader(all []Member, machines map[string]Machine, not uint64) uint64 {
	var cands []LeaderCandidate
	for _, m := range all {
		if m.ID == not || m.Learner || !m.Healthy {
			continue
		}
		if mach, ok := machines[m.Machine]; !ok || mach.Deleting {
			continue
		}
		cands = append(cands, LeaderCandidate{ID: m.ID, Name: m.Name, Index: m.Index})
	}
	if i := ChooseLeader(cands); i >= 0 {
		return cands[i].ID
	}
	return 0
}

// LeaderIndexSlack is how many raft entries below the highest index a candidate may be and
// still count as up to date as the most up-to-date one. The members' indexes of one reading
// are read one status call after another while writes go on, so two followers that both have
// every entry differ by what was committed in between: a few entries, rarely dozens. Ranking
// on that difference would pick a different member from one reading to the next (and `status`
// and the controller would name different targets); a member really behind is behind by far
// more.
const LeaderIndexSlack = 100

// LeaderCandidate is a member that may take leadership over: healthy, voting, and not of a
// deleting Machine (the caller has checked).
type LeaderCandidate struct {
	ID    uint64
	Name  string
	Index uint64
}

// ChooseLeader returns which of cands should lead: among those whose raft index is within
// LeaderIndexSlack of the highest (the most up to date, so the hand-over waits on no log
// catch-up), the one whose name sorts first, then the lowest ID. -1 when cands is empty.
// The controller's planner and etcdmember's own hand-over before a removal both use it.
func ChooseLeader(cands []LeaderCandidate) int {
	var top uint64
	for _, c := range cands {
		top = max(top, c.Index)
	}
	best := -1
	for i, c := range cands {
		if c.Index+LeaderIndexSlack < top {
			continue
		}
		if b := cands[max(best, 0)]; best < 0 || c.Name < b.Name || (c.Name == b.Name && c.ID < b.ID) {
			best = i
		}
	}
	return best
}

// holds says one of the controller's hooks is still on the Machine: a deleting Machine is held
// while either is.
func (v *view) holds(m Machine) bool {
	return m.HasHook || (v.s.PreTerminateHook && m.HasPreTerminateHook)
}

// hooked says every hook the controller keeps is on the Machine: a live Machine gets a
// learner only once it is protected.
func (v *view) hooked(m Machine) bool {
	return m.HasHook && (!v.s.PreTerminateHook || m.HasPreTerminateHook)
}

func baseCondition(m Machine, d Decision, memberOf func(string) (Member, bool), learners []Member, all []Machine, preTerminate bool) Condition {
	mem, has := memberOf(m.Name)
	_, shared := d.Mapping.Shared[m.Name]
	claimed := d.Mapping.Claimed[m.Name]
	if !m.Deleting {
		switch {
		case !has && len(claimed) > 0:
			return Condition{"False", ReasonBlocked, fmt.Sprintf("member %s may belong to this Machine but cannot be placed with certainty: %s", hexIDs(claimed), d.Mapping.Of[claimed[0]].Problem)}
		case has && mem.Learner:
			if !mem.Started && !mem.CatchUp.Snapshot.InFlight && !mem.CatchUp.Snapshot.Delivered {
				return Condition{"False", ReasonLearner, fmt.Sprintf("learner %x added, waiting for its etcd to start", mem.ID)}
			}
			return Condition{"False", ReasonLearner, learnerProgress(mem)}
		case has:
			health := "healthy"
			switch {
			case len(mem.Alarms) > 0:
				health = "unhealthy: etcd alarm " + strings.Join(mem.Alarms, ", ") + " is active"
			case !mem.Healthy:
				health = "unhealthy"
			}
			return Condition{"True", ReasonVoting, fmt.Sprintf("voting member %x, %s", mem.ID, health)}
		case shared:
			return Condition{"False", ReasonNotMember, "another Machine reports the same address; no learner is added until that is resolved"}
		case m.Ineligible != "":
			return Condition{"False", ReasonNotMember, "this Machine may not hold an etcd member: " + m.Ineligible}
		case len(m.InternalIPs()) == 0:
			return Condition{"False", ReasonNotMember, "Machine has no InternalIP; no learner is added until it has one"}
		case !m.HasHook:
			return Condition{"False", ReasonNotMember, "no etcd member; waiting for the preDrain hook before adding a learner"}
		case preTerminate && !m.HasPreTerminateHook:
			return Condition{"False", ReasonNotMember, "no etcd member; waiting for the preTerminate hook before adding a learner"}
		case len(d.Unaccounted) > 0:
			return Condition{"False", ReasonNotMember, "no etcd member; no learner is added while a voting member is not accounted for"}
		default:
			return Condition{"False", ReasonNotMember, "no etcd member yet"}
		}
	}
	if !m.HasHook {
		if m.ReleasedByUs {
			return Condition{"False", ReasonHookReleased, "hook released: the etcd member is gone"}
		}
		msg := "the preDrain hook was removed by someone else; it is not added back"
		if preTerminate && m.HasPreTerminateHook {
			msg += ", and the preTerminate hook is released with it"
		}
		if has {
			msg += fmt.Sprintf(", and member %x may be lost with the Machine before a replacement joins", mem.ID)
		}
		return Condition{"False", ReasonHookRemovedExternally, msg}
	}
	if has && mem.Learner {
		return Condition{"False", ReasonRemovingMember, fmt.Sprintf("learner %x of a deleting Machine will be removed", mem.ID)}
	}
	if !has {
		return Condition{"False", ReasonRemovingMember, "no etcd member left; releasing the hook"}
	}
	for _, l := range learners {
		if l.Machine != "" && l.Machine != m.Name {
			return Condition{"False", ReasonReplacementCatchingUp,
				fmt.Sprintf("replacement %s is %s; member %x stays until it is promoted", l.Machine, learnerProgress(l), mem.ID)}
		}
	}
	for _, o := range all {
		if !o.Deleting && o.Ineligible == "" && len(d.Mapping.Claimed[o.Name]) == 0 {
			return Condition{"False", ReasonWaitingForReplacement, fmt.Sprintf("replacement %s has no etcd member yet; member %x stays", o.Name, mem.ID)}
		}
	}
	return Condition{"False", ReasonWaitingForReplacement, fmt.Sprintf("waiting for a replacement Machine; member %x stays until one is promoted", mem.ID)}
}

// describe names a member by ID, name and peer URLs.
func describe(m Member) string {
	name := m.Name
	if name == "" {
		name = "unstarted"
	}
	return fmt.Sprintf("%x (%s, %s)", m.ID, name, strings.Join(m.PeerURLs, ","))
}

func hexIDs(ids []uint64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%x", id)
	}
	return strings.Join(parts, ", ")
}
