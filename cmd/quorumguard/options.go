package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/endpoints"
	"github.com/quorumguard/quorumguard/pkg/hooks"
)

// options are the controller's flags. Every flag can also be set through the environment
// variable QUORUMGUARD_<NAME>, with the flag's name upper-cased and dashes as underscores;
// a flag given on the command line wins.
type options struct {
	kubeconfig      string
	etcdEndpoints   string
	etcdCA          string
	etcdCert        string
	etcdKey         string
	namespace       string
	hookName        string
	hookOwner       string
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
	consumers       string
}

func (o *options) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "path to a kubeconfig; in-cluster configuration when empty")
	fs.StringVar(&o.etcdEndpoints, "etcd-endpoints", "", "comma-separated etcd client URLs, always dialled when given (the member list never replaces them); discovered from the control-plane Machines' InternalIPs (port 2379) when empty; the Machines' addresses are also tried when every endpoint fails")
	fs.StringVar(&o.etcdCA, "etcd-ca-file", "", "CA bundle that signed the etcd serving certificates")
	fs.StringVar(&o.etcdCert, "etcd-cert-file", "", "client certificate for etcd")
	fs.StringVar(&o.etcdKey, "etcd-key-file", "", "client key for etcd")
	fs.StringVar(&o.namespace, "machine-namespace", "openshift-machine-api", "namespace of the control-plane Machines and the ControlPlaneMachineSet")
	fs.StringVar(&o.hookName, "hook-name", hooks.Default.Name, "name of the preDrain lifecycle hook quorumguard owns; "+hooks.EtcdOperator.Name+" takes over the etcd operator's hook")
	fs.StringVar(&o.hookOwner, "hook-owner", hooks.Default.Owner, "owner of the preDrain lifecycle hook; "+hooks.EtcdOperator.Owner+" with the etcd operator's hook")
	fs.IntVar(&o.replicas, "replicas", 3, "desired voting members when there is no ControlPlaneMachineSet")
	fs.BoolVar(&o.manageMachines, "manage-machines", true, "create and delete control-plane Machines from the ControlPlaneMachineSet; false only protects quorum")
	fs.DurationVar(&o.pollInterval, "poll-interval", 250*time.Millisecond, "how often etcd is polled while a change is in flight (when idle it is only re-read every 10s)")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "address of the Prometheus metrics endpoint; 0 disables it")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "serve /metrics over HTTPS only to callers the API server authenticates and authorises for get on /metrics; false serves plain HTTP to anyone, for local demos")
	fs.StringVar(&o.metricsCertDir, "metrics-cert-dir", "", "directory holding tls.crt and tls.key for the metrics endpoint (a mounted Secret, re-read when it changes); a self-signed certificate when empty")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; 0 disables them")
	fs.StringVar(&o.leaderElect, "leader-elect", "for-life", "leader election: for-life (a ConfigMap lock owned by this Pod, as the Operator SDK does), lease (a coordination.k8s.io Lease, as controller-runtime does) or none")
	fs.StringVar(&o.electionID, "leader-election-id", "quorumguard-lock", "name of the leader election lock")
	fs.StringVar(&o.electionNS, "leader-election-namespace", "", "namespace of the lock; the service-account namespace when empty")
	fs.DurationVar(&o.leaseDuration, "lease-duration", 137*time.Second, "lease: how long a lease is valid; 137s, as OpenShift operators use, survives a 60s apiserver outage without a leader change")
	fs.DurationVar(&o.renewDeadline, "renew-deadline", 107*time.Second, "lease: how long the leader keeps retrying renewal before it gives up leadership (OpenShift's 107s)")
	fs.DurationVar(&o.retryPeriod, "retry-period", 26*time.Second, "lease: how often candidates try to take or renew the lease (OpenShift's 26s keeps apiserver load low)")
	fs.StringVar(&o.clusterOperator, "cluster-operator", "quorumguard", "name of the ClusterOperator quorumguard reports through (not etcd, which the etcd operator writes); empty disables it")
	fs.DurationVar(&o.hookHeldWarn, "hook-held-threshold", 30*time.Minute, "a preDrain hook held longer than this makes the ClusterOperator Degraded")
	fs.DurationVar(&o.learnerStart, "learner-start-timeout", 5*time.Minute, "a learner whose etcd has not started, or has stopped answering, for this long is removed, freeing etcd's one learner slot; 0 never removes one")
	fs.StringVar(&o.endpointsCM, "endpoints-configmap", "quorumguard-etcd-endpoints", "ConfigMap, in quorumguard's namespace, where the voting members' client URLs are published with a generation for consumers such as an apiserver operator; empty publishes none")
	fs.StringVar(&o.consumers, "endpoint-consumers", "", "comma-separated consumers of the published endpoints; a member is removed only after each has acknowledged a generation without it (annotation endpoints.quorumguard.io/ack-<consumer>); none: nothing waits")
	fs.DurationVar(&o.stallTimeout, "healthz-stall-timeout", app.DefaultStallTimeout, "/healthz fails on the leader once its control loop has finished no pass for this long, so that a hung leader's container is restarted; a standby's /healthz never depends on the leader. At least 30s")
	fs.BoolVar(&o.cacheAll, "cache-all-machines", false, "cache every Machine in the cluster instead of only control-plane ones (for the scale benchmark's comparison only)")
}

// applyEnv sets every flag not given on the command line from QUORUMGUARD_<NAME>.
func applyEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []string
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
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

// consumerList is --endpoint-consumers, already validated.
func (o *options) consumerList() []string {
	c, _ := endpoints.ParseConsumers(o.consumers)
	return c
}

func (o *options) validate() error {
	switch o.leaderElect {
	case "for-life", "lease", "none":
	default:
		return fmt.Errorf("--leader-elect must be for-life, lease or none, not %q", o.leaderElect)
	}
	if o.etcdCA == "" || o.etcdCert == "" || o.etcdKey == "" {
		return fmt.Errorf("--etcd-ca-file, --etcd-cert-file and --etcd-key-file are all required (etcd is reached with mutual TLS)")
	}
	if o.replicas != 3 && o.replicas != 5 {
		return fmt.Errorf("--replicas must be 3 or 5, not %d", o.replicas)
	}
	if o.learnerStart < 0 {
		return fmt.Errorf("--learner-start-timeout must not be negative, not %s", o.learnerStart)
	}
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{{"--poll-interval", o.pollInterval}, {"--hook-held-threshold", o.hookHeldWarn}, {"--lease-duration", o.leaseDuration},
		{"--renew-deadline", o.renewDeadline}, {"--retry-period", o.retryPeriod}} {
		if d.value <= 0 {
			return fmt.Errorf("%s must be positive, not %s", d.flag, d.value)
		}
	}
	// A pass may take tens of seconds when etcd does not answer (call timeouts, then the
	// Machines' addresses tried): a shorter bound would restart a leader that is only slow.
	if o.stallTimeout < 30*time.Second {
		return fmt.Errorf("--healthz-stall-timeout must be at least 30s, not %s", o.stallTimeout)
	}
	// client-go's lease election needs lease-duration > renew-deadline > retry-period x 1.2.
	if o.leaseDuration <= o.renewDeadline || float64(o.renewDeadline) <= 1.2*float64(o.retryPeriod) {
		return fmt.Errorf("lease timings must satisfy --lease-duration (%s) > --renew-deadline (%s) > 1.2 x --retry-period (%s)", o.leaseDuration, o.renewDeadline, o.retryPeriod)
	}
	consumers, err := endpoints.ParseConsumers(o.consumers)
	if err != nil {
		return fmt.Errorf("--endpoint-consumers: %w", err)
	}
	if len(consumers) > 0 && o.endpointsCM == "" {
		return fmt.Errorf("--endpoint-consumers needs --endpoints-configmap: consumers acknowledge what is published there")
	}
	if o.hookName == "" || o.hookOwner == "" {
		return fmt.Errorf("--hook-name and --hook-owner must not be empty")
	}
	return nil
}
