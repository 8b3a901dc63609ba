package e2e_test

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/machines"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
	"github.com/quorumguard/quorumguard/test/framework/pki"
)

// TestChaos runs seeded chaos scenarios: QUORUMGUARD_CHAOS scenarios (default 2, which is what
// `make test` runs; `make chaos` runs 50) starting at seed QUORUMGUARD_CHAOS_SEED (default 1),
// each of QUORUMGUARD_CHAOS_EVENTS events (default 3). Each scenario starts three masters in
// zones a, b, a under a ControlPlaneMachineSet over a and b, kept by two leader-elected
// replicas of quorumguard with the Machine controller on. QUORUMGUARD_CHAOS_ONLY (a comma list
// of event kinds) limits the events drawn, to reproduce or study one kind. Each scenario's
// kube-apiserver stores its data in the etcd members under test, following the endpoints
// quorumguard publishes; QUORUMGUARD_CHAOS_STORE=separate puts the scenarios on the package's
// shared apiserver with its private store instead.
func TestChaos(t *testing.T) {
	n, first := envInt("QUORUMGUARD_CHAOS", 2), envInt("QUORUMGUARD_CHAOS_SEED", 1)
	events := envInt("QUORUMGUARD_CHAOS_EVENTS", 3)
	var results []e2e.ChaosResult
	var rssSeen []string
	line := func(r e2e.ChaosResult) string {
		verdict := "ok"
		if r.Err != nil {
			verdict = "FAILED"
		}
		return fmt.Sprintf("%-6d %-58s %-8s %-7d %-5d %-7d %-8d %-9d %-8d %-9s %-9s %s", r.Seed, strings.Join(r.Events, ","), r.Took.Round(time.Second),
			r.Writer.Acked, len(r.Writer.Lost), r.Linearizability.Operations, r.Monitor.MinTolerance, r.ExplainedLoss, r.MaxMachines,
			r.QuietLatency.P99.Round(100*time.Microsecond), worstRise(r), verdict)
	}
	header := fmt.Sprintf("%-6s %-58s %-8s %-7s %-5s %-7s %-8s %-9s %-8s %-9s %-9s %s", "SEED", "EVENTS", "TOOK", "WRITES", "LOST", "OPS", "MIN-TOL", "MEANT-LOSS", "MAX-MCH", "P99-QUIET", "P99-RISE", "RESULT")
	separate := os.Getenv("QUORUMGUARD_CHAOS_STORE") == "separate"
	// Workers play scenarios side by side. On the shared apiserver the ControlPlaneMachineSet
	// is a singleton, so each worker past the first gets an apiserver of its own.
	workers := envInt("QUORUMGUARD_CHAOS_WORKERS", 1)
	planes := []*framework.ControlPlane{cp}
	for w := 1; w < workers && separate; w++ {
		p, err := framework.StartControlPlane(framework.ControlPlaneOptions{Dir: t.TempDir(), NodeLifecycle: true})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = p.Stop() }()
		planes = append(planes, p)
	}
	seeds := make(chan uint64, n)
	for i := range n {
		seeds <- uint64(first + i)
	}
	close(seeds)
	var mu sync.Mutex
	t.Run("scenarios", func(t *testing.T) {
		for w := range workers {
			plane := planes[min(w, len(planes)-1)]
			t.Run(fmt.Sprintf("worker-%d", w), func(t *testing.T) {
				if workers > 1 {
					t.Parallel()
				}
				for seed := range seeds {
					t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
						res := chaosScenario(t, plane, seed, events, separate, nil)
						mu.Lock()
						defer mu.Unlock()
						results = append(results, res)
						// One line per scenario as it finishes, for a long run's progress, with
						// the harness's resident memory after a collection: it must stay flat.
						debug.FreeOSMemory()
						rss := procStatus("VmRSS:")
						rssSeen = append(rssSeen, rss)
						fmt.Fprintf(os.Stderr, "chaos %d/%d: %s (linearizability: %s; RSS now %s, %d goroutines)\n  write latency: %s\n", len(results), n, line(res), res.Linearizability, rss, goruntime.NumGoroutine(), latencyLine(res))
						if res.Err != nil {
							t.Errorf("seed %d failed: %v\nevents: %v\ntimeline:\n  %s", seed, res.Err, res.Events, strings.Join(res.Timeline, "\n  "))
						}
					})
				}
			})
		}
	})
	slices.SortFunc(results, func(a, b e2e.ChaosResult) int { return cmp.Compare(a.Seed, b.Seed) })
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s\n", header)
	var ops, writes, lost, violations, failed, renewals int
	var findings []string
	minTol, minSeed, minCause := 1<<30, uint64(0), ""
	for _, r := range results {
		fmt.Fprintln(&b, line(r))
		ops += r.Linearizability.Operations
		renewals += r.Renewals
		writes += r.Writer.Acked
		lost += len(r.Writer.Lost)
		if r.Linearizability.Result == porcupine.Illegal {
			violations++
		}
		if r.Err != nil {
			failed++
		}
		for _, f := range r.LatencyFindings {
			findings = append(findings, fmt.Sprintf("seed %d: %s", r.Seed, f))
		}
		if r.Monitor.MinTolerance < minTol {
			minTol, minSeed, minCause = r.Monitor.MinTolerance, r.Seed, lossCause(r)
		}
	}
	fmt.Fprintf(&b, "\n%d scenarios, %d failed; %d operations checked for linearizability, %d violations; %d acknowledged writes, %d lost; lowest fault tolerance %d (seed %d%s); quorumguard's etcd client certificate renewed %d times; peak RSS of this process %s; RSS after each scenario, first %s, last %s\n",
		len(results), failed, ops, violations, writes, lost, minTol, minSeed, minCause, renewals, procStatus("VmHWM:"), firstOf(rssSeen), lastOf(rssSeen))
	fmt.Fprintf(&b, "%d plain replacements with a p99 write latency more than %d times the quiet period's (reported, not failed)\n", len(findings), framework.MaxLatencyRise)
	for _, f := range findings {
		fmt.Fprintf(&b, "  %s\n", f)
	}
	t.Log(b.String())
}

// latencyLine is a scenario's write latency before its first event and in each event's
// window, with each p99's ratio to the quiet period's.
func latencyLine(r e2e.ChaosResult) string {
	parts := []string{"before the first event " + r.QuietLatency.String()}
	for _, e := range r.EventLatency {
		parts = append(parts, fmt.Sprintf("%s %s (p99 %s)", e.Event, e.Latency, times(e.Latency.RiseOver(r.QuietLatency))))
	}
	return strings.Join(parts, "; ")
}

// worstRise is the highest ratio of a plain replacement's p99 write latency to the quiet
// period's in a scenario, or "-" when it had none.
func worstRise(r e2e.ChaosResult) string {
	var worst float64
	for _, e := range r.EventLatency {
		if slices.Contains(e2e.PlainReplacements, e.Event) {
			worst = max(worst, e.Latency.RiseOver(r.QuietLatency))
		}
	}
	return times(worst)
}

// times shows a ratio of latencies, or "-" for none (0).
func times(r float64) string {
	if r == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fx", r)
}

// TestLatencyRise: a plain replacement whose p99 write latency is more than twice the quiet
// period's is reported; one at exactly twice is not, nor is any rise in an event that injects
// a fault, nor a window without writes.
func TestLatencyRise(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	quiet := framework.LatencySummary{Writes: 400, P50: ms(3), P99: ms(10), Max: ms(15), LongestPause: ms(40)}
	during := func(p99 time.Duration) framework.LatencySummary {
		return framework.LatencySummary{Writes: 1500, P50: ms(4), P99: p99, Max: p99 + ms(5), LongestPause: ms(60)}
	}
	for _, tc := range []struct {
		name     string
		event    string
		quiet    framework.LatencySummary
		during   framework.LatencySummary
		reported bool
	}{
		{name: "a replacement at 2.1 times the quiet p99 is reported", event: "delete-one", quiet: quiet, during: during(ms(21)), reported: true},
		{name: "two replacements at five times are reported", event: "delete-two", quiet: quiet, during: during(ms(50)), reported: true},
		{name: "a domain change at three times is reported", event: "domain-change", quiet: quiet, during: during(ms(30)), reported: true},
		{name: "a replacement at exactly twice is not", event: "delete-one", quiet: quiet, during: during(ms(20))},
		{name: "a replacement below the quiet p99 is not", event: "delete-one", quiet: quiet, during: during(ms(8))},
		{name: "a freeze at ten times is not: it injects the fault", event: "freeze", quiet: quiet, during: during(ms(100))},
		{name: "a quorum loss at a hundred times is not", event: "quorum-loss", quiet: quiet, during: during(ms(1000))},
		{name: "a window without writes has nothing to compare", event: "delete-one", quiet: quiet},
		{name: "nor does a quiet period without writes", event: "delete-one", during: during(ms(50))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e2e.LatencyRise(tc.event, tc.quiet, tc.during)
			if (got != "") != tc.reported {
				t.Fatalf("LatencyRise said %q; want reported=%v", got, tc.reported)
			}
			if tc.reported && (!strings.Contains(got, tc.event) || !strings.Contains(got, tc.during.P99.String())) {
				t.Fatalf("the finding %q names neither the event nor its p99", got)
			}
		})
	}
}

// lossCause says why a scenario's fault tolerance went below 0: the faults that took quorum on
// purpose, and any loss they do not explain (which failed the scenario).
func lossCause(r e2e.ChaosResult) string {
	if r.Monitor.MinTolerance >= 0 {
		return ""
	}
	var why []string
	for _, w := range r.Windows {
		why = append(why, w.Why)
	}
	if _, unexplained := e2e.Explain(r.Monitor.Losses, r.Windows, e2e.RecoveryGrace); len(unexplained) > 0 {
		why = append(why, fmt.Sprintf("%d samples no fault explains, first: %s", len(unexplained), unexplained[0]))
	}
	return "; cause: " + strings.Join(why, "; ")
}

// procStatus is a field of /proc/self/status (VmHWM: the peak resident set; VmRSS: the resident
// set now), or "unknown".
func procStatus(field string) string {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return s[0]
}

func lastOf(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return s[len(s)-1]
}

// chaosScenario starts a cluster for one scenario and plays it; separate puts it on the
// package's shared apiserver with its private store, and adjust, when set, changes the input.
func chaosScenario(t *testing.T, plane *framework.ControlPlane, seed uint64, events int, separate bool, adjust func(*e2e.ChaosInput)) e2e.ChaosResult {
	ctx := t.Context()
	const boot = "aba"
	opts := framework.ClusterOptions{
		Dir: t.TempDir(), ProvisionDelay: 100 * time.Millisecond,
		ProviderSpec: func(i int) *runtime.RawExtension { return e2e.ZoneSpec(boot[i]) },
	}
	var c *framework.Cluster
	var err error
	if separate {
		c, err = framework.StartCluster(ctx, plane, opts)
	} else {
		// The scenario's own kube-apiserver stores its data in the members being replaced
		// and killed; the garbage collector frees the leader-for-life lock of a killed leader.
		c, err = framework.StartProtected(ctx, framework.ControlPlaneOptions{NodeLifecycle: true}, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	o := e2e.ControllerOptions(c)
	o.ManageMachines = true
	// quorumguard's etcd client certificate is renewed in place every 10 s, each valid for 30 s,
	// as a Secret volume renews it: every replacement runs across renewals, and a replica that
	// kept an old certificate could open no new connection (to a new member, after a restart).
	rot, err := c.Net.CA.StartRotating(filepath.Join(opts.Dir, "quorumguard-etcd-client"), pki.Options{CommonName: "quorumguard"}, 10*time.Second, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rot.Stop()
	o.EtcdCert, o.EtcdKey = rot.CertFile(), rot.KeyFile()
	var kas *framework.KubeAPIServerOperator
	if !separate {
		// OpenShift's contract: quorumguard keeps etcd-endpoints, the stand-in kube-apiserver
		// operator rolls each list out node by node, and checks that no member is removed
		// while a node's revision dials it.
		if kas, err = c.StartKubeAPIServerOperator(ctx); err != nil {
			t.Fatal(err)
		}
		defer kas.Stop()
		o.OpenShiftEndpoints = true
		defer func() {
			if v := kas.Violations(); len(v) > 0 {
				t.Errorf("seed %d: members removed while a node's kube-apiserver revision dialled them: %v", seed, v)
			}
		}()
	}
	rs, err := e2e.StartReplicas(ctx, c, o, fmt.Sprintf("quorumguard-chaos-%d", seed), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := rs.Stop(); err != nil {
			t.Errorf("stopping the replicas: %v", err)
		}
	}()
	// The ControlPlaneMachineSet is a singleton in the shared apiserver: it goes first.
	defer func() { _ = e2e.DeleteCPMS(context.Background(), c) }()
	waitHooks(t, c, "cluster-master-0", "cluster-master-1", "cluster-master-2")
	if err := c.Client.Create(ctx, e2e.NewCPMS(c, e2e.CPMSInput{Zones: "ab"})); err != nil {
		t.Fatal(err)
	}
	if _, err := e2e.WaitCPMSCondition(ctx, c, 30*time.Second, "Progressing", metav1.ConditionFalse, machines.ReasonAllReplicasUpdated); err != nil {
		t.Fatal(err)
	}
	var only []string
	if v := os.Getenv("QUORUMGUARD_CHAOS_ONLY"); v != "" {
		only = strings.Split(v, ",")
	}
	in := e2e.ChaosInput{Seed: seed, Cluster: c, Replicas: rs, Zones: "ab", Events: events, Only: only}
	if !separate {
		// Every replacement now waits for an apiserver restart (4 to 12 s here, more on a
		// loaded machine), and a domain change can take several.
		in.Settle = 5 * time.Minute
	}
	if adjust != nil {
		adjust(&in)
	}
	res := e2e.ChaosSpec(ctx, in)
	res.Renewals = rot.Count() - 1
	return res
}

// TestQuorumLossEvent plays the quorum-loss event (two voting members frozen together in the
// middle of a replacement) on the shared apiserver, whose store is not the etcd under test, so
// that a broken controller could still write Machines while quorum is gone. A test-only act,
// as such a controller would, strips the hook of a Machine during the loss. The scenario must
// report exactly that act; the loss itself is explained by the fault, and no write is lost,
// the history stays linearizable, and the replacement completes after the thaw.
func TestQuorumLossEvent(t *testing.T) {
	stripped := ""
	res := chaosScenario(t, cp, 7, 1, true, func(in *e2e.ChaosInput) {
		in.Only = []string{"quorum-loss"}
		c := in.Cluster
		in.DuringLoss = func(ctx context.Context) error {
			layout, err := e2e.Layout(ctx, c)
			if err != nil {
				return err
			}
			for _, p := range layout {
				if p.Hooked && !p.Deleting {
					m, err := c.Machine(ctx, p.Name)
					if err != nil {
						return err
					}
					stripped = p.Name
					return hooks.Release(ctx, c.Client, m, hooks.Default)
				}
			}
			return fmt.Errorf("no hooked Machine to strip: %s", e2e.LayoutString(layout))
		}
	})
	t.Logf("timeline:\n  %s", strings.Join(res.Timeline, "\n  "))
	if len(res.Windows) != 1 || stripped == "" {
		t.Fatalf("the event announced %d quorum-loss windows and stripped %q; want one window and one stripped Machine (err: %v)", len(res.Windows), stripped, res.Err)
	}
	if res.ExplainedLoss == 0 || res.Monitor.MinTolerance >= 0 {
		t.Fatalf("the monitor saw no loss while two of three members were frozen: %s", res.Monitor)
	}
	if _, unexplained := e2e.Explain(res.Monitor.Losses, res.Windows, e2e.RecoveryGrace); len(unexplained) > 0 {
		t.Errorf("losses outside the window: %v", unexplained)
	}
	if len(res.Writer.Lost) > 0 || res.Writer.Acked == 0 || res.Linearizability.Result == porcupine.Illegal || res.Linearizability.Operations == 0 {
		t.Errorf("writer %s, history %s: want writes acknowledged, none lost, a linearizable history", res.Writer, res.Linearizability)
	}
	want := "Machine " + stripped + " lost its hook while quorum was gone"
	if res.Err == nil || !strings.Contains(res.Err.Error(), want) {
		t.Fatalf("the scenario's verdict %v does not report %q", res.Err, want)
	}
	quiet := e2e.Quiet(res.Windows, nil, res.Releases, e2e.QuietMargin)
	if len(quiet) != 1 {
		t.Fatalf("want exactly the stripped hook reported, got %v", quiet)
	}
	// The act was the only thing wrong: without it the scenario's own checks pass.
	if rest := strings.ReplaceAll(res.Err.Error(), quiet[0], ""); strings.Contains(rest, "lost") || strings.Contains(rest, "acted") || strings.Contains(rest, "not settled") {
		t.Errorf("more than the injected act failed: %v", res.Err)
	}
}

// TestMemberOverlapIsCaught adds members by hand to a three-member cluster under the quorum
// monitor: a learner beside the voters, as one replacement has, passes; a fifth member, as a
// second replacement begun before the first one's old member is removed would add, is caught
// by the check every chaos scenario ends with.
func TestMemberOverlapIsCaught(t *testing.T) {
	ctx := t.Context()
	n, ms, tlsc := etcdnet.StartTest(t, "m0", "m1", "m2")
	eps := etcdnet.ClientURLs(ms)
	mon, err := framework.StartMonitor(ctx, framework.MonitorOptions{Endpoints: func() []string { return eps }, TLS: tlsc, Faults: n.Faults})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Stop()
	cli := newEtcdClient(t, eps, tlsc)
	// add adds a member that never starts: etcd takes a voter only once its members have
	// been connected for its health window, so it is retried until then.
	add := func(learner bool) error {
		ip, err := n.AllocateIP()
		if err != nil {
			return err
		}
		peer := []string{"https://" + net.JoinHostPort(ip.String(), fmt.Sprint(etcdnet.PeerPort))}
		return framework.WaitFor(ctx, 30*time.Second, "etcd to take a member", func() (bool, error) {
			actx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			if learner {
				_, err = cli.MemberAddAsLearner(actx, peer)
			} else {
				_, err = cli.MemberAdd(actx, peer)
			}
			return err == nil, err
		})
	}
	for _, step := range []struct {
		name    string
		add     func() error
		members int
		caught  bool
	}{
		{name: "three voters", members: 3},
		{name: "a learner beside them, as during one replacement", add: func() error { return add(true) }, members: 4},
		{name: "a fifth member, as a second replacement begun too early adds", add: func() error { return add(false) }, members: 5, caught: true},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.add != nil {
				if err := step.add(); err != nil {
					t.Fatal(err)
				}
			}
			var rep framework.MonitorReport
			if err := framework.WaitFor(ctx, 10*time.Second, fmt.Sprintf("the monitor to see %d members", step.members), func() (bool, error) {
				rep = mon.Report()
				return rep.MaxMembers == step.members, nil
			}); err != nil {
				t.Fatalf("%v; monitor: %s, at most %d members", err, rep, rep.MaxMembers)
			}
			if got := e2e.TooManyMembers(rep, 4); (got != "") != step.caught {
				t.Fatalf("with %d members the check said %q; want caught=%v", rep.MaxMembers, got, step.caught)
			}
		})
	}
}

// TestSettleCheckNeedsEveryVoterToAnswer: the settle check accepts a healthy three-member
// cluster only; each fault below leaves the victim's process running (which the old check
// counted as settled) and must be rejected, naming the victim, until it is undone. The check
// made before each chaos event lets a fault start only where one member may still fail.
func TestSettleCheckNeedsEveryVoterToAnswer(t *testing.T) {
	ctx := t.Context()
	n, ms, tlsc := etcdnet.StartTest(t, "m0", "m1", "m2")
	probe := framework.NewMemberProbe(tlsc, time.Second)
	defer probe.Close()
	ips := map[string]net.IP{}
	for _, m := range ms {
		ips[m.Name] = m.IP
	}
	check := func(ips map[string]net.IP) string {
		v, err := e2e.ProbeVoters(ctx, probe, etcdnet.ClientURLs(ms))
		if err != nil {
			return err.Error()
		}
		return v.Settled(ips)
	}
	ready := func(t *testing.T, want bool) {
		t.Helper()
		err := e2e.ReadyForFault(e2e.ProbeVoters(ctx, probe, etcdnet.ClientURLs(ms)))
		if (err == nil) != want {
			t.Fatalf("ready for a fault: %v; want ready=%v", err, want)
		}
	}
	settled := func(t *testing.T) {
		t.Helper()
		var why string
		if err := framework.WaitFor(ctx, 30*time.Second, "the cluster to be settled", func() (bool, error) {
			why = check(ips)
			return why == "", nil
		}); err != nil {
			t.Fatalf("%v: %s", err, why)
		}
	}
	settled(t)
	ready(t, true)
	other := net.ParseIP("127.0.0.77")
	for _, tc := range []struct {
		name string
		// fault breaks the cluster and returns its undo and what the rejection must name;
		// ips, when set, are the Machines' addresses the check is given instead.
		fault  func(t *testing.T) (undo func(), victim string)
		ips    map[string]net.IP
		reason string
		// ready says a chaos event may still start: one member may fail yet.
		ready bool
	}{
		{name: "a frozen voter", fault: func(*testing.T) (func(), string) { ms[1].Freeze(); return ms[1].Thaw, "m1" }, reason: "no linearizable read"},
		{name: "a partitioned voter", fault: func(*testing.T) (func(), string) { ms[2].Partition(); return ms[2].Heal, "m2" }, reason: "no linearizable read"},
		{name: "a voter whose disk stalls", fault: func(*testing.T) (func(), string) { ms[0].StallDisk(); return ms[0].Resume, "m0" }, reason: "no linearizable read"},
		{name: "a learner beside the voters", fault: func(t *testing.T) (func(), string) {
			ip, err := n.AllocateIP()
			if err != nil {
				t.Fatal(err)
			}
			cli := newEtcdClient(t, etcdnet.ClientURLs(ms), tlsc)
			var id uint64
			// etcd takes a member only once its members have been connected for its health window.
			if err := framework.WaitFor(ctx, 30*time.Second, "etcd to take a learner", func() (bool, error) {
				actx, cancel := context.WithTimeout(ctx, 3*time.Second)
				defer cancel()
				resp, err := cli.MemberAddAsLearner(actx, []string{"https://" + net.JoinHostPort(ip.String(), fmt.Sprint(etcdnet.PeerPort))})
				if err == nil {
					id = resp.Member.ID
				}
				return err == nil, err
			}); err != nil {
				t.Fatal(err)
			}
			return func() {
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				if _, err := cli.MemberRemove(rctx, id); err != nil {
					t.Fatal(err)
				}
			}, fmt.Sprintf("%x", id)
		}, reason: "a learner remains", ready: true},
		{name: "a voter on no Machine's address", ips: map[string]net.IP{"m0": ms[0].IP, "m1": ms[1].IP, "m2": other}, reason: "not all on one Machine's InternalIP", ready: true},
		{name: "a Machine without a voter", ips: map[string]net.IP{"m0": ms[0].IP, "m1": ms[1].IP, "m2": ms[2].IP, "m3": other}, reason: "3 voting members for 4 Machines", ready: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			given, victim := ips, ""
			if tc.ips != nil {
				given = tc.ips
			}
			if tc.fault != nil {
				var undo func()
				undo, victim = tc.fault(t)
				defer settled(t)
				defer undo()
				for _, m := range ms {
					if !m.Running() {
						t.Fatalf("member %s does not run: the fault should leave every process running", m.Name)
					}
				}
			}
			var why string
			if err := framework.WaitFor(ctx, 15*time.Second, "the settle check to reject the cluster", func() (bool, error) {
				why = check(given)
				return why != "", nil
			}); err != nil {
				t.Fatalf("%v: the settle check passed a cluster with %s", err, tc.name)
			}
			if !strings.Contains(why, tc.reason) || !strings.Contains(why, victim) {
				t.Fatalf("the settle check said %q; want it to say %q about %q", why, tc.reason, victim)
			}
			ready(t, tc.ready)
		})
	}
}

func newEtcdClient(t *testing.T, eps []string, tc *tls.Config) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, TLS: tc, DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// TestHoldFor: a state counts only once it has held on every poll for the whole window; a
// single failed poll starts the window again, and a state that keeps breaking never holds.
func TestHoldFor(t *testing.T) {
	const window = 400 * time.Millisecond
	for _, tc := range []struct {
		name string
		// broken says whether the state is broken at poll i, at elapsed since the start.
		broken  func(i int, elapsed time.Duration) bool
		atLeast time.Duration
		fails   bool
	}{
		{name: "a state that holds from the start", broken: func(int, time.Duration) bool { return false }, atLeast: window},
		{name: "one break half-way starts the window again",
			broken:  func(_ int, e time.Duration) bool { return e >= window/2 && e < window/2+100*time.Millisecond },
			atLeast: window/2 + 100*time.Millisecond + window},
		{name: "a state that breaks every fourth poll never holds", broken: func(i int, _ time.Duration) bool { return i%4 == 3 }, fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, i := time.Now(), 0
			err := e2e.HoldFor(t.Context(), 3*time.Second, window, "the state", func() (string, error) {
				defer func() { i++ }()
				if tc.broken(i, time.Since(start)) {
					return fmt.Sprintf("broken at poll %d", i), nil
				}
				return "", nil
			})
			took := time.Since(start)
			if tc.fails {
				if err == nil || !strings.Contains(err.Error(), "last seen: broken at poll") {
					t.Fatalf("HoldFor returned %v after %s; want a failure saying what it last saw", err, took)
				}
				return
			}
			if err != nil || took < tc.atLeast {
				t.Fatalf("HoldFor returned %v after %s; want success after at least %s", err, took, tc.atLeast)
			}
		})
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
