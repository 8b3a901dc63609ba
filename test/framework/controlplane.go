// Package framework builds the real local cluster that quorumguard is tested and shown on: a
// real kube-apiserver (envtest over binaries built by `make tools`) with the OpenShift machine
// CRDs, a simulated machine-api controller that honours lifecycle hooks as the real one does,
// an etcd agent per simulated control-plane machine running a real TLS etcd member, and a
// writer that proves no acknowledged write is lost. It makes no quorum decisions itself.
package framework

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// MachineNamespace is where control-plane Machines live.
const MachineNamespace = "openshift-machine-api"

// Scheme knows the core types and the OpenShift machine and config types.
func Scheme() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	for _, add := range []func(*k8sruntime.Scheme) error{
		clientgoscheme.AddToScheme, machinev1beta1.Install, machinev1.Install, configv1.Install,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// RepoRoot is the quorumguard checkout this file is in.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BinDir is where `make tools` puts the control-plane binaries: $QUORUMGUARD_BIN_DIR or bin/.
func BinDir() string {
	if d := os.Getenv("QUORUMGUARD_BIN_DIR"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), "bin")
}

// RequireBinaries says, naming the make target, which control-plane binaries are missing.
func RequireBinaries(names ...string) error {
	var missing []string
	for _, n := range names {
		if st, err := os.Stat(filepath.Join(BinDir(), n)); err != nil || st.IsDir() {
			missing = append(missing, filepath.Join(BinDir(), n))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: run `make tools` to build them from the Go module proxy", strings.Join(missing, ", "))
	}
	return nil
}

// CRDPaths are the Default-feature-set CRD manifests for Machines, MachineSets,
// MachineHealthChecks, ControlPlaneMachineSets and ClusterOperators, read from the
// github.com/openshift/api module in the module cache.
func CRDPaths() ([]string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/openshift/api")
	cmd.Dir = RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("locate github.com/openshift/api in the module cache (go mod download): %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return nil, fmt.Errorf("github.com/openshift/api is not in the module cache: run `go mod download`")
	}
	paths := []string{
		"machine/v1beta1/zz_generated.crd-manifests/0000_10_machine-api_01_machines-Default.crd.yaml",
		"machine/v1beta1/zz_generated.crd-manifests/0000_10_machine-api_01_machinesets-Default.crd.yaml",
		"machine/v1beta1/zz_generated.crd-manifests/0000_10_machine-api_01_machinehealthchecks.crd.yaml",
		"machine/v1/zz_generated.crd-manifests/0000_10_control-plane-machine-set_01_controlplanemachinesets-Default.crd.yaml",
		"config/v1/zz_generated.crd-manifests/0000_00_cluster-version-operator_01_clusteroperators.crd.yaml",
		// The feature set whose enum of status.controlPlaneTopology also has DualReplica.
		"config/v1/zz_generated.crd-manifests/0000_10_config-operator_01_infrastructures-TechPreviewNoUpgrade.crd.yaml",
		"operator/v1/zz_generated.crd-manifests/0000_20_kube-apiserver_01_kubeapiservers-Default.crd.yaml",
	}
	for i, p := range paths {
		paths[i] = filepath.Join(dir, p)
		if _, err := os.Stat(paths[i]); err != nil {
			return nil, fmt.Errorf("CRD manifest missing from the openshift/api module: %w", err)
		}
	}
	return paths, nil
}

// ControlPlaneOptions shape StartControlPlane.
type ControlPlaneOptions struct {
	// ControllerManager also runs kube-controller-manager with its garbage collector.
	ControllerManager bool
	// NodeLifecycle adds the controllers a Machine's lifecycle meets on a cluster (implies
	// ControllerManager): the disruption controller (PodDisruptionBudget status, so evictions
	// behave), pod GC, node lifecycle (a Node whose kubelet stops heartbeating goes
	// Ready=Unknown after NodeMonitorGracePeriod) and taint eviction. Every Node then needs a
	// kubelet (the framework's Kubelet) or it goes Unknown.
	NodeLifecycle bool
	// Dir holds the kubeconfig and logs; a temp dir when empty.
	Dir string
	// Etcd, when set, is where kube-apiserver stores its data instead of a private etcd of
	// its own (see StartProtected).
	Etcd *EtcdStore
}

// EtcdStore is an etcd cluster kube-apiserver stores its data in, reached with mutual TLS.
type EtcdStore struct {
	Servers       []string
	CA, Cert, Key string
}

// ControlPlane is a running kube-apiserver with the machine CRDs installed.
type ControlPlane struct {
	Env            *envtest.Environment
	Config         *rest.Config
	Client         client.Client
	KubeconfigFile string
	Dir            string

	mu        sync.Mutex
	gc        *exec.Cmd
	restartMu sync.Mutex
}

// StartControlPlane starts the real apiserver on bin/, installs the CRDs and the machine
// namespace, and writes an admin kubeconfig.
func StartControlPlane(opts ControlPlaneOptions) (*ControlPlane, error) {
	bins := []string{"kube-apiserver", "etcd"}
	if opts.NodeLifecycle {
		opts.ControllerManager = true
	}
	if opts.ControllerManager {
		bins = append(bins, "kube-controller-manager")
	}
	if err := RequireBinaries(bins...); err != nil {
		return nil, err
	}
	crds, err := CRDPaths()
	if err != nil {
		return nil, err
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "quorumguard-cp-"); err != nil {
			return nil, err
		}
	}
	// The apiserver keeps its certificates in a directory of ours, so that RestartAPIServer
	// brings it back on the same port with the same serving and client CAs.
	certDir := filepath.Join(dir, "kube-apiserver")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	paths, loaded, err := withoutCostlyRules(crds)
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: BinDir(),
		CRDInstallOptions:     envtest.CRDInstallOptions{Paths: paths, CRDs: loaded, ErrorIfPathMissing: true, Scheme: Scheme()},
		Scheme:                Scheme(),
		// kube-apiserver's graceful stop waits for open watches for up to a minute; after
		// 5 s envtest kills it, which is a restart too.
		ControlPlaneStopTimeout: 5 * time.Second,
	}
	// A loaded 2-core machine can take more than envtest's default 20 s to bring an
	// apiserver up, which would leave a restarted one down for good.
	apiLog, err := os.Create(filepath.Join(dir, "kube-apiserver.log"))
	if err != nil {
		return nil, err
	}
	env.ControlPlane.APIServer = &envtest.APIServer{CertDir: certDir, StartTimeout: time.Minute, Out: apiLog, Err: apiLog}
	if e := opts.Etcd; e != nil {
		// envtest still starts its own etcd; nothing is stored there.
		env.ControlPlane.APIServer.Configure().
			Set("etcd-servers", strings.Join(e.Servers, ",")).
			Set("etcd-cafile", e.CA).Set("etcd-certfile", e.Cert).Set("etcd-keyfile", e.Key)
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start kube-apiserver from %s: %w", BinDir(), err)
	}
	cp := &ControlPlane{Env: env, Config: cfg, Dir: dir}
	if err := cp.init(opts); err != nil {
		_ = cp.Stop()
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) init(opts ControlPlaneOptions) error {
	var err error
	cp.Client, err = client.New(cp.Config, client.Options{Scheme: Scheme()})
	if err != nil {
		return err
	}
	user, err := cp.Env.AddUser(envtest.User{Name: "quorumguard-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	cp.KubeconfigFile = filepath.Join(cp.Dir, "kubeconfig")
	if err := os.WriteFile(cp.KubeconfigFile, kc, 0o600); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: MachineNamespace}}
	if err := cp.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", MachineNamespace, err)
	}
	if opts.ControllerManager {
		return cp.startControllerManager(opts.NodeLifecycle)
	}
	return nil
}

// NodeMonitorGracePeriod is how long the node lifecycle controller waits on a silent kubelet
// before it marks its Node Ready=Unknown (kube-controller-manager's default is 50 s).
const NodeMonitorGracePeriod = 8 * time.Second

func (cp *ControlPlane) startControllerManager(nodeLifecycle bool) error {
	logf, err := os.Create(filepath.Join(cp.Dir, "kube-controller-manager.log"))
	if err != nil {
		return err
	}
	controllers := "garbage-collector-controller"
	if nodeLifecycle {
		controllers += ",disruption-controller,pod-garbage-collector-controller,node-lifecycle-controller,taint-eviction-controller"
	}
	cmd := exec.Command(filepath.Join(BinDir(), "kube-controller-manager"),
		"--kubeconfig="+cp.KubeconfigFile,
		"--controllers="+controllers,
		"--node-monitor-period=1s",
		"--node-monitor-grace-period="+NodeMonitorGracePeriod.String(),
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--secure-port=0",
		"--concurrent-gc-syncs=5",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start kube-controller-manager: %w", err)
	}
	cp.mu.Lock()
	cp.gc = cmd
	cp.mu.Unlock()
	go func() { _ = cmd.Wait(); logf.Close() }()
	return nil
}

// RestartAPIServer stops kube-apiserver (SIGTERM, then SIGKILL after 5 s as a kubelet does
// past the grace period), leaves it down for down, and starts it again on the same port,
// certificates and storage. Every client's connections and watches break and are refused
// until it is back; nothing stored is lost.
func (cp *ControlPlane) RestartAPIServer(down time.Duration) error {
	cp.restartMu.Lock()
	defer cp.restartMu.Unlock()
	api := cp.Env.ControlPlane.APIServer
	if err := api.Stop(); err != nil && !strings.Contains(err.Error(), "timeout waiting for process") {
		return fmt.Errorf("stop kube-apiserver: %w", err)
	}
	time.Sleep(down)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		// A killed process can hold its port for a moment.
		if err = api.Start(); err == nil {
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("start kube-apiserver again: %w", err)
}

// RestartAPIServerOn restarts kube-apiserver with --etcd-servers set to servers, as an
// apiserver operator rolls out a new list of etcd endpoints.
func (cp *ControlPlane) RestartAPIServerOn(servers []string) error {
	cp.restartMu.Lock()
	defer cp.restartMu.Unlock()
	api := cp.Env.ControlPlane.APIServer
	if err := api.Stop(); err != nil && !strings.Contains(err.Error(), "timeout waiting for process") {
		return fmt.Errorf("stop kube-apiserver: %w", err)
	}
	api.Configure().Set("etcd-servers", strings.Join(servers, ","))
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = api.Start(); err == nil {
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("start kube-apiserver on %v: %w; its log ends:\n%s", servers, err, tail(filepath.Join(cp.Dir, "kube-apiserver.log"), 15))
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// EtcdServers is kube-apiserver's current --etcd-servers.
func (cp *ControlPlane) EtcdServers() []string {
	cp.restartMu.Lock()
	defer cp.restartMu.Unlock()
	v := cp.Env.ControlPlane.APIServer.Configure().Get("etcd-servers").Get(nil)
	if len(v) == 1 {
		return strings.Split(v[0], ",")
	}
	return v
}

// Stop stops the garbage collector and the apiserver.
func (cp *ControlPlane) Stop() error {
	cp.mu.Lock()
	if cp.gc != nil && cp.gc.Process != nil {
		_ = cp.gc.Process.Kill()
	}
	cp.mu.Unlock()
	return cp.Env.Stop()
}

// Main is a test package's TestMain: it starts one control plane for the whole package into
// *cp, runs the tests, stops it and exits with the tests' code. A control plane that cannot
// start fails the package with the reason (a missing tool names `make tools`).
func Main(m interface{ Run() int }, opts ControlPlaneOptions, cp **ControlPlane) {
	// Listing the tests (go test -list) runs none: no control plane is needed.
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	var err error
	if *cp, err = StartControlPlane(opts); err != nil {
		fmt.Fprintln(os.Stderr, "starting the test control plane:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = (*cp).Stop()
	os.Exit(code)
}

// costlyRules names the CRDs whose CEL rules kube-apiserver refuses as over its cost budget
// when installed without the OpenShift-patched apiserver (the infrastructure's per-platform
// endpoint rules). They are installed with their x-kubernetes-validations left out; their
// schemas, enums and status subresource stay as shipped, and the tests read only fields
// those still govern (status.controlPlaneTopology).
var costlyRules = []string{"_infrastructures-"}

// withoutCostlyRules splits the CRD manifests into those installed as shipped and those
// loaded here with their CEL rules removed.
func withoutCostlyRules(crds []string) ([]string, []*apiextensionsv1.CustomResourceDefinition, error) {
	var paths []string
	var loaded []*apiextensionsv1.CustomResourceDefinition
	for _, p := range crds {
		costly := false
		for _, c := range costlyRules {
			costly = costly || strings.Contains(filepath.Base(p), c)
		}
		if !costly {
			paths = append(paths, p)
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, err
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(raw, crd); err != nil {
			return nil, nil, fmt.Errorf("CRD manifest %s: %w", p, err)
		}
		for i := range crd.Spec.Versions {
			if s := crd.Spec.Versions[i].Schema; s != nil && s.OpenAPIV3Schema != nil {
				dropRules(s.OpenAPIV3Schema)
			}
		}
		loaded = append(loaded, crd)
	}
	return paths, loaded, nil
}

func dropRules(s *apiextensionsv1.JSONSchemaProps) {
	s.XValidations = nil
	for k, p := range s.Properties {
		dropRules(&p)
		s.Properties[k] = p
	}
	if s.Items != nil && s.Items.Schema != nil {
		dropRules(s.Items.Schema)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		dropRules(s.AdditionalProperties.Schema)
	}
}
