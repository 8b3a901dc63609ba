package quorum

import (
	"fmt"
	"net"
	"sort"
	"strings"
)

// QuorumOf is the number of voting members that must agree: n/2+1.
func QuorumOf(voters int) int { return voters/2 + 1 }

// Tolerance is how many of voters may fail, given how many are healthy now, before quorum is
// lost; negative when quorum is already lost.
func Tolerance(voters, healthy int) int { return healthy - QuorumOf(voters) }

// RemovalSafe says whether removing one voting member keeps quorum, and why.
//
// The invariant: after a change, the healthy voting members must be at least the quorum of
// the voting members after it. Learners never count. Worked out:
//   - 3 voters, all healthy, remove a healthy one: 2 voters, quorum 2, 2 healthy: safe.
//   - 3 voters, one dead, remove a healthy one: 2 voters, quorum 2, 1 healthy: unsafe.
//   - 3 voters, one dead, remove the dead one: 2 voters, quorum 2, 2 healthy: safe.
//   - 4 voters (a replacement was promoted), remove the old healthy one: 3 voters, quorum 2,
//     3 healthy: safe, and fault tolerance goes back to 1.
//   - 5 voters, two dead, remove a healthy one: 4 voters, quorum 3, 2 healthy: unsafe.
func RemovalSafe(voters, healthy int, targetHealthy bool) (bool, string) {
	after := voters - 1
	healthyAfter := healthy
	if targetHealthy {
		healthyAfter--
	}
	if after < 1 {
		return false, "it is the last voting member"
	}
	if healthyAfter < QuorumOf(after) {
		return false, fmt.Sprintf("%d healthy of %d voting members would remain, below the quorum of %d", healthyAfter, after, QuorumOf(after))
	}
	return true, fmt.Sprintf("%d healthy of %d voting members remain, quorum %d", healthyAfter, after, QuorumOf(after))
}

// PromotionSafe says whether promoting a learner keeps quorum: a promoted learner becomes a
// voter that must answer. 3 healthy voters + a healthy learner: 4 voters, quorum 3, 4 healthy:
// safe. 3 voters with 1 dead + a healthy learner: 4 voters, quorum 3, 3 healthy: safe but with
// no tolerance. 3 voters with 1 dead + an unreachable learner: 4 voters, 2 healthy: unsafe.
func PromotionSafe(voters, healthy int, learnerHealthy bool) (bool, string) {
	after, healthyAfter := voters+1, healthy
	if learnerHealthy {
		healthyAfter++
	}
	if healthyAfter < QuorumOf(after) {
		return false, fmt.Sprintf("%d healthy of %d voting members would remain, below the quorum of %d", healthyAfter, after, QuorumOf(after))
	}
	return true, fmt.Sprintf("%d healthy of %d voting members after promotion, quorum %d", healthyAfter, after, QuorumOf(after))
}

// Decide returns the one next step for s and the condition of every Machine.
//
// The order of precedence, each step returning as soon as it applies:
//  1. a learner whose Machine is deleting or gone is removed (learners never count, so this
//     is always safe, and etcd admits one learner at a time);
//  2. a deleting Machine whose member is gone gets its hook released;
//  3. the unhealthy voting member of a deleting Machine is removed, if quorum is kept. A dead
//     member is removed before its replacement learner is promoted: removing it shrinks the
//     quorum at once (3 voters with 1 dead become 2 of 2), while promoting first would make a
//     4-member cluster whose quorum of 3 needs every live member, for as long as the learner
//     takes to be promoted;
//  4. a started learner of a live Machine is promoted (etcd refuses until it has caught up),
//     only while every voting member is healthy, for the same reason;
//  5. the voting member of a deleting Machine is removed once a replacement has been promoted
//     (voters exceed the desired count), if quorum is kept; leadership is moved away first if
//     it leads;
//  6. a learner is added for a running, hooked Machine with an address and no member, when no
//     other learner exists;
//  7. an unhealthy member that matches no Machine is removed if quorum is kept.
func Decide(s State) Decision {
	d := Decision{Conditions: map[string]Condition{}}
	voters, healthy := 0, 0
	var learners []Member
	members := map[uint64]Member{}
	for _, m := range s.Members {
		members[m.ID] = m
		if m.Learner {
			learners = append(learners, m)
			continue
		}
		voters++
		if m.Healthy {
			healthy++
		}
	}
	d.FaultTolerance = Tolerance(voters, healthy)
	machines := append([]Machine(nil), s.Machines...)
	sort.Slice(machines, func(i, j int) bool { return machines[i].Name < machines[j].Name })
	byName := map[string]Machine{}
	for _, m := range machines {
		byName[m.Name] = m
	}
	sort.Slice(learners, func(i, j int) bool { return learners[i].ID < learners[j].ID })

	for _, m := range machines {
		d.Conditions[m.Name] = baseCondition(m, members, learners, machines)
		if m.Deleting && m.HasHook {
			d.InFlight = true
		}
	}
	if healthy < voters || len(learners) > 0 {
		d.InFlight = true
	}
	for _, m := range s.Members {
		if m.Machine == "" {
			d.Reports = append(d.Reports, fmt.Sprintf("member %x (%s, %s) matches no Machine", m.ID, m.Name, strings.Join(m.PeerURLs, ",")))
		}
	}
	for _, m := range machines {
		if m.AddressConflict {
			d.Reports = append(d.Reports, fmt.Sprintf("Machine %s shares an InternalIP with another Machine; no action is taken on it", m.Name))
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

	// 1. Learners of deleting or missing Machines.
	for _, l := range learners {
		owner, ok := byName[l.Machine]
		if l.Machine == "" || (ok && owner.Deleting) {
			why := "its Machine is being deleted"
			if l.Machine == "" {
				why = "it matches no Machine"
			}
			return set(Action{Kind: RemoveMember, Machine: l.Machine, MemberID: l.ID, Reason: "learner is not promoted because " + why})
		}
	}
	// 2. Hooks of deleting Machines whose member is gone.
	unmappedVoter := false
	for _, m := range s.Members {
		if m.Machine == "" && !m.Learner {
			unmappedVoter = true
		}
	}
	for _, m := range machines {
		if !m.Deleting || !m.HasHook || m.MemberID != 0 || m.AddressConflict {
			continue
		}
		if len(m.InternalIPs) == 0 && unmappedVoter {
			// A Machine that lost its addresses may still own a member we cannot map: wait.
			d.Conditions[m.Name] = Condition{Status: "False", Reason: ReasonWaitingForReplacement,
				Message: "Machine has no InternalIP and a voting member matches no Machine; the hook is kept until that is resolved"}
			continue
		}
		why := "no etcd member has a peer URL on its addresses"
		if len(m.InternalIPs) == 0 {
			why = "it has no InternalIP and so never had an etcd member"
		}
		d.Conditions[m.Name] = Condition{Status: "False", Reason: ReasonHookReleased, Message: "hook released: " + why}
		return set(Action{Kind: ReleaseHook, Machine: m.Name, Reason: why})
	}
	// 3. Remove the dead members of deleting Machines before anything is promoted.
	if a, ok := removeDeleting(s, &d, machines, members, byName, voters, healthy, false); ok {
		return set(a)
	}
	// 4. Promote a started learner of a live Machine, only while every voting member answers:
	// a promotion turns 3 voters into 4 whose quorum of 3 needs every healthy one.
	for _, l := range learners {
		if !l.Started {
			continue
		}
		if healthy < voters {
			d.Conditions[l.Machine] = Condition{Status: "False", Reason: ReasonLearner,
				Message: fmt.Sprintf("learner %x at %.0f%%, not promoted while %d of %d voting members are unhealthy", l.ID, 100*l.Progress, voters-healthy, voters)}
			continue
		}
		if ok, why := PromotionSafe(voters, healthy, l.Healthy); !ok {
			d.Conditions[l.Machine] = Condition{Status: "False", Reason: ReasonLearner, Message: fmt.Sprintf("learner %x is not promoted: %s", l.ID, why)}
			continue
		}
		return set(Action{Kind: Promote, Machine: l.Machine, MemberID: l.ID,
			Reason: fmt.Sprintf("learner has reached %.0f%% of the leader's index", 100*l.Progress)})
	}
	// 5. The voting member of a deleting Machine, once a replacement was promoted.
	if a, ok := removeDeleting(s, &d, machines, members, byName, voters, healthy, true); ok {
		return set(a)
	}
	// 6. Add a learner for a new Machine.
	if len(learners) == 0 {
		for _, m := range machines {
			if m.Deleting || !m.Running || !m.HasHook || m.MemberID != 0 || len(m.InternalIPs) == 0 || m.AddressConflict {
				continue
			}
			peer := "https://" + net.JoinHostPort(m.InternalIPs[0], "2380")
			return set(Action{Kind: AddLearner, Machine: m.Name, PeerURL: peer,
				Reason: "running control-plane Machine has no etcd member"})
		}
	}
	// 7. Unhealthy members of no Machine.
	for _, m := range s.Members {
		if m.Machine != "" || m.Learner || m.Healthy {
			continue
		}
		if ok, why := RemovalSafe(voters, healthy, false); ok && voters > 1 {
			return set(Action{Kind: RemoveMember, MemberID: m.ID, Reason: "unhealthy member matches no Machine; " + why})
		}
	}
	d.Action = Action{Kind: None, Reason: fmt.Sprintf("%d voting members (%d healthy), %d learners, fault tolerance %d", voters, healthy, len(learners), d.FaultTolerance)}
	return d
}

// removeDeleting picks the voting member of a deleting Machine to remove: with surplus false,
// only unhealthy ones; with surplus true, any one once voters exceed the desired count. Each
// removal must keep quorum, and a leader has leadership moved away first.
func removeDeleting(s State, d *Decision, machines []Machine, members map[uint64]Member, byName map[string]Machine, voters, healthy int, surplus bool) (Action, bool) {
	var candidates []Member
	for _, m := range machines {
		if !m.Deleting || m.MemberID == 0 || m.AddressConflict {
			continue
		}
		if mem, ok := members[m.MemberID]; ok && !mem.Learner {
			candidates = append(candidates, mem)
		}
	}
	sort.SliceStable(candidates, func(i, j int) bool { return !candidates[i].Healthy && candidates[j].Healthy })
	for _, c := range candidates {
		if surplus && voters <= s.Desired {
			continue
		}
		if !surplus && c.Healthy {
			continue
		}
		ok, why := RemovalSafe(voters, healthy, c.Healthy)
		if !ok {
			d.Conditions[c.Machine] = Condition{Status: "False", Reason: ReasonWaitingForReplacement,
				Message: fmt.Sprintf("member %x is not removed: %s", c.ID, why)}
			continue
		}
		if c.Leader {
			if to := pickLeader(s.Members, byName, c.ID); to != 0 {
				return Action{Kind: MoveLeader, Machine: c.Machine, MemberID: c.ID, To: to,
					Reason: "the member to remove leads the cluster"}, true
			}
			d.Conditions[c.Machine] = Condition{Status: "False", Reason: ReasonWaitingForReplacement,
				Message: fmt.Sprintf("member %x leads and no healthy voting member of a live Machine can take over", c.ID)}
			continue
		}
		reason := fmt.Sprintf("a replacement was promoted (%d voting members, %d desired); %s", voters, s.Desired, why)
		if !c.Healthy {
			reason = "the member is unhealthy; " + why
		}
		return Action{Kind: RemoveMember, Machine: c.Machine, MemberID: c.ID, Reason: reason}, true
	}
	return Action{}, false
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

func baseCondition(m Machine, members map[uint64]Member, learners []Member, all []Machine) Condition {
	mem, has := members[m.MemberID]
	if !m.Deleting {
		switch {
		case m.AddressConflict:
			return Condition{"False", ReasonNotMember, "another Machine reports the same InternalIP; no action is taken until that is resolved"}
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
		case len(m.InternalIPs) == 0:
			return Condition{"False", ReasonNotMember, "Machine has no InternalIP; no learner is added until it has one"}
		case !m.HasHook:
			return Condition{"False", ReasonNotMember, "no etcd member; waiting for the preDrain hook before adding a learner"}
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
		if !o.Deleting && o.MemberID == 0 {
			return Condition{"False", ReasonWaitingForReplacement, fmt.Sprintf("replacement %s has no etcd member yet; member %x stays", o.Name, mem.ID)}
		}
	}
	return Condition{"False", ReasonWaitingForReplacement, fmt.Sprintf("waiting for a replacement Machine; member %x stays until one is promoted", mem.ID)}
}
