package app_test

import (
	"strings"
	"testing"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"

	"github.com/quorumguard/quorumguard/pkg/app"
)

// TestOptionsValidate: the one check of the options, as the binary runs it on its flags
// (Validate alone: a zero there was given) and as the library runs it in New (Complete
// first: a zero there was left out and takes its default). A negative interval is refused
// either way; the library used to take one, and its reconcilers then never looked again.
func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*app.Options)
		// binary and library are fragments of the error each way; empty: accepted.
		binary, library string
	}{
		{name: "the defaults", change: func(*app.Options) {}},
		{name: "a negative poll interval", change: func(o *app.Options) { o.PollInterval = -time.Second },
			binary: "--poll-interval must be positive", library: "--poll-interval must be positive"},
		{name: "a zero poll interval", change: func(o *app.Options) { o.PollInterval = 0 },
			binary: "--poll-interval must be positive"},
		{name: "a negative hook-held threshold", change: func(o *app.Options) { o.HookHeldThreshold = -time.Minute },
			binary: "--hook-held-threshold must be positive", library: "--hook-held-threshold must be positive"},
		{name: "a negative retry period", change: func(o *app.Options) { o.RetryPeriod = -2 * time.Second },
			binary: "--retry-period must be positive", library: "--retry-period must be positive"},
		{name: "a renew deadline past the lease duration", change: func(o *app.Options) {
			o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 15*time.Second, 20*time.Second, 2*time.Second
		}, binary: "lease timings", library: "lease timings"},
		{name: "a retry period too close to the renew deadline", change: func(o *app.Options) {
			o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 15*time.Second, 10*time.Second, 9*time.Second
		}, binary: "lease timings", library: "lease timings"},
		{name: "controller-runtime's lease timings", change: func(o *app.Options) {
			o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
		}},
		{name: "a negative learner start timeout", change: func(o *app.Options) { o.LearnerStartTimeout = -5 * time.Minute },
			binary: "--learner-start-timeout must not be negative", library: "--learner-start-timeout must not be negative"},
		{name: "learners never removed", change: func(o *app.Options) { o.LearnerStartTimeout = 0 }},
		{name: "a stall timeout under 30s", change: func(o *app.Options) { o.StallTimeout = 5 * time.Second },
			binary: "--healthz-stall-timeout must be at least 30s", library: "--healthz-stall-timeout must be at least 30s"},
		{name: "a zero stall timeout", change: func(o *app.Options) { o.StallTimeout = 0 },
			binary: "--healthz-stall-timeout must be at least 30s"},
		{name: "a negative coexistence interval", change: func(o *app.Options) { o.CoexistInterval = -time.Second },
			binary: "coexistence check interval must not be negative", library: "coexistence check interval must not be negative"},
		{name: "an unknown election", change: func(o *app.Options) { o.LeaderElect = "sometimes" },
			binary: "--leader-elect must be for-life, lease or none", library: "--leader-elect must be for-life, lease or none"},
		{name: "four replicas", change: func(o *app.Options) { o.DefaultReplicas = 4 },
			binary: "--replicas must be 3 or 5", library: "--replicas must be 3 or 5"},
		{name: "no etcd CA", change: func(o *app.Options) { o.EtcdCA = "" },
			binary: "--etcd-ca-file, --etcd-cert-file and --etcd-key-file are all required", library: "--etcd-ca-file"},
		{name: "a hook without an owner", change: func(o *app.Options) { o.Hook.Owner = "" },
			binary: "--hook-name and --hook-owner must not be empty", library: "--hook-name and --hook-owner must not be empty"},
		{name: "a preTerminate hook without an owner", change: func(o *app.Options) { o.PreTerminateHook.Owner = "" },
			binary: "--preterminate-hook-owner must not be empty", library: "--preterminate-hook-owner must not be empty"},
		{name: "no preTerminate hook", change: func(o *app.Options) {
			o.PreTerminateHook, o.NoPreTerminateHook = machinev1beta1.LifecycleHook{}, true
		}},
		{name: "a consumer name that is no annotation key", change: func(o *app.Options) { o.EndpointConsumers = []string{"Kube_APIServer"} },
			binary: "--endpoint-consumers", library: "--endpoint-consumers"},
		{name: "consumers with nothing published", change: func(o *app.Options) {
			o.EndpointConsumers, o.EndpointsConfigMap = []string{"kube-apiserver"}, ""
		}, binary: "--endpoint-consumers needs --endpoints-configmap", library: "--endpoint-consumers needs --endpoints-configmap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := app.DefaultOptions()
			o.EtcdCA, o.EtcdCert, o.EtcdKey = "ca.crt", "tls.crt", "tls.key"
			tc.change(&o)
			wantRefused(t, "as the binary's flags", o.Validate(), tc.binary)
			o.Complete()
			wantRefused(t, "as the library's options", o.Validate(), tc.library)
		})
	}
}

// TestOptionsComplete: options that give only what has no default (the etcd client files)
// are complete and valid once Complete has run.
func TestOptionsComplete(t *testing.T) {
	o := app.Options{EtcdCA: "ca.crt", EtcdCert: "tls.crt", EtcdKey: "tls.key"}
	if err := o.Validate(); err == nil {
		t.Fatal("empty options were accepted before Complete")
	}
	o.Complete()
	if err := o.Validate(); err != nil {
		t.Fatalf("after Complete: %v", err)
	}
	d := app.DefaultOptions()
	if o.PollInterval != d.PollInterval || o.LeaderElect != d.LeaderElect || o.StallTimeout != d.StallTimeout || o.Namespace != d.Namespace {
		t.Errorf("completed %+v; want the defaults %+v", o, d)
	}
	if o.ClusterOperator != "" || o.EndpointsConfigMap != "" || o.LearnerStartTimeout != 0 {
		t.Errorf("Complete filled a field whose zero means none: %+v", o)
	}
	if o.PreTerminate() != d.PreTerminateHook {
		t.Errorf("completed preTerminate hook %+v; want the default %+v", o.PreTerminate(), d.PreTerminateHook)
	}
	off := app.Options{NoPreTerminateHook: true}
	off.Complete()
	if off.PreTerminate() != (machinev1beta1.LifecycleHook{}) {
		t.Errorf("with NoPreTerminateHook, Complete kept preTerminate hook %+v; want none", off.PreTerminate())
	}
}

// TestNewRefusesInvalidOptions: the library refuses what the binary refuses, before it
// builds anything.
func TestNewRefusesInvalidOptions(t *testing.T) {
	o := options(t)
	o.ElectionNS = newNamespace(t)
	o.PollInterval = -250 * time.Millisecond
	if _, err := app.New(cp.Config, o); err == nil || !strings.Contains(err.Error(), "--poll-interval must be positive") {
		t.Fatalf("New with a negative poll interval = %v; want it refused, naming --poll-interval", err)
	}
}

func wantRefused(t *testing.T, as string, err error, fragment string) {
	t.Helper()
	switch {
	case fragment == "" && err != nil:
		t.Errorf("%s: refused: %v", as, err)
	case fragment != "" && (err == nil || !strings.Contains(err.Error(), fragment)):
		t.Errorf("%s: Validate = %v; want an error with %q", as, err, fragment)
	}
}
