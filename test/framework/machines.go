package framework

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Machine API vocabulary, as the real machine controller uses it.
const (
	MachineFinalizer = "machine.machine.openshift.io"
	RoleLabel        = "machine.openshift.io/cluster-api-machine-role"
	TypeLabel        = "machine.openshift.io/cluster-api-machine-type"
	ClusterLabel     = "machine.openshift.io/cluster-api-cluster"

	PhaseProvisioning = "Provisioning"
	PhaseProvisioned  = "Provisioned"
	PhaseRunning      = "Running"
	PhaseDeleting     = "Deleting"
	PhaseFailed       = "Failed"

	ConditionDrainable  machinev1beta1.ConditionType = "Drainable"
	ConditionDrained    machinev1beta1.ConditionType = "Drained"
	ConditionTerminable machinev1beta1.ConditionType = "Terminable"

	// ExcludeDrainAnnotation makes the machine-api skip a Machine's drain, and with it every
	// preDrain hook, as OpenShift's does.
	ExcludeDrainAnnotation = "machine.openshift.io/exclude-node-draining"

	// FailProvisionAnnotation makes the simulator fail a Machine's provisioning.
	FailProvisionAnnotation = "framework.quorumguard.io/fail-provision"
)

// SimulatorOptions shape the simulated machine-api controller.
type SimulatorOptions struct {
	Client    client.Client
	Namespace string
	// ProvisionDelay is the time from Provisioning to Provisioned; DrainDelay the time a drain
	// takes once no preDrain hook holds it. Tests keep them short, the demo realistic.
	ProvisionDelay, DrainDelay time.Duration
	// Interval between passes over the Machines; 50 ms when zero.
	Interval time.Duration
	// AllocateIP gives the named Machine its address.
	AllocateIP func(machine string) (net.IP, error)
	// OnRunning is called on every pass for every Running Machine, with its address.
	OnRunning func(ctx context.Context, m *machinev1beta1.Machine, ip net.IP)
	// OnStopped is called once when a Machine's instance is terminated.
	OnStopped func(m *machinev1beta1.Machine)
	// Labels, when set, limits the simulator to Machines carrying them.
	Labels map[string]string
}

// Simulator plays the machine-api controller: it provisions Machines on loopback addresses and
// takes deleting Machines through drain and termination, holding at lifecycle hooks.
type Simulator struct {
	opts  SimulatorOptions
	mu    sync.Mutex
	since map[string]time.Time // per Machine UID and step, when the step began
	// ips is the address given to each Machine (by UID) until it is terminated: a
	// provisioning pass whose write fails is tried again with the same address, as a cloud
	// keeps an instance's address, so a bootstrap member's reserved address is never lost.
	ips map[types.UID]net.IP
}

// NewSimulator returns a simulator; Run drives it.
func NewSimulator(opts SimulatorOptions) *Simulator {
	if opts.Interval == 0 {
		opts.Interval = 50 * time.Millisecond
	}
	if opts.Namespace == "" {
		opts.Namespace = MachineNamespace
	}
	return &Simulator{opts: opts, since: map[string]time.Time{}, ips: map[types.UID]net.IP{}}
}

// Run passes over the Machines until ctx ends.
func (s *Simulator) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		s.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Simulator) pass(ctx context.Context) {
	var list machinev1beta1.MachineList
	if err := s.opts.Client.List(ctx, &list, client.InNamespace(s.opts.Namespace), client.MatchingLabels(s.opts.Labels)); err != nil {
		return
	}
	for i := range list.Items {
		m := &list.Items[i]
		var err error
		if m.DeletionTimestamp == nil {
			err = s.provision(ctx, m)
		} else {
			err = s.decommission(ctx, m)
		}
		_ = err // conflicts and transient errors are retried on the next pass
	}
}

// elapsed reports how long ago step began for m, starting the clock on the first call.
func (s *Simulator) elapsed(m *machinev1beta1.Machine, step string) time.Duration {
	key := string(m.UID) + "/" + step
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.since[key]
	if !ok {
		t = time.Now()
		s.since[key] = t
	}
	return time.Since(t)
}

// address is the Machine's address: the one given to it before, or a new one.
func (s *Simulator) address(m *machinev1beta1.Machine) (net.IP, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ip, ok := s.ips[m.UID]; ok {
		return ip, nil
	}
	ip, err := s.opts.AllocateIP(m.Name)
	if err != nil {
		return nil, err
	}
	s.ips[m.UID] = ip
	return ip, nil
}

func (s *Simulator) provision(ctx context.Context, m *machinev1beta1.Machine) error {
	c := s.opts.Client
	if !slices.Contains(m.Finalizers, MachineFinalizer) {
		m.Finalizers = append(m.Finalizers, MachineFinalizer)
		return c.Update(ctx, m)
	}
	switch ptr.Deref(m.Status.Phase, "") {
	case "":
		m.Status.Phase = ptr.To(PhaseProvisioning)
		return c.Status().Update(ctx, m)
	case PhaseProvisioning:
		if s.elapsed(m, PhaseProvisioning) < s.opts.ProvisionDelay {
			return nil
		}
		if m.Annotations[FailProvisionAnnotation] == "true" {
			m.Status.Phase = ptr.To(PhaseFailed)
			m.Status.ErrorReason = ptr.To(machinev1beta1.InvalidConfigurationMachineError)
			m.Status.ErrorMessage = ptr.To("simulated provisioning failure")
			return c.Status().Update(ctx, m)
		}
		ip, err := s.address(m)
		if err != nil {
			return err
		}
		m.Spec.ProviderID = ptr.To("sim:///" + m.Name)
		if err := c.Update(ctx, m); err != nil {
			return err
		}
		m.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: ip.String()},
			{Type: corev1.NodeInternalDNS, Address: m.Name},
		}
		m.Status.Phase = ptr.To(PhaseProvisioned)
		return c.Status().Update(ctx, m)
	case PhaseProvisioned:
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: m.Name, Labels: map[string]string{}}}
		if m.Labels[RoleLabel] == "master" {
			node.Labels["node-role.kubernetes.io/master"] = ""
			node.Labels["node-role.kubernetes.io/control-plane"] = ""
		}
		if err := c.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		node.Status = corev1.NodeStatus{
			Addresses:  m.Status.Addresses,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}},
		}
		if err := c.Status().Update(ctx, node); err != nil {
			return err
		}
		m.Status.NodeRef = &corev1.ObjectReference{Kind: "Node", Name: node.Name, UID: node.UID}
		m.Status.Phase = ptr.To(PhaseRunning)
		return c.Status().Update(ctx, m)
	case PhaseRunning:
		if s.opts.OnRunning != nil {
			if ip := InternalIP(m); ip != nil {
				s.opts.OnRunning(ctx, m, ip)
			}
		}
	}
	return nil
}

func (s *Simulator) decommission(ctx context.Context, m *machinev1beta1.Machine) error {
	c := s.opts.Client
	if !slices.Contains(m.Finalizers, MachineFinalizer) {
		return nil
	}
	if ptr.Deref(m.Status.Phase, "") != PhaseDeleting {
		m.Status.Phase = ptr.To(PhaseDeleting)
		return c.Status().Update(ctx, m)
	}
	if why := drainSkipped(m); why != "" {
		// As the real controller: with no Node, or the exclude annotation, there is no
		// drain, and no preDrain hook holds anything; the Machine goes on to termination.
		if setCondition(m, ConditionDrained, corev1.ConditionTrue, "NodeDrainSkipped", "Node drain skipped: "+why) {
			return c.Status().Update(ctx, m)
		}
	}
	if hooks := m.Spec.LifecycleHooks.PreDrain; len(hooks) > 0 && !conditionTrue(m, ConditionDrained) {
		if setCondition(m, ConditionDrainable, corev1.ConditionFalse, "HookPresent", "Drain operation currently blocked by: "+hookNames(hooks)) {
			return c.Status().Update(ctx, m)
		}
		return nil
	}
	if !conditionTrue(m, ConditionDrained) && setCondition(m, ConditionDrainable, corev1.ConditionTrue, "", "") {
		return c.Status().Update(ctx, m)
	}
	if !conditionTrue(m, ConditionDrained) {
		if s.elapsed(m, "drain") < s.opts.DrainDelay {
			return nil
		}
		setCondition(m, ConditionDrained, corev1.ConditionTrue, "", "")
		return c.Status().Update(ctx, m)
	}
	if hooks := m.Spec.LifecycleHooks.PreTerminate; len(hooks) > 0 {
		if setCondition(m, ConditionTerminable, corev1.ConditionFalse, "HookPresent", "Terminate operation currently blocked by: "+hookNames(hooks)) {
			return c.Status().Update(ctx, m)
		}
		return nil
	}
	if setCondition(m, ConditionTerminable, corev1.ConditionTrue, "", "") {
		return c.Status().Update(ctx, m)
	}
	// The instance is terminated: its etcd member dies with it, then the Node goes.
	if s.opts.OnStopped != nil {
		s.opts.OnStopped(m)
	}
	s.mu.Lock()
	delete(s.ips, m.UID)
	s.mu.Unlock()
	if m.Status.NodeRef != nil {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: m.Status.NodeRef.Name}}
		if err := c.Delete(ctx, node); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	m.Finalizers = slices.DeleteFunc(m.Finalizers, func(f string) bool { return f == MachineFinalizer })
	return c.Update(ctx, m)
}

// drainSkipped says why the machine-api skips m's drain, and with it its preDrain hooks: it
// has no Node (status.nodeRef), or it carries ExcludeDrainAnnotation. "" when it drains.
func drainSkipped(m *machinev1beta1.Machine) string {
	if _, ok := m.Annotations[ExcludeDrainAnnotation]; ok {
		return "the " + ExcludeDrainAnnotation + " annotation is set"
	}
	if m.Status.NodeRef == nil {
		return "the Machine has no Node"
	}
	return ""
}

func hookNames(hooks []machinev1beta1.LifecycleHook) string {
	parts := make([]string, len(hooks))
	for i, h := range hooks {
		parts[i] = fmt.Sprintf("{Name:%s Owner:%s}", h.Name, h.Owner)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// setCondition sets a condition and says whether anything changed.
func setCondition(m *machinev1beta1.Machine, t machinev1beta1.ConditionType, st corev1.ConditionStatus, reason, msg string) bool {
	for i := range m.Status.Conditions {
		c := &m.Status.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status == st && c.Reason == reason && c.Message == msg {
			return false
		}
		if c.Status != st {
			c.LastTransitionTime = metav1.Now()
		}
		c.Status, c.Reason, c.Message = st, reason, msg
		c.Severity = ""
		if st == corev1.ConditionFalse {
			c.Severity = machinev1beta1.ConditionSeverityInfo
		}
		return true
	}
	c := machinev1beta1.Condition{Type: t, Status: st, Reason: reason, Message: msg, LastTransitionTime: metav1.Now()}
	if st == corev1.ConditionFalse {
		c.Severity = machinev1beta1.ConditionSeverityInfo
	}
	m.Status.Conditions = append(m.Status.Conditions, c)
	return true
}

func conditionTrue(m *machinev1beta1.Machine, t machinev1beta1.ConditionType) bool {
	for _, c := range m.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Condition returns a Machine's condition of type t, or nil.
func Condition(m *machinev1beta1.Machine, t machinev1beta1.ConditionType) *machinev1beta1.Condition {
	for i := range m.Status.Conditions {
		if m.Status.Conditions[i].Type == t {
			return &m.Status.Conditions[i]
		}
	}
	return nil
}

// InternalIP is the Machine's first InternalIP, or nil.
func InternalIP(m *machinev1beta1.Machine) net.IP {
	for _, a := range m.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip := net.ParseIP(a.Address); ip != nil {
				return ip
			}
		}
	}
	return nil
}
