package app

import (
	"errors"
	"fmt"
	"os"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"

	"github.com/quorumguard/quorumguard/pkg/endpoints"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/snapshot"
)

// Options configure one controller process. Each field is the command-line flag named in
// Validate's messages; the binary starts its flags from DefaultOptions.
type Options struct {
	Namespace string
	Hook      machinev1beta1.LifecycleHook
	// PreTerminateHook is the preTerminate hook kept beside Hook and released with it: it
	// holds a Machine whose drain, and with it Hook, OpenShift's Machine controller skips.
	// NoPreTerminateHook keeps none (an empty --preterminate-hook-name).
	PreTerminateHook   machinev1beta1.LifecycleHook
	NoPreTerminateHook bool
	DefaultReplicas    int
	ManageMachines     bool
	PollInterval       time.Duration

	EtcdEndpoints                []string
	EtcdCA, EtcdCert, EtcdKey    string
	MetricsAddr, ProbeAddr       string
	LeaderElect                  string
	ElectionID, ElectionNS       string
	LeaseDuration, RenewDeadline time.Duration
	RetryPeriod                  time.Duration
	ClusterOperator              string
	HookHeldThreshold            time.Duration
	// LearnerStartTimeout is how long a learner may stay unstarted or unhealthy before it is
	// removed; 0 never removes one.
	LearnerStartTimeout time.Duration
	// PodName is this replica's Pod (POD_NAME), owner of the leader-for-life lock.
	PodName string
	// NoReleaseOnCancel keeps the lease on a stop, as a crash would; tests use it.
	NoReleaseOnCancel bool
	// EndpointsConfigMap names the ConfigMap the voting members' client URLs are published
	// in (pkg/endpoints), in ElectionNS (Namespace when that is empty); "" publishes none.
	EndpointsConfigMap string
	// EndpointConsumers must acknowledge a list without a member before it is removed.
	EndpointConsumers []string
	// OpenShiftEndpoints keeps OpenShift's contract on a cluster with a kube-apiserver
	// operator (kubeapiservers.operator.openshift.io/cluster): quorumguard maintains
	// openshift-etcd/etcd-endpoints as the etcd operator would, and removes a member only once
	// every node's kube-apiserver revision leaves it out (pkg/endpoints, OpenShiftPublisher).
	// Without that object it does nothing.
	OpenShiftEndpoints bool
	// SkipAPIServerRollout removes a member once etcd-endpoints leaves it out, without waiting
	// for the kube-apiserver rollout; it is warned about in the log, an Event and the
	// ClusterOperator.
	SkipAPIServerRollout bool
	// StallTimeout makes /healthz fail on the leader once its control loop has finished no
	// pass for this long (Liveness).
	StallTimeout time.Duration
	// UnfilteredCache caches every Machine in the cluster instead of only control-plane ones;
	// it exists for the scale benchmark's comparison and is never the default.
	UnfilteredCache bool
	// MetricsSecure serves /metrics over HTTPS to authenticated, authorised callers only;
	// MetricsCertDir holds its tls.crt and tls.key (see MetricsServerOptions).
	MetricsSecure  bool
	MetricsCertDir string
	// SnapshotDir, when set, is where an etcd snapshot is written before each voting
	// member's removal (pkg/snapshot); a removal waits while one cannot be taken. "" takes
	// none. SnapshotKeep is how many are kept, newest first; SnapshotBudget, when above 0,
	// the most bytes they may take together.
	SnapshotDir    string
	SnapshotKeep   int
	SnapshotBudget int64
	// CoexistInterval is how often the etcd and ControlPlaneMachineSet operators are looked
	// for (pkg/coexist); coexist.DefaultInterval when zero.
	CoexistInterval time.Duration
}

// DefaultOptions are the binary's flag defaults. The etcd client files have none.
func DefaultOptions() Options {
	return Options{
		Namespace:           "openshift-machine-api",
		Hook:                hooks.Default,
		PreTerminateHook:    hooks.DefaultPreTerminate,
		DefaultReplicas:     3,
		ManageMachines:      true,
		PollInterval:        250 * time.Millisecond,
		MetricsAddr:         ":8443",
		ProbeAddr:           ":8081",
		MetricsSecure:       true,
		LeaderElect:         "for-life",
		ElectionID:          "quorumguard-lock",
		LeaseDuration:       137 * time.Second,
		RenewDeadline:       107 * time.Second,
		RetryPeriod:         26 * time.Second,
		ClusterOperator:     "quorumguard",
		HookHeldThreshold:   30 * time.Minute,
		LearnerStartTimeout: 5 * time.Minute,
		EndpointsConfigMap:  "quorumguard-etcd-endpoints",
		OpenShiftEndpoints:  true,
		StallTimeout:        DefaultStallTimeout,
		SnapshotKeep:        snapshot.DefaultKeep,
	}
}

// Complete gives every field left at its zero value, where zero has no meaning of its own,
// its default from DefaultOptions. Fields whose zero means something are left alone: no
// ClusterOperator, no endpoints ConfigMap, learners never removed, Machines not managed,
// metrics and probes at controller-runtime's defaults. The binary does not call it: its
// flags start from DefaultOptions, so a zero there was given, and Validate refuses it.
func (o *Options) Complete() {
	d := DefaultOptions()
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if o.Namespace == "" {
		o.Namespace = d.Namespace
	}
	if o.Hook == (machinev1beta1.LifecycleHook{}) {
		o.Hook = d.Hook
	}
	if o.PreTerminateHook == (machinev1beta1.LifecycleHook{}) && !o.NoPreTerminateHook {
		o.PreTerminateHook = d.PreTerminateHook
	}
	if o.DefaultReplicas == 0 {
		o.DefaultReplicas = d.DefaultReplicas
	}
	if o.LeaderElect == "" {
		o.LeaderElect = d.LeaderElect
	}
	if o.ElectionID == "" {
		o.ElectionID = d.ElectionID
	}
	if o.SnapshotKeep == 0 {
		o.SnapshotKeep = d.SnapshotKeep
	}
	set(&o.PollInterval, d.PollInterval)
	set(&o.LeaseDuration, d.LeaseDuration)
	set(&o.RenewDeadline, d.RenewDeadline)
	set(&o.RetryPeriod, d.RetryPeriod)
	set(&o.HookHeldThreshold, d.HookHeldThreshold)
	set(&o.StallTimeout, d.StallTimeout)
}

// PreTerminate is the preTerminate hook kept, with no Name when none is.
func (o Options) PreTerminate() machinev1beta1.LifecycleHook {
	if o.NoPreTerminateHook {
		return machinev1beta1.LifecycleHook{}
	}
	return o.PreTerminateHook
}

// minStallTimeout is the shortest --healthz-stall-timeout: a pass can take tens of seconds
// when etcd does not answer (call timeouts, then the Machines' addresses tried), and a
// shorter bound would restart a leader that is only slow. Tests lower it.
var minStallTimeout = 30 * time.Second

// Validate refuses options the controller cannot run with, naming the flag. It is the one
// check of them: the binary calls it on its flags, and New on what it is given (after
// Complete).
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch o.LeaderElect {
	case "for-life", "lease", "none":
	default:
		bad("--leader-elect must be for-life, lease or none, not %q", o.LeaderElect)
	}
	if o.EtcdCA == "" || o.EtcdCert == "" || o.EtcdKey == "" {
		bad("--etcd-ca-file, --etcd-cert-file and --etcd-key-file are all required (etcd is reached with mutual TLS)")
	}
	if o.Namespace == "" {
		bad("--machine-namespace must not be empty")
	}
	if o.Hook.Name == "" || o.Hook.Owner == "" {
		bad("--hook-name and --hook-owner must not be empty")
	}
	if !o.NoPreTerminateHook && (o.PreTerminateHook.Name == "" || o.PreTerminateHook.Owner == "") {
		bad("--preterminate-hook-owner must not be empty while --preterminate-hook-name is set (an empty --preterminate-hook-name keeps no preTerminate hook)")
	}
	if o.DefaultReplicas != 3 && o.DefaultReplicas != 5 {
		bad("--replicas must be 3 or 5, not %d", o.DefaultReplicas)
	}
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{{"--poll-interval", o.PollInterval}, {"--hook-held-threshold", o.HookHeldThreshold}, {"--lease-duration", o.LeaseDuration},
		{"--renew-deadline", o.RenewDeadline}, {"--retry-period", o.RetryPeriod}} {
		if d.value <= 0 {
			bad("%s must be positive, not %s", d.flag, d.value)
		}
	}
	// client-go's lease election needs lease-duration > renew-deadline > retry-period x 1.2.
	if o.RetryPeriod > 0 && (o.LeaseDuration <= o.RenewDeadline || float64(o.RenewDeadline) <= 1.2*float64(o.RetryPeriod)) {
		bad("lease timings must satisfy --lease-duration (%s) > --renew-deadline (%s) > 1.2 x --retry-period (%s)", o.LeaseDuration, o.RenewDeadline, o.RetryPeriod)
	}
	if o.LearnerStartTimeout < 0 {
		bad("--learner-start-timeout must not be negative, not %s", o.LearnerStartTimeout)
	}
	if o.StallTimeout < minStallTimeout {
		bad("--healthz-stall-timeout must be at least %s, not %s", minStallTimeout, o.StallTimeout)
	}
	if o.CoexistInterval < 0 {
		bad("the coexistence check interval must not be negative, not %s", o.CoexistInterval)
	}
	for _, c := range o.EndpointConsumers {
		if got, err := endpoints.ParseConsumers(c); err != nil || len(got) != 1 || got[0] != c {
			bad("--endpoint-consumers: %q is not one valid consumer name (lower-case letters, digits, '-' and '.')", c)
		}
	}
	if o.SkipAPIServerRollout && !o.OpenShiftEndpoints {
		bad("--skip-apiserver-rollout-wait needs --openshift-etcd-endpoints: the wait it turns off is that contract's")
	}
	if len(o.EndpointConsumers) > 0 && o.EndpointsConfigMap == "" {
		bad("--endpoint-consumers needs --endpoints-configmap: consumers acknowledge what is published there")
	}
	if o.SnapshotKeep < 1 {
		bad("--snapshot-keep must be at least 1, not %d", o.SnapshotKeep)
	}
	if o.SnapshotBudget < 0 {
		bad("--snapshot-budget must not be negative, not %d", o.SnapshotBudget)
	}
	if o.SnapshotDir != "" {
		if err := writableDir(o.SnapshotDir); err != nil {
			bad("--snapshot-dir %s: %v", o.SnapshotDir, err)
		}
	}
	return errors.Join(errs...)
}

// writableDir makes dir when it does not exist, and checks that a file can be created in it.
func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot be created: %w", err)
	}
	f, err := os.CreateTemp(dir, ".quorumguard-write-check-*")
	if err != nil {
		return fmt.Errorf("is not writable: %w", err)
	}
	_ = f.Close()
	return os.Remove(f.Name())
}
