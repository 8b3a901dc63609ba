package quorum

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// This file is a small model of etcd membership and of control-plane Machines, used by
// modelcheck_test.go to explore every state the planner can meet. The model keeps the truth of
// which Machine runs which member; the planner only sees what the controller would gather
// (addresses, Node names, peer URLs) and places members with Map. The properties are checked
// against the truth.

// maxSlots is how many Machines a run may ever create, replacements included.
const maxSlots = 7

// Machine life: a slot is empty until a Machine is created in it, and a Machine whose hook is
// released drains and disappears (gone); its slot is never reused.
const (
	slotEmpty uint8 = iota
	slotRunning
	slotDeleting
	slotGone
)

// addrKind says how a Machine reports its addresses and how the peer URL of a member it runs
// is written. The planner's Map must cope with each of them.
type addrKind uint8

const (
	// kindIP: peer URL on the Machine's only InternalIP.
	kindIP addrKind = iota
	// kindDNS: peer URL on a DNS name the Machine reports as InternalDNS.
	kindDNS
	// kindHostname: peer URL on a name the Machine reports as Hostname.
	kindHostname
	// kindUnlisted: peer URL on an IP the Machine does not list in status.addresses; the
	// member's name still matches the Machine's Node.
	kindUnlisted
	// kindUnlistedNoNode: as kindUnlisted, and the Machine names no Node, so nothing ties the
	// member to it.
	kindUnlistedNoNode
	// kindShared: the Machine's InternalIP is reported by another Machine too.
	kindShared
	// kindInvalid: the member's peer URL cannot be parsed.
	kindInvalid
	numKinds
)

var kindNames = [...]string{"ip", "dns", "hostname", "unlisted", "unlisted-no-node", "shared", "invalid"}

func (k addrKind) String() string { return kindNames[k] }

// sharedIP is the InternalIP every kindShared Machine reports.
const sharedIP = "10.0.0.99"

type mMachine struct {
	status uint8
	kind   addrKind
	hook   bool
	// ineligible: the Machine may not hold a member (as masters.MayHoldMember says).
	ineligible bool
	// owned: the ControlPlaneMachineSet owns it and creates a replacement once it is deleting.
	owned    bool
	replaced bool
	// timedOut: a learner of this Machine was removed because it never started.
	timedOut bool
}

type mMember struct {
	// host is the slot of the Machine that truly runs the member.
	host int8
	// peer is how its peer URL is written (relative to host).
	peer     addrKind
	learner  bool
	started  bool
	alive    bool
	leader   bool
	caughtUp bool
	// fresh: promoted within etcd's health window; etcd does not count it as active yet.
	fresh bool
	// late: a learner that stands still (never started, died, or cut off from the leader)
	// seen so for longer than the timeout.
	late bool
	// cut: linked, or how far the member is cut off from the leader (linkCut, linkCutSeen).
	cut uint8
}

// A learner cut off from the leader still runs and answers Status naming the leader (a
// learner never campaigns), but receives no entries. The controller tells it apart only by
// comparing readings of two passes while the cluster takes writes (LearnerHealth), and
// etcdmember's Promote by the index the fence writes. The model takes the cluster to take
// writes, as a Kubernetes control plane always does; a refused promotion's fence is a write
// too.
const (
	linked uint8 = iota
	// linkCut: cut since the controller's last reading, which still showed the learner
	// receiving entries; LearnerHealth cannot tell yet.
	linkCut
	// linkCutSeen: cut, and a pass has read its index standing still below what the leader
	// held at the pass before.
	linkCutSeen
)

// world is one state of the model. Member IDs are their index + 1: members are kept in ID
// order and renumbered densely, which keeps the planner's lowest-ID-first choices and merges
// states that differ only in ID values.
type world struct {
	desired     uint8
	faultsLeft  uint8
	deletesLeft uint8
	machines    [maxSlots]mMachine
	members     []mMember
}

func (w world) clone() world {
	w.members = append([]mMember(nil), w.members...)
	return w
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// key is the canonical encoding of a world: 3 bytes, 2 per slot, 2 per member.
func (w world) key() string {
	buf := make([]byte, 0, 3+2*maxSlots+2*len(w.members))
	buf = append(buf, w.desired, w.faultsLeft, w.deletesLeft)
	for _, m := range w.machines {
		buf = append(buf, m.status|uint8(m.kind)<<2|b2u(m.hook)<<5,
			b2u(m.ineligible)|b2u(m.owned)<<1|b2u(m.replaced)<<2|b2u(m.timedOut)<<3)
	}
	for _, m := range w.members {
		buf = append(buf, uint8(m.host)|uint8(m.peer)<<3|b2u(m.learner)<<6|b2u(m.started)<<7,
			b2u(m.alive)|b2u(m.leader)<<1|b2u(m.caughtUp)<<2|b2u(m.fresh)<<3|b2u(m.late)<<4|m.cut<<5)
	}
	return string(buf)
}

func decodeWorld(k string) world {
	w := world{desired: k[0], faultsLeft: k[1], deletesLeft: k[2]}
	p := 3
	for i := range w.machines {
		a, b := k[p], k[p+1]
		p += 2
		w.machines[i] = mMachine{status: a & 3, kind: addrKind(a >> 2 & 7), hook: a>>5&1 == 1,
			ineligible: b&1 == 1, owned: b>>1&1 == 1, replaced: b>>2&1 == 1, timedOut: b>>3&1 == 1}
	}
	for ; p < len(k); p += 2 {
		a, b := k[p], k[p+1]
		w.members = append(w.members, mMember{host: int8(a & 7), peer: addrKind(a >> 3 & 7), learner: a>>6&1 == 1, started: a>>7 == 1,
			alive: b&1 == 1, leader: b>>1&1 == 1, caughtUp: b>>2&1 == 1, fresh: b>>3&1 == 1, late: b>>4&1 == 1, cut: b >> 5 & 3})
	}
	return w
}

// The names, IPs and peer URLs of the slots are made once: the walk needs them in every world.
var slotNames, slotIPs, slotPeerURLs = func() (names, ips [maxSlots]string, urls [maxSlots][numKinds]string) {
	for i := range maxSlots {
		names[i], ips[i] = makeSlotName(i), makeSlotIP(i)
		for k := range numKinds {
			urls[i][k] = makePeerURL(i, k)
		}
	}
	return names, ips, urls
}()

func slotName(i int) string {
	if i >= 0 && i < maxSlots {
		return slotNames[i]
	}
	return makeSlotName(i)
}

func slotIP(i int) string {
	if i >= 0 && i < maxSlots {
		return slotIPs[i]
	}
	return makeSlotIP(i)
}

func makeSlotName(i int) string { return fmt.Sprintf("m-%d", i) }
func makeSlotIP(i int) string   { return fmt.Sprintf("10.0.0.%d", 10+i) }

// addresses are the status.addresses a Machine of slot i and kind k reports.
func addresses(i int, k addrKind) []Address {
	switch k {
	case kindShared:
		return []Address{{AddressInternalIP, sharedIP}}
	case kindDNS:
		return []Address{{AddressInternalIP, slotIP(i)}, {AddressInternalDNS, slotName(i) + ".cluster.example"}}
	case kindHostname:
		return []Address{{AddressInternalIP, slotIP(i)}, {AddressHostname, slotName(i) + "-host"}}
	default:
		return []Address{{AddressInternalIP, slotIP(i)}}
	}
}

// peerURL is the peer URL of a member on slot i written the kind-k way.
func peerURL(i int, k addrKind) string {
	if i >= 0 && i < maxSlots && k < numKinds {
		return slotPeerURLs[i][k]
	}
	return makePeerURL(i, k)
}

func makePeerURL(i int, k addrKind) string {
	switch k {
	case kindShared:
		return "https://" + sharedIP + ":2380"
	case kindDNS:
		return "https://" + makeSlotName(i) + ".cluster.example:2380"
	case kindHostname:
		return "https://" + makeSlotName(i) + "-host:2380"
	case kindUnlisted, kindUnlistedNoNode:
		return fmt.Sprintf("https://10.0.1.%d:2380", 10+i)
	case kindInvalid:
		return fmt.Sprintf("https://m_%d:2380", i)
	default:
		return "https://" + makeSlotIP(i) + ":2380"
	}
}

// peerOf finds the kind of peer URL u for a member on slot i, false if it is none of them.
func peerOf(i int, u string) (addrKind, bool) {
	for k := range numKinds {
		if peerURL(i, k) == u {
			return k, true
		}
	}
	return 0, false
}

const learnerStartTimeout = 5 * time.Minute

func (w world) exists(slot int8) bool {
	return slot >= 0 && (w.machines[slot].status == slotRunning || w.machines[slot].status == slotDeleting)
}

// census counts the voting members as etcd does: healthy means started, answering and
// connected to the leader. Only a promotion the model must refuse makes a cut-off voter; it
// counts as unhealthy.
func (w world) census() Census {
	var c Census
	for _, m := range w.members {
		switch {
		case m.learner:
			c.Learners++
		default:
			c.Voters++
			if m.up() {
				c.Healthy++
			}
		}
	}
	return c
}

// up says the member runs, answers and receives the leader's entries.
func (m mMember) up() bool { return m.started && m.alive && m.cut == linked }

// readings are the controller's readings of a learner in this pass and in the one before,
// as the world implies them; LearnerHealth judges them. A learner that has not started or is
// down does not answer. One that answers: catching up, it advances below 90% of the leader's
// index; caught up, it holds all the leader holds; cut off, it holds what it held at the cut,
// which the pass before still saw it reach, while the leader goes on (the next pass finds it
// below what the leader held before).
func (m mMember) readings() (now LearnerReading, before *LearnerReading) {
	r := func(index, leader uint64) *LearnerReading {
		return &LearnerReading{Answered: true, Index: index, LeaderIndex: leader}
	}
	switch {
	case !m.started || !m.alive:
		return LearnerReading{}, r(100, 100)
	case m.cut == linkCut && m.caughtUp:
		return *r(100, 110), r(100, 100)
	case m.cut == linkCut:
		return *r(50, 110), r(40, 100)
	case m.cut == linkCutSeen && m.caughtUp:
		return *r(100, 120), r(100, 110)
	case m.cut == linkCutSeen:
		return *r(50, 120), r(50, 110)
	case m.caughtUp:
		return *r(100, 100), r(95, 98)
	default:
		return *r(50, 100), r(40, 98)
	}
}

// learnerHealth is the learner's health in the planner's input. oldRule is the one before
// LearnerHealth, for the mutant tests: a learner that started and answers is healthy, and
// its time counts towards the timeout only while it is not.
func (m mMember) learnerHealth(oldRule bool) (healthy, progressing bool) {
	if oldRule {
		healthy = m.started && m.alive
		return healthy, healthy
	}
	now, before := m.readings()
	return LearnerHealth(now, before)
}

// standsStill says the controller counts the learner's time towards the start timeout: it
// never started, is down, or is cut off and seen so.
func (m mMember) standsStill() bool {
	return !m.started || !m.alive || m.cut == linkCutSeen
}

// modelRules are the parts of the model that the mutant tests turn off.
type modelRules struct {
	// laxEtcd turns etcd's strict reconfiguration check off.
	laxEtcd bool
	// oldLearnerHealth builds a learner's Healthy as started and alive, not by LearnerHealth.
	oldLearnerHealth bool
	// noConnectedCheck promotes without etcdmember's check that the learner commits the
	// leader's index written by the fence.
	noConnectedCheck bool
}

func (w world) quorate() bool {
	c := w.census()
	return c.Voters > 0 && c.Healthy >= c.Quorum()
}

// settle keeps the leader right: without quorum there is none; with quorum and no leader the
// lowest healthy voting member is elected.
func (w *world) settle() {
	lead := -1
	for i := range w.members {
		m := &w.members[i]
		if m.leader && (m.learner || !m.up()) {
			m.leader = false
		}
		if m.leader {
			lead = i
		}
	}
	if !w.quorate() {
		if lead >= 0 {
			w.members[lead].leader = false
		}
		return
	}
	if lead >= 0 {
		return
	}
	for i := range w.members {
		if m := &w.members[i]; !m.learner && m.up() {
			m.leader = true
			return
		}
	}
}

// modelNow is the time of every snapshot; a member promoted within the health window is one
// whose Machine turned Voting at modelNow.
var modelNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// state is what the controller gathers from this world for Decide.
func (w world) state(r modelRules) State {
	s := State{Desired: int(w.desired), LearnerStartTimeout: learnerStartTimeout, Now: modelNow}
	// The controller writes Voting on the Machine in the pass that promotes its member.
	fresh := map[int]bool{}
	for _, m := range w.members {
		if m.fresh && !m.learner {
			fresh[int(m.host)] = true
		}
	}
	for i, m := range w.machines {
		if m.status != slotRunning && m.status != slotDeleting {
			continue
		}
		qm := Machine{Name: slotName(i), Deleting: m.status == slotDeleting, Running: m.status == slotRunning,
			HasHook: m.hook, Addresses: addresses(i, m.kind), LearnerTimedOut: m.timedOut}
		if m.kind != kindUnlistedNoNode {
			qm.NodeName = slotName(i)
		}
		if m.ineligible {
			qm.Ineligible = "its name has no index"
		}
		if fresh[i] {
			qm.VotingSince = modelNow
		}
		s.Machines = append(s.Machines, qm)
	}
	for i, m := range w.members {
		qm := Member{ID: uint64(i + 1), PeerURLs: []string{peerURL(int(m.host), m.peer)}, Learner: m.learner,
			Started: m.started, Healthy: m.up(), Leader: m.leader}
		if m.started {
			// etcd names a member after the Node it runs on.
			qm.Name = slotName(int(m.host))
		}
		if m.learner {
			qm.Progress = 0.5
			if m.caughtUp {
				qm.Progress = 1
			}
			var progressing bool
			qm.Healthy, progressing = m.learnerHealth(r.oldLearnerHealth)
			if m.late && !qm.Healthy && !progressing {
				qm.DownFor = learnerStartTimeout
			}
		}
		s.Members = append(s.Members, qm)
	}
	return s
}

func slotOf(name string) int8 {
	var i int
	if _, err := fmt.Sscanf(name, "m-%d", &i); err != nil || i < 0 || i >= maxSlots || slotName(i) != name {
		return -1
	}
	return int8(i)
}

// apply makes the planner's action on w as etcd and the machine API would. It returns the new
// world, why etcd or the API refused (the world is then unchanged) and an error for an action
// the model cannot even express (naming a member or Machine that does not exist). r turns
// off some of the checks of etcd and of the client, to show what the rest keeps on its own.
func (w world) apply(a Action, r modelRules) (world, string, error) {
	n := w.clone()
	member := func() (*mMember, error) {
		if a.MemberID == 0 || a.MemberID > uint64(len(n.members)) {
			return nil, fmt.Errorf("%s names member %x, which is not in the member list", a.Kind, a.MemberID)
		}
		return &n.members[a.MemberID-1], nil
	}
	switch a.Kind {
	case None:
		return w, "", nil
	case AddLearner:
		slot := slotOf(a.Machine)
		if !w.exists(slot) {
			return w, "", fmt.Errorf("AddLearner for Machine %q, which does not exist", a.Machine)
		}
		k, ok := peerOf(int(slot), a.PeerURL)
		if !ok {
			return w, "", fmt.Errorf("AddLearner with peer URL %q, which Machine %s would never start a member on", a.PeerURL, a.Machine)
		}
		if !w.quorate() {
			return w, "etcd has no quorum", nil
		}
		for _, m := range w.members {
			if m.learner {
				return w, "etcd refuses a second learner", nil
			}
			if peerURL(int(m.host), m.peer) == a.PeerURL {
				return w, "etcd refuses a peer URL that a member has", nil
			}
		}
		n.members = append(n.members, mMember{host: slot, peer: k, learner: true, alive: true})
	case Promote:
		m, err := member()
		if err != nil {
			return w, "", err
		}
		if !w.quorate() {
			return w, "etcd has no quorum", nil
		}
		if !m.learner {
			return w, "etcd: the member is not a learner", nil
		}
		if m.cut != linked && !r.noConnectedCheck {
			// The fence's write reaches the leader but not the learner.
			return w, "etcdmember: the learner has not committed the leader's index written by the fence", nil
		}
		// etcd's own check is on the leader's view of the learner, which still holds what
		// it held at the cut: it accepts a learner cut off after catching up.
		if !m.started || !m.alive || !m.caughtUp {
			return w, "etcd: can only promote a learner member which is in sync with leader", nil
		}
		m.learner, m.fresh = false, true
	case MoveLeader:
		if _, err := member(); err != nil {
			return w, "", err
		}
		if a.To == 0 || a.To > uint64(len(n.members)) {
			return w, "", fmt.Errorf("MoveLeader to member %x, which is not in the member list", a.To)
		}
		to := &n.members[a.To-1]
		if !w.quorate() {
			return w, "etcd has no leader", nil
		}
		if to.learner || !to.up() {
			return w, "etcd: the target cannot lead", nil
		}
		for i := range n.members {
			n.members[i].leader = false
		}
		to.leader = true
	case RemoveMember:
		m, err := member()
		if err != nil {
			return w, "", err
		}
		if !w.quorate() {
			return w, "etcd has no quorum", nil
		}
		if !m.learner && !r.laxEtcd {
			if why := w.mayRemoveVoter(int(a.MemberID - 1)); why != "" {
				return w, why, nil
			}
		}
		if m.learner && m.late && m.standsStill() {
			// The controller remembers for a while that this Machine's learner never started;
			// the model remembers it for good (it only orders the candidates for a learner).
			n.machines[m.host].timedOut = true
		}
		n.members = append(n.members[:a.MemberID-1], n.members[a.MemberID:]...)
	case ReleaseHook:
		slot := slotOf(a.Machine)
		if !w.exists(slot) {
			return w, "", fmt.Errorf("ReleaseHook of Machine %q, which does not exist", a.Machine)
		}
		if !w.machines[slot].hook {
			return w, "", fmt.Errorf("ReleaseHook of Machine %s, which has no hook", a.Machine)
		}
		n.machines[slot].hook = false
		if n.machines[slot].status == slotDeleting {
			// Drained and gone; the etcd process on it dies with it.
			n.machines[slot].status = slotGone
			for i := range n.members {
				if n.members[i].host == slot {
					n.members[i].alive = false
				}
			}
		}
	default:
		return w, "", fmt.Errorf("unknown action %q", a.Kind)
	}
	n.settle()
	return n, "", nil
}

// mayRemoveVoter is etcd's strict reconfiguration check for removing voting member i: the
// started voting members left must reach the quorum of those left, and when the member is
// active, the active ones left (a member promoted within the health window is not active
// yet) must too.
func (w world) mayRemoveVoter(i int) string {
	voters, started, active := 0, 0, 0
	for j, m := range w.members {
		if m.learner {
			continue
		}
		voters++
		if m.up() && (!m.fresh || m.leader) {
			active++
		}
		if j != i && m.started {
			started++
		}
	}
	if started < QuorumOf(voters-1) {
		return "etcd: not enough started members"
	}
	t := w.members[i]
	if !t.up() {
		return "" // a member that is down or cut off is not part of the active quorum
	}
	if active-1 < QuorumOf(voters-1) {
		return "etcd: removal would leave too few active members (a promotion is within the health window)"
	}
	return ""
}

// event is one step of the environment.
type event struct {
	format string
	args   []any
	next   world
	benign bool
}

// label says what happened, for a counterexample; it is formatted only then.
func (e event) label() string { return fmt.Sprintf(e.format, e.args...) }

// events lists the environment steps enabled in w. Faults (deaths, deletions, a learner
// that never starts) are bounded by the budgets in w; benign ones are not.
func (w world) events() []event {
	var out []event
	add := func(n world, benign bool, format string, args ...any) {
		n.settle()
		out = append(out, event{format: format, args: args, next: n, benign: benign})
	}
	// Benign first, in the order a cooperative environment plays them.
	for i, m := range w.machines {
		// The ControlPlaneMachineSet replaces a deleted Machine whether or not it is gone yet.
		if (m.status != slotDeleting && m.status != slotGone) || !m.owned || m.replaced {
			continue
		}
		for j, e := range w.machines {
			if e.status == slotEmpty {
				n := w.clone()
				n.machines[i].replaced = true
				n.machines[j] = mMachine{status: slotRunning, kind: kindIP, hook: true, owned: true}
				add(n, true, "replacement %s appears for %s", slotName(j), slotName(i))
				break
			}
		}
	}
	for i, m := range w.members {
		switch {
		case m.learner && !m.started && m.alive && w.exists(m.host):
			n := w.clone()
			n.members[i].started, n.members[i].late = true, false
			add(n, true, "learner %x starts on %s", i+1, slotName(int(m.host)))
		case m.learner && m.up() && !m.caughtUp:
			n := w.clone()
			n.members[i].caughtUp = true
			add(n, true, "learner %x catches up with the leader", i+1)
		case m.learner && m.started && !m.alive && !m.late:
			// Time passes: a dead learner stays down past the timeout.
			n := w.clone()
			n.members[i].late = true
			add(n, true, "learner %x stays down for %s", i+1, learnerStartTimeout)
		case m.learner && m.cut == linkCut && m.alive:
			// The cluster takes writes (a refused promotion's fence is one), and the next
			// pass finds the learner below what the leader held at the pass before.
			n := w.clone()
			n.members[i].cut = linkCutSeen
			add(n, true, "a pass reads learner %x standing still below the leader's earlier index", i+1)
		case m.learner && m.cut == linkCutSeen && m.alive && !m.late:
			n := w.clone()
			n.members[i].late = true
			add(n, true, "learner %x stands still for %s", i+1, learnerStartTimeout)
		}
	}
	for _, m := range w.members {
		if m.fresh {
			n := w.clone()
			for i := range n.members {
				n.members[i].fresh = false
			}
			add(n, true, "the health window passes")
			break
		}
	}
	// Faults and recoveries. A learner that does not start in time is a fault too.
	for i, m := range w.members {
		switch {
		case m.started && m.alive && w.faultsLeft > 0:
			n := w.clone()
			n.faultsLeft--
			n.members[i].alive = false
			add(n, false, "member %x on %s dies", i+1, slotName(int(m.host)))
		case m.started && !m.alive && w.exists(m.host):
			n := w.clone()
			n.members[i].alive, n.members[i].late = true, false
			add(n, false, "member %x on %s recovers", i+1, slotName(int(m.host)))
		case m.learner && !m.started && !m.late && w.faultsLeft > 0:
			n := w.clone()
			n.faultsLeft--
			n.members[i].late = true
			add(n, false, "learner %x does not start within %s", i+1, learnerStartTimeout)
		}
		switch {
		case m.learner && m.up() && w.faultsLeft > 0:
			n := w.clone()
			n.faultsLeft--
			n.members[i].cut = linkCut
			add(n, false, "learner %x on %s is cut off from the leader", i+1, slotName(int(m.host)))
		case m.cut != linked && w.exists(m.host):
			n := w.clone()
			n.members[i].cut, n.members[i].late = linked, false
			add(n, false, "the link of member %x on %s to the leader mends", i+1, slotName(int(m.host)))
		}
	}
	if w.deletesLeft > 0 {
		for i, m := range w.machines {
			if m.status == slotRunning {
				n := w.clone()
				n.deletesLeft--
				n.machines[i].status = slotDeleting
				add(n, false, "Machine %s is deleted", slotName(i))
			}
		}
	}
	return out
}

// String draws the world for a counterexample: one line per Machine, one per member.
func (w world) String() string {
	var b strings.Builder
	c := w.census()
	fmt.Fprintf(&b, "    etcd: %s, %d learners; desired %d; budget: %d faults, %d deletions\n", c, c.Learners, w.desired, w.faultsLeft, w.deletesLeft)
	for i, m := range w.machines {
		if m.status == slotEmpty {
			continue
		}
		status := [...]string{"", "running", "deleting", "gone"}[m.status]
		var flags []string
		if m.hook {
			flags = append(flags, "hook")
		}
		if m.ineligible {
			flags = append(flags, "ineligible")
		}
		if m.timedOut {
			flags = append(flags, "learner-timed-out")
		}
		if m.replaced {
			flags = append(flags, "replaced")
		}
		var addrs []string
		for _, a := range addresses(i, m.kind) {
			addrs = append(addrs, a.Type+"="+a.Address)
		}
		node := slotName(i)
		if m.kind == kindUnlistedNoNode {
			node = "-"
		}
		fmt.Fprintf(&b, "    Machine %s %s [%s] addresses %s node %s\n", slotName(i), status, strings.Join(flags, ","), strings.Join(addrs, ","), node)
	}
	for i, m := range w.members {
		role := "voter"
		if m.learner {
			role = "learner"
		}
		var flags []string
		switch {
		case !m.started:
			flags = append(flags, "unstarted")
		case !m.alive:
			flags = append(flags, "dead")
		case m.cut != linked:
			flags = append(flags, "answering")
		default:
			flags = append(flags, "healthy")
		}
		for _, f := range []struct {
			on   bool
			name string
		}{{m.leader, "leader"}, {m.learner && m.caughtUp, "caught-up"}, {m.cut == linkCut, "cut-off-from-leader"},
			{m.cut == linkCutSeen, "cut-off-from-leader-seen-standing-still"}, {m.fresh, "recently-promoted"}, {m.late, "start-timed-out"}} {
			if f.on {
				flags = append(flags, f.name)
			}
		}
		fmt.Fprintf(&b, "    member %x %s [%s] peer %s, truly on %s\n", i+1, role, strings.Join(flags, ","), peerURL(int(m.host), m.peer), slotName(int(m.host)))
	}
	return b.String()
}

// peerHostOf is the host of a peer URL, "" if it cannot be parsed.
func peerHostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Hostname()
}
