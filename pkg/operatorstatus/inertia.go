package operatorstatus

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// Sample is what one pass found about etcd, reduced to what the status needs.
type Sample struct {
	Time time.Time
	// Observed is false when the pass could not list or probe the members at all.
	Observed bool
	// Err is the pass's error, "" when it had none.
	Err                                       string
	Voters, Healthy, Learners, FaultTolerance int
	// Unhealthy names the started members whose probe failed, sorted.
	Unhealthy []string
	// QuorumLost: the pass found quorum lost, on two signals (the linearizable member list
	// failed, and fewer voting members than a quorum answer on their own). Unlike one slow
	// probe, this is not smoothed: Available says so at once.
	QuorumLost bool
}

// NewSample reduces one pass. observed is false when etcd could not be observed; err is the
// pass's error, observing or acting.
func NewSample(t time.Time, members []quorum.Member, d quorum.Decision, observed bool, err error) Sample {
	s := Sample{Time: t, Observed: observed, FaultTolerance: d.FaultTolerance}
	if err != nil {
		s.Err = err.Error()
	}
	for _, m := range members {
		if m.Learner {
			s.Learners++
		} else {
			s.Voters++
			if m.Healthy {
				s.Healthy++
			}
		}
		// A learner added for a Machine whose etcd has not started yet is expected.
		if m.Started && !m.Healthy {
			s.Unhealthy = append(s.Unhealthy, memberName(m))
		}
	}
	sort.Strings(s.Unhealthy)
	// The planner never acts without quorum, so a pass that saw the members and failed with
	// fewer healthy voters than a quorum failed on the lost quorum itself.
	s.QuorumLost = observed && err != nil && s.Healthy < quorum.QuorumOf(s.Voters)
	return s
}

func memberName(m quorum.Member) string {
	name := m.Name
	if name == "" {
		name = m.Machine
	}
	if name == "" {
		return fmt.Sprintf("%x", m.ID)
	}
	return fmt.Sprintf("%s (%x)", name, m.ID)
}

// probed are the findings that come from probes and so go through inertia.
var probed = []string{ReasonEtcdUnreachable, ReasonNoQuorum, ReasonMembersUnhealthy, ReasonNoFaultTolerance}

// findings says what the sample shows wrong, by reason, each with a message.
func (s Sample) findings() map[string]string {
	out := map[string]string{}
	if !s.Observed {
		out[ReasonEtcdUnreachable] = "etcd could not be observed: " + s.Err
		out[ReasonNoFaultTolerance] = "etcd could not be observed, so how many member failures it tolerates is unknown"
		return out
	}
	q := quorum.QuorumOf(s.Voters)
	if s.Healthy < q {
		out[ReasonNoQuorum] = fmt.Sprintf("%d of %d voting members are healthy, below the quorum of %d", s.Healthy, s.Voters, q)
	}
	if len(s.Unhealthy) > 0 {
		out[ReasonMembersUnhealthy] = "etcd members failing their health probe: " + strings.Join(s.Unhealthy, ", ")
	}
	if s.FaultTolerance <= 0 {
		out[ReasonNoFaultTolerance] = fmt.Sprintf("etcd tolerates no further member failure: %d of %d voting members are healthy and quorum is %d", s.Healthy, s.Voters, q)
	}
	return out
}

// Inertia is how long a probed finding must hold, appearing or clearing, before the status
// follows it.
type Inertia struct {
	// Passes is the fewest consecutive passes that must agree.
	Passes int
	// For is how long they must have agreed.
	For time.Duration
}

// DefaultInertia: two passes and five seconds. A member that is unhealthy makes the
// controller look again every poll interval, so five seconds is many passes; a single
// failed probe that the next pass does not repeat never shows.
var DefaultInertia = Inertia{Passes: 2, For: 5 * time.Second}

// maxHistory bounds the samples kept; at a 250 ms poll interval it is two minutes.
const maxHistory = 512

// Record appends s to history, oldest first, and drops what can no longer decide anything:
// samples older than ten times For (at least a minute), beyond the newest maxHistory.
func (in Inertia) Record(history []Sample, s Sample) []Sample {
	keep := max(10*in.For, time.Minute)
	history = append(history, s)
	drop := 0
	for drop < len(history)-1 && s.Time.Sub(history[drop].Time) > keep {
		drop++
	}
	drop = max(drop, len(history)-maxHistory)
	if drop > 0 {
		history = append([]Sample(nil), history[drop:]...)
	}
	return history
}

// Settle returns the probed findings that hold once inertia is applied, each with the
// message of the newest sample that showed it. history is oldest first.
//
// For each kind of finding the samples form runs that agree on whether it is present. Going
// from the newest run back, the first run that spans at least Passes samples and lasted at
// least For decides; the newest run lasts until now, an older one until the first sample of
// the run after it. So a finding appears only after it held for For, and clears only after
// it was absent for For. When no run is long enough yet (just after a start), prior says
// whether the previous status reported the finding, and that stands.
func Settle(history []Sample, now time.Time, in Inertia, prior func(reason string) bool) map[string]string {
	passes := max(in.Passes, 1)
	fs := make([]map[string]string, len(history))
	for i, s := range history {
		fs[i] = s.findings()
	}
	out := map[string]string{}
	for _, reason := range probed {
		has := func(i int) bool { _, ok := fs[i][reason]; return ok }
		decided, present, msgAt := false, false, -1
		end := now
		for i := len(history) - 1; i >= 0; {
			j := i
			for j > 0 && has(j-1) == has(i) {
				j--
			}
			if i-j+1 >= passes && end.Sub(history[j].Time) >= in.For {
				decided, present, msgAt = true, has(i), i
				break
			}
			end = history[j].Time
			i = j - 1
		}
		if !decided {
			present = prior != nil && prior(reason)
		}
		if !present {
			continue
		}
		if msgAt < 0 {
			for i := len(history) - 1; i >= 0; i-- {
				if has(i) {
					msgAt = i
					break
				}
			}
		}
		if msgAt >= 0 {
			out[reason] = fs[msgAt][reason]
		} else {
			out[reason] = "reported by the previous status; not yet confirmed or cleared by enough passes"
		}
	}
	return out
}

// Failing says whether the newest n samples, at least, all carry an error, and returns the
// newest error.
func Failing(history []Sample, n int) (bool, string) {
	n = max(n, 1)
	count := 0
	for i := len(history) - 1; i >= 0 && history[i].Err != ""; i-- {
		count++
	}
	if count < n {
		return false, ""
	}
	return true, fmt.Sprintf("%d or more passes in a row failed; the newest error: %s", n, history[len(history)-1].Err)
}
