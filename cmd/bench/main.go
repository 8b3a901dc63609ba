// Command bench measures quorumguard against the figures its design promises, each beside a
// comparison measured in the same run, and writes the table to BENCHMARKS.md:
//   - controller overhead of a protected replacement over the learner-sync floor;
//   - leader-for-life takeover after the leader Pod's deletion, watching the lock, against a
//     standby that polls with the Operator SDK's documented backoff (1 s doubling to 16 s);
//   - lease handover after a graceful stop, under controller-runtime's default timings and
//     OpenShift's, and after a crash;
//   - quorum loss and its recovery to the Machine conditions, the ClusterOperator and the
//     metrics, and API requests per minute in steady state, with the default flags;
//   - controller memory and CPU with 10,000 worker Machines against none, and against the
//     same controller with an unfiltered Machine cache; API writes and etcd calls per minute
//     in steady state.
//
// With -only production (make bench-scale, never part of the default run) it replaces Machines
// of clusters whose etcd is filled to production size, and writes that table to a section of
// BENCHMARKS.md of its own, between productionBegin and productionEnd, leaving the rest of the
// file as it was; the default run keeps that section when it rewrites the rest.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/quorumguard/quorumguard/test/framework"
)

type row struct {
	figure     string
	value      float64
	unit       string
	comparison string
	cmpValue   float64
	note       string
}

func main() {
	trials := flag.Int("trials", 10, "trials per timing figure")
	workers := flag.Int("workers", 10000, "worker Machines for the scale benchmark")
	out := flag.String("out", filepath.Join(framework.RepoRoot(), "BENCHMARKS.md"), "where to write the table")
	bin := flag.String("quorumguard", filepath.Join(framework.RepoRoot(), "bin", "quorumguard"), "the quorumguard binary")
	only := flag.String("only", "", "comma-separated subset: overhead,takeover,lease,quorumloss,steady,scale; production runs only when named")
	sizes := flag.String("sizes", "1GB,4GB", "production: etcd fill of each three-member cluster")
	fiveSize := flag.String("five-size", "", "production: etcd fill of the five-member cluster; the smallest of -sizes when empty, 0 for none")
	writeInterval := flag.Duration("write-interval", 10*time.Millisecond, "production: the steady writer's interval between writes")
	goBench := flag.String("go-bench", filepath.Join(framework.RepoRoot(), "bin", "go-bench.txt"), "the saved output of the Go benchmarks")
	flag.Parse()
	ctrl.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	named := func(name string) bool { return strings.Contains(","+*only+",", ","+name+",") }
	want := func(name string) bool { return *only == "" || named(name) }

	var rows []row
	ran := false
	run := func(name string, f func(context.Context) ([]row, error)) {
		if !want(name) {
			return
		}
		ran = true
		fmt.Printf("== %s\n", name)
		r, err := f(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			rows = append(rows, row{figure: name, note: "failed: " + err.Error()})
			return
		}
		rows = append(rows, r...)
	}
	run("overhead", func(ctx context.Context) ([]row, error) { return overhead(ctx, min(*trials, 5)) })
	run("takeover", func(ctx context.Context) ([]row, error) { return takeover(ctx, *trials) })
	run("lease", func(ctx context.Context) ([]row, error) { return lease(ctx, min(*trials, 5)) })
	run("quorumloss", func(ctx context.Context) ([]row, error) { return quorumLoss(ctx, *bin, min(*trials, 5)) })
	run("steady", func(ctx context.Context) ([]row, error) { return steady(ctx, *bin) })
	run("scale", func(ctx context.Context) ([]row, error) { return scale(ctx, *bin, *workers) })

	var section string
	if named("production") {
		o, err := prodFlags(*bin, *sizes, *fiveSize, *writeInterval)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		started := time.Now()
		fmt.Println("== production")
		prows, err := production(ctx, o)
		if err != nil {
			prows = append(prows, row{figure: "production", note: "failed: " + err.Error()})
		}
		table := render(prows)
		fmt.Println(table)
		section = productionSection(o, started, table)
	}
	// Read only now: the production run takes an hour, and the file may have changed meanwhile.
	old, _ := os.ReadFile(*out)
	doc, kept := splitProduction(string(old))
	if section == "" {
		section = kept
	}
	if ran {
		table := render(rows)
		fmt.Println(table)
		doc = "# Benchmarks\n\nProduced by `make bench` (`go run ./cmd/bench`) on " + machine() + ", " + time.Now().UTC().Format("2006-01-02") +
			". Each figure is a median over repeated trials with its comparison measured in the same run.\n\n" + table +
			"\n" + goBenchSection(*goBench) + readingNotes
	}
	if section != "" {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + section
	}
	if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func render(rows []row) string {
	var b strings.Builder
	b.WriteString("| figure | median | comparison (same run) | median | ratio | note |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		ratio := ""
		if r.cmpValue != 0 && r.value != 0 {
			ratio = fmt.Sprintf("%.2f", r.cmpValue/r.value)
		}
		val, cmp := "", ""
		if r.unit != "" {
			val = fmt.Sprintf("%.3g %s", r.value, r.unit)
			if r.comparison != "" {
				cmp = fmt.Sprintf("%.3g %s", r.cmpValue, r.unit)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.figure, val, r.comparison, cmp, ratio, r.note)
	}
	return b.String()
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %d GiB", (kb+(1<<19))>>20)
		}
	}
	return fmt.Sprintf("%d cores (%s)%s, %s/%s, %s", runtime.NumCPU(), model, mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// startControlPlane starts a control plane in a fresh temporary directory; stop removes both.
func startControlPlane(gc bool) (*framework.ControlPlane, string, func(), error) {
	dir, err := os.MkdirTemp("", "quorumguard-bench-")
	if err != nil {
		return nil, "", nil, err
	}
	cp, err := framework.StartControlPlane(framework.ControlPlaneOptions{Dir: dir, ControllerManager: gc})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", nil, err
	}
	return cp, dir, func() { _ = cp.Stop(); _ = os.RemoveAll(dir) }, nil
}
