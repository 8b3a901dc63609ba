package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

const (
	// fillValue is the size of each value the fill writes; etcd takes up to 1.5 MiB a request.
	fillValue = 1 << 20
	// smallPerFill small writes follow each large one, so that etcd's in-memory raft log (up to
	// 15,000 entries between compactions: the snapshot count and the catch-up entries kept)
	// never holds more than about 1 GiB of values while the fill runs.
	smallPerFill = 14
	// snapshotCatchUp is etcd's SnapshotCatchUpEntries: the entries a member keeps in its log
	// behind its last snapshot.
	snapshotCatchUp = 5000
	// window is how long latency and the controller's steady state are sampled before and
	// after a replacement.
	window = 30 * time.Second
	// healthWait is how long after a promotion the controller waits before removing a voting
	// member (quorum's settling: the health window and the second its stored time may be short).
	healthWait = quorum.HealthWindow + time.Second
)

// prodOptions shape the production-size runs.
type prodOptions struct {
	bin string
	// sizes each get a three-member cluster with one Machine replaced.
	sizes []int64
	// fiveSize gets a five-member cluster with one Machine replaced, then two deleted at
	// once; none when zero.
	fiveSize int64
	// writeInterval is the steady writer's interval between writes.
	writeInterval time.Duration
}

// prodStep is one replacement on a filled cluster and what it measured.
type prodStep struct {
	label   string
	deletes int
	// floor is the learners' catch-up time, summed when there are two; total is first
	// replacement Running -> last old hook released; held is deletion -> last release.
	floor, total, held float64
	// reaction is total - floor less the health-window wait after each promotion: what the
	// controller takes to notice and act at each step.
	reaction           float64
	breakdown          string
	snapshots          float64
	before, during     framework.LatencySummary
	after              framework.LatencySummary
	rssBefore, rssPeak float64
	cpuBefore, cpuDur  float64
	cpuSeconds         float64
	reqBefore, reqDur  float64
	reads, writes      float64
	duration           float64
}

// production fills three-member clusters to each size and replaces one Machine under a steady
// writer, then does the same on five members with one replaced and two deleted at once. The
// controller is the real binary, with its default flags apart from Machine management (off:
// the benchmark creates the replacements) and the ClusterOperator (off: there is none).
func production(ctx context.Context, o prodOptions) ([]row, error) {
	if _, err := os.Stat(o.bin); err != nil {
		return nil, fmt.Errorf("%s: run `make build` first: %w", o.bin, err)
	}
	var rows []row
	overheads, reactions := map[int64]float64{}, map[int64]float64{}
	for _, size := range o.sizes {
		steps, err := prodCluster(ctx, o, 3, size, []int{1})
		if err != nil {
			rows = append(rows, row{figure: fmt.Sprintf("3 masters, %s", sizeName(size)), note: "failed: " + err.Error()})
			continue
		}
		overheads[size], reactions[size] = steps[0].total-steps[0].floor, steps[0].reaction
		rows = append(rows, stepRows(steps[0])...)
	}
	if len(o.sizes) > 1 {
		lo, hi := slices.Min(o.sizes), slices.Max(o.sizes)
		rows = append(rows, row{figure: "controller + etcd admission over the floor, 3 masters, " + sizeName(hi), value: overheads[hi], unit: "s",
			comparison: "the same at " + sizeName(lo), cmpValue: overheads[lo], note: "a ratio near 1: what quorumguard adds does not grow with the data"},
			row{figure: "controller's own reaction, 3 masters, " + sizeName(hi), value: reactions[hi], unit: "s",
				comparison: "the same at " + sizeName(lo), cmpValue: reactions[lo]})
	}
	if o.fiveSize > 0 {
		steps, err := prodCluster(ctx, o, 5, o.fiveSize, []int{1, 2})
		if err != nil {
			rows = append(rows, row{figure: fmt.Sprintf("5 masters, %s", sizeName(o.fiveSize)), note: "failed: " + err.Error()})
		}
		for _, s := range steps {
			rows = append(rows, stepRows(s)...)
		}
	}
	return rows, nil
}

func stepRows(s prodStep) []row {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	per := func(l framework.LatencySummary) string {
		return fmt.Sprintf("p50 %.1f, p99 %.1f, max %.0f ms", ms(l.P50), ms(l.P99), ms(l.Max))
	}
	return []row{
		{figure: "replacement Running -> old hook released, " + s.label, value: s.total, unit: "s", comparison: "learner catch-up floor", cmpValue: s.floor,
			note: fmt.Sprintf("%.0f snapshot(s) sent to the learner(s); deletion -> last hook released %.1f s", s.snapshots, s.held)},
		{figure: "controller + etcd admission over the floor, " + s.label, value: s.total - s.floor, unit: "s", note: s.breakdown},
		{figure: "controller's own reaction: over the floor less the health-window wait, " + s.label, value: s.reaction, unit: "s",
			note: fmt.Sprintf("the wait is up to %s after each promotion: etcd refuses the removal until the promoted member's connections are %s old, and the Voting time is stored to the second", healthWait, quorum.HealthWindow)},
		{figure: "write p99 during the replacement, " + s.label, value: ms(s.during.P99), unit: "ms", comparison: "before it", cmpValue: ms(s.before.P99),
			note: fmt.Sprintf("before: %s; during: %s, longest pause %.0f ms; after: %s; %.0f writes/s before",
				per(s.before), per(s.during), ms(s.during.LongestPause), per(s.after), float64(s.before.Writes)/window.Seconds())},
		{figure: "controller peak RSS, " + s.label, value: s.rssPeak, unit: "MiB", comparison: "peak before the replacement", cmpValue: s.rssBefore},
		{figure: "controller CPU during the replacement, " + s.label, value: s.cpuDur, unit: "%", comparison: "steady state before it", cmpValue: s.cpuBefore,
			note: fmt.Sprintf("%.2f CPU-seconds over %.0f s", s.cpuSeconds, s.duration)},
		{figure: "API requests during the replacement, " + s.label, value: s.reqDur, unit: "requests", comparison: "steady state, as long, before it", cmpValue: s.reqBefore,
			note: fmt.Sprintf("%.0f reads, %.0f writes", s.reads, s.writes)},
	}
}

// prodCluster starts a cluster of masters members, fills it to size, and runs one step for
// each entry of deletes (the Machines deleted at once), on the same cluster.
func prodCluster(ctx context.Context, o prodOptions, mastersN int, size int64, deletes []int) ([]prodStep, error) {
	name := fmt.Sprintf("%d masters, %s", mastersN, sizeName(size))
	fmt.Printf("-- %s\n", name)
	cp, dir, stop, err := startControlPlane(false)
	if err != nil {
		return nil, err
	}
	defer stop()
	quota := min(max(2*size, 2<<30), 8<<30)
	c, err := framework.StartCluster(ctx, cp, framework.ClusterOptions{Dir: dir, Masters: mastersN, OnlyMasters: true,
		ProvisionDelay: 100 * time.Millisecond, QuotaBackendBytes: quota})
	if err != nil {
		return nil, err
	}
	defer c.Stop(context.Background())
	cli, err := c.EtcdClient()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	start := time.Now()
	if err := fill(ctx, cli, size); err != nil {
		return nil, fmt.Errorf("fill: %w", err)
	}
	db, err := pastSnapshot(ctx, c, cli)
	if err != nil {
		return nil, err
	}
	fmt.Printf("filled to %.2f GiB in %s (quota %.0f GiB); every member's log now starts past the fill\n",
		float64(db)/(1<<30), time.Since(start).Round(time.Second), float64(quota)/(1<<30))

	wcli, err := c.EtcdClient()
	if err != nil {
		return nil, err
	}
	w := framework.StartWriter(ctx, framework.WriterOptions{Client: wcli, Endpoints: c.Agent.RunningEndpoints, CloseClient: true,
		Interval: o.writeInterval, Prefix: "/bench/writer/"})
	defer func() {
		rep, err := w.Stop(context.Background())
		fmt.Printf("writer: %s (read-back error: %v)\n", rep, err)
	}()
	qg, err := startBenchController(ctx, o.bin, cp, c, dir, mastersN)
	if err != nil {
		return nil, err
	}
	defer qg.stop()

	var steps []prodStep
	for i, n := range deletes {
		label := fmt.Sprintf("%s, %s", name, map[int]string{1: "one replaced", 2: "two deleted at once"}[n])
		s, err := replaceAtScale(ctx, c, cli, qg, w, label, i, n)
		if err != nil {
			return steps, fmt.Errorf("%s: %w (controller log: %s)", label, err, qg.logTail())
		}
		steps = append(steps, s)
	}
	return steps, nil
}

// fill writes size bytes in values of fillValue from four clients at once, each large value
// followed by smallPerFill small ones. Values are random, so nothing on the way compresses them.
func fill(ctx context.Context, cli *clientv3.Client, size int64) error {
	n := size / fillValue
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	start := time.Now()
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, fillValue)
			r := rand.NewChaCha8([32]byte{byte(g)})
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				_, _ = r.Read(buf)
				if _, err := cli.Put(ctx, fmt.Sprintf("/bench/fill/%07d", i), string(buf)); err != nil {
					errs <- err
					return
				}
				for j := range smallPerFill {
					if _, err := cli.Put(ctx, fmt.Sprintf("/bench/small/%07d-%02d", i, j), strings.Repeat("s", 200)); err != nil {
						errs <- err
						return
					}
				}
				if d := done.Add(1); d%max(n/10, 1) == 0 {
					fmt.Printf("  filled %d of %d MiB (%s)\n", d, n, time.Since(start).Round(time.Second))
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// pastSnapshot writes small keys until every member has taken a snapshot far enough past the
// fill that its raft log no longer holds any of it: a member added now is sent a snapshot of
// the whole database, as on a cluster that has been running for months, not the log. It
// returns the database size.
func pastSnapshot(ctx context.Context, c *framework.Cluster, cli *clientv3.Client) (int64, error) {
	top, db, err := highestIndex(ctx, c, cli)
	if err != nil {
		return 0, err
	}
	want := top + snapshotCatchUp + 1
	for round := 0; ; round++ {
		ok := true
		for _, name := range c.Agent.Bootstrap {
			if snapIndex(c.Net.DataDir(name)) < want {
				ok = false
			}
		}
		if ok {
			return db, nil
		}
		if round == 100 {
			return 0, fmt.Errorf("no snapshot past raft index %d after %d rounds of small writes", want, round)
		}
		var wg sync.WaitGroup
		var failed atomic.Value
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range 125 {
					if _, err := cli.Put(ctx, fmt.Sprintf("/bench/pad/%03d-%02d-%03d", round, g, k), strings.Repeat("p", 200)); err != nil {
						failed.Store(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			return 0, err
		}
	}
}

// highestIndex is the highest raft index and the largest database among the members.
func highestIndex(ctx context.Context, c *framework.Cluster, cli *clientv3.Client) (uint64, int64, error) {
	var top uint64
	var db int64
	for _, ep := range c.Agent.RunningEndpoints() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := cli.Status(sctx, ep)
		cancel()
		if err != nil {
			return 0, 0, err
		}
		top, db = max(top, st.RaftIndex), max(db, st.DbSize)
	}
	return top, db, nil
}

// snapIndex is the raft index of the newest snapshot in an etcd data dir: snapshot files are
// named <term>-<index>.snap in hexadecimal.
func snapIndex(dataDir string) uint64 {
	files, _ := filepath.Glob(filepath.Join(dataDir, "member", "snap", "*.snap"))
	var top uint64
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".snap")
		if _, idx, ok := strings.Cut(base, "-"); ok {
			if v, err := strconv.ParseUint(idx, 16, 64); err == nil {
				top = max(top, v)
			}
		}
	}
	return top
}

// benchController is the quorumguard binary running against the cluster.
type benchController struct {
	cmd     *exec.Cmd
	metrics string
	log     string
}

func startBenchController(ctx context.Context, bin string, cp *framework.ControlPlane, c *framework.Cluster, dir string, replicas int) (*benchController, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	ca, cert, key := c.Net.ClientFiles()
	logPath := filepath.Join(dir, "quorumguard.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "--kubeconfig="+cp.KubeconfigFile, "--etcd-ca-file="+ca, "--etcd-cert-file="+cert, "--etcd-key-file="+key,
		"--leader-elect=none", fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", port), "--metrics-secure=false", "--health-probe-bind-address=0",
		"--manage-machines=false", "--cluster-operator=", fmt.Sprintf("--replicas=%d", replicas))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	_ = logf.Close()
	b := &benchController{cmd: cmd, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", port), log: logPath}
	if err := framework.WaitFor(ctx, 2*time.Minute, "every master Machine hooked and Voting", func() (bool, error) {
		return mastersSettled(ctx, c, replicas), nil
	}); err != nil {
		b.stop()
		return nil, fmt.Errorf("%w (controller log: %s)", err, b.logTail())
	}
	return b, nil
}

func (b *benchController) stop() { _ = b.cmd.Process.Kill(); _ = b.cmd.Wait() }

func (b *benchController) logTail() string {
	data, _ := os.ReadFile(b.log)
	if len(data) > 1500 {
		data = data[len(data)-1500:]
	}
	return strings.TrimSpace(string(data))
}

// mastersSettled says whether n master Machines carry the hook and EtcdMember Voting.
func mastersSettled(ctx context.Context, c *framework.Cluster, n int) bool {
	var ms machinev1beta1.MachineList
	if err := c.Client.List(ctx, &ms, client.InNamespace(framework.MachineNamespace), client.MatchingLabels{framework.RoleLabel: "master"}); err != nil {
		return false
	}
	count := 0
	for i := range ms.Items {
		m := &ms.Items[i]
		if m.DeletionTimestamp != nil {
			continue
		}
		if cond := framework.Condition(m, masters.ConditionType); cond != nil && cond.Reason == quorum.ReasonVoting && hooks.Has(m, hooks.Default) {
			count++
		}
	}
	return count == n
}

// replacing follows one deleted Machine and its replacement.
type replacing struct {
	old, name, oldPeer                                    string
	running, added, caughtUp, promoted, removed, released time.Time
}

// replaceAtScale samples a steady window, deletes n Machines and creates their replacements,
// follows every step to the last hook released, then samples a window after.
func replaceAtScale(ctx context.Context, c *framework.Cluster, cli *clientv3.Client, qg *benchController, w *framework.Writer, label string, step, n int) (prodStep, error) {
	s := prodStep{label: label, deletes: n}
	if err := e2e.WaitHealthWindow(ctx, c, 2*time.Minute); err != nil {
		return s, err
	}
	voters, err := e2e.VotingMembers(ctx, c)
	if err != nil {
		return s, err
	}
	beforeStart := time.Now()
	m0, err := scrape(qg.metrics)
	if err != nil {
		return s, err
	}
	time.Sleep(window)
	m1, err := scrape(qg.metrics)
	if err != nil {
		return s, err
	}
	s.rssBefore = vmHWM(qg.cmd.Process.Pid) / (1 << 20)
	snaps0 := snapshotsSent()
	// Bootstrap members sort last and are deleted first: a replacement from an earlier step
	// stays, so each step replaces members that have held the data since the fill.
	slices.SortStableFunc(voters, func(a, b string) int {
		return boolInt(strings.Contains(a, "-master-")) - boolInt(strings.Contains(b, "-master-"))
	})
	var reps []*replacing
	deleted := time.Now()
	for i := range n {
		r := &replacing{old: voters[len(voters)-1-i], name: fmt.Sprintf("cluster-scale-%d-%d", step, i)}
		if mem := c.Agent.Member(r.old); mem != nil {
			r.oldPeer = mem.PeerURL()
		}
		reps = append(reps, r)
	}
	for _, r := range reps {
		if err := c.DeleteMachine(ctx, r.old); err != nil {
			return s, err
		}
	}
	for _, r := range reps {
		if err := e2e.CreateReplacement(ctx, c, r.name); err != nil {
			return s, err
		}
	}
	fmt.Printf("  %s: deleted %s\n", label, strings.Join(func() []string {
		var out []string
		for _, r := range reps {
			out = append(out, r.old)
		}
		return out
	}(), ", "))
	var refreshed time.Time
	err = framework.WaitFor(ctx, 60*time.Minute, "every old hook released", func() (bool, error) {
		now := time.Now()
		if now.Sub(refreshed) > time.Second {
			if eps := c.Agent.RunningEndpoints(); len(eps) > 0 {
				cli.SetEndpoints(eps...)
			}
			refreshed = now
		}
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		list, lerr := cli.MemberList(lctx)
		cancel()
		done := true
		for _, r := range reps {
			if r.running.IsZero() {
				if m, err := c.Machine(ctx, r.name); err == nil && framework.Phase(m) == framework.PhaseRunning {
					r.running = now
				}
			}
			if r.caughtUp.IsZero() {
				a, cu := learnerState(ctx, cli, c, r.name)
				if a && r.added.IsZero() {
					r.added = now
				}
				if cu && !r.added.IsZero() {
					r.caughtUp = now
				}
			}
			if lerr == nil {
				mem := c.Agent.Member(r.name)
				oldListed := false
				for _, lm := range list.Members {
					if len(lm.PeerURLs) == 0 {
						continue
					}
					if mem != nil && lm.PeerURLs[0] == mem.PeerURL() && !lm.IsLearner && r.promoted.IsZero() {
						r.promoted = now
						if r.caughtUp.IsZero() {
							r.caughtUp = now
						}
					}
					oldListed = oldListed || lm.PeerURLs[0] == r.oldPeer
				}
				if !oldListed && r.removed.IsZero() {
					r.removed = now
				}
			}
			if r.released.IsZero() {
				if m, err := c.Machine(ctx, r.old); err != nil || !hooks.Has(m, hooks.Default) {
					r.released = now
				}
			}
			done = done && !r.running.IsZero() && !r.released.IsZero()
		}
		return done, nil
	})
	if err != nil {
		return s, err
	}
	end := time.Now()
	m2, err := scrape(qg.metrics)
	if err != nil {
		return s, err
	}
	s.rssPeak = vmHWM(qg.cmd.Process.Pid) / (1 << 20)
	s.snapshots = snapshotsSent() - snaps0
	firstRunning, lastReleased := reps[0].running, reps[0].released
	var promotedAt, removedAt []time.Time
	for _, r := range reps {
		if r.added.IsZero() {
			r.added, r.caughtUp = r.running, r.running
		}
		if r.running.Before(firstRunning) {
			firstRunning = r.running
		}
		if r.released.After(lastReleased) {
			lastReleased = r.released
		}
		s.floor += r.caughtUp.Sub(r.added).Seconds()
		promotedAt, removedAt = append(promotedAt, r.promoted), append(removedAt, r.removed)
		fmt.Printf("  %s: Running %s, learner added +%.2fs, caught up +%.2fs, promoted +%.2fs; %s removed +%.2fs, released +%.2fs\n",
			r.name, r.running.Format("15:04:05.000"), r.added.Sub(r.running).Seconds(), r.caughtUp.Sub(r.running).Seconds(),
			r.promoted.Sub(r.running).Seconds(), r.old, r.removed.Sub(r.running).Seconds(), r.released.Sub(r.running).Seconds())
	}
	slices.SortFunc(promotedAt, time.Time.Compare)
	slices.SortFunc(removedAt, time.Time.Compare)
	promotedToRemoved, windowWait := 0.0, 0.0
	for i := range promotedAt {
		d := removedAt[i].Sub(promotedAt[i]).Seconds()
		promotedToRemoved += d
		windowWait += min(d, healthWait.Seconds())
	}
	s.total = lastReleased.Sub(firstRunning).Seconds()
	s.reaction = s.total - s.floor - windowWait
	s.held = lastReleased.Sub(deleted).Seconds()
	at := func(t time.Time) string { return fmt.Sprintf("%.2f", t.Sub(firstRunning).Seconds()) }
	var parts []string
	for _, r := range reps {
		parts = append(parts, fmt.Sprintf("%s learner added %s, caught up %s, promoted %s", r.name, at(r.added), at(r.caughtUp), at(r.promoted)))
	}
	for _, r := range reps {
		parts = append(parts, fmt.Sprintf("%s removed %s, hook released %s", r.old, at(r.removed), at(r.released)))
	}
	s.breakdown = "s after the first replacement Running: " + strings.Join(parts, "; ") +
		fmt.Sprintf("; promotion -> removal %.2f s in all, the health-window wait included", promotedToRemoved)
	s.duration = end.Sub(deleted).Seconds()
	beforeDur := m1["process_cpu_seconds_total"] - m0["process_cpu_seconds_total"]
	s.cpuBefore = 100 * beforeDur / window.Seconds()
	s.cpuSeconds = m2["process_cpu_seconds_total"] - m1["process_cpu_seconds_total"]
	s.cpuDur = 100 * s.cpuSeconds / s.duration
	reqs := func(a, b map[string]float64, match func(string) bool) float64 {
		d := 0.0
		for k, v := range b {
			if strings.HasPrefix(k, "rest_client_requests_total") && match(k) {
				d += v - a[k]
			}
		}
		return d
	}
	all := func(string) bool { return true }
	s.reqDur = reqs(m1, m2, all)
	s.reqBefore = reqs(m0, m1, all) * s.duration / window.Seconds()
	s.writes = reqs(m1, m2, isWriteRequest)
	s.reads = s.reqDur - s.writes

	time.Sleep(window)
	s.before = w.Latencies(beforeStart, deleted)
	s.during = w.Latencies(deleted, end)
	s.after = w.Latencies(end, end.Add(window))
	fmt.Printf("  %s: floor %.2fs, total %.2fs, over the floor %.2fs; snapshots sent %.0f\n  writes before: %s\n  during: %s\n  after: %s\n  controller: RSS %.1f MiB (before %.1f), CPU %.2f%% (before %.2f%%), %.0f API requests (%.0f writes)\n",
		label, s.floor, s.total, s.total-s.floor, s.snapshots, s.before, s.during, s.after, s.rssPeak, s.rssBefore, s.cpuDur, s.cpuBefore, s.reqDur, s.writes)
	return s, nil
}

func isWriteRequest(k string) bool {
	for _, m := range []string{`method="POST"`, `method="PUT"`, `method="PATCH"`, `method="DELETE"`} {
		if strings.Contains(k, m) {
			return true
		}
	}
	return false
}

// snapshotsSent is how many snapshots the in-process etcd members have sent to a peer, from
// etcd's own counter.
func snapshotsSent() float64 {
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return 0
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() == "etcd_network_snapshot_send_success" {
			for _, m := range f.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// parseSize reads 100MB, 1GB, 4GB (binary: 1GB is 1 GiB).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	unit := int64(1 << 20)
	switch {
	case strings.HasSuffix(s, "GB"), strings.HasSuffix(s, "GIB"):
		unit = 1 << 30
	case strings.HasSuffix(s, "MB"), strings.HasSuffix(s, "MIB"):
	default:
		return 0, fmt.Errorf("size %q: want a number and MB or GB", s)
	}
	v, err := strconv.ParseFloat(strings.TrimRight(s, "GMIB"), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a number and MB or GB", s)
	}
	return int64(v * float64(unit)), nil
}

func sizeName(b int64) string {
	if b >= 1<<30 && b%(1<<30) == 0 {
		return fmt.Sprintf("%d GB", b>>30)
	}
	return fmt.Sprintf("%d MB", b>>20)
}

// productionBegin and productionEnd mark the production-size section of BENCHMARKS.md.
const (
	productionBegin = "<!-- production-size: written by make bench-scale -->"
	productionEnd   = "<!-- end of production-size -->"
)

// splitProduction separates a BENCHMARKS.md into the rest and its production-size section
// (markers included), either of which may be empty.
func splitProduction(doc string) (rest, section string) {
	i := strings.Index(doc, productionBegin)
	if i < 0 {
		return doc, ""
	}
	j := strings.Index(doc[i:], productionEnd)
	if j < 0 {
		return doc[:i], ""
	}
	j += i + len(productionEnd)
	return doc[:i] + doc[j:], strings.TrimSpace(doc[i:j]) + "\n"
}

func prodFlags(bin, sizes, five string, interval time.Duration) (prodOptions, error) {
	o := prodOptions{bin: bin, writeInterval: interval}
	for _, f := range strings.Split(sizes, ",") {
		b, err := parseSize(f)
		if err != nil {
			return o, err
		}
		o.sizes = append(o.sizes, b)
	}
	switch five {
	case "":
		o.fiveSize = slices.Min(o.sizes)
	case "0":
	default:
		b, err := parseSize(five)
		if err != nil {
			return o, err
		}
		o.fiveSize = b
	}
	return o, nil
}

func productionSection(o prodOptions, started time.Time, table string) string {
	var sizes, flagSizes []string
	for _, s := range o.sizes {
		sizes, flagSizes = append(sizes, sizeName(s)), append(flagSizes, strings.ReplaceAll(sizeName(s), " ", ""))
	}
	five := "no five-member cluster"
	if o.fiveSize > 0 {
		five = "five members at " + sizeName(o.fiveSize) + ", one Machine replaced and then two deleted at once"
	}
	return productionBegin + "\n## Replacement at production size\n\n" +
		fmt.Sprintf("Produced by `make bench-scale` (`go run ./cmd/bench -only production -sizes %s`) on %s, started %s UTC, %s in all. "+
			"One trial per figure: a fill takes minutes. The machine was shared with other work during the run, so CPU and latency carry its noise.\n\n",
			strings.Join(flagSizes, ","), machine(), started.UTC().Format("2006-01-02 15:04"), time.Since(started).Round(time.Minute)) +
		fmt.Sprintf("Three TLS etcd members (in-process, behind the test network's proxies) filled to each of %s "+
			"(1 GB is 1 GiB: random 1 MiB values from four clients, %d small writes after each), then small writes until every member has "+
			"snapshotted %d entries past the fill, so a new member is sent a snapshot of the whole database as on a cluster that has run for "+
			"months; the quota is twice the fill, at least 2 GiB and at most OpenShift's 8 GiB; %s. "+
			"A writer puts one small key every %s throughout (its rate is in the notes). quorumguard is the built binary in its own process, "+
			"default flags but --manage-machines=false and no ClusterOperator; its RSS is its peak (VmHWM), its CPU and API requests come "+
			"from its metrics. The floor is learner added -> its raft index at the leader's, polled every 50 ms; \"before\" and \"after\" "+
			"are %s windows on either side of the replacement.\n\n", strings.Join(sizes, " and "), smallPerFill, snapshotCatchUp, five, o.writeInterval, window) +
		table + "\n" + productionNotes + productionEnd + "\n"
}

const productionNotes = `- The floor ends at the first poll that finds the learner's raft index at the leader's; a
  learner promoted before a poll saw it there counts until its promotion. It includes the new
  member's start and the snapshot's transfer and apply: the member answers the poll only once
  it has published itself through raft.
- After each promotion quorumguard waits out etcd's health window (5 s, plus the second the
  Voting time is stored to) before it removes a voting member, since etcd refuses the removal
  earlier; the "own reaction" rows take that wait out of what the controller adds.
- Two Machines deleted at once are replaced one after the other: etcd takes one learner at a
  time, so the second learner is added after the first pair is done.
`

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
