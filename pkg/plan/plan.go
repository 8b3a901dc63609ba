package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/quorumguard/quorumguard/pkg/failuredomain"
	"github.com/quorumguard/quorumguard/pkg/machines"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// Actor is who takes a step.
type Actor string

// The parties a plan's steps come from.
const (
	// ActorYou: what the plan was asked to play (the Machines it deletes).
	ActorYou Actor = "you"
	// ActorController: quorumguard's quorum controller (quorum.Decide), and its hook.
	ActorController Actor = "controller"
	// ActorMachineSet: whoever carries out the ControlPlaneMachineSet (quorumguard's Machine
	// management or the ControlPlaneMachineSet operator), as machines.Plan decides.
	ActorMachineSet Actor = "ControlPlaneMachineSet"
	// ActorNode: the new Machine's node, whose join step starts the learner's etcd.
	ActorNode Actor = "node"
	// ActorEtcd: the learner catching up with the leader's log.
	ActorEtcd Actor = "etcd"
	// ActorMachineAPI: the machine-api draining a Machine whose hook is gone, and deleting it.
	ActorMachineAPI Actor = "machine-api"
	// ActorClock: time passing until a wait the planner announced ends.
	ActorClock Actor = "clock"
)

// The kinds of step besides quorum's action kinds (AddLearner, Promote, MoveLeader,
// RemoveMember, ReleaseHook).
const (
	KindDeleteMachine = "DeleteMachine"
	KindCreateMachine = "CreateMachine"
	KindAddHook       = "AddHook"
	KindStartLearner  = "StartLearner"
	KindCatchUp       = "CatchUp"
	KindMachineGone   = "MachineGone"
	KindWait          = "Wait"
)

// DefaultMaxSteps bounds a plan when Input.MaxSteps is 0. Replacing one Machine takes about a
// dozen steps, so every Machine of a five-member control plane fits many times over.
const DefaultMaxSteps = 300

// MachineSet is the ControlPlaneMachineSet as far as the plan needs it. A plan without one
// (none, or Inactive) has nobody to create a replacement.
type MachineSet struct {
	// Strategy is machines.RollingUpdate (when empty) or machines.OnDelete.
	Strategy string
	// Domains are the names of the failure domains listed; none means no placement.
	Domains []string
}

// Input is what a plan starts from.
type Input struct {
	// State is the planner's input as one pass reads it; State.Now zero starts the clock
	// at an arbitrary time.
	State quorum.State
	// Indexes are the Machines' indexes (masters.IndexesOf); a Machine missing here takes
	// the number after the last "-" of its name.
	Indexes    map[string]int
	MachineSet *MachineSet
	// Delete are the Machines deleted before the first step.
	Delete []string
	// MaxSteps bounds the plan; DefaultMaxSteps when 0.
	MaxSteps int
}

// Step is one thing that happens.
type Step struct {
	Actor   Actor  `json:"actor"`
	Kind    string `json:"kind"`
	Machine string `json:"machine,omitempty"`
	// Member is the etcd member acted on, in hex; To the one leadership moves to.
	Member string `json:"member,omitempty"`
	To     string `json:"to,omitempty"`
	// Domain is the failure domain a created Machine is placed in.
	Domain string `json:"domain,omitempty"`
	// What says what happens and why, in the words of the planner that decided it.
	What string `json:"what"`
	// Wait is how long a Wait step lasts, as time.Duration writes it.
	Wait string `json:"wait,omitempty"`
	// FaultTolerance is the planner's fault tolerance once the step is done.
	FaultTolerance int `json:"faultTolerance"`
}

// Result is a played plan.
type Result struct {
	Desired int `json:"desiredVotingMembers"`
	// StartTolerance is the fault tolerance now, Lowest the lowest from now to the end.
	StartTolerance int    `json:"startFaultTolerance"`
	Steps          []Step `json:"steps"`
	Lowest         int    `json:"lowestFaultTolerance"`
	// Stall says why the plan does not end settled, and what it waits for; "" when it does.
	Stall string `json:"stall,omitempty"`
	// Notes are what is left for a person once the plan ends settled (Machines that only
	// a deletion would move, under OnDelete).
	Notes []string `json:"notes,omitempty"`
}

// Stalls says the plan does not end settled.
func (r Result) Stalls() bool { return r.Stall != "" }

// DefaultMinTolerance is the lowest fault tolerance a plan for desired voting members is let
// go down to: one failure less than a healthy cluster of that size tolerates. Three
// members tolerate 1, so the default is 0 (the plan fails only where quorum would be lost);
// five tolerate 2, so it is 1: a replacement must still survive one member failing.
func DefaultMinTolerance(desired int) int {
	return quorum.Tolerance(desired, desired) - 1
}

// Run plays the plan.
func Run(in Input) (Result, error) {
	w, err := newWorld(in)
	if err != nil {
		return Result{}, err
	}
	res := Result{Desired: in.State.Desired}
	res.StartTolerance = quorum.Decide(w.s).FaultTolerance
	res.Lowest = res.StartTolerance
	record := func(st Step) {
		st.FaultTolerance = quorum.Decide(w.s).FaultTolerance
		res.Lowest = min(res.Lowest, st.FaultTolerance)
		res.Steps = append(res.Steps, st)
	}
	for _, name := range in.Delete {
		st, err := w.delete(name)
		if err != nil {
			return Result{}, err
		}
		record(st)
	}
	limit := in.MaxSteps
	if limit <= 0 {
		limit = DefaultMaxSteps
	}
	for {
		st, ok := w.next()
		if !ok {
			break
		}
		if len(res.Steps) >= limit {
			res.Stall = fmt.Sprintf("no end after %d steps; the last: %s", limit, lastKinds(res.Steps, 6))
			return res, nil
		}
		record(st)
	}
	res.Stall, res.Notes = w.settled()
	return res, nil
}

// world is the snapshot the plan changes step by step.
type world struct {
	s       quorum.State
	indexes map[string]int
	ms      *MachineSet
	nextID  uint64
	created int
}

// epoch is the clock's start when the State has none.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func newWorld(in Input) (*world, error) {
	w := &world{s: in.State, indexes: map[string]int{}, ms: in.MachineSet}
	w.s.Machines = slices.Clone(in.State.Machines)
	w.s.Members = slices.Clone(in.State.Members)
	if w.s.Now.IsZero() {
		w.s.Now = epoch
	}
	for _, m := range w.s.Members {
		w.nextID = max(w.nextID, m.ID)
	}
	for _, m := range w.s.Machines {
		if i, ok := in.Indexes[m.Name]; ok {
			w.indexes[m.Name] = i
		} else if i, err := failuredomain.IndexOf(m.Name); err == nil {
			w.indexes[m.Name] = i
		}
	}
	if w.s.Desired <= 0 {
		return nil, fmt.Errorf("the desired number of voting members is %d", w.s.Desired)
	}
	return w, nil
}

func (w *world) machine(name string) *quorum.Machine {
	for i := range w.s.Machines {
		if w.s.Machines[i].Name == name {
			return &w.s.Machines[i]
		}
	}
	return nil
}

func (w *world) member(id uint64) *quorum.Member {
	for i := range w.s.Members {
		if w.s.Members[i].ID == id {
			return &w.s.Members[i]
		}
	}
	return nil
}

func (w *world) delete(name string) (Step, error) {
	m := w.machine(name)
	if m == nil {
		return Step{}, fmt.Errorf("there is no control-plane Machine %s", name)
	}
	if m.Deleting {
		return Step{}, fmt.Errorf("control-plane Machine %s is already being deleted", name)
	}
	m.Deleting = true
	return Step{Actor: ActorYou, Kind: KindDeleteMachine, Machine: name, What: "delete Machine " + name}, nil
}

// next takes the next step, in the order the parties answer: the controller's pass (its
// hooks, then the planner's action), then the machine-api, the node, etcd, the
// ControlPlaneMachineSet, and last the clock, when the planner waits for a time.
func (w *world) next() (Step, bool) {
	for i := range w.s.Machines {
		m := &w.s.Machines[i]
		if !m.Deleting && !m.HasHook {
			m.HasHook = true
			m.HasPreTerminateHook = m.HasPreTerminateHook || w.s.PreTerminateHook
			return Step{Actor: ActorController, Kind: KindAddHook, Machine: m.Name, What: "add the preDrain hook to Machine " + m.Name}, true
		}
		if !m.Deleting && w.s.PreTerminateHook && !m.HasPreTerminateHook {
			m.HasPreTerminateHook = true
			return Step{Actor: ActorController, Kind: KindAddHook, Machine: m.Name, What: "add the preTerminate hook to Machine " + m.Name}, true
		}
	}
	d := quorum.Decide(w.s)
	if d.Action.Kind != quorum.None {
		return w.apply(d.Action), true
	}
	for _, f := range []func() (Step, bool){w.machineAPI, w.node, w.etcd, w.machineSet} {
		if st, ok := f(); ok {
			return st, true
		}
	}
	if a := d.Action; !a.Until.IsZero() && a.Until.After(w.s.Now) {
		wait := a.Until.Sub(w.s.Now).Round(time.Millisecond)
		w.s.Now = a.Until
		return Step{Actor: ActorClock, Kind: KindWait, Machine: a.Machine, Member: hexID(a.MemberID), Wait: wait.String(),
			What: fmt.Sprintf("wait %s: %s", wait, a.Reason)}, true
	}
	return Step{}, false
}

// apply makes the planner's action happen as etcd and the controller make it happen.
func (w *world) apply(a quorum.Action) Step {
	st := Step{Actor: ActorController, Kind: string(a.Kind), Machine: a.Machine, Member: hexID(a.MemberID), What: a.String()}
	switch a.Kind {
	case quorum.AddLearner:
		w.nextID++
		w.s.Members = append(w.s.Members, quorum.Member{ID: w.nextID, PeerURLs: []string{a.PeerURL}, Learner: true})
		st.Member = hexID(w.nextID)
	case quorum.Promote:
		w.member(a.MemberID).Learner = false
		// The controller writes the Voting condition in the pass that promotes.
		if m := w.machine(a.Machine); m != nil {
			m.VotingSince = w.s.Now
		}
	case quorum.MoveLeader:
		for i := range w.s.Members {
			w.s.Members[i].Leader = w.s.Members[i].ID == a.To
		}
		st.To = hexID(a.To)
	case quorum.RemoveMember:
		gone := w.member(a.MemberID)
		led := gone != nil && gone.Leader
		w.s.Members = slices.DeleteFunc(w.s.Members, func(m quorum.Member) bool { return m.ID == a.MemberID })
		if led {
			w.elect()
		}
	case quorum.ReleaseHook:
		m := w.machine(a.Machine)
		m.HasHook, m.HasPreTerminateHook, m.ReleasedByUs = false, false, true
	}
	return st
}

// elect makes the healthy voting member with the lowest ID the leader, as some member will be.
func (w *world) elect() {
	best := -1
	for i, m := range w.s.Members {
		if !m.Learner && m.Healthy && (best < 0 || m.ID < w.s.Members[best].ID) {
			best = i
		}
	}
	if best >= 0 {
		w.s.Members[best].Leader = true
	}
}

// machineAPI drains and deletes a deleting Machine without the hook. A member still on it
// goes down with it.
func (w *world) machineAPI() (Step, bool) {
	placed := quorum.Map(w.s.Machines, w.s.Members)
	for _, m := range w.s.Machines {
		if !m.Deleting || m.HasHook || (w.s.PreTerminateHook && m.HasPreTerminateHook) {
			continue
		}
		what := fmt.Sprintf("drain Node %s and delete Machine %s: it holds no preDrain hook", orDash(m.NodeName), m.Name)
		if w.s.PreTerminateHook {
			what = fmt.Sprintf("drain Node %s and delete Machine %s: it holds neither hook", orDash(m.NodeName), m.Name)
		}
		for i, mem := range w.s.Members {
			if placed.Of[mem.ID].Machine == m.Name {
				w.s.Members[i].Healthy = false
				what += fmt.Sprintf("; its etcd member %x goes down with it", mem.ID)
			}
		}
		w.s.Machines = slices.DeleteFunc(w.s.Machines, func(o quorum.Machine) bool { return o.Name == m.Name })
		return Step{Actor: ActorMachineAPI, Kind: KindMachineGone, Machine: m.Name, What: what}, true
	}
	return Step{}, false
}

// node starts a learner that was added but never started, on a running Machine: the node's
// join step finds its peer URL in the member list and starts etcd.
func (w *world) node() (Step, bool) {
	placed := quorum.Map(w.s.Machines, w.s.Members)
	for i, mem := range w.s.Members {
		m := w.machine(placed.Of[mem.ID].Machine)
		if !mem.Learner || mem.Started || m == nil || m.Deleting || !m.Running {
			continue
		}
		name := m.NodeName
		if name == "" {
			name = m.Name
		}
		w.s.Members[i].Started, w.s.Members[i].Name, w.s.Members[i].Progress = true, name, 0
		return Step{Actor: ActorNode, Kind: KindStartLearner, Machine: m.Name, Member: hexID(mem.ID),
			What: fmt.Sprintf("the join step on Node %s finds learner %x listed and starts its etcd", name, mem.ID)}, true
	}
	return Step{}, false
}

// etcd lets a started learner catch up with the leader's log.
func (w *world) etcd() (Step, bool) {
	placed := quorum.Map(w.s.Machines, w.s.Members)
	for i, mem := range w.s.Members {
		if !mem.Learner || !mem.Started || mem.Healthy {
			continue
		}
		// Caught up, its raft index is the others': it is as good a new leader as they are.
		var top uint64
		for _, o := range w.s.Members {
			top = max(top, o.Index)
		}
		w.s.Members[i].Healthy, w.s.Members[i].Progress, w.s.Members[i].DownFor, w.s.Members[i].Index = true, 1, 0, top
		return Step{Actor: ActorEtcd, Kind: KindCatchUp, Machine: placed.Of[mem.ID].Machine, Member: hexID(mem.ID),
			What: fmt.Sprintf("learner %x catches up with the leader's log", mem.ID)}, true
	}
	return Step{}, false
}

// machineInput is the ControlPlaneMachineSet planner's input for the world: every Machine
// taken to match the template, a Machine voting once its member does.
func (w *world) machineInput() machines.Input {
	in := machines.Input{Active: true, Strategy: w.ms.Strategy, Replicas: w.s.Desired, Domains: w.ms.Domains, Now: w.s.Now}
	placed := quorum.Map(w.s.Machines, w.s.Members)
	for _, m := range w.s.Machines {
		pm := machines.Machine{Name: m.Name, Domain: m.Domain, Deleting: m.Deleting, Phase: "Provisioned", Updated: true, NodeName: m.NodeName}
		if m.Running {
			pm.Phase = machines.PhaseRunning
		}
		if i, ok := w.indexes[m.Name]; ok {
			pm.Index = i
		} else {
			pm.IndexErr = "the name carries no index"
		}
		if id, ok := placed.MemberOf[m.Name]; ok {
			pm.Voting = !w.member(id).Learner
		}
		for _, a := range m.Addresses {
			pm.Addresses = append(pm.Addresses, a.Address)
		}
		in.Machines = append(in.Machines, pm)
	}
	return in
}

// machineSet takes the ControlPlaneMachineSet planner's action: a new Machine appears,
// provisioned and running, with an InternalIP and a Node; or a Machine is deleted.
func (w *world) machineSet() (Step, bool) {
	if w.ms == nil {
		return Step{}, false
	}
	d := machines.Plan(w.machineInput())
	a := d.Action
	switch a.Kind {
	case machines.Create:
		domain := a.Domain
		if domain == "" && a.Machine != "" {
			// With no domains listed a replacement keeps its predecessor's zone.
			if from := w.machine(a.Machine); from != nil {
				domain = from.Domain
			}
		}
		name := w.newName(a)
		w.s.Machines = append(w.s.Machines, quorum.Machine{Name: name, Running: true, NodeName: name, Domain: domain,
			Addresses: []quorum.Address{{Type: quorum.AddressInternalIP, Address: w.newIP()}}})
		w.indexes[name] = a.Index
		return Step{Actor: ActorMachineSet, Kind: KindCreateMachine, Machine: name, Domain: domain,
			What: fmt.Sprintf("create Machine %s (index %d) in %s; the machine-api provisions it: %s", name, a.Index, orDash(domain), a.Reason)}, true
	case machines.Delete:
		if m := w.machine(a.Machine); m != nil {
			m.Deleting = true
		}
		return Step{Actor: ActorMachineSet, Kind: KindDeleteMachine, Machine: a.Machine, What: a.String()}, true
	}
	return Step{}, false
}

// newName names a created Machine <prefix>-new[N]-<index> after the Machine it replaces,
// where the real one carries five random characters.
func (w *world) newName(a machines.Action) string {
	from := a.Machine
	if from == "" && len(w.s.Machines) > 0 {
		from = w.s.Machines[0].Name
	}
	prefix := from
	if i := strings.LastIndexByte(from, '-'); i > 0 {
		prefix = from[:i]
	}
	for {
		w.created++
		tag := "new"
		if w.created > 1 {
			tag = fmt.Sprintf("new%d", w.created)
		}
		if name := fmt.Sprintf("%s-%s-%d", prefix, tag, a.Index); w.machine(name) == nil {
			return name
		}
	}
}

// newIP is an address no Machine reports, for a created Machine.
func (w *world) newIP() string {
	used := map[string]bool{}
	for _, m := range w.s.Machines {
		for _, a := range m.Addresses {
			used[a.Address] = true
		}
	}
	ip := netip.MustParseAddr("10.254.0.1")
	for used[ip.String()] {
		ip = ip.Next()
	}
	return ip.String()
}

// settled says why the world the plan ends in is not settled, "" when it is: the planner has
// nothing in flight, no Machine is deleting, every Machine that may hold a member holds a
// voting one, and the ControlPlaneMachineSet has nothing under way. What it waits for is
// each unsettled Machine's condition as the planner writes it.
func (w *world) settled() (stall string, notes []string) {
	d := quorum.Decide(w.s)
	var why []string
	for _, m := range w.s.Machines {
		c := d.Conditions[m.Name]
		if m.Deleting || (m.Ineligible == "" && c.Reason != quorum.ReasonVoting) {
			why = append(why, fmt.Sprintf("Machine %s waits (%s): %s", m.Name, c.Reason, c.Message))
		}
	}
	if d.InFlight && d.Action.Reason != "" {
		why = append(why, "the controller: "+d.Action.Reason)
	}
	if w.ms == nil {
		if len(why) > 0 {
			why = append(why, "there is no Active ControlPlaneMachineSet, so nothing creates a replacement")
		}
	} else {
		md := machines.Plan(w.machineInput())
		switch {
		case md.InFlight || md.Degraded():
			why = append(why, "the ControlPlaneMachineSet: "+md.Action.Reason)
			if md.Degraded() {
				why = append(why, "it is Degraded: "+md.Status.Degraded.Message)
			}
		case md.Status.Progressing.Status == "True":
			notes = append(notes, md.Status.Progressing.Message)
		}
	}
	notes = append(notes, d.Reports...)
	if len(why) == 0 && d.InFlight {
		why = append(why, "the controller has a change in flight and nothing more happens")
	}
	return strings.Join(why, "; "), notes
}

func hexID(id uint64) string {
	if id == 0 {
		return ""
	}
	return fmt.Sprintf("%x", id)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func lastKinds(steps []Step, n int) string {
	var parts []string
	for _, st := range steps[max(0, len(steps)-n):] {
		parts = append(parts, fmt.Sprintf("%s %s %s", st.Actor, st.Kind, st.Machine))
	}
	return strings.Join(parts, ", ")
}
