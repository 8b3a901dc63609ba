package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	operatorv1 "github.com/openshift/api/operator/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/endpoints"
	"github.com/quorumguard/quorumguard/pkg/openshift"
)

// KASRevision is one revision the stand-in kube-apiserver operator made.
type KASRevision struct {
	Revision int32
	Servers  []string
	At       time.Time
}

// KASNodeRollout is one node moved to a revision.
type KASNodeRollout struct {
	Node     string
	Revision int32
	At       time.Time
	// Restarted says the apiserver process was restarted onto the revision's servers here;
	// Down is how long the API was away.
	Restarted bool
	Down      time.Duration
	Err       error
}

// KubeAPIServerOperator stands in for OpenShift's kube-apiserver operator on a protected
// cluster, as strict as the real one where quorumguard reads it:
//   - it follows openshift-etcd/etcd-endpoints (each data value an IP; the bootstrap
//     annotation's IP too), and when the etcd servers it derives (https://<ip>:2379, sorted)
//     differ from the latest revision's, it makes revision N+1: the ConfigMap
//     openshift-kube-apiserver/config-<N+1> with a KubeAPIServerConfig whose
//     apiServerArguments["etcd-servers"] are those servers, then raises
//     kubeapiservers.operator.openshift.io/cluster status.latestAvailableRevision;
//   - it keeps status.nodeStatuses to the control-plane Nodes (node-role.kubernetes.io/master),
//     a new node first without a revision, as the CRD demands, and rolls the latest
//     revision out one node at a time: targetRevision on that node alone, the restart, then
//     currentRevision, with Step between nodes;
//   - the test world has one kube-apiserver process for all nodes: it is restarted onto the
//     new servers when the first node rolls, so no node reports a revision the process does
//     not run. The real operator also appends https://localhost:2379, the node's own member;
//     there is no such member here, so it is left out.
//
// Stick keeps a node on its revision (a rollout stuck on one node). Every iteration, before
// any node moves, it checks the invariant quorumguard promises: no etcd member is removed
// while a node's current revision still dials it (Violations).
type KubeAPIServerOperator struct {
	c    *Cluster
	oc   *openshift.Clients
	Step time.Duration

	mu         sync.Mutex
	stuck      map[string]bool
	revisions  []KASRevision
	rollouts   []KASNodeRollout
	violations []string
	// etcd is the invariant check's client, made on first use and closed by Stop.
	etcd   *clientv3.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// StartKubeAPIServerOperator creates the namespaces, the kube-apiserver operator's object
// and revision 1 (the servers the apiserver runs on now, on every control-plane Node), and
// starts following etcd-endpoints. Stop it before the cluster.
func (c *Cluster) StartKubeAPIServerOperator(ctx context.Context) (*KubeAPIServerOperator, error) {
	oc, err := openshift.NewClients(c.CP.Config)
	if err != nil {
		return nil, err
	}
	o := &KubeAPIServerOperator{c: c, oc: oc, Step: 300 * time.Millisecond, stuck: map[string]bool{}, done: make(chan struct{})}
	if err := CreateKubeAPIServer(ctx, c.Client, oc); err != nil {
		return nil, err
	}
	servers := slices.Clone(c.CP.EtcdServers())
	sort.Strings(servers)
	if err := o.makeRevision(ctx, 1, servers); err != nil {
		return nil, err
	}
	if err := o.syncNodes(ctx); err != nil {
		return nil, err
	}
	// The install left every node on revision 1.
	if err := o.update(ctx, func(kas *operatorv1.KubeAPIServer) {
		for i := range kas.Status.NodeStatuses {
			kas.Status.NodeStatuses[i].CurrentRevision = 1
		}
	}); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	go o.run(rctx)
	return o, nil
}

// Stick keeps node on its current revision until Unstick.
func (o *KubeAPIServerOperator) Stick(node string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stuck[node] = true
}

// Unstick lets node roll out again.
func (o *KubeAPIServerOperator) Unstick(node string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.stuck, node)
}

// Revisions are the revisions made, in order; Rollouts the nodes moved, in order.
func (o *KubeAPIServerOperator) Revisions() []KASRevision {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.revisions)
}

// Rollouts are the node moves made so far, in order.
func (o *KubeAPIServerOperator) Rollouts() []KASNodeRollout {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.rollouts)
}

// Violations are the members seen removed from etcd while a node's current revision still
// dialled them.
func (o *KubeAPIServerOperator) Violations() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.violations)
}

// Stop stops following etcd-endpoints.
func (o *KubeAPIServerOperator) Stop() {
	o.cancel()
	<-o.done
	if o.etcd != nil {
		_ = o.etcd.Close()
	}
}

func (o *KubeAPIServerOperator) run(ctx context.Context) {
	defer close(o.done)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(o.Step):
		}
		if err := o.pass(ctx); err != nil && ctx.Err() == nil {
			// The API restarting, or etcd without quorum: try again.
			continue
		}
	}
}

// pass is one iteration: check the invariant, follow etcd-endpoints, keep the nodes, move
// one node.
func (o *KubeAPIServerOperator) pass(ctx context.Context) error {
	kas, err := o.oc.Operator.OperatorV1().KubeAPIServers().Get(ctx, endpoints.KubeAPIServerName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if err := o.check(ctx, kas); err != nil {
		return err
	}
	if err := o.follow(ctx, kas); err != nil {
		return err
	}
	if err := o.syncNodes(ctx); err != nil {
		return err
	}
	return o.rollOne(ctx)
}

// check records a violation for each member a node's current revision dials that is no
// longer in etcd.
func (o *KubeAPIServerOperator) check(ctx context.Context, kas *operatorv1.KubeAPIServer) error {
	if o.etcd == nil {
		cli, err := o.c.EtcdClient()
		if err != nil {
			return err
		}
		o.etcd = cli
	}
	cli := o.etcd
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	list, err := cli.MemberList(lctx)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, m := range list.Members {
		for _, u := range m.PeerURLs {
			if p, err := url.Parse(u); err == nil {
				live[p.Hostname()] = true
			}
		}
	}
	for _, n := range kas.Status.NodeStatuses {
		if n.CurrentRevision == 0 {
			continue
		}
		servers, err := endpoints.RevisionServers(ctx, o.c.Client, n.CurrentRevision)
		if err != nil {
			return err
		}
		for _, s := range servers {
			p, err := url.Parse(s)
			if err != nil || live[p.Hostname()] {
				continue
			}
			v := fmt.Sprintf("node %s runs revision %d, which dials %s, no longer an etcd member", n.NodeName, n.CurrentRevision, p.Hostname())
			o.mu.Lock()
			if !slices.Contains(o.violations, v) {
				o.violations = append(o.violations, v)
				fmt.Fprintf(os.Stderr, "kube-apiserver operator: VIOLATION: %s\n", v)
			}
			o.mu.Unlock()
		}
	}
	return nil
}

// follow makes a new revision when etcd-endpoints names other servers than the latest.
func (o *KubeAPIServerOperator) follow(ctx context.Context, kas *operatorv1.KubeAPIServer) error {
	var cm corev1.ConfigMap
	err := o.c.Client.Get(ctx, client.ObjectKey{Namespace: endpoints.EtcdEndpointsNamespace, Name: endpoints.EtcdEndpointsName}, &cm)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var servers []string
	ips := make([]string, 0, len(cm.Data)+1)
	for _, ip := range cm.Data {
		ips = append(ips, ip)
	}
	if ip, ok := cm.Annotations[endpoints.BootstrapAnnotation]; ok {
		ips = append(ips, ip)
	}
	for _, ip := range ips {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("etcd-endpoints: %q is not an IP", ip)
		}
		servers = append(servers, "https://"+net.JoinHostPort(ip, "2379"))
	}
	if len(servers) == 0 {
		return nil
	}
	sort.Strings(servers)
	latest := kas.Status.LatestAvailableRevision
	cur, err := endpoints.RevisionServers(ctx, o.c.Client, latest)
	if err != nil {
		return err
	}
	if slices.Equal(cur, servers) {
		return nil
	}
	return o.makeRevision(ctx, latest+1, servers)
}

// CreateKubeAPIServer creates the namespaces of OpenShift's endpoint contract and the
// kube-apiserver operator's object, kubeapiservers/cluster (Managed, no status yet).
func CreateKubeAPIServer(ctx context.Context, c client.Client, oc *openshift.Clients) error {
	for _, ns := range []string{endpoints.EtcdEndpointsNamespace, endpoints.KubeAPIServerNamespace} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	kas := &operatorv1.KubeAPIServer{ObjectMeta: metav1.ObjectMeta{Name: endpoints.KubeAPIServerName},
		Spec: operatorv1.KubeAPIServerSpec{StaticPodOperatorSpec: operatorv1.StaticPodOperatorSpec{OperatorSpec: operatorv1.OperatorSpec{ManagementState: operatorv1.Managed}}}}
	if _, err := oc.Operator.OperatorV1().KubeAPIServers().Create(ctx, kas, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create kubeapiservers/cluster: %w", err)
	}
	return nil
}

// WriteRevision writes openshift-kube-apiserver/config-<rev>, a KubeAPIServerConfig whose
// etcd servers are servers, as the kube-apiserver operator does; one already there is kept.
func WriteRevision(ctx context.Context, c client.Client, rev int32, servers []string) error {
	cfg := map[string]any{"apiVersion": "kubecontrolplane.config.openshift.io/v1", "kind": "KubeAPIServerConfig",
		"apiServerArguments": map[string][]string{"etcd-servers": servers}}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: endpoints.KubeAPIServerNamespace, Name: endpoints.RevisionConfigPrefix + strconv.Itoa(int(rev))},
		Data: map[string]string{endpoints.RevisionConfigKey: string(raw)}}
	if err := c.Create(ctx, cm); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// SetKubeAPIServerRevisions sets kubeapiservers/cluster's latestAvailableRevision and each
// named node's currentRevision. A node status not there yet is first written without a
// revision, as the CRD demands.
func SetKubeAPIServerRevisions(ctx context.Context, oc *openshift.Clients, latest int32, nodes map[string]int32) error {
	kases := oc.Operator.OperatorV1().KubeAPIServers()
	kas, err := kases.Get(ctx, endpoints.KubeAPIServerName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, n := range kas.Status.NodeStatuses {
		known[n.NodeName] = true
	}
	names := slices.Sorted(maps.Keys(nodes))
	for _, n := range names {
		if !known[n] {
			kas.Status.NodeStatuses = append(kas.Status.NodeStatuses, operatorv1.NodeStatus{NodeName: n})
		}
	}
	if kas, err = kases.UpdateStatus(ctx, kas, metav1.UpdateOptions{}); err != nil {
		return err
	}
	kas.Status.LatestAvailableRevision = latest
	for i, n := range kas.Status.NodeStatuses {
		if rev, ok := nodes[n.NodeName]; ok {
			kas.Status.NodeStatuses[i].CurrentRevision = rev
		}
	}
	_, err = kases.UpdateStatus(ctx, kas, metav1.UpdateOptions{})
	return err
}

func (o *KubeAPIServerOperator) makeRevision(ctx context.Context, rev int32, servers []string) error {
	if err := WriteRevision(ctx, o.c.Client, rev, servers); err != nil {
		return err
	}
	if err := o.update(ctx, func(kas *operatorv1.KubeAPIServer) { kas.Status.LatestAvailableRevision = rev }); err != nil {
		return err
	}
	o.mu.Lock()
	o.revisions = append(o.revisions, KASRevision{Revision: rev, Servers: servers, At: time.Now()})
	o.mu.Unlock()
	return nil
}

// syncNodes keeps one node status per control-plane Node.
func (o *KubeAPIServerOperator) syncNodes(ctx context.Context) error {
	var nodes corev1.NodeList
	if err := o.c.Client.List(ctx, &nodes, client.HasLabels{"node-role.kubernetes.io/master"}); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, n := range nodes.Items {
		want[n.Name] = true
	}
	return o.update(ctx, func(kas *operatorv1.KubeAPIServer) {
		var keep []operatorv1.NodeStatus
		have := map[string]bool{}
		for _, n := range kas.Status.NodeStatuses {
			if want[n.NodeName] {
				keep = append(keep, n)
				have[n.NodeName] = true
			}
		}
		for _, n := range nodes.Items {
			if !have[n.Name] {
				keep = append(keep, operatorv1.NodeStatus{NodeName: n.Name})
			}
		}
		kas.Status.NodeStatuses = keep
	})
}

// rollOne moves the first node (by name) behind the latest revision, unless it is stuck.
func (o *KubeAPIServerOperator) rollOne(ctx context.Context) error {
	kas, err := o.oc.Operator.OperatorV1().KubeAPIServers().Get(ctx, endpoints.KubeAPIServerName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	latest := kas.Status.LatestAvailableRevision
	nodes := slices.Clone(kas.Status.NodeStatuses)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].NodeName < nodes[j].NodeName })
	o.mu.Lock()
	stuck := maps.Clone(o.stuck)
	o.mu.Unlock()
	for _, n := range nodes {
		if n.CurrentRevision >= latest || stuck[n.NodeName] {
			continue
		}
		node := n.NodeName
		if err := o.update(ctx, func(kas *operatorv1.KubeAPIServer) {
			setNode(kas, node, func(s *operatorv1.NodeStatus) { s.TargetRevision = latest })
		}); err != nil {
			return err
		}
		r := KASNodeRollout{Node: node, Revision: latest}
		servers, err := endpoints.RevisionServers(ctx, o.c.Client, latest)
		if err != nil {
			return err
		}
		if !slices.Equal(sortedCopy(o.c.CP.EtcdServers()), servers) {
			start := time.Now()
			r.Restarted, r.Err = true, o.c.CP.RestartAPIServerOn(servers)
			r.Down = time.Since(start)
			if r.Err != nil {
				fmt.Fprintf(os.Stderr, "kube-apiserver operator: revision %d on %s: %v\n", latest, node, r.Err)
			}
		}
		if r.Err == nil {
			r.Err = WaitFor(ctx, time.Minute, "node "+node+"'s revision to be recorded", func() (bool, error) {
				err := o.update(ctx, func(kas *operatorv1.KubeAPIServer) {
					setNode(kas, node, func(s *operatorv1.NodeStatus) { s.CurrentRevision, s.TargetRevision = latest, 0 })
				})
				return err == nil, err
			})
		}
		r.At = time.Now()
		o.mu.Lock()
		o.rollouts = append(o.rollouts, r)
		o.mu.Unlock()
		return r.Err
	}
	return nil
}

func setNode(kas *operatorv1.KubeAPIServer, node string, f func(*operatorv1.NodeStatus)) {
	for i := range kas.Status.NodeStatuses {
		if kas.Status.NodeStatuses[i].NodeName == node {
			f(&kas.Status.NodeStatuses[i])
		}
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

// update changes the kube-apiserver operator's status, retried on a conflict.
func (o *KubeAPIServerOperator) update(ctx context.Context, change func(*operatorv1.KubeAPIServer)) error {
	kases := o.oc.Operator.OperatorV1().KubeAPIServers()
	for {
		kas, err := kases.Get(ctx, endpoints.KubeAPIServerName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(kas)
		_, err = kases.UpdateStatus(ctx, kas, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return err
		}
	}
}
