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
// The order of precedence, each step returning as soon as it applies:
//  1. a placed learner whose Machine is deleting, gone or may not hold a member, a learner
//     that matches no Machine at all, and a learner that has not been healthy (never started,
//     or stopped answering) for LearnerStartTimeout are removed (learners never count, so this is always safe, and
//     etcd admits one learner at a time). An ambiguous learner is only reported;
//  2. a deleting Machine that no member points at gets its hook released, once every voting
//     member is accounted for;
//  3. the unhealthy voting member of a deleting Machine is removed, if quorum is kept. A dead
//     member is removed before its replacement learner is promoted: removing it shrinks the
//     quorum at once (3 voters with 1 dead become 2 of 2), while promoting first would make a
//     4-member cluster whose quorum of 3 needs every live member, for as long as the learner
//     takes to be promoted;
//  4. a started learner of a live Machine is promoted (etcd refuses until it has caught up),
//     only while every voting member is healthy, for the same reason;
//  5. the voting member of a deleting Machine is removed once a replacement has been promoted
//     (voters exceed the desired count), if quorum is kept; leadership is moved away first if
//     it leads; while the replacement was promoted less than HealthWindow ago, the removal
//     waits (etcd would refuse it) and the Machine's condition says until when (settling);
//  6. a learner is added for a running, hooked Machine that may hold a member, has an
//     InternalIP no other Machine reports, and has no member, when no learner exists and
//     every voting member is accounted for, and no voting member turned Voting less than
//     HealthWindow ago (etcd would refuse the addition; settling).
//
// A dead voting member of a Machine that is not being deleted blocks step 4: a promotion
// would make a cluster whose larger quorum needs every live member. It does not block step
// 5: removing a surplus healthy member of a deleting Machine passes the same quorum check as
// any removal, and leaves the tolerance where it was before the replacement was promoted
// (4 voters with 1 dead, tolerance 0, become 3 with 1 dead, tolerance 0), so the cluster is
// no worse. When nothing else is left to do, the deleting Machines' conditions name the dead
// member with ReasonBlocked.
func Decide(s State) Decision {
	d := Decision{Conditions: map[string]Condition{}}
	machines := slices.Clone(s.Machines)
	sort.Slice(machines, func(i, j int) bool { return machines[i].Name < machines[j].Name })
	byName := map[string]Machine{}
	for _, m := range machines {
		byName[m.Name] = m
	}
	d.Mapping = Map(machines, s.Members)
	d.Members = make([]Member, len(s.Members))
	members := map[uint64]Member{}
	var census Census
	var learners []Member
	for i, m := range s.Members {
		m.Machine = d.Mapping.Of[m.ID].Machine
		d.Members[i] = m
		members[m.ID] = m
		if m.Learner {
			census.Learners++
			learners = append(learners, m)
			continue
		}
		census.Voters++
		if m.Healthy {
			census.Healthy++
		}
		if !d.Mapping.Accounted(m.ID) {
			d.Unaccounted = append(d.Unaccounted, m.ID)
		}
	}
	slices.Sort(d.Unaccounted)
	sort.Slice(learners, func(i, j int) bool { return learners[i].ID < learners[j].ID })
	d.FaultTolerance = census.Tolerance()
	memberOf := func(machine string) (Member, bool) {
		id, ok := d.Mapping.MemberOf[machine]
		if !ok {
			return Member{}, false
		}
		return members[id], true
	}

	for _, m := range machines {
		d.Conditions[m.Name] = baseCondition(m, d, memberOf, learners, machines)
		if m.Deleting && m.HasHook {
			d.InFlight = true
		}
	}
	if census.Healthy < census.Voters || len(learners) > 0 || len(d.Unaccounted) > 0 {
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
	for _, m := range machines {
		if addr, ok := d.Mapping.Shared[m.Name]; ok {
			d.Reports = append(d.Reports, fmt.Sprintf("Machine %s reports address %s, which another Machine reports too; no learner is added for it", m.Name, addr))
		}
	}
	set := func(a Action) Decision {
		d.Action = a
		d.InFlight = true
		if m, ok := byName[a.Machine]; ok && m.Deleting && (a.Kind == RemoveMember || a.Kind == MoveLeader) {
			d.Conditions[a.Machine] = Condition{Status: "False", Reason: ReasonRemovingMember, Message: a.String()}
		}
		return d
	}
	blockedByUnaccounted := ""
	if len(d.Unaccounted) > 0 {
		var names []string
		for _, id := range d.Unaccounted {
			names = append(names, fmt.Sprintf("%s (%s)", describe(members[id]), d.Mapping.Of[id].Problem))
		}
		blockedByUnaccounted = "voting member " + strings.Join(names, "; voting member ") +
			" is not accounted for, so no hook is released and no learner is added: give the Machine that runs it an address or Node name that identifies it, or remove the member by hand if no Machine runs it"
	}

	// 1. Learners that will never be promoted.
	for _, l := range learners {
		p := d.Mapping.Of[l.ID]
		owner, ok := byName[p.Machine]
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
			d.Conditions[p.Machine] = Condition{Status: "False", Reason: ReasonLearner,
				Message: fmt.Sprintf("learner %x %s for %s and is removed; a new learner is added once no other Machine waits for the slot. Check that etcd runs on this Machine", l.ID, what, s.LearnerStartTimeout)}
		default:
			continue
		}
		return set(Action{Kind: RemoveMember, Machine: p.Machine, MemberID: l.ID, StartTimedOut: timedOut, Reason: "learner is not promoted because " + why})
	}
	// 2. Hooks of deleting Machines that no member points at.
	for _, m := range machines {
		if !m.Deleting || !m.HasHook {
			continue
		}
		if claimed := d.Mapping.Claimed[m.Name]; len(claimed) > 0 {
			if _, placed := d.Mapping.MemberOf[m.Name]; !placed {
				d.Conditions[m.Name] = Condition{Status: "False", Reason: ReasonBlocked,
					Message: fmt.Sprintf("member %s may belong to this Machine but cannot be placed with certainty (%s); the hook is kept", hexIDs(claimed), d.Mapping.Of[claimed[0]].Problem)}
			}
			continue
		}
		if blockedByUnaccounted != "" {
			d.Conditions[m.Name] = Condition{Status: "False", Reason: ReasonBlocked, Message: "the hook is kept: " + blockedByUnaccounted}
			continue
		}
		why := "no etcd member's peer URL or name points at this Machine, and every voting member is accounted for"
		d.Conditions[m.Name] = Condition{Status: "False", Reason: ReasonHookReleased, Message: "hook released: " + why}
		return set(Action{Kind: ReleaseHook, Machine: m.Name, Reason: why})
	}
	// 3. Remove the dead members of deleting Machines before anything is promoted.
	if a, ok := removeDeleting(s, &d, machines, memberOf, byName, census, false); ok {
		return set(a)
	}
	// Dead voters of live Machines block steps 4 and 5.
	var deadLive []Member
	for _, m := range d.Members {
		if m.Learner || m.Healthy {
			continue
		}
		if owner, ok := byName[m.Machine]; ok && owner.Deleting {
			continue
		}
		deadLive = append(deadLive, m)
	}
	// 4. Promote a started learner of a live Machine, only while every voting member answers:
	// a promotion turns 3 voters into 4 whose quorum of 3 needs every healthy one.
	for _, l := range learners {
		p := d.Mapping.Of[l.ID]
		owner, ok := byName[p.Machine]
		if !l.Started || p.Kind != Placed || !ok || owner.Deleting || owner.Ineligible != "" {
			continue
		}
		if census.Healthy < census.Voters {
			d.Conditions[l.Machine] = Condition{Status: "False", Reason: ReasonLearner,
				Message: fmt.Sprintf("learner %x at %.0f%%, not promoted while %d of %d voting members are unhealthy", l.ID, 100*l.Progress, census.Voters-census.Healthy, census.Voters)}
			continue
		}
		if ok, why := Check(census, ChangePromote, Target{Listed: true, Learner: true, Healthy: l.Healthy}); !ok {
			d.Conditions[l.Machine] = Condition{Status: "False", Reason: ReasonLearner, Message: fmt.Sprintf("learner %x is not promoted: %s", l.ID, why)}
			continue
		}
		return set(Action{Kind: Promote, Machine: l.Machine, MemberID: l.ID,
			Reason: fmt.Sprintf("learner has reached %.0f%% of the leader's index", 100*l.Progress)})
	}
	// 5. The voting member of a deleting Machine, once a replacement was promoted.
	if a, ok := removeDeleting(s, &d, machines, memberOf, byName, census, true); ok {
		if a.Kind == None {
			d.Action, d.InFlight = a, true
			return d
		}
		return set(a)
	}
	if len(deadLive) > 0 {
		blockDeleting(&d, machines, memberOf, deadLive)
	}
	// 6. Add a learner for a new Machine: those whose last learner timed out go last.
	if len(learners) == 0 && blockedByUnaccounted == "" {
		candidates := slices.Clone(machines)
		sort.SliceStable(candidates, func(i, j int) bool { return !candidates[i].LearnerTimedOut && candidates[j].LearnerTimedOut })
		for _, m := range candidates {
			ips := m.InternalIPs()
			_, shared := d.Mapping.Shared[m.Name]
			if m.Deleting || !m.Running || !m.HasHook || m.Ineligible != "" || len(d.Mapping.Claimed[m.Name]) > 0 || len(ips) == 0 || shared {
				continue
			}
			if _, err := ParseIP(ips[0]); err != nil {
				continue
			}
			peer := "https://" + net.JoinHostPort(strings.Trim(ips[0], "[]"), "2380")
			if fresh, until := settling(s, d.Members, byName); fresh != nil {
				msg := fmt.Sprintf("a learner is added for this Machine at %s, once member %x of Machine %s has voted for etcd's health interval (%s): etcd refuses an addition before then",
					until.UTC().Format(time.RFC3339), fresh.ID, fresh.Machine, HealthWindow)
				d.Conditions[m.Name] = Condition{Status: "False", Reason: ReasonNotMember, Message: msg}
				d.Action, d.InFlight = Action{Kind: None, Machine: m.Name, Reason: msg, Until: until}, true
				return d
			}
			return set(Action{Kind: AddLearner, Machine: m.Name, PeerURL: peer,
				Reason: "running control-plane Machine has no etcd member"})
		}
	}
	if blockedByUnaccounted != "" {
		for _, m := range machines {
			if mem, ok := memberOf(m.Name); ok && m.Deleting && m.HasHook && !mem.Learner {
				d.Conditions[m.Name] = Condition{Status: "False", Reason: ReasonBlocked,
					Message: fmt.Sprintf("member %x stays and its replacement gets no learner: %s", mem.ID, blockedByUnaccounted)}
			}
		}
		d.Action = Action{Kind: None, Reason: blockedByUnaccounted}
		return d
	}
	d.Action = Action{Kind: None, Reason: fmt.Sprintf("%d voting members (%d healthy), %d learners, fault tolerance %d", census.Voters, census.Healthy, len(learners), d.FaultTolerance)}
	return d
}

// blockDeleting names, on every deleting Machine that still has a voting member, the dead
// voting members of live Machines that keep its replacement from going on, and what
// unblocks it.
func blockDeleting(d *Decision, machines []Machine, memberOf func(string) (Member, bool), dead []Member) {
	var names []string
	for _, m := range dead {
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
	for _, m := range machines {
		mem, ok := memberOf(m.Name)
		if !m.Deleting || !m.HasHook || !ok || mem.Learner {
			continue
		}
		d.Conditions[m.Name] = Condition{Status: "False", Reason: ReasonBlocked, Message: fmt.Sprintf(
			"member %x stays and no replacement is promoted while %s unhealthy: either change would leave no margin. It goes on once that member answers again, or once its Machine is deleted (a MachineHealthCheck with maxUnhealthy 1 does this) so that its dead member is removed first",
			mem.ID, subject)}
	}
}

// removeDeleting picks the voting member of a deleting Machine to remove: with surplus false,
// only unhealthy ones; with surplus true, any one once voters exceed the desired count. Each
// removal must keep quorum, and a leader has leadership moved away first.
func removeDeleting(s State, d *Decision, machines []Machine, memberOf func(string) (Member, bool), byName map[string]Machine, census Census, surplus bool) (Action, bool) {
	var candidates []Member
	for _, m := range machines {
		if !m.Deleting {
			continue
		}
		if mem, ok := memberOf(m.Name); ok && !mem.Learner {
			candidates = append(candidates, mem)
		}
	}
	// Unhealthy first; then the one whose failure domain holds the most voting members, as
	// the reference etcd operator and cluster-api do, so the domains even out; then by
	// Machine name. Example: voters on Machines in a, a, b, c with the a and b ones deleting
	// and healthy: the a one goes first (a holds 2, b holds 1).
	voters := map[string]int{}
	for _, m := range machines {
		if mem, ok := memberOf(m.Name); ok && !mem.Learner && m.Domain != "" {
			voters[m.Domain]++
		}
	}
	used := func(mem Member) int { return voters[byName[mem.Machine].Domain] }
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
		if surplus && census.Voters <= s.Desired {
			continue
		}
		if !surplus && c.Healthy {
			continue
		}
		ok, why := Check(census, ChangeRemove, Target{Listed: true, Healthy: c.Healthy})
		if !ok {
			d.Conditions[c.Machine] = Condition{Status: "False", Reason: ReasonWaitingForReplacement,
				Message: fmt.Sprintf("member %x is not removed: %s", c.ID, why)}
			continue
		}
		// Consumers of the published endpoints (pkg/endpoints) must have moved off the
		// member first; another candidate they have moved off may go meanwhile. A dead
		// member's hold lets the plan go on to its replacement.
		if held := s.RemovalHeld[c.ID]; held != "" {
			d.Conditions[c.Machine] = Condition{Status: "False", Reason: ReasonWaitingForEndpointConsumers, Message: held}
			if surplus && waiting.Kind == "" {
				waiting = Action{Kind: None, Machine: c.Machine, MemberID: c.ID, Reason: held}
			}
			continue
		}
		if c.Healthy {
			if fresh, until := settling(s, d.Members, byName); fresh != nil {
				msg := fmt.Sprintf("member %x is removed at %s, once member %x of Machine %s has voted for etcd's health interval (%s): etcd refuses the removal before then",
					c.ID, until.UTC().Format(time.RFC3339), fresh.ID, fresh.Machine, HealthWindow)
				d.Conditions[c.Machine] = Condition{Status: "False", Reason: ReasonWaitingForHealthWindow, Message: msg}
				return Action{Kind: None, Machine: c.Machine, MemberID: c.ID, Reason: msg, Until: until}, true
			}
		}
		if c.Leader {
			if to := pickLeader(d.Members, byName, c.ID); to != 0 {
				return Action{Kind: MoveLeader, Machine: c.Machine, MemberID: c.ID, To: to,
					Reason: "the member to remove leads the cluster"}, true
			}
			d.Conditions[c.Machine] = Condition{Status: "False", Reason: ReasonWaitingForReplacement,
				Message: fmt.Sprintf("member %x leads and no healthy voting member of a live Machine can take over", c.ID)}
			continue
		}
		reason := fmt.Sprintf("a replacement was promoted (%d voting members, %d desired); %s", census.Voters, s.Desired, why)
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

// pickLeader chooses a healthy voting member of a live Machine, lowest ID first.
func pickLeader(all []Member, machines map[string]Machine, not uint64) uint64 {
	var best uint64
	for _, m := range all {
		if m.ID == not || m.Learner || !m.Healthy {
			continue
		}
		if mach, ok := machines[m.Machine]; !ok || mach.Deleting {
			continue
		}
		if best == 0 || m.ID < best {
			best = m.ID
		}
	}
	return best
}

func baseCondition(m Machine, d Decision, memberOf func(string) (Member, bool), learners []Member, all []Machine) Condition {
	mem, has := memberOf(m.Name)
	_, shared := d.Mapping.Shared[m.Name]
	claimed := d.Mapping.Claimed[m.Name]
	if !m.Deleting {
		switch {
		case !has && len(claimed) > 0:
			return Condition{"False", ReasonBlocked, fmt.Sprintf("member %s may belong to this Machine but cannot be placed with certainty: %s", hexIDs(claimed), d.Mapping.Of[claimed[0]].Problem)}
		case has && mem.Learner:
			if !mem.Started {
				return Condition{"False", ReasonLearner, fmt.Sprintf("learner %x added, waiting for its etcd to start", mem.ID)}
			}
			return Condition{"False", ReasonLearner, fmt.Sprintf("learner %x at %.0f%% of the leader's index", mem.ID, 100*mem.Progress)}
		case has:
			health := "healthy"
			if !mem.Healthy {
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
				fmt.Sprintf("replacement %s is learner %x at %.0f%% of the leader's index; member %x stays until it is promoted", l.Machine, l.ID, 100*l.Progress, mem.ID)}
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
