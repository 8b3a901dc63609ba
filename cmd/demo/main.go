// Command demo shows quorumguard protecting a real etcd cluster on a local simulated control
// plane whose kube-apiserver stores its data in that same etcd (--separate-store gives it a
// private one): three masters in two AWS-shaped failure domains, two quorumguard processes under
// leader-for-life, a writer throughout; then a Machine deletion, a new failure domain, and the
// loss of the leader replica. It prints a live view on a terminal and plain lines otherwise,
// and exits non-zero if a write was lost, quorum fell or a step did not finish.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	machinev1 "github.com/openshift/api/machine/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/test/framework"
)

const lockName = "quorumguard-lock"

func main() {
	keep := flag.Bool("keep", false, "leave the cluster up at the end and print how to reach it")
	bin := flag.String("quorumguard", filepath.Join(framework.RepoRoot(), "bin", "quorumguard"), "the quorumguard binary to run")
	separate := flag.Bool("separate-store", false, "give kube-apiserver a private etcd instead of storing its data in the etcd cluster quorumguard protects")
	flag.Parse()
	// The simulator's client logs through controller-runtime; the demo prints its own view.
	ctrl.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{bin: *bin, keep: *keep, separate: *separate, out: newView()}
	err := d.run(ctx)
	d.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

type demo struct {
	bin      string
	keep     bool
	separate bool
	// operator stands in for the kube-apiserver operator when the apiserver is on the
	// protected etcd: it rolls etcd-endpoints out as revisions, node by node.
	operator *framework.KubeAPIServerOperator
	out      *view
	dir      string
	cp       *framework.ControlPlane
	cluster  *framework.Cluster
	procs    map[string]*exec.Cmd
	writer   *framework.Writer
	monitor  *framework.QuorumMonitor
	steps    []stepResult
	// quiet is the writer's latency from the moment every hook was placed until the first
	// deletion: what each step's latency is compared with.
	quiet      framework.LatencySummary
	quietTaken bool
}

type stepResult struct {
	name string
	took time.Duration
	// latency is the writer's latency in the step, for the steps after the quiet period.
	latency *framework.LatencySummary
}

func (d *demo) say(format string, args ...any) { d.out.line(fmt.Sprintf(format, args...)) }

func (d *demo) run(ctx context.Context) error {
	var err error
	if d.dir, err = os.MkdirTemp("", "quorumguard-demo-"); err != nil {
		return err
	}
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1a"}
	clOpts := framework.ClusterOptions{Dir: d.dir, ProvisionDelay: 2 * time.Second,
		ProviderSpec: func(i int) *runtimeRaw { return framework.AWSProviderSpec(zones[i], "subnet-"+zones[i]) }}
	if d.separate {
		d.say("starting a real kube-apiserver with the machine CRDs and the garbage collector, on a private etcd")
		if d.cp, err = framework.StartControlPlane(framework.ControlPlaneOptions{NodeLifecycle: true, Dir: d.dir}); err != nil {
			return err
		}
		d.say("creating three masters in two failure domains (a, b, a) with a TLS etcd cluster")
		if d.cluster, err = framework.StartCluster(ctx, d.cp, clOpts); err != nil {
			return err
		}
	} else {
		d.say("bootstrapping a three-member TLS etcd cluster for masters in two failure domains (a, b, a), and a real kube-apiserver (machine CRDs, garbage collector) storing its data in it")
		if d.cluster, err = framework.StartProtected(ctx, framework.ControlPlaneOptions{NodeLifecycle: true}, clOpts); err != nil {
			return err
		}
		d.cp = d.cluster.CP
		d.say("a kube-apiserver operator stand-in follows openshift-etcd/etcd-endpoints, which quorumguard keeps as the etcd operator would, makes a revision for each list and rolls it out node by node, restarting kube-apiserver onto it")
		if d.operator, err = d.cluster.StartKubeAPIServerOperator(ctx); err != nil {
			return err
		}
	}
	if err := d.createCPMS(ctx, []string{"us-east-1a", "us-east-1b"}); err != nil {
		return err
	}
	if d.writer, err = d.cluster.StartWriter(ctx); err != nil {
		return err
	}
	if d.monitor, err = d.cluster.StartQuorumMonitor(ctx); err != nil {
		return err
	}
	d.say("creating a worker Machine for quorumguard's two replicas: every master is replaced or moved below, and a drain would evict them")
	if err := d.createWorker(ctx); err != nil {
		return err
	}
	d.procs = map[string]*exec.Cmd{}
	for _, name := range []string{"quorumguard-0", "quorumguard-1"} {
		if err := d.startReplica(name); err != nil {
			return err
		}
	}
	live, cancelLive := context.WithCancel(ctx)
	defer cancelLive()
	go d.out.refresh(live, d.snapshot)
	d.say("waiting for a leader and for the hooks on every master")
	if err := d.step(ctx, "leader elected and hooks placed", 2*time.Minute, d.hooksPlaced); err != nil {
		return err
	}
	quietFrom := time.Now()
	// etcd accepts a reconfiguration once its members have been connected for 5 s.
	time.Sleep(5 * time.Second)

	d.say("step 1: asking `quorumguard plan --delete cluster-master-1` what deleting it would bring")
	if err := d.plan(ctx, "--delete=cluster-master-1"); err != nil {
		return err
	}
	d.quiet, d.quietTaken = d.writer.Latencies(quietFrom, time.Now()), true
	d.say("write latency before the replacement: %s", d.quiet)
	d.say("deleting cluster-master-1; its hook holds the drain until a replacement is voting")
	if err := d.cluster.DeleteMachine(ctx, "cluster-master-1"); err != nil {
		return err
	}
	if err := d.step(ctx, "protected replacement of cluster-master-1", 3*time.Minute, func(ctx context.Context) (bool, error) {
		if err := d.replacementAppears(ctx, "cluster-master-1"); err != nil {
			return false, err
		}
		return d.gone(ctx, "cluster-master-1") && d.voters(ctx) == 3, nil
	}); err != nil {
		return err
	}

	d.say("step 2: adding failure domain us-east-1c to the ControlPlaneMachineSet")
	if err := d.addDomain(ctx, "us-east-1c"); err != nil {
		return err
	}
	if err := d.step(ctx, "rebalance onto us-east-1c", 3*time.Minute, func(ctx context.Context) (bool, error) {
		return d.zonesBalanced(ctx) && d.voters(ctx) == 3, nil
	}); err != nil {
		return err
	}

	// The test world's one kube-apiserver was restarted onto new etcd endpoints during the
	// steps above, and kube-controller-manager's watches back off (up to 30 s) after each
	// restart; on a cluster the apiservers roll one at a time behind a load balancer. The
	// takeover below waits on the garbage collector, so it is measured once that acts again.
	gcFrom := time.Now()
	if err := d.gcActs(ctx); err != nil {
		return err
	}
	d.say("the garbage collector acts again (%s after the rebalance)", time.Since(gcFrom).Round(100*time.Millisecond))
	leaderPod, err := d.leader(ctx)
	if err != nil {
		return err
	}
	d.say("step 3: killing the leader replica %s and deleting its Pod; the kubelet on %s confirms the deletion once the container is gone", leaderPod, replicaNode)
	_ = d.procs[leaderPod].Process.Kill()
	if err := d.cp.Client.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: leaderPod, Namespace: framework.MachineNamespace}}); err != nil {
		return err
	}
	if err := d.step(ctx, "standby takes over", 2*time.Minute, func(ctx context.Context) (bool, error) {
		l, err := d.leader(ctx)
		return err == nil && l != leaderPod, nil
	}); err != nil {
		return err
	}
	cancelLive()
	return d.summary(ctx)
}

func (d *demo) step(ctx context.Context, name string, timeout time.Duration, done func(context.Context) (bool, error)) error {
	start := time.Now()
	err := framework.WaitFor(ctx, timeout, name, func() (bool, error) { return done(ctx) })
	took := time.Since(start)
	r := stepResult{name: name, took: took}
	if d.quietTaken {
		lat := d.writer.Latencies(start, start.Add(took))
		r.latency = &lat
	}
	d.steps = append(d.steps, r)
	if err == nil {
		d.say("done: %s in %s", name, took.Round(100*time.Millisecond))
		if r.latency != nil {
			d.say("write latency during it: %s", r.latency)
		}
	}
	return err
}

func (d *demo) summary(ctx context.Context) error {
	mon := d.monitor.Stop()
	rep, err := d.writer.Stop(ctx)
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Println("summary")
	for _, s := range d.steps {
		fmt.Printf("  %-45s %8s\n", s.name, s.took.Round(100*time.Millisecond))
	}
	fmt.Printf("  %-45s %8d\n", "acknowledged writes", rep.Acked)
	fmt.Printf("  %-45s %8d\n", "lost writes", len(rep.Lost))
	fmt.Printf("  %-45s %8s\n", "longest write pause", rep.LongestPause.Round(time.Millisecond))
	fmt.Printf("  %-45s %8d\n", "lowest fault tolerance seen", mon.MinTolerance)
	fmt.Printf("  %-45s %8d\n", "samples with quorum lost", len(mon.QuorumLost))
	if d.operator != nil {
		restarts := 0
		for _, r := range d.operator.Rollouts() {
			if r.Restarted {
				restarts++
			}
		}
		fmt.Printf("  %-45s %8d\n", "kube-apiserver revisions", len(d.operator.Revisions()))
		fmt.Printf("  %-45s %8d\n", "apiserver restarts onto new etcd endpoints", restarts)
		fmt.Printf("  %-45s %8d\n", "members removed while a node dialled them", len(d.operator.Violations()))
		fmt.Printf("  %-45s %s\n", "apiserver's etcd servers at the end", strings.Join(d.cp.EtcdServers(), ","))
	}
	d.latencyTable(rep.Latency)
	if d.keep {
		ca, cert, key := d.cluster.Net.ClientFiles()
		fmt.Printf("\ncluster kept: KUBECONFIG=%s\netcd endpoints: %s\n  --etcd-ca-file=%s --etcd-cert-file=%s --etcd-key-file=%s\npress Ctrl-C to tear it down\n",
			d.cp.KubeconfigFile, strings.Join(d.cluster.Agent.RunningEndpoints(), ","), ca, cert, key)
		<-ctx.Done()
	}
	if d.operator != nil && len(d.operator.Violations()) > 0 {
		return fmt.Errorf("members removed while a node's kube-apiserver revision dialled them: %s", strings.Join(d.operator.Violations(), "; "))
	}
	if len(rep.Lost) > 0 || len(mon.QuorumLost) > 0 {
		return fmt.Errorf("%d writes lost, quorum lost in %d samples", len(rep.Lost), len(mon.QuorumLost))
	}
	return nil
}

// latencyTable prints the writer's latency before the first deletion, in each step after it,
// and over the whole run, with each p99's ratio to the one before the deletion; a step whose
// p99 is more than framework.MaxLatencyRise times that is named below the table.
func (d *demo) latencyTable(whole framework.LatencySummary) {
	fmt.Println()
	fmt.Printf("  %-45s %6s %8s %8s %8s %8s %10s\n", "write latency", "writes", "p50", "p99", "max", "pause", "p99/before")
	r := func(d time.Duration) time.Duration {
		if d < 10*time.Millisecond {
			return d.Round(100 * time.Microsecond)
		}
		return d.Round(time.Millisecond)
	}
	row := func(name string, s framework.LatencySummary, rise string) {
		fmt.Printf("  %-45s %6d %8s %8s %8s %8s %10s\n", name, s.Writes, r(s.P50), r(s.P99), r(s.Max), r(s.LongestPause), rise)
	}
	row("before the replacement", d.quiet, "")
	var over []string
	for _, s := range d.steps {
		if s.latency == nil {
			continue
		}
		rise := s.latency.RiseOver(d.quiet)
		ratio := "-"
		if rise > 0 {
			ratio = fmt.Sprintf("%.1fx", rise)
		}
		row(s.name, *s.latency, ratio)
		if rise > framework.MaxLatencyRise {
			over = append(over, fmt.Sprintf("%s: p99 %s is %.1f times the %s before the replacement", s.name, r(s.latency.P99), rise, r(d.quiet.P99)))
		}
	}
	row("whole run", whole, "")
	for _, o := range over {
		fmt.Printf("  above the %dx promise: %s\n", framework.MaxLatencyRise, o)
	}
}

func (d *demo) cleanup() {
	for _, p := range d.procs {
		if p.Process != nil {
			_ = p.Process.Kill()
		}
	}
	if d.operator != nil {
		d.operator.Stop()
	}
	if d.cluster != nil {
		d.cluster.Stop(context.Background())
	}
	if d.cp != nil && d.separate {
		_ = d.cp.Stop()
	}
	if d.dir != "" {
		_ = os.RemoveAll(d.dir)
	}
}

// replicaNode is the Node both replicas' Pods are bound to: a worker's, which nothing in the
// demo drains (the shipped Deployment puts them on masters, where a drain evicts them; the
// end-to-end TestLeaderPodEvictedByTheDrain shows that).
const replicaNode = "cluster-worker-0"

// gcActs deletes a throwaway ConfigMap that owns another and waits until the garbage
// collector has deleted the dependent.
func (d *demo) gcActs(ctx context.Context) error {
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "gc-probe-", Namespace: framework.MachineNamespace}}
	if err := framework.RideOut(ctx, "create a garbage-collector probe", func() error { return d.cp.Client.Create(ctx, owner) }); err != nil {
		return err
	}
	dep := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: owner.Name + "-dependent", Namespace: framework.MachineNamespace,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}}}}
	if err := framework.RideOut(ctx, "create a garbage-collector probe", func() error { return d.cp.Client.Create(ctx, dep) }); err != nil {
		return err
	}
	if err := framework.RideOut(ctx, "delete a garbage-collector probe", func() error { return d.cp.Client.Delete(ctx, owner) }); err != nil {
		return err
	}
	return framework.WaitFor(ctx, 3*time.Minute, "the garbage collector to delete a dependent", func() (bool, error) {
		err := d.cp.Client.Get(ctx, client.ObjectKeyFromObject(dep), &corev1.ConfigMap{})
		return apierrors.IsNotFound(err), nil
	})
}

// createWorker creates the worker Machine replicaNode and waits until the machine-api has
// linked it to its Node.
func (d *demo) createWorker(ctx context.Context) error {
	m := d.cluster.NewMaster(replicaNode, framework.AWSProviderSpec("us-east-1a", "subnet-us-east-1a"))
	for _, l := range []string{framework.RoleLabel, framework.TypeLabel} {
		m.Labels[l] = "worker"
	}
	if err := d.cp.Client.Create(ctx, m); err != nil {
		return fmt.Errorf("create worker Machine %s: %w", replicaNode, err)
	}
	return framework.WaitFor(ctx, 2*time.Minute, "worker "+replicaNode+" to run on its Node", func() (bool, error) {
		cur, err := d.cluster.Machine(ctx, replicaNode)
		return err == nil && cur.Status.NodeRef != nil, nil
	})
}

func (d *demo) startReplica(name string) error {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: framework.MachineNamespace},
		Spec: corev1.PodSpec{NodeName: replicaNode, Containers: []corev1.Container{{Name: "quorumguard", Image: "quorumguard"}}}}
	if err := d.cp.Client.Create(context.Background(), p); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	ca, cert, key := d.cluster.Net.ClientFiles()
	logf, err := os.Create(filepath.Join(d.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(d.bin, "--kubeconfig="+d.cp.KubeconfigFile, "--etcd-ca-file="+ca, "--etcd-cert-file="+cert, "--etcd-key-file="+key,
		"--leader-elect=for-life", "--leader-election-namespace="+framework.MachineNamespace,
		"--metrics-bind-address=0", "--health-probe-bind-address=0")
	cmd.Env = append(os.Environ(), "POD_NAME="+name)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s (%s): %w; run `make build` first", name, d.bin, err)
	}
	d.procs[name] = cmd
	return nil
}

// plan runs `quorumguard plan` with args against the demo cluster and shows what it prints;
// a plan that would stall or lose quorum fails the demo before anything is deleted.
func (d *demo) plan(ctx context.Context, args ...string) error {
	ca, cert, key := d.cluster.Net.ClientFiles()
	cmd := exec.CommandContext(ctx, d.bin, append([]string{"plan", "--kubeconfig=" + d.cp.KubeconfigFile,
		"--etcd-ca-file=" + ca, "--etcd-cert-file=" + cert, "--etcd-key-file=" + key}, args...)...)
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		d.say("  %s", line)
	}
	if err != nil {
		return fmt.Errorf("quorumguard plan %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func (d *demo) leader(ctx context.Context) (string, error) {
	cm := &corev1.ConfigMap{}
	if err := d.cp.Client.Get(ctx, client.ObjectKey{Namespace: framework.MachineNamespace, Name: lockName}, cm); err != nil {
		return "", err
	}
	if refs := cm.GetOwnerReferences(); len(refs) == 1 {
		return refs[0].Name, nil
	}
	return "", errors.New("lock has no single owner")
}

func (d *demo) createCPMS(ctx context.Context, zones []string) error {
	cpms := cpmsFor(zones)
	return d.cp.Client.Create(ctx, cpms)
}

// addDomain adds zone to the ControlPlaneMachineSet's failure domains, reading it again and
// retrying when the controller wrote its status in between.
func (d *demo) addDomain(ctx context.Context, zone string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cpms := &machinev1.ControlPlaneMachineSet{}
		if err := d.cp.Client.Get(ctx, client.ObjectKey{Namespace: framework.MachineNamespace, Name: "cluster"}, cpms); err != nil {
			return err
		}
		fd := cpms.Spec.Template.OpenShiftMachineV1Beta1Machine.FailureDomains
		list := append(*fd.AWS, awsDomain(zone))
		fd.AWS = &list
		return d.cp.Client.Update(ctx, cpms)
	})
}

// replacementAppears fails when the ControlPlaneMachineSet controller has not created a
// replacement for a deleting Machine within ten seconds.
func (d *demo) replacementAppears(ctx context.Context, old string) error {
	m, err := d.cluster.Machine(ctx, old)
	if err != nil || m.DeletionTimestamp == nil || time.Since(m.DeletionTimestamp.Time) < 10*time.Second || len(d.masters(ctx)) > 3 {
		return nil //nolint:nilerr // an unreadable Machine is judged by the next poll
	}
	return fmt.Errorf("no replacement for %s after 10s: the ControlPlaneMachineSet controller did not create one", old)
}

func (d *demo) gone(ctx context.Context, name string) bool {
	_, err := d.cluster.Machine(ctx, name)
	return apierrors.IsNotFound(err)
}

func (d *demo) voters(ctx context.Context) int {
	n := 0
	for _, m := range d.members(ctx) {
		if !m.learner {
			n++
		}
	}
	return n
}

func (d *demo) hooksPlaced(ctx context.Context) (bool, error) {
	if _, err := d.leader(ctx); err != nil {
		return false, nil //nolint:nilerr // no leader yet is not a failure, only not done
	}
	ms := d.masters(ctx)
	if len(ms) < 3 {
		return false, nil
	}
	for _, m := range ms {
		if !m.hook || m.reason != "Voting" {
			return false, nil
		}
	}
	return true, nil
}

func (d *demo) zonesBalanced(ctx context.Context) bool {
	count := map[string]int{}
	for _, m := range d.masters(ctx) {
		if m.deleting {
			return false
		}
		count[m.zone]++
	}
	return len(count) == 3 && !slices.ContainsFunc([]string{"us-east-1a", "us-east-1b", "us-east-1c"}, func(z string) bool { return count[z] != 1 })
}
