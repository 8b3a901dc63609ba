package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// goBenchSection renders the Go benchmark results that `make bench` saved to path (the output
// of `go test -bench`), one row per benchmark with its custom metrics, or says they are missing.
func goBenchSection(path string) string {
	var b strings.Builder
	b.WriteString("## Go benchmarks\n\n")
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(&b, "No Go benchmark results at %s (`make bench` writes them before this program runs).\n\n", path)
		return b.String()
	}
	defer f.Close()
	var cpu string
	var rows []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "cpu: "); ok {
			cpu = strings.TrimSpace(v)
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		// name, iterations, then value-unit pairs.
		var metrics []string
		for i := 2; i+1 < len(fields); i += 2 {
			metrics = append(metrics, fields[i]+" "+fields[i+1])
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s |", fields[0], fields[1], strings.Join(metrics, ", ")))
	}
	if len(rows) == 0 {
		fmt.Fprintf(&b, "No benchmark lines in %s.\n\n", path)
		return b.String()
	}
	b.WriteString("From `go test -bench . ./pkg/...` in the same `make bench`, as many rounds as the table says")
	if cpu != "" {
		fmt.Fprintf(&b, " (cpu: %s)", cpu)
	}
	b.WriteString(". `BenchmarkLearnerPromotion` (pkg/etcdmember) times AddLearner → successful Promote " +
		"(promote-ms) against the floor, the learner's raft index reaching the leader's polled every 5 ms " +
		"(floor-ms), both from the moment before AddLearner, on a real three-member TLS cluster holding " +
		"1 MB, 50 MB and 200 MB; excess-ms is what readiness detection adds. `BenchmarkFenceWindow` " +
		"(pkg/etcdmember) times the window between a membership change's two etcd calls, from the fence " +
		"transaction's answer to the membership request being sent (window-ms mean, max-window-ms largest), " +
		"over a learner added and removed each round. Means over the rounds.\n\n")
	b.WriteString("| benchmark | rounds | metrics |\n|---|---|---|\n")
	b.WriteString(strings.Join(rows, "\n"))
	b.WriteString("\n\n")
	return b.String()
}

// readingNotes explain the table; they are part of every BENCHMARKS.md.
const readingNotes = `## Reading the table

- The learner-sync floor in the controller benchmark is from "member added" to "learner's index
  reached the leader's"; on alternate trials it includes about 6 s in which the new member waits
  to be admitted, which is etcd's, not the controller's. What the controller adds over it is
  the third row.
- Lease handover after a graceful stop is bounded by the standby's retry period (2 s here, as
  in controller-runtime's defaults): the released lease is taken at the next retry.
- The leader-for-life comparison is a standby following the Operator SDK's documented loop,
  re-implemented here because its module could not be downloaded on this machine.
`
