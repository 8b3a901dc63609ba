package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

func TestExplainKeepsOnlyLossesInAWindow(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	loss := func(from, to float64, text string) framework.LossSample {
		return framework.LossSample{Began: at(from), Ended: at(to), Text: text}
	}
	windows := []e2e.LossWindow{{From: at(10), To: at(15), Why: "m0 and m1 frozen together"}}
	losses := []framework.LossSample{
		loss(9.9, 10.1, "straddles the start"),
		loss(12, 12.1, "inside"),
		loss(19, 19.5, "within the grace after the thaw"),
		loss(5, 5.1, "before any fault"),
		loss(20.5, 20.6, "after the grace"),
	}
	explained, unexplained := e2e.Explain(losses, windows, 5*time.Second)
	if explained != 3 || strings.Join(unexplained, ",") != "before any fault,after the grace" {
		t.Fatalf("explained %d, unexplained %v; want 3 and the two outside", explained, unexplained)
	}
	if n, rest := e2e.Explain(losses, nil, 5*time.Second); n != 0 || len(rest) != len(losses) {
		t.Fatalf("with no window, %d explained and %d not; want none and all", n, len(rest))
	}
}

func TestQuietSeesActsAndReleasesWhileQuorumIsGone(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	windows := []e2e.LossWindow{{From: at(10), To: at(15), Why: "m0 and m1 frozen together"}}
	acts := []e2e.Acted{
		{At: at(10.3), Replica: "r-0", Action: quorum.Action{Kind: quorum.AddLearner, Machine: "new-0"}}, // fence passed before the freeze
		{At: at(12), Replica: "r-0", Action: quorum.Action{Kind: quorum.RemoveMember, Machine: "old-0"}},
		{At: at(15.5), Replica: "r-0", Action: quorum.Action{Kind: quorum.Promote, Machine: "new-0"}}, // after the thaw
	}
	releases := []e2e.HookRelease{{At: at(9), Machine: "old-1"}, {At: at(13), Machine: "old-0"}, {At: at(16), Machine: "old-2"}}
	got := e2e.Quiet(windows, acts, releases, time.Second)
	if len(got) != 2 || !strings.Contains(got[0], "replica r-0 acted") || !strings.Contains(got[0], "old-0") ||
		!strings.Contains(got[1], "Machine old-0 lost its hook") {
		t.Fatalf("Quiet = %q; want the removal at 12 s and the release at 13 s", got)
	}
	if got := e2e.Quiet(nil, acts, releases, time.Second); len(got) != 0 {
		t.Fatalf("with no window, Quiet = %q; want nothing", got)
	}
}
