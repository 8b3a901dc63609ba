package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/framework"
)

// Replicas runs quorumguard as a Deployment would: two replicas with leader-for-life
// election, each with a Pod object that owns its lock, so that deleting a crashed leader's
// Pod lets the garbage collector free the lock for the standby.
type Replicas struct {
	c      *framework.Cluster
	o      app.Options
	prefix string

	// Tamper, a test-only seam, runs just before a paused leader is released in FencePaused,
	// as if that leader acted on resuming: it shows that the check sees an action.
	Tamper func(context.Context) error

	// on, when set, puts replica i's Pod on Node on[i] (a Machine's Node, with the cloud's
	// kubelet) instead of a Node of its own; a replica whose Pod is deleted there is stopped,
	// as the kubelet stops the container (Evicted records it).
	on []string

	mu      sync.Mutex
	next    int
	live    []*replica
	acts    []Acted
	evicted []string
}

// Acted is one action a replica completed without error, with the moment its pass ended.
// (An action refused by the fence, or failed, is not in it.)
type Acted struct {
	At      time.Time
	Replica string
	Action  quorum.Action
}

// Actions is every action the replicas have completed so far, in order.
func (rs *Replicas) Actions() []Acted {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]Acted(nil), rs.acts...)
}

type replica struct {
	pod  *corev1.Pod
	ctrl *Controller
	// kubelet runs on the replica's Node: it heartbeats (so the node lifecycle controller
	// keeps the Node Ready), and confirms the Pod's deletion.
	kubelet     *framework.Kubelet
	stopKubelet func()
	// pause, when set, is taken by the replica's next action: it blocks right after the
	// fencing token is taken and before the etcd call, as a process paused there would.
	pauseMu sync.Mutex
	pause   *Pause
	held    *Pause
}

// Pause is a replica held in the middle of an action.
type Pause struct {
	// Reached is closed with the held action once the replica reaches it.
	Reached chan quorum.Action
	release chan struct{}
	once    sync.Once
}

// Release lets the held replica go on.
func (p *Pause) Release() { p.once.Do(func() { close(p.release) }) }

// StartReplicas starts n replicas with options o (election and Pod fields are set here),
// named <prefix>-<i>, all electing on the lock <prefix>-lock.
func StartReplicas(ctx context.Context, c *framework.Cluster, o app.Options, prefix string, n int) (*Replicas, error) {
	return startReplicas(ctx, c, o, prefix, n, nil)
}

// StartReplicasOn starts one replica per named Node (the Nodes of the cluster's Machines), its
// Pod labelled app=<prefix> and bound there, as the Deployment's Pods on control-plane Nodes.
// A replica whose Pod is deleted (an eviction by a drain, say) is stopped, as the kubelet
// stops the container; Evicted names them.
func StartReplicasOn(ctx context.Context, c *framework.Cluster, o app.Options, prefix string, nodes []string) (*Replicas, error) {
	return startReplicas(ctx, c, o, prefix, len(nodes), nodes)
}

// Evicted names the replicas stopped because their Pod was deleted (StartReplicasOn).
func (rs *Replicas) Evicted() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]string(nil), rs.evicted...)
}

// Leader names the leading replica's Pod and its Node ("" while none leads).
func (rs *Replicas) Leader() (pod, node string) {
	if l := rs.leader(); l != nil {
		return l.pod.Name, l.pod.Spec.NodeName
	}
	return "", ""
}

func startReplicas(ctx context.Context, c *framework.Cluster, o app.Options, prefix string, n int, on []string) (*Replicas, error) {
	o.LeaderElect, o.ElectionNS, o.ElectionID = "for-life", framework.MachineNamespace, prefix+"-lock"
	rs := &Replicas{c: c, o: o, prefix: prefix, on: on}
	for range n {
		if err := rs.add(ctx); err != nil {
			_ = rs.Stop()
			return nil, err
		}
	}
	return rs, nil
}

func (rs *Replicas) add(ctx context.Context) error {
	rs.mu.Lock()
	name := fmt.Sprintf("%s-%d", rs.prefix, rs.next)
	rs.next++
	rs.mu.Unlock()
	// Each replica runs on a Node of its own, registered and kept Ready by its kubelet, so
	// that a Node going NotReady can be played (LoseLeaderNode); or on a Machine's Node.
	nodeName := name + "-node"
	var kubelet *framework.Kubelet
	stopKubelet := func() {}
	rs.mu.Lock()
	index := rs.next - 1
	rs.mu.Unlock()
	if index < len(rs.on) {
		nodeName = rs.on[index]
	} else {
		kubelet = framework.NewKubelet(framework.KubeletOptions{Client: rs.c.Client, Node: nodeName, Role: "worker", IP: net.IPv4(127, 0, 0, 1)})
		stopKubelet = kubelet.Start()
	}
	if err := framework.WaitFor(ctx, 30*time.Second, "Node "+nodeName+" Ready", func() (bool, error) {
		node := &corev1.Node{}
		if err := rs.c.Client.Get(ctx, client.ObjectKey{Name: nodeName}, node); err != nil {
			return false, nil //nolint:nilerr // not registered yet
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		stopKubelet()
		return err
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: framework.MachineNamespace, Labels: map[string]string{"app": rs.prefix}},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "quorumguard", Image: "quorumguard"}}}}
	err := framework.RideOut(ctx, "create Pod "+name, func() error { return rs.c.Client.Create(ctx, pod) })
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Pod %s: %w", name, err)
	}
	o := rs.o
	o.PodName = name
	r := &replica{pod: pod, kubelet: kubelet, stopKubelet: stopKubelet}
	ctrl, err := StartControllerWith(ctx, rs.c, o, func(a *app.Controller) error {
		// Every action that completed is recorded when its pass ends (status reporting, added
		// when the controller runs, chains after this).
		prev := a.Reconciler.Observer
		a.Reconciler.Observer = func(o controlplane.Observation) {
			if prev != nil {
				prev(o)
			}
			if o.Err == nil && o.Decision.Action.Kind != quorum.None {
				rs.mu.Lock()
				rs.acts = append(rs.acts, Acted{At: o.Time, Replica: name, Action: o.Decision.Action})
				rs.mu.Unlock()
			}
		}
		a.Reconciler.BeforeAct = func(ctx context.Context, act quorum.Action) {
			r.pauseMu.Lock()
			p := r.pause
			r.pause, r.held = nil, p
			r.pauseMu.Unlock()
			if p == nil {
				return
			}
			p.Reached <- act
			<-p.release
		}
		return nil
	})
	if err != nil {
		_ = rs.c.Client.Delete(context.Background(), pod, client.GracePeriodSeconds(0))
		stopKubelet()
		return err
	}
	r.ctrl = ctrl
	rs.mu.Lock()
	rs.live = append(rs.live, r)
	rs.mu.Unlock()
	if kubelet == nil {
		go rs.stopWhenDeleted(r)
	}
	return nil
}

// stopWhenDeleted stops a replica on a Machine's Node once its Pod is being deleted, as that
// Node's kubelet stops the container before it confirms the deletion.
func (rs *Replicas) stopWhenDeleted(r *replica) {
	for {
		time.Sleep(50 * time.Millisecond)
		rs.mu.Lock()
		live := slices.Contains(rs.live, r)
		rs.mu.Unlock()
		if !live {
			return // stopped or dropped by the test
		}
		var p corev1.Pod
		err := rs.c.Client.Get(context.Background(), client.ObjectKeyFromObject(r.pod), &p)
		if err == nil && p.DeletionTimestamp == nil {
			continue
		}
		if err != nil && !apierrors.IsNotFound(err) {
			continue
		}
		rs.drop(r)
		_ = r.ctrl.Stop()
		rs.mu.Lock()
		rs.evicted = append(rs.evicted, r.pod.Name)
		rs.mu.Unlock()
		return
	}
}

// leader is the live replica that holds the lock (the highest token among those elected).
func (rs *Replicas) leader() *replica {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var best *replica
	for _, r := range rs.live {
		if t := r.ctrl.App.Token.Load(); t > 0 && (best == nil || t > best.ctrl.App.Token.Load()) {
			best = r
		}
	}
	return best
}

// Token is the current leader's fencing token, 0 while none leads.
func (rs *Replicas) Token() uint64 {
	if l := rs.leader(); l != nil {
		return l.ctrl.App.Token.Load()
	}
	return 0
}

// WaitLeader waits until a live replica leads with a token above after.
func (rs *Replicas) WaitLeader(ctx context.Context, after uint64, timeout time.Duration) (uint64, error) {
	var tok uint64
	err := framework.WaitFor(ctx, timeout, fmt.Sprintf("a replica to lead with a token above %d", after), func() (bool, error) {
		tok = rs.Token()
		return tok > after, nil
	})
	return tok, err
}

func (rs *Replicas) drop(r *replica) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for i, x := range rs.live {
		if x == r {
			rs.live = append(rs.live[:i], rs.live[i+1:]...)
			return
		}
	}
}

// retire stops a dropped replica's kubelet and deletes its Node: the machine is gone.
func (rs *Replicas) retire(r *replica) {
	if r.kubelet == nil {
		return // a Machine's Node: the machine-api's to delete
	}
	r.stopKubelet()
	_ = rs.c.Client.Delete(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: r.pod.Spec.NodeName}})
}

// deletePod deletes a replica's Pod, as an eviction or a person would. The Pod is bound to
// a Node, so the apiserver keeps it terminating until that Node's kubelet confirms the
// deletion; deletePod returns once the Pod is gone.
func (rs *Replicas) deletePod(ctx context.Context, r *replica) error {
	err := framework.RideOut(ctx, "delete Pod "+r.pod.Name, func() error { return rs.c.Client.Delete(ctx, r.pod) })
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Pod %s: %w", r.pod.Name, err)
	}
	return framework.WaitFor(ctx, 30*time.Second, "the kubelet to confirm the deletion of Pod "+r.pod.Name, func() (bool, error) {
		err := rs.c.Client.Get(ctx, client.ObjectKeyFromObject(r.pod), &corev1.Pod{})
		return apierrors.IsNotFound(err), nil
	})
}

// CrashLeader kills the leading replica with no hand-over, deletes its Pod, and starts a
// new replica in its place, as a Deployment would; it returns once some replica leads again.
func (rs *Replicas) CrashLeader(ctx context.Context) error {
	l := rs.leader()
	if l == nil {
		return errors.New("no replica leads")
	}
	old := l.ctrl.App.Token.Load()
	err := l.ctrl.Stop()
	rs.drop(l)
	if err != nil && !strings.Contains(err.Error(), "context canceled") {
		return fmt.Errorf("stop leader %s: %w", l.pod.Name, err)
	}
	if err := rs.deletePod(ctx, l); err != nil {
		return err
	}
	rs.retire(l)
	if err := rs.add(ctx); err != nil {
		return err
	}
	_, err = rs.WaitLeader(ctx, old, time.Minute)
	return err
}

// setNodeReady sets a replica Node's Ready condition, as its kubelet (or, for NotReady, the
// node lifecycle controller) would.
func (rs *Replicas) setNodeReady(ctx context.Context, name string, status corev1.ConditionStatus) error {
	return framework.RideOut(ctx, "set Node "+name+" Ready="+string(status), func() error {
		// The node lifecycle controller writes the Node too: a conflict is read again.
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			node := &corev1.Node{}
			if err := rs.c.Client.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
				return err
			}
			now := metav1.Now()
			node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, LastHeartbeatTime: now, LastTransitionTime: now, Reason: "Simulated"}}
			return rs.c.Client.Status().Update(ctx, node)
		})
	})
}

// LoseLeaderNode plays the leader's Node going NotReady with the leader on it: the replica
// stops (the machine is down) but its Pod stays, as Pods on an unreachable Node do for
// minutes. Under leader-for-life only the standby's Node check frees the lock. It returns the
// old and new tokens once another replica leads, after checking that the old leader's Pod was
// deleted, and starts a replica in its place as the Deployment would.
func (rs *Replicas) LoseLeaderNode(ctx context.Context, within time.Duration) (uint64, uint64, error) {
	l := rs.leader()
	if l == nil {
		return 0, 0, errors.New("no replica leads")
	}
	old := l.ctrl.App.Token.Load()
	// The machine is down: its kubelet stops, and the node lifecycle controller would mark
	// the Node NotReady after its grace period; the test does that at once.
	l.kubelet.Hang()
	if err := rs.setNodeReady(ctx, l.pod.Spec.NodeName, corev1.ConditionFalse); err != nil {
		return old, 0, err
	}
	err := l.ctrl.Stop()
	rs.drop(l)
	if err != nil && !strings.Contains(err.Error(), "context canceled") {
		return old, 0, fmt.Errorf("stop leader %s: %w", l.pod.Name, err)
	}
	tok, err := rs.WaitLeader(ctx, old, within)
	if err != nil {
		return old, 0, fmt.Errorf("nobody took over from the leader on NotReady Node %s: %w", l.pod.Spec.NodeName, err)
	}
	var gone corev1.Pod
	switch err := rs.c.Client.Get(ctx, client.ObjectKeyFromObject(l.pod), &gone); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return old, tok, fmt.Errorf("read the old leader's Pod %s: %w", l.pod.Name, err)
	case gone.DeletionTimestamp == nil:
		return old, tok, fmt.Errorf("a replica leads (token %d) but the old leader's Pod %s on the NotReady Node is still there", tok, l.pod.Name)
	}
	rs.retire(l)
	return old, tok, rs.add(ctx)
}

// PauseLeader arms the leader to stop at its next action and returns the pause, with the
// paused replica's token.
func (rs *Replicas) PauseLeader() (*Pause, uint64, error) {
	l := rs.leader()
	if l == nil {
		return nil, 0, errors.New("no replica leads")
	}
	p := &Pause{Reached: make(chan quorum.Action, 1), release: make(chan struct{})}
	l.pauseMu.Lock()
	l.pause = p
	l.pauseMu.Unlock()
	return p, l.ctrl.App.Token.Load(), nil
}

// FencePaused deletes the Pod of the replica holding token (so the standby takes over), waits
// until another replica leads and then for extra (the new leader's work), releases the pause,
// and waits for the old leader to step down by itself. A new replica replaces it.
func (rs *Replicas) FencePaused(ctx context.Context, p *Pause, token uint64, extra time.Duration) error {
	var old *replica
	rs.mu.Lock()
	for _, r := range rs.live {
		if r.ctrl.App.Token.Load() == token {
			old = r
		}
	}
	rs.mu.Unlock()
	if old == nil {
		p.Release()
		return fmt.Errorf("no live replica holds token %d", token)
	}
	if err := rs.deletePod(ctx, old); err != nil {
		p.Release()
		return err
	}
	newToken, err := rs.WaitLeader(ctx, token, time.Minute)
	if err != nil {
		p.Release()
		return err
	}
	time.Sleep(extra)
	// The new leader is stopped (its Pod kept, so it keeps the lock and nobody else leads),
	// so that whatever changes from here on can only be the paused leader's doing.
	var successor *replica
	rs.mu.Lock()
	for _, r := range rs.live {
		if r != old && r.ctrl.App.Token.Load() == newToken {
			successor = r
		}
	}
	rs.mu.Unlock()
	if successor == nil {
		p.Release()
		return fmt.Errorf("no live replica holds the new token %d", newToken)
	}
	_ = successor.ctrl.Stop()
	rs.drop(successor)
	// Event times have whole seconds: one more keeps the successor's last ones out.
	time.Sleep(1100 * time.Millisecond)
	before, err := TakeFootprint(ctx, rs.c)
	if err != nil {
		p.Release()
		return err
	}
	if rs.Tamper != nil {
		if err := rs.Tamper(ctx); err != nil {
			p.Release()
			return err
		}
	}
	p.Release()
	var stepDown error
	select {
	case stepDown = <-old.ctrl.Done():
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the paused leader %s (token %d) did not step down within 30s of resuming", old.pod.Name, token)
	}
	rs.drop(old)
	rs.retire(old)
	if stepDown == nil || !strings.Contains(stepDown.Error(), "stepped down") {
		return fmt.Errorf("the paused leader %s exited with %w, want a step-down", old.pod.Name, stepDown)
	}
	after, err := TakeFootprint(ctx, rs.c)
	if err != nil {
		return err
	}
	changes := after.Changes(before)
	events, err := EventsSince(ctx, rs.c, before, before.At)
	if err != nil {
		return err
	}
	if len(changes) > 0 || len(events) > 0 {
		return fmt.Errorf("the paused leader %s (token %d) acted between resuming and stepping down: %s; events: %v",
			old.pod.Name, token, strings.Join(changes, "; "), events)
	}
	// The stopped successor's Pod goes, as the kubelet would report it, and two replicas run
	// again.
	if err := rs.deletePod(ctx, successor); err != nil {
		return err
	}
	rs.retire(successor)
	for range 2 {
		if err := rs.add(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops every replica and deletes their Pods.
func (rs *Replicas) Stop() error {
	rs.mu.Lock()
	live := rs.live
	rs.live = nil
	rs.mu.Unlock()
	var errs []error
	for _, r := range live {
		r.pauseMu.Lock()
		for _, p := range []*Pause{r.pause, r.held} {
			if p != nil {
				p.Release()
			}
		}
		r.pauseMu.Unlock()
		if err := r.ctrl.Stop(); err != nil && !strings.Contains(err.Error(), "context canceled") && !strings.Contains(err.Error(), "stepped down") {
			errs = append(errs, err)
		}
		_ = rs.c.Client.Delete(context.Background(), r.pod, client.GracePeriodSeconds(0))
		if r.kubelet != nil {
			r.stopKubelet()
			_ = rs.c.Client.Delete(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: r.pod.Spec.NodeName}})
		}
	}
	return errors.Join(errs...)
}
