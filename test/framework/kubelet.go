package framework

import (
	"context"
	"net"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// KubeletOptions shape a kubelet stand-in.
type KubeletOptions struct {
	Client client.Client
	// Node is the Node's name; Role its machine role ("master", "arbiter", else a worker).
	Node, Role string
	ProviderID string
	IP         net.IP
	// Interval between pod passes; 250 ms when zero. The Lease is renewed every 2 s, well
	// inside the node lifecycle controller's grace period (NodeMonitorGracePeriod).
	Interval time.Duration
}

// Kubelet stands in for the kubelet of one instance, doing only what no controller here does:
// it registers the Node (named after the Machine, with its providerID and addresses, so that
// machine-api-operator's nodelink ties them), renews the Node's Lease and reports its Ready
// condition, runs the Pods bound to it (phase Running, Ready) and confirms their deletion once
// they are deleted, as a kubelet does when their containers have stopped. Whether the Node
// stays Ready without heartbeats, and what happens to its Pods then, is kube-controller-
// manager's node lifecycle controller's business.
type Kubelet struct {
	opts KubeletOptions
	name string

	mu      sync.Mutex
	paused  bool   // no heartbeats, no pod work: a hung instance
	ready   bool   // the Ready condition it reports while it runs
	message string // why it reports NotReady
}

// NewKubelet returns a kubelet stand-in; Run drives it.
func NewKubelet(opts KubeletOptions) *Kubelet {
	if opts.Interval == 0 {
		opts.Interval = 250 * time.Millisecond
	}
	return &Kubelet{opts: opts, name: opts.Node, ready: true}
}

// Start runs the kubelet until the returned stop is called; stop waits for it.
func (k *Kubelet) Start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); k.Run(ctx) }()
	return func() { cancel(); <-done }
}

// Hang stops the kubelet's heartbeats and pod work, as an instance that froze: the node
// lifecycle controller marks the Node Ready=Unknown after its grace period.
func (k *Kubelet) Hang() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.paused = true
}

// SetReady makes the kubelet report Ready (true) or NotReady with message (false).
func (k *Kubelet) SetReady(ready bool, message string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ready, k.message = ready, message
}

// Run registers the Node and keeps it until ctx ends; the Node itself is left to the Machine
// controller to delete, as a terminated instance's is.
func (k *Kubelet) Run(ctx context.Context) {
	t := time.NewTicker(k.opts.Interval)
	defer t.Stop()
	registered := false
	var lastStatus, lastLease time.Time
	for {
		k.mu.Lock()
		paused, ready, message := k.paused, k.ready, k.message
		k.mu.Unlock()
		if !paused {
			if !registered {
				registered = k.register(ctx) == nil
			}
			if registered {
				if time.Since(lastLease) > 2*time.Second && k.renewLease(ctx) == nil {
					lastLease = time.Now()
				}
				// The Node's status is posted every minute, or at once when readiness changes.
				if changed, err := k.postStatus(ctx, ready, message, time.Since(lastStatus) > time.Minute); err == nil && changed {
					lastStatus = time.Now()
				}
				k.pods(ctx)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (k *Kubelet) register(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: k.name, Labels: map[string]string{
			corev1.LabelHostname: k.name,
		}},
		Spec: corev1.NodeSpec{ProviderID: k.opts.ProviderID},
	}
	switch k.opts.Role {
	case "master":
		node.Labels["node-role.kubernetes.io/master"] = ""
		node.Labels["node-role.kubernetes.io/control-plane"] = ""
	case "arbiter":
		node.Labels["node-role.kubernetes.io/arbiter"] = ""
	default:
		node.Labels["node-role.kubernetes.io/worker"] = ""
	}
	if err := k.opts.Client.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	_, err := k.postStatus(ctx, true, "", true)
	return err
}

// postStatus writes the Node's addresses and Ready condition when readiness changed or force.
func (k *Kubelet) postStatus(ctx context.Context, ready bool, message string, force bool) (bool, error) {
	node := &corev1.Node{}
	if err := k.opts.Client.Get(ctx, client.ObjectKey{Name: k.name}, node); err != nil {
		return false, err
	}
	want := corev1.ConditionFalse
	reason := "KubeletNotReady"
	if ready {
		want, reason, message = corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"
	}
	now := metav1.Now()
	cond := corev1.NodeCondition{Type: corev1.NodeReady, Status: want, Reason: reason, Message: message, LastHeartbeatTime: now, LastTransitionTime: now}
	found := false
	for i := range node.Status.Conditions {
		c := &node.Status.Conditions[i]
		if c.Type != corev1.NodeReady {
			continue
		}
		found = true
		if c.Status == want && c.Message == message && !force {
			return false, nil
		}
		if c.Status == want {
			cond.LastTransitionTime = c.LastTransitionTime
		}
		*c = cond
	}
	if !found {
		node.Status.Conditions = append(node.Status.Conditions, cond)
	}
	node.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: k.opts.IP.String()},
		{Type: corev1.NodeHostName, Address: k.name},
	}
	return true, k.opts.Client.Status().Update(ctx, node)
}

func (k *Kubelet) renewLease(ctx context.Context) error {
	lease := &coordinationv1.Lease{}
	key := client.ObjectKey{Namespace: corev1.NamespaceNodeLease, Name: k.name}
	now := metav1.NewMicroTime(time.Now())
	err := k.opts.Client.Get(ctx, key, lease)
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity: ptr.To(k.name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now,
			},
		}
		return k.opts.Client.Create(ctx, lease)
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	return k.opts.Client.Update(ctx, lease)
}

// pods runs what is bound to the Node and confirms the deletion of what was deleted.
func (k *Kubelet) pods(ctx context.Context) {
	var list corev1.PodList
	if err := k.opts.Client.List(ctx, &list, client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("spec.nodeName", k.name)}); err != nil {
		return
	}
	for i := range list.Items {
		p := &list.Items[i]
		if p.DeletionTimestamp != nil {
			// The containers have stopped: the kubelet removes the Pod for good.
			_ = k.opts.Client.Delete(ctx, p, client.GracePeriodSeconds(0), client.Preconditions{UID: &p.UID})
			continue
		}
		if p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		now := metav1.Now()
		p.Status.Phase = corev1.PodRunning
		p.Status.HostIP = k.opts.IP.String()
		p.Status.StartTime = &now
		p.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}
		_ = k.opts.Client.Status().Update(ctx, p)
	}
}
