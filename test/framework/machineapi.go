package framework

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"

	openshiftfeatures "github.com/openshift/api/features"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	maomachine "github.com/openshift/machine-api-operator/pkg/controller/machine"
	"github.com/openshift/machine-api-operator/pkg/controller/machinehealthcheck"
	"github.com/openshift/machine-api-operator/pkg/controller/nodelink"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/featuregate"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// MachineAPI is OpenShift's machine-api as it runs on a cluster, in one manager: machine-api-
// operator's Machine controller and its drain controller (driven by the Cloud actuator),
// nodelink, and the MachineHealthCheck controller. Nothing of their logic is imitated here.
type MachineAPI struct {
	cancel context.CancelFunc
	done   chan error
}

// MachineAPIOptions shape StartMachineAPI.
type MachineAPIOptions struct {
	Config *rest.Config
	Cloud  *Cloud
	// Machines limits the controllers to Machines with these labels, as each cluster has its
	// own machine-api: tests that share an apiserver never touch each other's Machines.
	Machines map[string]string
}

var klogOnce sync.Once

// quietKlog sends the machine-api's klog lines to $QUORUMGUARD_MACHINE_API_LOG, or nowhere:
// they are the upstream controllers' own chatter, one line per reconcile.
func quietKlog() {
	klogOnce.Do(func() {
		var out io.Writer = io.Discard
		if path := os.Getenv("QUORUMGUARD_MACHINE_API_LOG"); path != "" {
			if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
				out = f
			}
		}
		fs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(fs)
		for name, value := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL", "legacy_stderr_threshold_behavior": "false"} {
			_ = fs.Set(name, value)
		}
		klog.SetOutput(out)
	})
}

// StartMachineAPI starts the machine-api controllers and returns once their caches sync.
func StartMachineAPI(ctx context.Context, opts MachineAPIOptions) (*MachineAPI, error) {
	quietKlog()
	byObject := map[client.Object]cache.ByObject{}
	if len(opts.Machines) > 0 {
		byObject[&machinev1beta1.Machine{}] = cache.ByObject{Label: labels.SelectorFromSet(opts.Machines)}
	}
	mgr, err := ctrl.NewManager(opts.Config, ctrl.Options{
		Scheme:                 Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
		Cache:                  cache.Options{ByObject: byObject},
		// Every test cluster starts the same controllers again in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		Logger:     klog.Background(),
	})
	if err != nil {
		return nil, fmt.Errorf("machine-api manager: %w", err)
	}
	// The gate the Machine controller reads; MachineAPIMigration off, as on a cluster that
	// has not moved its Machines to Cluster API.
	gate := featuregate.NewFeatureGate()
	if err := gate.Add(map[featuregate.Feature]featuregate.FeatureSpec{
		featuregate.Feature(openshiftfeatures.FeatureGateMachineAPIMigration): {Default: false, PreRelease: featuregate.Alpha},
	}); err != nil {
		return nil, err
	}
	if err := maomachine.AddWithActuator(mgr, opts.Cloud, gate); err != nil {
		return nil, fmt.Errorf("machine controller: %w", err)
	}
	if err := nodelink.Add(mgr, ctrl.Options{}); err != nil {
		return nil, fmt.Errorf("nodelink controller: %w", err)
	}
	if err := machinehealthcheck.Add(mgr, ctrl.Options{}); err != nil {
		return nil, fmt.Errorf("machinehealthcheck controller: %w", err)
	}
	mctx, cancel := context.WithCancel(context.Background())
	m := &MachineAPI{cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- mgr.Start(mctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		cancel()
		<-m.done
		return nil, fmt.Errorf("machine-api caches did not sync")
	}
	return m, nil
}

// Stop stops the controllers and waits for them.
func (m *MachineAPI) Stop() {
	m.cancel()
	<-m.done
}
