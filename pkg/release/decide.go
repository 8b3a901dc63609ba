package release

import (
	"errors"
	"fmt"
	"strings"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// Request is what a person asks for: the Machine to release, or (Machine empty) the etcd
// member to remove. Force lets through what only makes the controller wait; it never lets
// through a change that loses quorum, nor a release made on a guess.
type Request struct {
	Machine string
	Member  uint64
	Force   bool
}

func (r Request) String() string {
	if r.Machine != "" {
		return "release Machine " + r.Machine
	}
	return fmt.Sprintf("remove member %x", r.Member)
}

// Input is everything a release is decided on, read in one go as the controller reads a
// pass (controlplane.DryRun), or again after the fence.
type Input struct {
	Request
	// State is the planner's input built by controlplane.StateOf: the control-plane
	// Machines, the members with their health, the desired voting members.
	State quorum.State
	// Dead are the members that did not answer their own Status (or never started).
	Dead map[uint64]bool
	// EtcdErr says why etcd could not be observed; nothing is decided then.
	EtcdErr error
}

// Plan is what a release does, in this order: remove member Remove (0: none), then release
// the hook of Machine when Release is set. Refused, when not empty, says why nothing is done.
type Plan struct {
	// Machine is the Machine the release is about; with --member, the Machines some signal
	// places the member on, if any, are in Regarding instead.
	Machine   string
	Regarding []string
	Remove    uint64
	// Member describes the member removed (ID, name, peer URLs).
	Member  string
	Release bool
	// Refused says why nothing is done; NoQuorum and Unobserved say it is etcd's state.
	Refused              string
	NoQuorum, Unobserved bool
	// Risks are what --force let through: the checks that would have made the release wait.
	Risks []string
	// Why is the quorum arithmetic the removal was checked with.
	Why string
}

// Nothing says the plan changes nothing (and is no refusal): the hook is gone already.
func (p Plan) Nothing() bool { return p.Refused == "" && p.Remove == 0 && !p.Release }

func refuse(format string, args ...any) Plan { return Plan{Refused: fmt.Sprintf(format, args...)} }

// Decide says what `quorumguard release` does. It is a pure function of what was read; the
// same function decides again on the member list read after each fence (see Run), so a
// step is taken only if it is still the step decided.
//
// Release MACHINE:
//   - the Machine must be a control-plane Machine being deleted: the hook holds only a
//     deleting Machine, and the controller adds it back to any other;
//   - no member may be placed on it with uncertainty (quorum.Map's Claimed and Problem),
//     and every voting member must be accounted for: a voting member no Machine accounts
//     for may be this Machine's. --force does not lift this: nothing is released on a guess;
//   - its member, if it has one, is removed first, only when quorum.Check allows it, the
//     one rule the planner and etcdmember.CheckChange apply. With 3 voters all healthy,
//     removing one leaves 2 of 2 (quorum 2): allowed; with one of them dead, removing a
//     healthy one leaves 1 healthy of 2: refused, --force or not;
//   - without --force it also waits where the controller would: a healthy voter is removed
//     only while the voters left are at least the desired count (its replacement is
//     promoted: 4 voters become 3) and the fault tolerance does not fall to 0 because of
//     it (3 healthy voters becoming 2 of 2 do; removing the dead one of 3 leaves 2 of 2, as
//     before: allowed, as the controller does);
//   - then its hook is released.
//
// Release --member ID, for a member no Machine accounts for (which blocks every replacement):
//   - a member placed on a Machine is that Machine's: refused, use release MACHINE;
//   - a member that answers its Status is alive: refused, whatever --force says;
//   - otherwise it is removed when quorum.Check allows it: dead, it counts as no healthy
//     voter, so removing the dead fourth of 4 voters (3 healthy) leaves 3 of 3.
func Decide(in Input) Plan {
	if in.EtcdErr != nil {
		var nq *etcdmember.NoQuorumError
		if errors.As(in.EtcdErr, &nq) {
			p := refuse("etcd has lost quorum, so no membership change can be made and nothing is released: %v", in.EtcdErr)
			p.NoQuorum = true
			return p
		}
		p := refuse("etcd could not be observed, and nothing is released without it: %v", in.EtcdErr)
		p.Unobserved = true
		return p
	}
	mp := quorum.Map(in.State.Machines, in.State.Members)
	if in.Machine == "" {
		return decideMember(in, mp)
	}
	return decideMachine(in, mp)
}

func decideMachine(in Input, mp quorum.Mapping) Plan {
	var mach *quorum.Machine
	for i := range in.State.Machines {
		if in.State.Machines[i].Name == in.Machine {
			mach = &in.State.Machines[i]
		}
	}
	switch {
	case mach == nil:
		return refuse("there is no control-plane Machine %s", in.Machine)
	case !mach.Deleting:
		return refuse("Machine %s is not being deleted: its preDrain hook holds nothing, and quorumguard puts it back on a Machine that is not deleting; delete the Machine first", in.Machine)
	}
	claimed := mp.Claimed[in.Machine]
	for _, id := range claimed {
		if pl := mp.Of[id]; pl.Kind != quorum.Placed {
			return refuse("member %x may belong to Machine %s but cannot be placed with certainty (%s); nothing is released on a guess: give the Machines addresses or Node names that tell them apart, or remove the member with `quorumguard release --member %x` once it is dead", id, in.Machine, pl.Problem, id)
		}
	}
	if len(claimed) > 1 {
		return refuse("members %s are all placed on Machine %s; nothing is released until only one is", ids(claimed), in.Machine)
	}
	for _, m := range in.State.Members {
		if !m.Learner && !mp.Accounted(m.ID) {
			return refuse("voting member %x is not accounted for (%s), and it may be the member of Machine %s; nothing is released on a guess: fix the Machines' addresses or Node names, or remove it with `quorumguard release --member %x` if it is dead", m.ID, mp.Of[m.ID].Problem, in.Machine, m.ID)
		}
	}
	p := Plan{Machine: in.Machine, Release: mach.HasHook || (in.State.PreTerminateHook && mach.HasPreTerminateHook)}
	if len(claimed) == 0 {
		return p
	}
	mem := member(in.State.Members, claimed[0])
	census, target := quorum.CensusOf(in.State.Members), quorum.Target{Listed: true, Learner: mem.Learner, Healthy: mem.Healthy}
	ok, why := quorum.Check(census, quorum.ChangeRemove, target)
	if !ok {
		return refuse("removing member %s of Machine %s would lose quorum: %s (now %s); nothing is removed or released, --force or not", describe(mem), in.Machine, why, census)
	}
	p.Remove, p.Member, p.Why = mem.ID, describe(mem), why
	if mem.Learner {
		return p
	}
	after := quorum.After(census, quorum.ChangeRemove, target)
	var waits []string
	if mem.Healthy && after.Voters < in.State.Desired {
		waits = append(waits, fmt.Sprintf("its replacement is not promoted yet: %d voting members would remain, fewer than the desired %d", after.Voters, in.State.Desired))
	}
	if after.Tolerance() < min(1, census.Tolerance()) {
		waits = append(waits, fmt.Sprintf("etcd's fault tolerance would fall from %d to %d: one more failed member would then lose quorum", census.Tolerance(), after.Tolerance()))
	}
	if len(waits) == 0 {
		return p
	}
	if !in.Force {
		return refuse("quorumguard waits before removing member %s of Machine %s: %s; `--force` removes it anyway, at that risk", describe(mem), in.Machine, strings.Join(waits, "; "))
	}
	p.Risks = waits
	return p
}

func decideMember(in Input, mp quorum.Mapping) Plan {
	var mem *quorum.Member
	for i := range in.State.Members {
		if in.State.Members[i].ID == in.Member {
			mem = &in.State.Members[i]
		}
	}
	if mem == nil {
		return refuse("etcd lists no member %x (member IDs are given in hex, as etcdctl prints them)", in.Member)
	}
	pl := mp.Of[mem.ID]
	if pl.Kind == quorum.Placed {
		p := refuse("member %s belongs to Machine %s; use `quorumguard release %s`, which checks its replacement first", describe(*mem), pl.Machine, pl.Machine)
		p.Regarding = []string{pl.Machine}
		return p
	}
	p := Plan{Regarding: pl.Candidates}
	if !in.Dead[mem.ID] {
		p.Refused = fmt.Sprintf("member %s answers its Status: it is alive, and a live member is never removed by --member, --force or not; make a Machine account for it (%s), or stop it first", describe(*mem), pl.Problem)
		return p
	}
	census := quorum.CensusOf(in.State.Members)
	ok, why := quorum.Check(census, quorum.ChangeRemove, quorum.Target{Listed: true, Learner: mem.Learner, Healthy: mem.Healthy})
	if !ok {
		p.Refused = fmt.Sprintf("removing member %s would lose quorum: %s (now %s)", describe(*mem), why, census)
		return p
	}
	p.Remove, p.Member, p.Why = mem.ID, describe(*mem), why
	return p
}

func member(members []quorum.Member, id uint64) quorum.Member {
	for _, m := range members {
		if m.ID == id {
			return m
		}
	}
	return quorum.Member{ID: id}
}

// describe names a member by ID, name and role.
func describe(m quorum.Member) string {
	name := m.Name
	if name == "" {
		name = "unstarted"
	}
	role := "voter"
	if m.Learner {
		role = "learner"
	}
	return fmt.Sprintf("%x (%s, %s)", m.ID, name, role)
}

func ids(list []uint64) string {
	parts := make([]string, len(list))
	for i, id := range list {
		parts[i] = fmt.Sprintf("%x", id)
	}
	return strings.Join(parts, ", ")
}
