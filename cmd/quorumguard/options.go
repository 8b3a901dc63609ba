package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	flag "github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/endpoints"
	"github.com/quorumguard/quorumguard/pkg/hooks"
)

// options are the controller's flags. Every flag can also be set through the environment
// variable QUORUMGUARD_<NAME>, with the flag's name upper-cased and dashes as underscores;
// a flag given on the command line wins.
type options struct {
	etcdEndpoints   string
	etcdCA          string
	etcdCert        string
	etcdKey         string
	namespace       string
	hookName        string
	hookOwner       string
	preTermName     string
	preTermOwner    string
	replicas        int
	manageMachines  bool
	pollInterval    time.Duration
	metricsAddr     string
	metricsSecure   bool
	metricsCertDir  string
	probeAddr       string
	leaderElect     string
	electionID      string
	electionNS      string
	leaseDuration   time.Duration
	renewDeadline   time.Duration
	retryPeriod     time.Duration
	clusterOperator string
	hookHeldWarn    time.Duration
	learnerStart    time.Duration
	stallTimeout    time.Duration
	cacheAll        bool
	endpointsCM     string
	// openshiftEndpoints and skipRollout: OpenShift's endpoint contract (app.Options).
	openshiftEndpoints, skipRollout bool
	consumers                       string
	snapshotDir                     string
	snapshotKeep                    int
	snapshotBudget                  string
}

// preTerminate is the preTerminate hook the flags name, none when the name is empty.
func (o *options) preTerminate() machinev1beta1.LifecycleHook {
	if o.preTermName == "" {
		return machinev1beta1.LifecycleHook{}
	}
	return machinev1beta1.LifecycleHook{Name: o.preTermName, Owner: o.preTermOwner}
}

func (o *options) bind(fs *flag.FlagSet) {
	d := app.DefaultOptions()
	fs.StringVar(&o.etcdEndpoints, "etcd-endpoints", "", "comma-separated etcd client URLs, always dialled when given (the member list never replaces them); discovered from the control-plane Machines' InternalIPs (port 2379) when empty; the Machines' addresses are also tried when every endpoint fails")
	fs.StringVar(&o.etcdCA, "etcd-ca-file", "", "CA bundle that signed the etcd serving certificates")
	fs.StringVar(&o.etcdCert, "etcd-cert-file", "", "client certificate for etcd")
	fs.StringVar(&o.etcdKey, "etcd-key-file", "", "client key for etcd")
	fs.StringVarP(&o.namespace, "machine-namespace", "n", d.Namespace, "namespace of the control-plane Machines and the ControlPlaneMachineSet")
	fs.StringVar(&o.hookName, "hook-name", d.Hook.Name, "name of the preDrain lifecycle hook quorumguard owns; "+hooks.EtcdOperator.Name+" takes over the etcd operator's hook")
	fs.StringVar(&o.hookOwner, "hook-owner", d.Hook.Owner, "owner of the preDrain lifecycle hook; "+hooks.EtcdOperator.Owner+" with the etcd operator's hook")
	fs.StringVar(&o.preTermName, "preterminate-hook-name", d.PreTerminateHook.Name, "name of the preTerminate lifecycle hook quorumguard owns and releases only with the preDrain one: it holds a Machine whose drain (and preDrain hooks) the Machine controller skips, for want of a Node or for the exclude-node-draining annotation; empty keeps none")
	fs.StringVar(&o.preTermOwner, "preterminate-hook-owner", d.PreTerminateHook.Owner, "owner of the preTerminate lifecycle hook")
	fs.IntVar(&o.replicas, "replicas", d.DefaultReplicas, "desired voting members when there is no ControlPlaneMachineSet")
	fs.BoolVar(&o.manageMachines, "manage-machines", d.ManageMachines, "create and delete control-plane Machines from the ControlPlaneMachineSet; false only protects quorum")
	fs.DurationVar(&o.pollInterval, "poll-interval", d.PollInterval, "how often etcd is polled while a change is in flight (when idle it is re-read every second)")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", d.MetricsAddr, "address of the Prometheus metrics endpoint; 0 disables it")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", d.MetricsSecure, "serve /metrics over HTTPS only to callers the API server authenticates and authorises for get on /metrics; false serves plain HTTP to anyone, for local demos")
	fs.StringVar(&o.metricsCertDir, "metrics-cert-dir", "", "directory holding tls.crt and tls.key for the metrics endpoint (a mounted Secret, re-read when it changes); a self-signed certificate when empty")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", d.ProbeAddr, "address of /healthz and /readyz; 0 disables them")
	fs.StringVar(&o.leaderElect, "leader-elect", d.LeaderElect, "leader election: for-life (a ConfigMap lock owned by this Pod, as the Operator SDK does), lease (a coordination.k8s.io Lease, as controller-runtime does) or none")
	fs.StringVar(&o.electionID, "leader-election-id", d.ElectionID, "name of the leader election lock")
	fs.StringVar(&o.electionNS, "leader-election-namespace", "", "namespace of the lock; the service-account namespace when empty")
	fs.DurationVar(&o.leaseDuration, "lease-duration", d.LeaseDuration, "lease: how long a lease is valid; 137s, as OpenShift operators use, survives a 60s apiserver outage without a leader change")
	fs.DurationVar(&o.renewDeadline, "renew-deadline", d.RenewDeadline, "lease: how long the leader keeps retrying renewal before it gives up leadership (OpenShift's 107s)")
	fs.DurationVar(&o.retryPeriod, "retry-period", d.RetryPeriod, "lease: how often candidates try to take or renew the lease (OpenShift's 26s keeps apiserver load low)")
	fs.StringVar(&o.clusterOperator, "cluster-operator", d.ClusterOperator, "name of the ClusterOperator quorumguard reports through (not etcd, which the etcd operator writes); empty disables it")
	fs.DurationVar(&o.hookHeldWarn, "hook-held-threshold", d.HookHeldThreshold, "a preDrain hook held longer than this makes the ClusterOperator Degraded")
	fs.DurationVar(&o.learnerStart, "learner-start-timeout", d.LearnerStartTimeout, "a learner whose etcd has not started, or has stood still (not answering or not advancing, and no snapshot on its way to it from the leader), for this long is removed, freeing etcd's one learner slot; 0 never removes one")
	fs.StringVar(&o.endpointsCM, "endpoints-configmap", d.EndpointsConfigMap, "ConfigMap, in quorumguard's namespace, where the voting members' client URLs are published with their sha256 digest for consumers such as an apiserver operator; empty publishes none")
	fs.StringVar(&o.consumers, "endpoint-consumers", "", "comma-separated consumers of the published endpoints; a member is removed only after each has acknowledged, by its digest, the published list, and that list leaves the member out (annotation endpoints.quorumguard.io/ack-<consumer>: sha256:<hex>); none: nothing waits")
	fs.BoolVar(&o.openshiftEndpoints, "openshift-etcd-endpoints", d.OpenShiftEndpoints, "on a cluster with a kube-apiserver operator (kubeapiservers.operator.openshift.io/cluster), maintain openshift-etcd/etcd-endpoints as the etcd operator does and remove a member only once every node's kube-apiserver revision leaves it out of its etcd servers; without that object nothing is done")
	fs.BoolVar(&o.skipRollout, "skip-apiserver-rollout-wait", false, "remove a member as soon as openshift-etcd/etcd-endpoints leaves it out, without waiting for the kube-apiserver revision rollout: the apiservers may dial a removed member until they roll out; warned about in the log, an Event and the ClusterOperator")
	fs.DurationVar(&o.stallTimeout, "healthz-stall-timeout", d.StallTimeout, "/healthz fails on the leader once its control loop has finished no pass for this long, so that a hung leader's container is restarted; a standby's /healthz never depends on the leader. At least 30s")
	fs.StringVar(&o.snapshotDir, "snapshot-dir", "", "directory where an etcd snapshot, its sha256 digest checked, is written before each voting member's removal; a removal waits while one cannot be taken; empty takes none")
	fs.IntVar(&o.snapshotKeep, "snapshot-keep", d.SnapshotKeep, "how many etcd snapshots --snapshot-dir keeps, the newest")
	fs.StringVar(&o.snapshotBudget, "snapshot-budget", "0", "most bytes the kept etcd snapshots may take together (a quantity: 10Gi, 500M or bytes); the oldest are deleted to stay within it, and a snapshot larger than the whole budget holds the removal; 0: no budget")
	fs.BoolVar(&o.cacheAll, "cache-all-machines", false, "cache every Machine in the cluster instead of only control-plane ones (for the scale benchmark's comparison only)")
}

// applyEnv sets every flag not given on the command line from QUORUMGUARD_<NAME>.
func applyEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []string
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || f.Name == "help" || f.Name == "version" {
			return
		}
		env := "QUORUMGUARD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q: %v", env, v, err))
			}
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("bad environment: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (o *options) endpoints() []string { return splitList(o.etcdEndpoints) }

// validate checks the flags with the library's own check (app.Options.Validate).
func (o *options) validate() error {
	_, err := o.appOptions()
	return err
}

// appOptions are the flags as the library's options, refused as app.New would refuse them.
func (o *options) appOptions() (app.Options, error) {
	consumers, err := endpoints.ParseConsumers(o.consumers)
	if err != nil {
		return app.Options{}, fmt.Errorf("--endpoint-consumers: %w", err)
	}
	budget, err := resource.ParseQuantity(o.snapshotBudget)
	if err != nil {
		return app.Options{}, fmt.Errorf("--snapshot-budget %q: %w", o.snapshotBudget, err)
	}
	ao := app.Options{
		Namespace:            o.namespace,
		Hook:                 machinev1beta1.LifecycleHook{Name: o.hookName, Owner: o.hookOwner},
		PreTerminateHook:     o.preTerminate(),
		NoPreTerminateHook:   o.preTermName == "",
		DefaultReplicas:      o.replicas,
		ManageMachines:       o.manageMachines,
		PollInterval:         o.pollInterval,
		EtcdEndpoints:        o.endpoints(),
		EtcdCA:               o.etcdCA,
		EtcdCert:             o.etcdCert,
		EtcdKey:              o.etcdKey,
		MetricsAddr:          o.metricsAddr,
		MetricsSecure:        o.metricsSecure,
		MetricsCertDir:       o.metricsCertDir,
		ProbeAddr:            o.probeAddr,
		LeaderElect:          o.leaderElect,
		ElectionID:           o.electionID,
		ElectionNS:           o.electionNS,
		LeaseDuration:        o.leaseDuration,
		RenewDeadline:        o.renewDeadline,
		RetryPeriod:          o.retryPeriod,
		ClusterOperator:      o.clusterOperator,
		HookHeldThreshold:    o.hookHeldWarn,
		PodName:              os.Getenv("POD_NAME"),
		UnfilteredCache:      o.cacheAll,
		EndpointsConfigMap:   o.endpointsCM,
		EndpointConsumers:    consumers,
		OpenShiftEndpoints:   o.openshiftEndpoints,
		SkipAPIServerRollout: o.skipRollout,
		// The flag was parsed and validated but never passed on: learners never timed out.
		LearnerStartTimeout: o.learnerStart,
		StallTimeout:        o.stallTimeout,
		SnapshotDir:         o.snapshotDir,
		SnapshotKeep:        o.snapshotKeep,
		SnapshotBudget:      budget.Value(),
	}
	return ao, ao.Validate()
}
