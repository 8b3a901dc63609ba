package endpoints

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"

	operatorv1 "github.com/openshift/api/operator/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// KubeAPIServers reads kubeapiservers.operator.openshift.io; openshift/client-go's
// OperatorV1().KubeAPIServers() is one.
type KubeAPIServers interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*operatorv1.KubeAPIServer, error)
}

// OpenShiftPublisher keeps OpenShift's contract when quorumguard owns quorum protection: it
// maintains openshift-etcd/etcd-endpoints as the etcd operator would, and holds each removal
// until the kube-apiserver operator has rolled out, to every node, a revision that no longer
// dials the member.
type OpenShiftPublisher struct {
	// Client reads through to the apiserver and writes the ConfigMap.
	Client         client.Client
	KubeAPIServers KubeAPIServers
	// SkipRollout removes a member once etcd-endpoints leaves it out, without waiting for the
	// kube-apiserver rollout: the apiservers may then dial a removed member for a while.
	SkipRollout bool
}

// OpenShiftResult is one Sync.
type OpenShiftResult struct {
	// Active says the cluster has a kube-apiserver operator
	// (kubeapiservers.operator.openshift.io/cluster exists); when false nothing was written
	// and nothing is held by this contract.
	Active bool
	// Data is what etcd-endpoints lists after the Sync.
	Data map[string]string
	// Changed says this Sync wrote etcd-endpoints.
	Changed bool
	Rollout Rollout
	// Holds are the removals that must wait, by member ID, and why.
	Holds map[uint64]string
	// Err is the first thing that could not be read or written; the holds already account
	// for it.
	Err error
}

// Sync reads the kube-apiserver operator's state, brings etcd-endpoints up to date with the
// members and says which removals must wait. Whatever cannot be read holds every voting
// member's removal: none is made on a guess.
func (p *OpenShiftPublisher) Sync(ctx context.Context, members []Member, desired int) OpenShiftResult {
	res, ok := p.readRollout(ctx, members)
	if !ok {
		return res
	}
	want, err := OpenShiftData(members, desired)
	if err != nil {
		return holdAll(res, members, fmt.Errorf("%s/%s cannot be written: %w", EtcdEndpointsNamespace, EtcdEndpointsName, err))
	}
	bootstrap := false
	for _, m := range members {
		bootstrap = bootstrap || m.Name == BootstrapMember
	}
	res.Data, res.Changed, err = p.write(ctx, want, bootstrap, res.Rollout.Stable())
	if err != nil {
		held := holdAll(res, members, err)
		if res.Data == nil {
			return held
		}
		// What is stored still decides: a member it lists is held anyway.
		res = held
	}
	rollout := &res.Rollout
	if p.SkipRollout {
		rollout = nil
	}
	holds := RolloutHolds(members, res.Data, rollout)
	if res.Holds == nil {
		res.Holds = holds
	}
	return res
}

// Check is Sync without writing, for `quorumguard release`: the holds as the stored
// etcd-endpoints and the rollout stand now. An etcd-endpoints that does not exist lists
// nothing.
func (p *OpenShiftPublisher) Check(ctx context.Context, members []Member) OpenShiftResult {
	res, ok := p.readRollout(ctx, members)
	if !ok {
		return res
	}
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: EtcdEndpointsNamespace, Name: EtcdEndpointsName}
	switch err := p.Client.Get(ctx, key, &cm); {
	case apierrors.IsNotFound(err):
		res.Data = map[string]string{}
	case err != nil:
		return holdAll(res, members, fmt.Errorf("read ConfigMap %s: %w", key, err))
	default:
		res.Data = cm.Data
	}
	rollout := &res.Rollout
	if p.SkipRollout {
		rollout = nil
	}
	res.Holds = RolloutHolds(members, res.Data, rollout)
	return res
}

// readRollout reads the kube-apiserver operator's object and rollout. ok is false when
// there is nothing more to do: no such operator (an inactive result), or it cannot be read
// (every voting member held).
func (p *OpenShiftPublisher) readRollout(ctx context.Context, members []Member) (res OpenShiftResult, ok bool) {
	kas, err := p.KubeAPIServers.Get(ctx, KubeAPIServerName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return res, false
	case err != nil:
		res.Active = true
		return holdAll(res, members, fmt.Errorf("read kubeapiservers.operator.openshift.io/%s: %w", KubeAPIServerName, err)), false
	}
	res.Active = true
	res.Rollout = ReadRollout(ctx, p.Client, kas)
	return res, true
}

// holdAll is res with err recorded and every voting member's removal held for it.
func holdAll(res OpenShiftResult, members []Member, err error) OpenShiftResult {
	res.Err, res.Holds = err, map[uint64]string{}
	for _, m := range members {
		if m.Voting {
			res.Holds[m.ID] = fmt.Sprintf("removal waits: %v", err)
		}
	}
	return res
}

// write brings the ConfigMap's data to want (an empty want writes nothing) and carries the
// bootstrap annotation. It returns the data stored afterwards (nil when none could be read).
func (p *OpenShiftPublisher) write(ctx context.Context, want map[string]string, bootstrap, stable bool) (map[string]string, bool, error) {
	key := client.ObjectKey{Namespace: EtcdEndpointsNamespace, Name: EtcdEndpointsName}
	var cm corev1.ConfigMap
	err := p.Client.Get(ctx, key, &cm)
	switch {
	case apierrors.IsNotFound(err):
		if len(want) == 0 {
			return map[string]string{}, false, nil
		}
		cm = corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Annotations: map[string]string{}}, Data: want}
		if err := p.Client.Create(ctx, &cm); err != nil {
			return nil, false, fmt.Errorf("create ConfigMap %s: %w", key, err)
		}
		return want, true, nil
	case err != nil:
		return nil, false, fmt.Errorf("read ConfigMap %s: %w", key, err)
	}
	stored := maps.Clone(cm.Data)
	if stored == nil {
		stored = map[string]string{}
	}
	annotations, renamed := BootstrapAnnotations(cm.Annotations, bootstrap, stable)
	if (len(want) == 0 || maps.Equal(stored, want)) && !renamed {
		return stored, false, nil
	}
	if len(want) > 0 {
		cm.Data = want
	}
	cm.Annotations = annotations
	// A conflict is retried on the next pass; until then the stored data decides.
	if err := p.Client.Update(ctx, &cm); err != nil {
		return stored, false, fmt.Errorf("update ConfigMap %s: %w", key, err)
	}
	return maps.Clone(cm.Data), true, nil
}

// ReadRollout reads where the kube-apiserver's rollout stands: the operator's latest
// revision and nodes from kas, and the etcd servers of the latest revision and of each
// node's current one from their revision ConfigMaps.
func ReadRollout(ctx context.Context, r client.Reader, kas *operatorv1.KubeAPIServer) Rollout {
	out := Rollout{Latest: kas.Status.LatestAvailableRevision, Servers: map[int32][]string{}, Unread: map[int32]string{}}
	for _, n := range kas.Status.NodeStatuses {
		out.Nodes = append(out.Nodes, NodeRevision{Node: n.NodeName, Current: n.CurrentRevision, Target: n.TargetRevision})
	}
	if out.Latest == 0 {
		out.Unreadable = fmt.Sprintf("kubeapiservers.operator.openshift.io/%s has no latestAvailableRevision", KubeAPIServerName)
		return out
	}
	for _, rev := range out.Revisions() {
		servers, err := RevisionServers(ctx, r, rev)
		if err != nil {
			out.Unread[rev] = err.Error()
			continue
		}
		out.Servers[rev] = servers
	}
	return out
}

// RevisionServers reads the etcd servers kube-apiserver revision rev dials, from
// openshift-kube-apiserver/config-<rev>.
func RevisionServers(ctx context.Context, r client.Reader, rev int32) ([]string, error) {
	key := client.ObjectKey{Namespace: KubeAPIServerNamespace, Name: RevisionConfigPrefix + strconv.Itoa(int(rev))}
	var cm corev1.ConfigMap
	if err := r.Get(ctx, key, &cm); err != nil {
		return nil, fmt.Errorf("read ConfigMap %s: %w", key, err)
	}
	return ParseRevisionServers(cm.Data[RevisionConfigKey], key.String())
}

// ParseRevisionServers reads apiServerArguments["etcd-servers"] from a revision's
// KubeAPIServerConfig (YAML or JSON). A config that cannot be parsed, or names no etcd
// server, is an error: a revision that dials nothing is not one that left a member out.
func ParseRevisionServers(config, where string) ([]string, error) {
	var cfg struct {
		APIServerArguments map[string][]string `json:"apiServerArguments"`
	}
	if strings.TrimSpace(config) == "" {
		return nil, fmt.Errorf("%s has no %s", where, RevisionConfigKey)
	}
	if err := yaml.Unmarshal([]byte(config), &cfg); err != nil {
		return nil, fmt.Errorf("%s: %s is not a KubeAPIServerConfig: %w", where, RevisionConfigKey, err)
	}
	servers := cfg.APIServerArguments["etcd-servers"]
	if len(servers) == 0 {
		return nil, fmt.Errorf("%s: %s names no apiServerArguments.etcd-servers", where, RevisionConfigKey)
	}
	return servers, nil
}
