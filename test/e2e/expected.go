package e2e

import (
	"fmt"
	"sync"
	"time"

	"github.com/quorumguard/quorumguard/test/framework"
)

// LossWindow is a span in which injected faults take quorum away on purpose (two members
// frozen at once). No other fault explains a loss: each takes out at most one member.
type LossWindow struct {
	From, To time.Time
	Why      string
}

// RecoveryGrace is how long after a quorum-taking fault clears a sample below quorum is still
// explained by it: etcd elects a leader (500 ms election timeout here) and the probes, each
// bounded by 2 s, succeed again.
const RecoveryGrace = 5 * time.Second

// Explain splits the monitor's losses into the ones a window explains (the sample overlaps
// the window, its end extended by grace) and the rest, which fail a scenario.
func Explain(losses []framework.LossSample, windows []LossWindow, grace time.Duration) (explained int, unexplained []string) {
	for _, l := range losses {
		ok := false
		for _, w := range windows {
			if !l.Ended.Before(w.From) && !l.Began.After(w.To.Add(grace)) {
				ok = true
				break
			}
		}
		if ok {
			explained++
		} else {
			unexplained = append(unexplained, l.Text)
		}
	}
	return explained, unexplained
}

// HookRelease is a moment a control-plane Machine was seen to have lost its quorum hook
// (released, or the Machine gone).
type HookRelease struct {
	At      time.Time
	Machine string
}

// Quiet lists what happened inside a window that must not happen while quorum is gone: an
// action a replica completed (a membership change, a hook release, anything), and a hook seen
// released. An action refused by its fence, or failed, is no violation: deciding on a member
// list read just before quorum went is expected, acting on it is not. margin trims each
// window's start: an action completed just before the fault is recorded when its pass ends.
func Quiet(windows []LossWindow, acts []Acted, releases []HookRelease, margin time.Duration) []string {
	var out []string
	inside := func(t time.Time, w LossWindow) bool { return t.After(w.From.Add(margin)) && t.Before(w.To) }
	for _, w := range windows {
		for _, a := range acts {
			if inside(a.At, w) {
				out = append(out, fmt.Sprintf("%s: replica %s acted (%s) while quorum was gone (%s, %s to %s)",
					a.At.Format("15:04:05.000"), a.Replica, a.Action, w.Why, w.From.Format("15:04:05.000"), w.To.Format("15:04:05.000")))
			}
		}
		for _, r := range releases {
			if inside(r.At, w) {
				out = append(out, fmt.Sprintf("%s: Machine %s lost its hook while quorum was gone (%s, %s to %s)",
					r.At.Format("15:04:05.000"), r.Machine, w.Why, w.From.Format("15:04:05.000"), w.To.Format("15:04:05.000")))
			}
		}
	}
	return out
}

// expectations are the windows a scenario announced; Guards.Check reads them.
type expectations struct {
	mu      sync.Mutex
	windows []LossWindow
}

// ExpectLoss says that quorum is taken away on purpose from from to to.
func (g *Guards) ExpectLoss(from, to time.Time, why string) {
	g.expected.mu.Lock()
	defer g.expected.mu.Unlock()
	g.expected.windows = append(g.expected.windows, LossWindow{From: from, To: to, Why: why})
}

// Windows are the losses announced so far.
func (g *Guards) Windows() []LossWindow {
	g.expected.mu.Lock()
	defer g.expected.mu.Unlock()
	return append([]LossWindow(nil), g.expected.windows...)
}
