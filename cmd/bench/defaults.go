package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// defaultsCluster is three masters, an Active ControlPlaneMachineSet that matches them, and
// quorumguard run as shipped: its flags at their defaults (Machine management on, the
// ClusterOperator etcd reported, leader-for-life election over a lock owned by its Pod), only
// the kubeconfig, the etcd files, the lock's namespace and the metrics port given, and
// metrics served over plain HTTP for the benchmark to read (served securely, every scrape
// would add the API server's token and access reviews to the requests counted).
type defaultsCluster struct {
	cp      *framework.ControlPlane
	c       *framework.Cluster
	metrics string
	stop    func()
}

func startDefaults(ctx context.Context, bin string) (*defaultsCluster, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s: run `make build` first: %w", bin, err)
	}
	cp, dir, stopCP, err := startControlPlane(true)
	if err != nil {
		return nil, err
	}
	d := &defaultsCluster{cp: cp}
	var cleanups []func()
	d.stop = func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		stopCP()
	}
	fail := func(err error) (*defaultsCluster, error) { d.stop(); return nil, err }
	d.c, err = framework.StartCluster(ctx, cp, framework.ClusterOptions{Dir: dir, OnlyMasters: true})
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { d.c.Stop(context.Background()) })
	if err := cp.Client.Create(ctx, e2e.NewCPMS(d.c, e2e.CPMSInput{Zones: "a"})); err != nil {
		return fail(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "quorumguard-"}}
	if err := cp.Client.Create(ctx, ns); err != nil {
		return fail(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "quorumguard-0", Namespace: ns.Name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "quorumguard", Image: "quorumguard"}}}}
	if err := cp.Client.Create(ctx, pod); err != nil {
		return fail(err)
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	ca, cert, key := d.c.Net.ClientFiles()
	cmd := exec.CommandContext(ctx, bin, "--kubeconfig="+cp.KubeconfigFile, "--etcd-ca-file="+ca, "--etcd-cert-file="+cert, "--etcd-key-file="+key,
		"--leader-election-namespace="+ns.Name, fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", port), "--metrics-secure=false", "--health-probe-bind-address=0")
	cmd.Env = append(os.Environ(), "POD_NAME="+pod.Name)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	d.metrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	if err := framework.WaitFor(ctx, 2*time.Minute, "the ClusterOperator Available with 3 healthy voters and no Machine in flight", func() (bool, error) {
		return d.available(ctx) == configv1.ConditionTrue && d.machinesVoting(ctx, 3), nil
	}); err != nil {
		return fail(err)
	}
	return d, nil
}

func (d *defaultsCluster) available(ctx context.Context) configv1.ConditionStatus {
	co := &configv1.ClusterOperator{}
	if err := d.cp.Client.Get(ctx, client.ObjectKey{Name: "quorumguard"}, co); err != nil {
		return ""
	}
	for _, c := range co.Status.Conditions {
		if c.Type == configv1.OperatorAvailable {
			return c.Status
		}
	}
	return ""
}

// machinesVoting says whether n Machines carry EtcdMember Voting.
func (d *defaultsCluster) machinesVoting(ctx context.Context, n int) bool {
	return d.machinesWith(ctx, quorum.ReasonVoting) == n
}

func (d *defaultsCluster) machinesWith(ctx context.Context, reason string) int {
	var ms machinev1beta1.MachineList
	if err := d.cp.Client.List(ctx, &ms, client.InNamespace(framework.MachineNamespace), client.MatchingLabels{framework.RoleLabel: "master"}); err != nil {
		return -1
	}
	count := 0
	for i := range ms.Items {
		if c := framework.Condition(&ms.Items[i], masters.ConditionType); c != nil && c.Reason == reason {
			count++
		}
	}
	return count
}

// steady measures API requests per minute over a minute of steady state, after a settling
// period, from the binary's client metrics.
func steady(ctx context.Context, bin string) ([]row, error) {
	d, err := startDefaults(ctx, bin)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	time.Sleep(15 * time.Second)
	before, err := scrape(d.metrics)
	if err != nil {
		return nil, err
	}
	const window = time.Minute
	time.Sleep(window)
	after, err := scrape(d.metrics)
	if err != nil {
		return nil, err
	}
	per := func(match func(string) bool) float64 {
		n := 0.0
		for k, v := range after {
			if strings.HasPrefix(k, "rest_client_requests_total") && match(k) {
				n += v - before[k]
			}
		}
		return n * float64(time.Minute) / float64(window)
	}
	isWrite := func(k string) bool {
		for _, m := range []string{`method="POST"`, `method="PUT"`, `method="PATCH"`, `method="DELETE"`} {
			if strings.Contains(k, m) {
				return true
			}
		}
		return false
	}
	reads, writes := per(func(k string) bool { return !isWrite(k) }), per(isWrite)
	etcd := 0.0
	for k, v := range after {
		if strings.HasPrefix(k, "quorumguard_etcd_requests_total") {
			etcd += v - before[k]
		}
	}
	fmt.Printf("default flags, steady state: %.1f API reads/min, %.1f API writes/min, %.1f etcd observations/min\n", reads, writes, etcd)
	return []row{
		{figure: "API reads per minute, steady state, default flags (Machine management, ClusterOperator, leader-for-life)", value: reads, unit: "/min",
			note: fmt.Sprintf("API writes %.1f/min; etcd observations %.1f/min (idle pass every %s)", writes, etcd, controlplane.DefaultIdleResync)},
	}, nil
}

// quorumLoss kills two of three etcd members and times how long the loss takes to show on a
// Machine's EtcdMember condition, in the ClusterOperator's Available and in the
// quorumguard_etcd_fault_tolerance metric; then restarts them and times the recovery the same
// way. Everything is polled every 20 ms.
func quorumLoss(ctx context.Context, bin string, trials int) ([]row, error) {
	d, err := startDefaults(ctx, bin)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	tolerance := func() (float64, bool) {
		m, err := scrape(d.metrics)
		if err != nil {
			return 0, false
		}
		v, ok := m["quorumguard_etcd_fault_tolerance"]
		return v, ok
	}
	type times struct{ condition, operator, metric float64 }
	watch := func(start time.Time, cond func() bool, avail configv1.ConditionStatus, metric func(float64) bool) (times, error) {
		var t times
		err := framework.WaitFor(ctx, 2*time.Minute, "the fault to show", func() (bool, error) {
			now := time.Since(start).Seconds()
			if t.condition == 0 && cond() {
				t.condition = now
			}
			if t.operator == 0 && d.available(ctx) == avail {
				t.operator = now
			}
			if v, ok := tolerance(); t.metric == 0 && ok && metric(v) {
				t.metric = now
			}
			return t.condition > 0 && t.operator > 0 && t.metric > 0, nil
		})
		if err != nil {
			v, ok := tolerance()
			err = fmt.Errorf("%w (seen after: condition %.2fs, ClusterOperator %.2fs, metric %.2fs; the metric now %v %v, Available %q)",
				err, t.condition, t.operator, t.metric, v, ok, d.available(ctx))
		}
		return t, err
	}
	victims := []string{"cluster-master-1", "cluster-master-2"}
	var lost, back []times
	for i := range trials {
		start := time.Now()
		for _, v := range victims {
			d.c.Agent.Member(v).Kill()
		}
		l, err := watch(start, func() bool { return d.machinesWith(ctx, quorum.ReasonNoQuorum) > 0 }, configv1.ConditionFalse, func(v float64) bool { return v < 0 })
		if err != nil {
			return nil, fmt.Errorf("trial %d, quorum loss: %w", i, err)
		}
		start = time.Now()
		for _, v := range victims {
			if err := d.c.Agent.Member(v).Restart(); err != nil {
				return nil, err
			}
		}
		r, err := watch(start, func() bool { return d.machinesVoting(ctx, 3) }, configv1.ConditionTrue, func(v float64) bool { return v >= 0 })
		if err != nil {
			return nil, fmt.Errorf("trial %d, recovery: %w", i, err)
		}
		fmt.Printf("quorum loss shown: condition %.2fs, ClusterOperator %.2fs, metric %.2fs; recovery shown: %.2fs, %.2fs, %.2fs\n",
			l.condition, l.operator, l.metric, r.condition, r.operator, r.metric)
		lost, back = append(lost, l), append(back, r)
		// The members just restarted: let etcd's health window pass before the next fault.
		time.Sleep(6 * time.Second)
	}
	col := func(ts []times, f func(times) float64) float64 {
		xs := make([]float64, len(ts))
		for i, t := range ts {
			xs[i] = f(t)
		}
		return median(xs)
	}
	cond := func(t times) float64 { return t.condition }
	op := func(t times) float64 { return t.operator }
	met := func(t times) float64 { return t.metric }
	note := func(ts []times) string {
		return fmt.Sprintf("%d trials; ClusterOperator Available %.2f s, fault-tolerance metric %.2f s", len(ts), col(ts, op), col(ts, met))
	}
	return []row{
		{figure: "quorum loss (2 of 3 members killed) to a Machine's EtcdMember NoQuorum", value: col(lost, cond), unit: "s", note: note(lost)},
		{figure: "quorum back (both restarted) to every Machine Voting", value: col(back, cond), unit: "s", note: note(back)},
	}, nil
}
