package machines

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorumguard/quorumguard/pkg/failuredomain"
)

// The update strategies Plan knows; Recreate exists in the API and is refused.
const (
	RollingUpdate = "RollingUpdate"
	OnDelete      = "OnDelete"
)

// PhaseRunning and PhaseFailed are the Machine phases Plan looks at.
const (
	PhaseRunning = "Running"
	PhaseFailed  = "Failed"
)

// Machine is what Plan knows of one Machine the selector matches.
type Machine struct {
	Name string
	// Index is the number after the last "-" of the name, or the index it was adopted at
	// (failuredomain.AssignIndexes); IndexErr says why there is none. Adopt says the
	// adoption is not recorded on the Machine yet.
	Index    int
	IndexErr string
	Adopt    bool
	// Domain is the Key of the listed failure domain the providerSpec places it in, "" for none.
	Domain   string
	Deleting bool
	Phase    string
	// Voting says the EtcdMember condition is True with reason Voting: its etcd member is a
	// voting member.
	Voting bool
	// Updated says the providerSpec matches the template, failure domain aside; Diff names
	// the fields where it does not.
	Updated bool
	Diff    string
	Created time.Time
	// Attempt is the attempt number this controller gave the Machine when it created it
	// for its index; 0 for Machines it did not create. Why is the reason it was created.
	Attempt int
	Why     string
	// FailedAttempts and LastFailure are carried by a Machine whose replacement failed: how
	// many replacements of its index failed, and when the last one was deleted.
	FailedAttempts int
	LastFailure    time.Time
	// ErrorMessage is status.errorMessage, shown when the Machine has Failed.
	ErrorMessage string
	// NodeName is status.nodeRef.name; Addresses are every status address. Both tie a
	// control-plane Node to the Machine.
	NodeName  string
	Addresses []string
}

// Node is a control-plane Node.
type Node struct {
	Name        string
	InternalIPs []string
}

// Problem is something wrong with the input, found while gathering or by Plan. Reason is a
// condition reason; Field is the field path, prefixed by the object when it is not the
// ControlPlaneMachineSet.
type Problem struct {
	Reason, Field, Message string
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// Input is everything Plan decides on.
type Input struct {
	Generation int64
	// Active is spec.state Active.
	Active bool
	// Strategy is spec.strategy.type, RollingUpdate when empty.
	Strategy string
	// Replicas is spec.replicas, 0 when unset.
	Replicas int
	// Domains are the Keys of the listed failure domains.
	Domains []string
	// Problems are what gathering found wrong: the ControlPlaneMachineSet's fields, or a
	// Machine's providerSpec. Any problem stops every action.
	Problems []Problem
	Machines []Machine
	// Nodes are the control-plane Nodes; one that no Machine accounts for is a problem.
	Nodes []Node
	Now   time.Time
	// MaxAttempts bounds the replacements created for one index that end in phase Failed.
	MaxAttempts int
	// Backoff is the wait before the second attempt; it doubles for each later one.
	Backoff time.Duration
}

// Kind is the kind of action.
type Kind string

// The actions, at most one per decision.
const (
	None Kind = "None"
	// Create creates a Machine for Index in Domain, named after the Machine in Machine
	// (or any other when empty), with Attempt recorded on it.
	Create Kind = "Create"
	// Delete deletes Machine.
	Delete Kind = "Delete"
	// DeleteFailed records Attempt failed attempts on Carrier, then deletes the Failed
	// Machine, so the count outlives it.
	DeleteFailed Kind = "DeleteFailed"
	// Adopt records Index on Machine, whose name carries none (failuredomain.IndexAnnotation).
	Adopt Kind = "Adopt"
)

// Action is the one thing to do next.
type Action struct {
	Kind    Kind
	Index   int
	Domain  string
	Machine string
	Carrier string
	Attempt int
	Reason  string
}

func (a Action) String() string {
	switch a.Kind {
	case Create:
		where := ""
		if a.Domain != "" {
			where = " in " + a.Domain
		}
		return fmt.Sprintf("create a Machine for index %d%s (attempt %d): %s", a.Index, where, a.Attempt, a.Reason)
	case Delete:
		return fmt.Sprintf("delete Machine %s: %s", a.Machine, a.Reason)
	case DeleteFailed:
		return fmt.Sprintf("delete Failed Machine %s (attempt %d), recording it on %s: %s", a.Machine, a.Attempt, a.Carrier, a.Reason)
	case Adopt:
		return fmt.Sprintf("adopt Machine %s at index %d: %s", a.Machine, a.Index, a.Reason)
	}
	return "nothing to do: " + a.Reason
}

// Condition is one ControlPlaneMachineSet condition.
type Condition struct {
	Status  metav1.ConditionStatus
	Reason  string
	Message string
}

// Status is what the ControlPlaneMachineSet status should say.
type Status struct {
	// Replicas counts every Machine the selector matches, deleting ones included.
	Replicas int32
	// ReadyReplicas counts the Running Machines that are not deleting.
	ReadyReplicas int32
	// UpdatedReplicas counts the indexes with a Running Machine, not deleting, that matches
	// the template and sits in the index's target domain: never more than the indexes, even
	// while a replacement and the Machine it replaces both fit.
	UpdatedReplicas int32
	// UnavailableReplicas counts the desired indexes with no Running Machine.
	UnavailableReplicas              int32
	Available, Progressing, Degraded Condition
}

// Decision is Plan's answer.
type Decision struct {
	Action Action
	Status Status
	// InFlight says a replacement is under way: look again soon.
	InFlight bool
	// RetryAfter, when set, is when a held-back action (a backoff) may be taken.
	RetryAfter time.Duration
}

// Degraded says the decision reports a problem.
func (d Decision) Degraded() bool { return d.Status.Degraded.Status == metav1.ConditionTrue }

// Condition types and the reasons Plan sets that are not problems.
const (
	ConditionAvailable   = "Available"
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"

	ReasonAllReplicasAvailable  = "AllReplicasAvailable"
	ReasonUnavailableReplicas   = "UnavailableReplicas"
	ReasonAllReplicasUpdated    = "AllReplicasUpdated"
	ReasonInactive              = "Inactive"
	ReasonBlocked               = "Blocked"
	ReasonRollingUpdate         = "RollingUpdate"
	ReasonRebalancing           = "RebalancingFailureDomains"
	ReasonReplacingDeleted      = "ReplacingDeletedMachine"
	ReasonCreatingMissing       = "CreatingMissingMachine"
	ReasonWaitingForReplacement = "WaitingForReplacement"
	ReasonWaitingForSurge       = "WaitingForSurge"
	ReasonRetryingFailed        = "RetryingFailedMachine"
	ReasonAdopting              = "AdoptingMachine"
	ReasonNeedsUpdate           = "NeedsUpdate"
	ReasonAsExpected            = "AsExpected"
	ReasonMachineFailed         = "MachineFailed"
	ReasonReplacementFailed     = "ReplacementFailed"
	ReasonInvalidReplicas       = "InvalidReplicas"
	ReasonUnsupportedStrategy   = "UnsupportedStrategy"
	ReasonNoMachinesSelected    = "NoMachinesSelected"
	ReasonMachineNameHasNoIndex = "MachineNameHasNoIndex"
	ReasonTooManyIndexes        = "TooManyIndexes"
	ReasonNodeWithoutMachine    = "NodeWithoutMachine"
	ReasonDuplicateAddress      = "DuplicateMachineAddress"
	ReasonInvalidPlacementInput = "InvalidPlacementInput"
)

// Defaults for Input.MaxAttempts and Input.Backoff.
const (
	defaultMaxAttempts = 3
	defaultBackoff     = 10 * time.Second
)

// slot is one desired index and the Machines that stand for it.
type slot struct {
	index  int
	target string
	// live are the Machines at the index that are not deleting, best first (see rank).
	live     []Machine
	deleting []Machine
	// move is the placement's move of the index, nil when it stays.
	move *failuredomain.Move
}

// fits says m matches the template and sits in the slot's target domain.
func (s *slot) fits(m Machine) bool { return m.Updated && (s.target == "" || m.Domain == s.target) }

// failures is how many replacements of the index failed so far, and when the last did: the
// count carried by a Machine being replaced, or a Failed Machine's own attempt number.
func (s *slot) failures() (int, time.Time) {
	n, last := 0, time.Time{}
	for _, m := range slices.Concat(s.live, s.deleting) {
		if m.FailedAttempts > n {
			n, last = m.FailedAttempts, m.LastFailure
		}
		if m.Phase == PhaseFailed && !m.Deleting && max(m.Attempt, 1) > n {
			n, last = max(m.Attempt, 1), m.Created
		}
	}
	return n, last
}

// Plan decides the one next action and the status.
//
// Precedence, the first that applies wins:
//  1. Any problem (invalid spec, unusable template, a Machine that cannot be adopted, two
//     live Machines with one address, a control-plane Node with no Machine, more indexes
//     than replicas), or a replacement that has failed
//     MaxAttempts times: Degraded, and nothing is created or deleted.
//  2. Inactive: status only.
//  3. An index with a Machine that fits and older ones beside it: the old ones are deleted
//     once the one that fits is a voting etcd member, or at once if they never became ready.
//  4. A Failed Machine this controller created (under RollingUpdate, any Failed Machine):
//     it is deleted, its attempt count recorded on another Machine of the index, and its
//     index gets a new Machine after a backoff that doubles with every attempt.
//  5. An index with no live Machine (its Machine deleted, or never there) gets one in its
//     target domain.
//  6. RollingUpdate, nothing else under way: the first index in pkg/failuredomain's move order
//     whose Machine is outdated or misplaced gets a replacement beside it.
//
// Machine count and quorum, worked out for 3 replicas: a Machine is created only while
// fewer than 4 exist, deleting ones included. A rolling step goes from 3 Machines to 4 (the
// replacement), pkg/controlplane adds and promotes its learner (4 voting members), step 3
// deletes the old Machine (4 Machines, its hook keeps its member), pkg/controlplane removes
// that member (3 voting) and releases the hook, and the old Machine goes (3 Machines). Voting
// members never fall below 3, and step 6 starts the next index only when no Machine is
// deleting and every index has exactly one. Two Machines deleted at once are replaced one
// after the other: the first replacement makes 4, and the second waits until the first old
// Machine is gone.
func Plan(in Input) Decision {
	if in.MaxAttempts <= 0 {
		in.MaxAttempts = defaultMaxAttempts
	}
	if in.Backoff <= 0 {
		in.Backoff = defaultBackoff
	}
	if in.Strategy == "" {
		in.Strategy = RollingUpdate
	}
	var d Decision
	d.Status.Degraded = Condition{metav1.ConditionFalse, ReasonAsExpected, "no problem found"}
	problems := slices.Concat(in.Problems, check(in))

	var slots []*slot
	if len(problems) == 0 {
		var err error
		slots, err = place(in)
		var tooMany *failuredomain.TooManyIndexesError
		switch {
		case errors.As(err, &tooMany):
			problems = append(problems, Problem{ReasonTooManyIndexes, "spec.replicas", err.Error()})
		case err != nil:
			problems = append(problems, Problem{ReasonInvalidPlacementInput, "", err.Error()})
		}
	}
	counts(in, slots, &d.Status)
	if len(problems) > 0 {
		return blocked(d, problems)
	}
	if exhausted := exhaustedFailures(in, slots); len(exhausted) > 0 {
		return blocked(d, exhausted)
	}
	if failed := failedMachines(in, slots); len(failed) > 0 {
		d.Status.Degraded = Condition{metav1.ConditionTrue, failed[0].Reason, joinProblems(failed)}
	}
	if !in.Active {
		d.Status.Progressing = Condition{metav1.ConditionFalse, ReasonInactive, "the ControlPlaneMachineSet is Inactive: Machines are neither created nor deleted"}
		d.Action = Action{Kind: None, Reason: "Inactive"}
		return d
	}
	for _, step := range []func(Input, []*slot, *Decision) bool{adopt, completeReplacement, retryFailed, fillEmpty, rollNext, waitDeleting} {
		if step(in, slots, &d) {
			return d
		}
	}
	d.Action = Action{Kind: None, Reason: "every index has a Machine that matches the template in its failure domain"}
	d.Status.Progressing = Condition{metav1.ConditionFalse, ReasonAllReplicasUpdated, fmt.Sprintf("all %d Machines match the template and sit in their failure domains", len(slots))}
	return d
}

// check finds the problems Plan can see itself.
func check(in Input) []Problem {
	var out []Problem
	if in.Replicas != 3 && in.Replicas != 5 {
		out = append(out, Problem{ReasonInvalidReplicas, "spec.replicas", fmt.Sprintf("%d; a control plane has 3 or 5 Machines", in.Replicas)})
	}
	if in.Strategy != RollingUpdate && in.Strategy != OnDelete {
		out = append(out, Problem{ReasonUnsupportedStrategy, "spec.strategy.type", fmt.Sprintf("%q; supported are RollingUpdate and OnDelete", in.Strategy)})
	}
	if len(in.Machines) == 0 {
		out = append(out, Problem{ReasonNoMachinesSelected, "spec.selector", "matches no control-plane Machine; a control plane is never built from nothing"})
	}
	for _, m := range in.Machines {
		if m.IndexErr != "" {
			out = append(out, Problem{ReasonMachineNameHasNoIndex, "Machine " + m.Name + " metadata.name", m.IndexErr})
		}
	}
	owner := map[string]string{}
	for _, m := range in.Machines {
		if m.Deleting {
			continue
		}
		for _, a := range m.Addresses {
			if o, taken := owner[a]; taken && o != m.Name {
				out = append(out, Problem{ReasonDuplicateAddress, "Machine " + m.Name + " status.addresses",
					fmt.Sprintf("%q is also an address of Machine %s; neither can be told apart from the other as an etcd member", a, o)})
				continue
			}
			owner[a] = m.Name
		}
	}
	for _, n := range orphanNodes(in) {
		out = append(out, Problem{ReasonNodeWithoutMachine, "Node " + n + " metadata.labels[node-role.kubernetes.io/master]",
			"is a control-plane Node that no selected Machine accounts for (by nodeRef, address or name)"})
	}
	return out
}

// orphanNodes are the control-plane Nodes no Machine names, by nodeRef, by an address equal
// to the Node's name, or by a shared InternalIP.
func orphanNodes(in Input) []string {
	var out []string
	for _, n := range in.Nodes {
		found := false
		for _, m := range in.Machines {
			if m.NodeName == n.Name || slices.Contains(m.Addresses, n.Name) ||
				slices.ContainsFunc(n.InternalIPs, func(ip string) bool { return slices.Contains(m.Addresses, ip) }) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	return out
}

// place asks pkg/failuredomain for the target of every index and groups the Machines.
func place(in Input) ([]*slot, error) {
	fm := make([]failuredomain.Machine, 0, len(in.Machines))
	for _, m := range in.Machines {
		fm = append(fm, failuredomain.Machine{Name: m.Name, Index: m.Index, Domain: m.Domain, Deleting: m.Deleting, Ready: ready(m)})
	}
	p, err := failuredomain.Place(failuredomain.Input{Replicas: in.Replicas, Domains: in.Domains, Machines: fm})
	if err != nil {
		return nil, err
	}
	byIndex := map[int]*slot{}
	var slots []*slot
	for _, i := range p.Indexes {
		s := &slot{index: i, target: p.Targets[i]}
		byIndex[i] = s
		slots = append(slots, s)
	}
	for _, mv := range p.Moves {
		byIndex[mv.Index].move = &mv
	}
	for _, m := range in.Machines {
		s := byIndex[m.Index]
		if m.Deleting {
			s.deleting = append(s.deleting, m)
		} else {
			s.live = append(s.live, m)
		}
	}
	for _, s := range slots {
		slices.SortFunc(s.live, s.rank)
		slices.SortFunc(s.deleting, func(a, b Machine) int { return strings.Compare(a.Name, b.Name) })
	}
	return slots, nil
}

// rank orders the live Machines of an index, the one to keep first: one that has not failed,
// then one that fits, a voting one, a running one, the older, and by name.
func (s *slot) rank(a, b Machine) int {
	key := func(m Machine) [4]bool { return [4]bool{m.Phase == PhaseFailed, !s.fits(m), !m.Voting, !ready(m)} }
	ka, kb := key(a), key(b)
	for i := range ka {
		if ka[i] != kb[i] {
			if ka[i] {
				return 1
			}
			return -1
		}
	}
	if c := a.Created.Compare(b.Created); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

func ready(m Machine) bool { return !m.Deleting && m.Phase == PhaseRunning }

// counts fills the replica counts and the Available condition.
func counts(in Input, slots []*slot, st *Status) {
	st.Replicas = int32(len(in.Machines))
	readyIndexes := map[int]bool{}
	for _, m := range in.Machines {
		if ready(m) {
			st.ReadyReplicas++
			readyIndexes[m.Index] = true
		}
	}
	for _, s := range slots {
		if slices.ContainsFunc(s.live, func(m Machine) bool { return ready(m) && s.fits(m) }) {
			st.UpdatedReplicas++
		}
	}
	if slots == nil {
		// No placement (the input is invalid): the domains cannot be judged.
		updated := map[int]bool{}
		for _, m := range in.Machines {
			if ready(m) && m.Updated && m.IndexErr == "" {
				updated[m.Index] = true
			}
		}
		st.UpdatedReplicas = int32(len(updated))
	}
	st.UnavailableReplicas = int32(max(0, in.Replicas-len(readyIndexes)))
	if st.UnavailableReplicas == 0 {
		st.Available = Condition{metav1.ConditionTrue, ReasonAllReplicasAvailable, fmt.Sprintf("%d of %d indexes have a Running Machine", len(readyIndexes), in.Replicas)}
		return
	}
	var missing []string
	for _, s := range slots {
		if !readyIndexes[s.index] {
			missing = append(missing, fmt.Sprint(s.index))
		}
	}
	msg := fmt.Sprintf("%d of %d indexes have no Running Machine", st.UnavailableReplicas, in.Replicas)
	if len(missing) > 0 {
		msg += ": " + strings.Join(missing, ", ")
	}
	st.Available = Condition{metav1.ConditionFalse, ReasonUnavailableReplicas, msg}
}

func blocked(d Decision, problems []Problem) Decision {
	d.Status.Degraded = Condition{metav1.ConditionTrue, problems[0].Reason, joinProblems(problems)}
	d.Status.Progressing = Condition{metav1.ConditionFalse, ReasonBlocked, "no Machine is created or deleted until the problems Degraded reports are fixed"}
	d.Action = Action{Kind: None, Reason: "blocked: " + problems[0].String()}
	return d
}

func joinProblems(ps []Problem) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, "; ")
}

// handledFailure says whether Plan replaces a Failed Machine: always one it created, and
// under RollingUpdate any. Under OnDelete a Failed Machine someone else created is only
// reported; deleting it is the person's call.
func handledFailure(in Input, m Machine) bool {
	return !m.Deleting && m.Phase == PhaseFailed && (m.Attempt > 0 || in.Strategy == RollingUpdate)
}

func exhaustedFailures(in Input, slots []*slot) []Problem {
	var out []Problem
	for _, s := range slots {
		for _, m := range s.live {
			if handledFailure(in, m) && max(m.Attempt, 1) >= in.MaxAttempts {
				out = append(out, Problem{ReasonReplacementFailed, "Machine " + m.Name + " status.phase",
					fmt.Sprintf("Failed (%s) on attempt %d of %d for index %d; no Machine is created or deleted until it is deleted by hand",
						failureText(m), max(m.Attempt, 1), in.MaxAttempts, s.index)})
			}
		}
	}
	return out
}

func failedMachines(in Input, slots []*slot) []Problem {
	var out []Problem
	for _, s := range slots {
		for _, m := range s.live {
			if m.Phase != PhaseFailed {
				continue
			}
			what := "delete it to have it replaced"
			if handledFailure(in, m) {
				what = fmt.Sprintf("it is deleted and index %d gets attempt %d of %d", s.index, max(m.Attempt, 1)+1, in.MaxAttempts)
			}
			out = append(out, Problem{ReasonMachineFailed, "Machine " + m.Name + " status.phase", fmt.Sprintf("Failed (%s); %s", failureText(m), what)})
		}
	}
	return out
}

func failureText(m Machine) string {
	if m.ErrorMessage == "" {
		return "no error message"
	}
	return m.ErrorMessage
}

// adopt records the index of the first Machine, by name, that was adopted at one and does
// not carry it yet. It comes before every other action, so the index is settled before a
// replacement named with it can exist.
func adopt(in Input, _ []*slot, d *Decision) bool {
	for _, m := range in.Machines {
		if !m.Adopt {
			continue
		}
		why := fmt.Sprintf("its name carries no index and index %d is free, as the ControlPlaneMachineSet operator would adopt it", m.Index)
		d.InFlight = true
		d.Action = Action{Kind: Adopt, Index: m.Index, Machine: m.Name, Reason: why}
		d.Status.Progressing = Condition{metav1.ConditionTrue, ReasonAdopting, fmt.Sprintf("adopting Machine %s at index %d: %s", m.Name, m.Index, why)}
		return true
	}
	return false
}

// completeReplacement deletes the Machines that a fitting Machine at the same index replaces:
// once it is a voting etcd member, or at once for a Machine that never became ready (a
// Failed attempt the new one follows among them).
func completeReplacement(in Input, slots []*slot, d *Decision) bool {
	for _, s := range slots {
		if len(s.live) < 2 {
			continue
		}
		keep := s.live[0]
		if !s.fits(keep) || keep.Phase == PhaseFailed {
			continue
		}
		old := s.live[1]
		reason := ReasonRollingUpdate
		if old.Domain != s.target {
			reason = ReasonRebalancing
		}
		replaces := fmt.Sprintf("Machine %s replaces %s at index %d", keep.Name, old.Name, s.index)
		if keep.Why != "" {
			replaces += " (" + keep.Why + ")"
		}
		var why string
		switch {
		case keep.Voting && ready(keep):
			why = fmt.Sprintf("its replacement %s for index %d is a voting etcd member", keep.Name, s.index)
		case !ready(old):
			why = fmt.Sprintf("it never became ready (phase %q), so %s replaces it without waiting", old.Phase, keep.Name)
		default:
			d.InFlight = true
			d.Action = Action{Kind: None, Reason: fmt.Sprintf("waiting for %s to become a voting etcd member", keep.Name)}
			d.Status.Progressing = Condition{metav1.ConditionTrue, reason,
				fmt.Sprintf("%s; %s is deleted once %s is a voting etcd member", replaces, old.Name, keep.Name)}
			return true
		}
		d.InFlight = true
		d.Action = Action{Kind: Delete, Index: s.index, Machine: old.Name, Reason: why}
		d.Status.Progressing = Condition{metav1.ConditionTrue, reason, fmt.Sprintf("%s; deleting %s: %s", replaces, old.Name, why)}
		return true
	}
	return false
}

// retryFailed replaces a Failed Machine. When another Machine of the index is being
// replaced (outdated, misplaced or deleting), that one carries the attempt count: the count
// is recorded on it and the Failed Machine deleted, and the next attempt follows after the
// backoff. When the Failed Machine stands alone for its index, the next attempt is created
// beside it and carries the count itself; completeReplacement then deletes the Failed one.
func retryFailed(in Input, slots []*slot, d *Decision) bool {
	for _, s := range slots {
		for _, f := range s.live {
			if !handledFailure(in, f) {
				continue
			}
			n := max(f.Attempt, 1)
			why := fmt.Sprintf("Machine %s Failed (%s) on attempt %d of %d", f.Name, failureText(f), n, in.MaxAttempts)
			d.InFlight = true
			if carrier := s.carrier(f); carrier != "" {
				d.Action = Action{Kind: DeleteFailed, Index: s.index, Machine: f.Name, Carrier: carrier, Attempt: n, Reason: why}
				d.Status.Progressing = Condition{metav1.ConditionTrue, ReasonRetryingFailed,
					fmt.Sprintf("%s; deleting it, and index %d gets attempt %d after a backoff", why, s.index, n+1)}
				return true
			}
			return create(in, slots, s, d, ReasonRetryingFailed, why)
		}
	}
	return false
}

// carrier is a Machine of the index that is being replaced and has not failed: deleting, or
// live and not fitting. It is deleted once the index is settled, so the count it carries
// never outlives the replacement.
func (s *slot) carrier(f Machine) string {
	for _, m := range slices.Concat(s.live, s.deleting) {
		if m.Name != f.Name && m.Phase != PhaseFailed && (m.Deleting || !s.fits(m)) {
			return m.Name
		}
	}
	return ""
}

// fillEmpty creates a Machine for the first index, in move order, that has no live one.
func fillEmpty(in Input, slots []*slot, d *Decision) bool {
	for _, s := range moveOrder(slots) {
		if len(s.live) > 0 {
			continue
		}
		why := fmt.Sprintf("index %d has no Machine", s.index)
		reason := ReasonCreatingMissing
		if len(s.deleting) > 0 {
			why = fmt.Sprintf("Machine %s of index %d is deleting", s.deleting[0].Name, s.index)
			reason = ReasonReplacingDeleted
		}
		if s.move != nil {
			why += "; " + s.move.Reason
		} else if s.target != "" {
			why += "; its replacement goes to " + s.target
		}
		return create(in, slots, s, d, reason, why)
	}
	return false
}

// rollNext, under RollingUpdate and with nothing else under way, replaces the first index in
// move order whose Machine does not fit. Under OnDelete it only reports what would be
// replaced.
func rollNext(in Input, slots []*slot, d *Decision) bool {
	var todo []*slot
	var reasons []string
	for _, s := range moveOrder(slots) {
		if len(s.live) == 1 && !s.fits(s.live[0]) {
			todo = append(todo, s)
			reasons = append(reasons, fmt.Sprintf("%s (index %d): %s", s.live[0].Name, s.index, s.why()))
		}
	}
	if len(todo) == 0 {
		return false
	}
	if in.Strategy == OnDelete {
		d.Action = Action{Kind: None, Reason: "OnDelete: outdated Machines are replaced only once deleted"}
		d.Status.Progressing = Condition{metav1.ConditionTrue, ReasonNeedsUpdate,
			fmt.Sprintf("%d Machines need replacing, and under OnDelete each is replaced once someone deletes it: %s", len(todo), strings.Join(reasons, "; "))}
		return true
	}
	for _, s := range slots {
		if len(s.deleting) > 0 || len(s.live) != 1 {
			d.InFlight = true
			d.Action = Action{Kind: None, Reason: fmt.Sprintf("index %d is still being replaced", s.index)}
			d.Status.Progressing = Condition{metav1.ConditionTrue, ReasonWaitingForReplacement,
				fmt.Sprintf("waiting for the replacement at index %d to finish before replacing %s", s.index, reasons[0])}
			return true
		}
	}
	s := todo[0]
	reason := ReasonRollingUpdate
	if s.move != nil {
		reason = ReasonRebalancing
	}
	return create(in, slots, s, d, reason, fmt.Sprintf("replacing Machine %s: %s", s.live[0].Name, s.why()))
}

// waitDeleting reports a deletion still under way once every index has its Machine. The
// reason says why the index was replaced: the deleted Machine did not fit, or someone
// deleted it.
func waitDeleting(in Input, slots []*slot, d *Decision) bool {
	for _, s := range slots {
		if len(s.deleting) == 0 {
			continue
		}
		old := s.deleting[0]
		reason := ReasonReplacingDeleted
		switch {
		case s.target != "" && old.Domain != s.target:
			reason = ReasonRebalancing
		case !old.Updated:
			reason = ReasonRollingUpdate
		}
		msg := fmt.Sprintf("Machine %s (index %d) is deleting", old.Name, s.index)
		if len(s.live) > 0 {
			msg = fmt.Sprintf("Machine %s replaces %s at index %d", s.live[0].Name, old.Name, s.index)
			if w := s.live[0].Why; w != "" {
				msg += " (" + w + ")"
			}
			msg += "; " + old.Name + " is deleting"
		}
		d.InFlight = true
		d.Action = Action{Kind: None, Reason: fmt.Sprintf("Machine %s is deleting", old.Name)}
		d.Status.Progressing = Condition{metav1.ConditionTrue, reason, msg + ": it goes once its etcd member is removed and its hook released"}
		return true
	}
	return false
}

// why says why the index's single live Machine does not fit.
func (s *slot) why() string {
	m := s.live[0]
	var parts []string
	if s.move != nil {
		parts = append(parts, s.move.Reason)
	}
	if !m.Updated {
		diff := m.Diff
		if diff == "" {
			diff = "its providerSpec"
		}
		parts = append(parts, "the providerSpec differs from the template at "+diff)
	}
	return strings.Join(parts, "; ")
}

// moveOrder is pkg/failuredomain's move order over all indexes: no live Machine first, then
// no ready Machine, then the rest; lowest index first within each.
func moveOrder(slots []*slot) []*slot {
	group := func(s *slot) int {
		switch {
		case len(s.live) == 0:
			return 0
		case !slices.ContainsFunc(s.live, ready):
			return 1
		}
		return 2
	}
	out := slices.Clone(slots)
	slices.SortStableFunc(out, func(a, b *slot) int {
		return cmp.Or(cmp.Compare(group(a), group(b)), cmp.Compare(a.index, b.index))
	})
	return out
}

// create decides to create a Machine for s, within the surge and after any backoff.
func create(in Input, slots []*slot, s *slot, d *Decision, reason, why string) bool {
	d.InFlight = true
	if len(in.Machines) >= in.Replicas+1 {
		d.Action = Action{Kind: None, Reason: fmt.Sprintf("%d Machines exist, the most allowed is %d", len(in.Machines), in.Replicas+1)}
		d.Status.Progressing = Condition{metav1.ConditionTrue, ReasonWaitingForSurge,
			fmt.Sprintf("index %d needs a Machine (%s), but %d Machines exist and at most %d may; waiting for a deletion to finish", s.index, why, len(in.Machines), in.Replicas+1)}
		return true
	}
	failed, last := s.failures()
	if failed > 0 {
		wait := in.Backoff << min(failed-1, 16)
		if at := last.Add(wait); in.Now.Before(at) {
			d.RetryAfter = at.Sub(in.Now)
			d.Action = Action{Kind: None, Reason: fmt.Sprintf("backing off %s after %d failed attempts at index %d", wait, failed, s.index)}
			d.Status.Progressing = Condition{metav1.ConditionTrue, ReasonRetryingFailed,
				fmt.Sprintf("index %d gets attempt %d of %d at %s (%s): %s", s.index, failed+1, in.MaxAttempts, at.UTC().Format(time.RFC3339), wait, why)}
			return true
		}
	}
	from := ""
	if len(s.live) > 0 {
		from = s.live[len(s.live)-1].Name
	} else if len(s.deleting) > 0 {
		from = s.deleting[0].Name
	}
	d.Action = Action{Kind: Create, Index: s.index, Domain: s.target, Machine: from, Attempt: failed + 1, Reason: why}
	d.Status.Progressing = Condition{metav1.ConditionTrue, reason, why}
	return true
}
