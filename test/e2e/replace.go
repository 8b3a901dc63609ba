package e2e

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/quorumguard/quorumguard/test/framework"
)

// ReplaceInput describes one replacement scenario.
type ReplaceInput struct {
	Cluster *framework.Cluster
	// Delete are the Machines deleted at once; Replacements the Machines created for them.
	Delete, Replacements []string
	// KillFirst kills the deleted Machines' etcd members before deleting them, as on dead
	// machines that a MachineHealthCheck remediates.
	KillFirst bool
	// MinVoters is the fewest voting members allowed at any moment.
	MinVoters int
	// DuringReplacement, when set, runs after the deletions and replacements are issued,
	// while the controller works (to restart it, say).
	DuringReplacement func(ctx context.Context) error
	Timeout           time.Duration
}

// ReplaceResult is what a replacement scenario measured.
type ReplaceResult struct {
	Writer  framework.WriterReport
	Monitor framework.MonitorReport
	Reasons map[string][]string
	Took    time.Duration
	// StartVoters is how many voting members there were before the deletions.
	StartVoters int
}

// ReplaceSpec deletes Machines, creates their replacements, and checks that every deleted
// Machine disappears, the replacements are the voting members in their place, no write is
// lost and quorum never falls.
func ReplaceSpec(ctx context.Context, in ReplaceInput) (ReplaceResult, error) {
	var res ReplaceResult
	c := in.Cluster
	if in.Timeout == 0 {
		in.Timeout = 3 * time.Minute
	}
	before, err := VotingMembers(ctx, c)
	if err != nil {
		return res, err
	}
	res.StartVoters = len(before)
	g, err := StartGuards(ctx, c)
	if err != nil {
		return res, err
	}
	rt := TrackReasons(ctx, c, append(slices.Clone(in.Delete), in.Replacements...)...)
	start := time.Now()
	if in.KillFirst {
		for _, name := range in.Delete {
			if m := c.Agent.Member(name); m != nil {
				m.Kill()
			}
		}
	}
	for _, name := range in.Delete {
		if err := c.DeleteMachine(ctx, name); err != nil {
			return res, err
		}
	}
	for _, name := range in.Replacements {
		if err := CreateReplacement(ctx, c, name); err != nil {
			return res, err
		}
	}
	if in.DuringReplacement != nil {
		if err := in.DuringReplacement(ctx); err != nil {
			return res, err
		}
	}
	want := slices.DeleteFunc(before, func(n string) bool { return slices.Contains(in.Delete, n) })
	want = append(want, in.Replacements...)
	waitErr := WaitGone(ctx, c, in.Timeout, in.Delete...)
	if waitErr == nil {
		waitErr = WaitVoters(ctx, c, 30*time.Second, want...)
	}
	res.Took = time.Since(start)
	res.Reasons = rt.Stop()
	res.Writer, res.Monitor, err = g.Check(ctx, in.MinVoters)
	if waitErr != nil {
		return res, fmt.Errorf("%w (reasons seen: %v; monitor: %s)", waitErr, res.Reasons, res.Monitor)
	}
	return res, err
}
