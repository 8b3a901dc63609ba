package framework

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	maomachine "github.com/openshift/machine-api-operator/pkg/controller/machine"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FailProvisionAnnotation makes the cloud refuse to create a Machine's instance, as a cloud
// refuses an invalid instance type: the Machine controller marks the Machine Failed.
const FailProvisionAnnotation = "framework.quorumguard.io/fail-provision"

// CloudOptions shape the cloud stand-in.
type CloudOptions struct {
	Client client.Client
	// BootDelay is the time from an instance's creation to its kubelet registering the Node.
	BootDelay time.Duration
	// AllocateIP gives the named Machine's instance its address.
	AllocateIP func(machine string) (net.IP, error)
	// OnBoot is called every 50 ms for each booted instance, with its Machine as created and
	// its address: the node-side agents (the etcd member's join step) run on it.
	OnBoot func(ctx context.Context, m *machinev1beta1.Machine, ip net.IP)
	// OnStop is called once when an instance is terminated: its etcd member dies with it.
	OnStop func(m *machinev1beta1.Machine)
}

// Cloud is the machine-api actuator of the test world, the one part of the Machine lifecycle
// with no controller here: an instance table. Create starts an instance (its address at once,
// its kubelet after BootDelay), Exists reads the table, Delete stops the instance at once.
// Everything else (phases, hooks, drain, the Node's deletion) is machine-api-operator's own
// Machine controller, run against this actuator by StartMachineAPI.
type Cloud struct {
	opts CloudOptions
	mu   sync.Mutex
	// instances by Machine UID: a Machine deleted and created again under its name is a new
	// instance, as on a cloud.
	instances map[types.UID]*instance
	stopped   map[types.UID]bool
	last      map[string]net.IP // the address of each Machine's terminated instance
	held      map[string]bool   // Machines whose instances do not finish booting
	ctx       context.Context
}

type instance struct {
	machine *machinev1beta1.Machine
	ip      net.IP
	kubelet *Kubelet
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewCloud returns an empty cloud whose instances live until ctx ends or they are deleted.
func NewCloud(ctx context.Context, opts CloudOptions) *Cloud {
	return &Cloud{opts: opts, instances: map[types.UID]*instance{}, stopped: map[types.UID]bool{}, last: map[string]net.IP{}, held: map[string]bool{}, ctx: ctx}
}

var _ maomachine.Actuator = (*Cloud)(nil)

// Create starts m's instance, once, and records its providerID and addresses on m.
func (c *Cloud) Create(ctx context.Context, m *machinev1beta1.Machine) error {
	if m.Annotations[FailProvisionAnnotation] == "true" {
		return maomachine.InvalidMachineConfiguration("the cloud refuses Machine %s (%s)", m.Name, FailProvisionAnnotation)
	}
	c.mu.Lock()
	in, ok := c.instances[m.UID]
	if !ok {
		ip, err := c.opts.AllocateIP(m.Name)
		if err != nil {
			c.mu.Unlock()
			return maomachine.CreateMachine("no address for Machine %s: %v", m.Name, err)
		}
		ictx, cancel := context.WithCancel(c.ctx)
		in = &instance{machine: m.DeepCopy(), ip: ip, cancel: cancel, done: make(chan struct{})}
		c.instances[m.UID] = in
		go c.boot(ictx, in)
	}
	c.mu.Unlock()
	return c.record(ctx, m, in)
}

// Update records the instance's providerID and addresses on m when a write of them was lost.
func (c *Cloud) Update(ctx context.Context, m *machinev1beta1.Machine) error {
	c.mu.Lock()
	in, ok := c.instances[m.UID]
	c.mu.Unlock()
	if !ok {
		return nil
	}
	return c.record(ctx, m, in)
}

// Exists says whether m's instance runs.
func (c *Cloud) Exists(_ context.Context, m *machinev1beta1.Machine) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.instances[m.UID]
	return ok, nil
}

// Delete terminates m's instance at once: its kubelet and its etcd member stop with it.
func (c *Cloud) Delete(_ context.Context, m *machinev1beta1.Machine) error {
	c.mu.Lock()
	in, ok := c.instances[m.UID]
	delete(c.instances, m.UID)
	if ok {
		c.stopped[m.UID] = true
		c.last[m.Name] = in.ip
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	in.cancel()
	<-in.done
	if c.opts.OnStop != nil {
		c.opts.OnStop(in.machine)
	}
	return nil
}

// HoldBoot keeps the named Machine's instance (created or to be created) from finishing its
// boot: it has an address, but no kubelet registers its Node and no etcd member starts on it,
// as a machine stuck in its first boot.
func (c *Cloud) HoldBoot(machine string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held[machine] = true
}

func (c *Cloud) booting(machine string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held[machine]
}

// Terminated says whether the instance of the Machine with this UID was terminated.
func (c *Cloud) Terminated(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped[uid]
}

// Kubelet returns the kubelet of the named Machine's running instance, or nil.
func (c *Cloud) Kubelet(machine string) *Kubelet {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, in := range c.instances {
		if in.machine.Name == machine {
			return in.kubelet
		}
	}
	return nil
}

// address is the address of the named Machine's instance, running or the last terminated.
func (c *Cloud) address(machine string) net.IP {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, in := range c.instances {
		if in.machine.Name == machine {
			return in.ip
		}
	}
	return c.last[machine]
}

// Close terminates every instance.
func (c *Cloud) Close() {
	c.mu.Lock()
	all := c.instances
	c.instances = map[types.UID]*instance{}
	c.mu.Unlock()
	for _, in := range all {
		in.cancel()
		<-in.done
	}
}

// record writes the instance's providerID and addresses to m, as a cloud actuator does once
// the instance exists; a lost write is made again on the next reconcile with the same address.
func (c *Cloud) record(ctx context.Context, m *machinev1beta1.Machine, in *instance) error {
	providerID := providerIDOf(m)
	if ptr.Deref(m.Spec.ProviderID, "") != providerID {
		base := m.DeepCopy()
		m.Spec.ProviderID = ptr.To(providerID)
		if err := c.opts.Client.Patch(ctx, m, client.MergeFrom(base)); err != nil {
			return fmt.Errorf("record providerID of Machine %s: %w", m.Name, err)
		}
	}
	if InternalIP(m) == nil {
		base := m.DeepCopy()
		m.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: in.ip.String()},
			{Type: corev1.NodeInternalDNS, Address: m.Name},
		}
		if err := c.opts.Client.Status().Patch(ctx, m, client.MergeFrom(base)); err != nil {
			return fmt.Errorf("record addresses of Machine %s: %w", m.Name, err)
		}
	}
	return nil
}

func providerIDOf(m *machinev1beta1.Machine) string { return "sim:///" + m.Name }

// boot waits BootDelay, starts the instance's kubelet, and runs the node-side agents until the
// instance stops.
func (c *Cloud) boot(ctx context.Context, in *instance) {
	defer close(in.done)
	select {
	case <-ctx.Done():
		return
	case <-time.After(c.opts.BootDelay):
	}
	for c.booting(in.machine.Name) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	k := NewKubelet(KubeletOptions{Client: c.opts.Client, Node: in.machine.Name, Role: in.machine.Labels[RoleLabel], ProviderID: providerIDOf(in.machine), IP: in.ip})
	c.mu.Lock()
	in.kubelet = k
	c.mu.Unlock()
	kdone := make(chan struct{})
	go func() { defer close(kdone); k.Run(ctx) }()
	defer func() { <-kdone }()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if c.opts.OnBoot != nil {
			c.opts.OnBoot(ctx, in.machine, in.ip)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
