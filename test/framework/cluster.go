package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// ClusterOptions shape a simulated cluster on a running control plane.
type ClusterOptions struct {
	// Masters is the number of control-plane Machines that bootstrap etcd; 3 when zero.
	Masters int
	// Prefix names the Machines <prefix>-master-<index>; "cluster" when empty.
	Prefix string
	// ProviderSpec gives the providerSpec of master index i; an AWS-shaped one in zone
	// us-east-1a when nil.
	ProviderSpec func(i int) *runtime.RawExtension
	// Hook, when set, is put on each bootstrap Machine as it is created, as an installer would.
	Hook *machinev1beta1.LifecycleHook
	// ProvisionDelay is the time from an instance's creation to its Node registering.
	ProvisionDelay time.Duration
	// Dir holds etcd data and certificates; a temp dir when empty.
	Dir string
	// OnlyMasters makes the machine-api look at control-plane Machines only, so a benchmark
	// can park thousands of worker Machines in the apiserver without provisioning them.
	OnlyMasters bool
	// QuotaBackendBytes is every member's etcd quota (--quota-backend-bytes); etcdnet's 2 GiB
	// when zero. A benchmark that fills etcd past that sets it, as OpenShift sets 8 GiB.
	QuotaBackendBytes int64
	// SnapshotCount is every member's etcd --snapshot-count (with 10 catch-up entries kept
	// after each snapshot); etcd's default when zero. A test that needs a joining member to
	// receive a database snapshot, as it does on any long-running cluster, sets it low.
	SnapshotCount uint64
}

// Cluster is OpenShift's machine-api (machine-api-operator's controllers on a stand-in cloud)
// and etcd on a real apiserver.
type Cluster struct {
	CP     *ControlPlane
	Client client.Client
	Net    *etcdnet.Network
	Cloud  *Cloud
	API    *MachineAPI
	Agent  *Agent
	Opts   ClusterOptions
	// Quorate is when every bootstrap member answered as ready: the time their peer
	// connections are counted from by etcd's health window.
	Quorate time.Time

	terms  terminations
	cancel context.CancelFunc
	// ownCP: the control plane was started for this cluster, on its etcd (StartProtected).
	ownCP bool
}

// StartCluster creates the master Machines, runs the simulator and etcd agents, and waits
// until the bootstrap members form a quorate cluster. The apiserver cp keeps its own store.
func StartCluster(ctx context.Context, cp *ControlPlane, opts ClusterOptions) (*Cluster, error) {
	opts, n, err := opts.network()
	if err != nil {
		return nil, err
	}
	return startCluster(ctx, cp, opts, n, nil)
}

// StartProtected starts a cluster as production runs one: the bootstrap members start first
// (as an installer's bootstrap does), and the cluster's own kube-apiserver stores its data in
// them, the same members quorumguard protects and replaces. The apiserver reaches etcd only
// through its --etcd-servers list, so replacing members without rolling that list out
// (StartAPIServerOperator) loses the API. Stop stops the apiserver too.
func StartProtected(ctx context.Context, cpOpts ControlPlaneOptions, opts ClusterOptions) (*Cluster, error) {
	opts, n, err := opts.network()
	if err != nil {
		return nil, err
	}
	members, err := n.Bootstrap(ctx, bootNames(opts)...)
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("bootstrap etcd: %w", err)
	}
	ca, cert, key := n.ClientFiles()
	cpOpts.Etcd = &EtcdStore{Servers: etcdnet.ClientURLs(members), CA: ca, Cert: cert, Key: key}
	if cpOpts.Dir == "" {
		cpOpts.Dir = filepath.Join(opts.Dir, "control-plane")
	}
	cp, err := StartControlPlane(cpOpts)
	if err != nil {
		n.Close()
		return nil, err
	}
	c, err := startCluster(ctx, cp, opts, n, members)
	if err != nil {
		_ = cp.Stop()
		return nil, err
	}
	c.ownCP = true
	return c, nil
}

// network fills in the defaults and makes the cluster's etcd network under its Dir.
func (opts ClusterOptions) network() (ClusterOptions, *etcdnet.Network, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return opts, nil, err
	}
	n, err := etcdnet.NewNetwork(filepath.Join(opts.Dir, "etcd"))
	if err != nil {
		return opts, nil, err
	}
	n.QuotaBackendBytes = opts.QuotaBackendBytes
	if opts.SnapshotCount > 0 {
		n.SnapshotCount, n.SnapshotCatchUpEntries = opts.SnapshotCount, 10
	}
	return opts, n, nil
}

func (opts ClusterOptions) withDefaults() (ClusterOptions, error) {
	if opts.Masters == 0 {
		opts.Masters = 3
	}
	if opts.Prefix == "" {
		opts.Prefix = "cluster"
	}
	if opts.ProviderSpec == nil {
		opts.ProviderSpec = func(int) *runtime.RawExtension { return AWSProviderSpec("us-east-1a", "subnet-us-east-1a") }
	}
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "quorumguard-cluster-")
		if err != nil {
			return opts, err
		}
		opts.Dir = d
	}
	return opts, nil
}

func bootNames(opts ClusterOptions) []string {
	var boot []string
	for i := range opts.Masters {
		boot = append(boot, fmt.Sprintf("%s-master-%d", opts.Prefix, i))
	}
	return boot
}

// startCluster runs the simulator and agents on n. booted are members already running for
// the bootstrap Machines of the same names: those Machines get their addresses.
func startCluster(ctx context.Context, cp *ControlPlane, opts ClusterOptions, n *etcdnet.Network, booted []*etcdnet.Member) (*Cluster, error) {
	boot := bootNames(opts)
	c := &Cluster{CP: cp, Client: cp.Client, Net: n, Agent: NewAgent(n, boot), Opts: opts}
	var mu sync.Mutex
	reserved := map[string]net.IP{}
	for _, m := range booted {
		c.Agent.adopt(m.Name, m)
		reserved[m.Name] = m.IP
	}
	allocate := func(machine string) (net.IP, error) {
		mu.Lock()
		defer mu.Unlock()
		if ip, ok := reserved[machine]; ok {
			delete(reserved, machine)
			return ip, nil
		}
		return n.AllocateIP()
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.Cloud = NewCloud(runCtx, CloudOptions{
		Client: cp.Client, BootDelay: opts.ProvisionDelay, AllocateIP: allocate,
		OnBoot: c.Agent.MachineRunning,
		OnStop: func(m *machinev1beta1.Machine) { c.recordTermination(m); c.Agent.MachineStopped(m) },
	})
	selector := map[string]string{ClusterLabel: opts.Prefix}
	if opts.OnlyMasters {
		selector[RoleLabel] = "master"
	}
	api, err := StartMachineAPI(ctx, MachineAPIOptions{Config: cp.Config, Cloud: c.Cloud, Machines: selector})
	if err != nil {
		cancel()
		n.Close()
		return nil, err
	}
	c.API = api
	for i, name := range boot {
		m := c.NewMaster(name, opts.ProviderSpec(i))
		if opts.Hook != nil {
			m.Spec.LifecycleHooks.PreDrain = []machinev1beta1.LifecycleHook{*opts.Hook}
		}
		if err := cp.Client.Create(ctx, m); err != nil {
			c.Stop(context.Background())
			return nil, fmt.Errorf("create Machine %s: %w", name, err)
		}
	}
	if err := c.waitQuorum(ctx, boot); err != nil {
		c.Stop(context.Background())
		return nil, err
	}
	c.Quorate = time.Now()
	return c, nil
}

func (c *Cluster) waitQuorum(ctx context.Context, boot []string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		ready := 0
		for _, name := range boot {
			if m := c.Agent.Member(name); m != nil {
				wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				if m.WaitReady(wctx) == nil {
					ready++
				}
				cancel()
			}
		}
		if ready == len(boot) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd of %d bootstrap machines not ready after 60s (%d ready); logs under %s", len(boot), ready, c.Net.Dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// NewMaster returns (without creating it) a control-plane Machine with the usual labels.
func (c *Cluster) NewMaster(name string, providerSpec *runtime.RawExtension) *machinev1beta1.Machine {
	return &machinev1beta1.Machine{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: MachineNamespace,
			Labels: map[string]string{RoleLabel: "master", TypeLabel: "master", ClusterLabel: c.Opts.Prefix},
		},
		Spec: machinev1beta1.MachineSpec{ProviderSpec: machinev1beta1.ProviderSpec{Value: providerSpec}},
	}
}

// EtcdClient returns a TLS client to the running members. Close it when done.
func (c *Cluster) EtcdClient() (*clientv3.Client, error) {
	tc, err := c.Net.ClientTLS()
	if err != nil {
		return nil, err
	}
	// The client library logs every retried call; the writer and monitor report what matters.
	return clientv3.New(clientv3.Config{Endpoints: c.Agent.RunningEndpoints(), TLS: tc, DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
}

// StartWriter starts a writer that follows the running members.
func (c *Cluster) StartWriter(ctx context.Context) (*Writer, error) {
	cli, err := c.EtcdClient()
	if err != nil {
		return nil, err
	}
	return StartWriter(ctx, WriterOptions{Client: cli, Endpoints: c.Agent.RunningEndpoints, CloseClient: true}), nil
}

// Machine fetches a Machine by name from the apiserver.
func (c *Cluster) Machine(ctx context.Context, name string) (*machinev1beta1.Machine, error) {
	m := &machinev1beta1.Machine{}
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: MachineNamespace, Name: name}, m)
	return m, err
}

// WaitFor polls cond every 50 ms until it holds, fails, or timeout passes.
func WaitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("timed out after %s waiting for %s (last error: %w)", timeout, what, last)
			}
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops the machine-api and the instances, strips every Machine's hooks and finalizers
// so they go away, removes the Nodes and stops etcd.
func (c *Cluster) Stop(ctx context.Context) {
	c.API.Stop()
	c.Cloud.Close()
	c.cancel()
	if c.ownCP {
		// The apiserver's store goes with the members: nothing to clean up in it.
		c.Agent.Close()
		_ = c.CP.Stop()
		c.Net.Close()
		return
	}
	// The Machines go: their finalizers and hooks are stripped by a merge patch (no
	// resourceVersion, so a write racing it cannot make it miss), again on every pass until none
	// is left, for a later test to create Machines of the same names.
	_ = WaitFor(ctx, 30*time.Second, "machines to go", func() (bool, error) {
		var list machinev1beta1.MachineList
		if err := c.Client.List(ctx, &list, client.InNamespace(MachineNamespace)); err != nil {
			return false, nil //nolint:nilerr // the apiserver may be away: ask again
		}
		for i := range list.Items {
			m := &list.Items[i]
			if len(m.Finalizers) > 0 || len(m.Spec.LifecycleHooks.PreDrain) > 0 || len(m.Spec.LifecycleHooks.PreTerminate) > 0 {
				_ = c.Client.Patch(ctx, m, client.RawPatch(types.MergePatchType,
					[]byte(`{"metadata":{"finalizers":null},"spec":{"lifecycleHooks":{"preDrain":null,"preTerminate":null}}}`)))
			}
			if m.DeletionTimestamp == nil {
				_ = c.Client.Delete(ctx, m)
			}
		}
		return len(list.Items) == 0, nil
	})
	var nodes corev1.NodeList
	if err := c.Client.List(ctx, &nodes); err == nil {
		for i := range nodes.Items {
			_ = c.Client.Delete(ctx, &nodes.Items[i])
		}
	}
	c.Agent.Close()
	c.Net.Close()
}

// DeleteMachine deletes a Machine by name (the machine-api then takes it through drain).
func (c *Cluster) DeleteMachine(ctx context.Context, name string) error {
	m := &machinev1beta1.Machine{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: MachineNamespace}}
	err := RideOut(ctx, "delete Machine "+name, func() error { return c.Client.Delete(ctx, m) })
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// RemoveHooks strips every preDrain hook named name from a Machine, with retries on conflict.
func (c *Cluster) RemoveHooks(ctx context.Context, machine, name string) error {
	return c.UpdateMachine(ctx, machine, func(m *machinev1beta1.Machine) {
		m.Spec.LifecycleHooks.PreDrain = slices.DeleteFunc(m.Spec.LifecycleHooks.PreDrain,
			func(h machinev1beta1.LifecycleHook) bool { return h.Name == name })
	})
}

// UpdateMachine applies change to the Machine as last read and updates it, reading it again
// and retrying for up to 10 s when someone else (the controller, the simulated machine-api)
// wrote it in between.
func (c *Cluster) UpdateMachine(ctx context.Context, machine string, change func(*machinev1beta1.Machine)) error {
	return WaitFor(ctx, 10*time.Second, "update of Machine "+machine, func() (bool, error) {
		m, err := c.Machine(ctx, machine)
		if err != nil {
			return false, err
		}
		change(m)
		err = c.Client.Update(ctx, m)
		return err == nil, err
	})
}

// AWSProviderSpec is a minimal AWS providerSpec placing a Machine in zone and subnet.
func AWSProviderSpec(zone, subnet string) *runtime.RawExtension {
	spec := map[string]any{
		"apiVersion":   "machine.openshift.io/v1beta1",
		"kind":         "AWSMachineProviderConfig",
		"instanceType": "m6i.xlarge",
		"ami":          map[string]any{"id": "ami-quorumguard"},
		"placement":    map[string]any{"availabilityZone": zone, "region": "us-east-1"},
		"subnet":       map[string]any{"id": subnet},
	}
	raw, _ := json.Marshal(spec)
	return &runtime.RawExtension{Raw: raw}
}

// Phase is a Machine's phase or "".
func Phase(m *machinev1beta1.Machine) string { return ptr.Deref(m.Status.Phase, "") }

// RideOut runs an API call again while it fails because the apiserver is away (restarting
// onto new etcd endpoints, or without etcd quorum), for up to 90 s, as a person's kubectl
// would be retried. An answer from the apiserver itself (not found, conflict, invalid) ends
// it at once.
func RideOut(ctx context.Context, what string, call func() error) error {
	var err error
	deadline := time.Now().Add(90 * time.Second)
	for {
		if err = call(); err == nil || !apiAway(err) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: the apiserver stayed away for 90s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// apiAway says err is no answer from the apiserver, or one that says it cannot serve now.
func apiAway(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return true // no status: the connection failed
	}
	return apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsInternalError(err) || apierrors.IsTooManyRequests(err)
}
