// Package leader elects the one quorumguard replica that may change etcd membership or release
// a hook, and gives that leadership a fencing token.
//
// Leader-for-life follows the Operator SDK: the leader is whoever created a ConfigMap lock whose
// only owner reference is its own Pod; the lock disappears only when the garbage collector
// removes it after that Pod is deleted. Unlike the SDK, a standby watches the lock instead of
// polling with a backoff that grows to 16 s, so it takes over as soon as the lock is gone. An
// evicted or preempted leader Pod is deleted by the standby, and a leader on a NotReady Node is
// deleted together with its lock, as the SDK does. Where the SDK returns on any unexpected
// API error (and the container restarts), Become waits out an apiserver that is briefly away,
// with a backoff up to 2 s (a standby asleep for longer once the apiserver is back would take
// over that much later); a missing or forbidden own Pod still fails at once.
//
// In a cluster (the service-account namespace file exists) a leader-for-life candidate needs
// POD_NAME, and its absence is an error: skipping the election there would let every replica
// act. Only outside a cluster is the election skipped (ErrNotInCluster).
//
// Neither leader-for-life nor a lease stops a paused old leader from acting when it wakes up.
// Each leadership therefore claims a fencing token the moment it is elected, before it acts:
// the token is handed out by the etcd fence itself (TokenStore, pkg/etcdmember's ClaimToken),
// larger than any token stored there, and stored at once, so every older leadership is
// refused from that moment on. A leader-for-life also keeps the token in an epoch ConfigMap
// beside the lock (<lock>-epoch) and claims above it, so the count survives the loss of
// either record; a record that cannot be read stops the replica rather than restart the count.
// Since every mode claims from the same etcd key, switching between for-life, lease and no
// election never hands out a smaller token. Token re-reads the lock so an old leader learns
// it lost, and pkg/etcdmember's fence refuses any membership change carrying a token smaller
// than one already seen.
package leader

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrNotInCluster means there is no Pod to own a lock outside a cluster: election is skipped,
// as the SDK does.
var ErrNotInCluster = errors.New("not running in a cluster (no POD_NAME and no namespace): leader election skipped")

// ErrNoPodName: in a cluster, a candidate without POD_NAME cannot own the lock, and skipping
// the election would let every replica act.
var ErrNoPodName = errors.New("POD_NAME is not set: in a cluster, leader-for-life needs the replica's Pod name; " +
	"set the POD_NAME environment variable from the downward API (valueFrom.fieldRef.fieldPath: metadata.name)")

// CorruptEpochError: the epoch ConfigMap holds no readable token. The replica stops rather
// than guess a value that could be below a token already handed out.
type CorruptEpochError struct {
	// Object is namespace/name of the ConfigMap.
	Object string
	Value  string
}

func (e *CorruptEpochError) Error() string {
	return fmt.Sprintf("epoch ConfigMap %s holds token %q, which is not a number; fix it by hand (or delete it: the count then continues from the etcd fence)", e.Object, e.Value)
}

// ErrNotLeader is returned by Token once this process no longer holds the lock.
var ErrNotLeader = errors.New("this replica no longer holds the leader lock")

// ForLife is a leader-for-life candidate.
type ForLife struct {
	// Client must read from the apiserver directly (not a cache) and be able to watch.
	Client    client.WithWatch
	Namespace string
	LockName  string
	PodName   string
	Log       logr.Logger
	// Recheck is how often a waiting standby re-examines the leader Pod and Node even without
	// an event; 5 s when zero.
	Recheck time.Duration
	// Store hands out the fencing token at election; required.
	Store TokenStore
	// InCluster says this process runs in a Pod (the service-account namespace file exists):
	// a missing PodName is then ErrNoPodName instead of ErrNotInCluster.
	InCluster bool
	// Locked, when set, is called each time Become finds the lock is this Pod's, created or
	// found, before the token is claimed: from then on this replica reports (Holds) though it
	// may not yet change anything (Token).
	Locked func()

	// pod is this replica's Pod once Become has read it; Holds reads it from other goroutines.
	pod   atomic.Pointer[corev1.Pod]
	token uint64
}

// Become blocks until this Pod leads and has claimed its fencing token, and returns the
// token. The token is stored in the etcd fence before Become returns, so an older leader is
// refused from then on, before this one acts. A stored token that cannot be read ends Become
// with an error; an unreachable etcd or apiserver is waited out.
// MaxRetryBackoff is the longest a leader-for-life candidate waits before it asks an
// apiserver that was away again.
const MaxRetryBackoff = 2 * time.Second

func (l *ForLife) Become(ctx context.Context) (uint64, error) {
	if l.PodName == "" && l.InCluster {
		return 0, ErrNoPodName
	}
	if l.PodName == "" || l.Namespace == "" {
		l.Log.Info("leader election skipped: not running in a cluster", "POD_NAME", l.PodName, "namespace", l.Namespace)
		return 0, ErrNotInCluster
	}
	if l.Store == nil {
		return 0, ErrNoTokenStore
	}
	if l.Recheck == 0 {
		l.Recheck = 5 * time.Second
	}
	// An apiserver that is briefly away (a restart, a network blip) is waited out with a
	// backoff; only a missing own Pod (a wrong POD_NAME) or the end of ctx ends the wait. The
	// backoff stops at 2 s: a standby is asleep in it when the leader's Pod goes right after
	// the apiserver is back, and takes over only when it wakes.
	backoff := time.Duration(0)
	retry := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		backoff = min(max(2*backoff, 500*time.Millisecond), MaxRetryBackoff)
		l.Log.Error(err, "leader election: will retry", "after", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
			return nil
		}
	}
	pod := &corev1.Pod{}
	for {
		err := l.Client.Get(ctx, client.ObjectKey{Namespace: l.Namespace, Name: l.PodName}, pod)
		if err == nil {
			break
		}
		err = fmt.Errorf("read own Pod %s/%s (POD_NAME): %w", l.Namespace, l.PodName, err)
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			return 0, err
		}
		if rerr := retry(err); rerr != nil {
			return 0, rerr
		}
	}
	l.pod.Store(pod)
	owner := metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}
	for {
		token, err := l.try(ctx, owner)
		switch {
		case err != nil && Corrupt(err):
			return 0, err
		case err != nil:
			if rerr := retry(err); rerr != nil {
				return 0, rerr
			}
		case token > 0:
			return token, nil
		default:
			backoff = 0
		}
	}
}

// try is one round of Become: it takes the lock and claims a token (which is never 0), or
// waits until the lock is gone or Recheck passes (0, no error), or fails (to be retried).
func (l *ForLife) try(ctx context.Context, owner metav1.OwnerReference) (uint64, error) {
	lock := &corev1.ConfigMap{}
	err := l.Client.Get(ctx, l.key(), lock)
	switch {
	case err == nil && ownedBy(lock, owner.UID):
		l.Log.Info("found my own lock; continuing as the leader", "lock", l.LockName)
		l.locked()
		return l.claimToken(ctx)
	case err == nil:
		if err := l.handleLeader(ctx, lock); err != nil {
			return 0, err
		}
		return 0, l.waitGone(ctx, lock.ResourceVersion)
	case !apierrors.IsNotFound(err):
		return 0, fmt.Errorf("read lock %s/%s: %w", l.Namespace, l.LockName, err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: l.LockName, Namespace: l.Namespace, OwnerReferences: []metav1.OwnerReference{owner}}}
	if err := l.Client.Create(ctx, cm); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("create lock %s/%s: %w", l.Namespace, l.LockName, err)
	}
	l.Log.Info("became the leader", "lock", l.LockName, "pod", owner.Name)
	l.locked()
	return l.claimToken(ctx)
}

func (l *ForLife) locked() {
	if l.Locked != nil {
		l.Locked()
	}
}

func (l *ForLife) key() client.ObjectKey {
	return client.ObjectKey{Namespace: l.Namespace, Name: l.LockName}
}

func ownedBy(cm *corev1.ConfigMap, uid types.UID) bool {
	refs := cm.GetOwnerReferences()
	return len(refs) == 1 && refs[0].Kind == "Pod" && refs[0].UID == uid
}

// handleLeader deals with a leader Pod that will never give the lock up by itself.
func (l *ForLife) handleLeader(ctx context.Context, lock *corev1.ConfigMap) error {
	refs := lock.GetOwnerReferences()
	if len(refs) != 1 || refs[0].Kind != "Pod" {
		l.Log.Info("lock does not have exactly one Pod owner; waiting", "lock", l.LockName, "owners", refs)
		return nil
	}
	leader := &corev1.Pod{}
	err := l.Client.Get(ctx, client.ObjectKey{Namespace: l.Namespace, Name: refs[0].Name}, leader)
	switch {
	case apierrors.IsNotFound(err):
		l.Log.Info("leader Pod is gone; waiting for the garbage collector to delete the lock", "leader", refs[0].Name)
		return nil
	case err != nil:
		return fmt.Errorf("read leader Pod %s: %w", refs[0].Name, err)
	case leader.DeletionTimestamp != nil:
		return nil
	case leader.Status.Phase == corev1.PodFailed || leader.Status.Phase == corev1.PodSucceeded:
		// A Pod in a terminal phase never runs again, whatever the reason (evicted,
		// preempted, its containers exited under restartPolicy Never or OnFailure, a Node
		// shutdown): its lock would otherwise stay until someone deletes the Pod. The SDK
		// frees it only for an eviction.
		l.Log.Info("leader Pod has stopped for good; deleting it so that its lock goes", "leader", leader.Name, "phase", leader.Status.Phase, "reason", leader.Status.Reason)
		if err := l.Client.Delete(ctx, leader); err != nil && !apierrors.IsNotFound(err) {
			l.Log.Error(err, "could not delete the leader Pod", "leader", leader.Name)
		}
	case l.nodeNotReady(ctx, leader.Spec.NodeName):
		l.Log.Info("leader Pod's Node is NotReady; deleting the leader Pod and the lock", "leader", leader.Name, "node", leader.Spec.NodeName)
		if err := l.Client.Delete(ctx, leader); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete leader Pod %s on NotReady Node %s: %w", leader.Name, leader.Spec.NodeName, err)
		}
		if err := l.Client.Delete(ctx, lock, client.Preconditions{UID: &lock.UID}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete lock of the leader on NotReady Node %s: %w", leader.Spec.NodeName, err)
		}
	default:
		l.Log.Info("not the leader; watching the lock", "leader", leader.Name)
	}
	return nil
}

func (l *ForLife) nodeNotReady(ctx context.Context, name string) bool {
	if name == "" {
		return false
	}
	node := &corev1.Node{}
	if err := l.Client.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
		return false
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status != corev1.ConditionTrue
		}
	}
	return false
}

// waitGone watches the lock from resourceVersion rv until it is deleted or Recheck passes.
func (l *ForLife) waitGone(ctx context.Context, rv string) error {
	wctx, cancel := context.WithTimeout(ctx, l.Recheck)
	defer cancel()
	w, err := l.Client.Watch(wctx, &corev1.ConfigMapList{}, &client.ListOptions{
		Namespace:     l.Namespace,
		FieldSelector: fields.OneTermEqualSelector("metadata.name", l.LockName),
		Raw:           &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: false},
	})
	if err != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
			return nil
		}
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok || ev.Type == watch.Deleted || ev.Type == watch.Error {
				return nil
			}
		}
	}
}

// claimToken claims this leadership's token: one more than the larger of the etcd fence and
// the epoch kept in ConfigMap <lock>-epoch, which outlives every lock. The etcd fence is
// written first (by TokenStore.ClaimToken), the ConfigMap after. A missing ConfigMap is
// created and the count continues from etcd; an unreadable one is a *CorruptEpochError.
func (l *ForLife) claimToken(ctx context.Context) (uint64, error) {
	key := client.ObjectKey{Namespace: l.Namespace, Name: l.LockName + "-epoch"}
	for range 20 {
		cm := &corev1.ConfigMap{}
		err := l.Client.Get(ctx, key, cm)
		missing := apierrors.IsNotFound(err)
		if err != nil && !missing {
			return 0, fmt.Errorf("read epoch ConfigMap %s: %w", key, err)
		}
		var kept uint64
		if !missing {
			v := cm.Data["token"]
			if kept, err = strconv.ParseUint(v, 10, 64); err != nil {
				return 0, &CorruptEpochError{Object: key.String(), Value: v}
			}
		}
		token, err := l.Store.ClaimToken(ctx, kept)
		if err != nil {
			return 0, fmt.Errorf("claim a fencing token above epoch %d: %w", kept, err)
		}
		if missing {
			if kept == 0 {
				l.Log.Info("no epoch ConfigMap; continuing from the etcd fence", "epoch", key.String(), "token", token)
			}
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data["token"] = strconv.FormatUint(token, 10)
		if missing {
			err = l.Client.Create(ctx, cm)
		} else {
			// Update carries the resourceVersion read above.
			err = l.Client.Update(ctx, cm)
		}
		switch {
		case err == nil:
			l.token = token
			l.Log.Info("claimed the fencing token", "token", token)
			return token, nil
		case apierrors.IsAlreadyExists(err), apierrors.IsConflict(err):
			continue // claim again above what was written meanwhile
		default:
			return 0, fmt.Errorf("record token %d in epoch ConfigMap %s: %w", token, key, err)
		}
	}
	return 0, fmt.Errorf("epoch ConfigMap %s: too many conflicts", key)
}

// Token re-reads the lock and returns this leadership's token, or ErrNotLeader. Call it
// only after Become has returned the token.
func (l *ForLife) Token(ctx context.Context) (uint64, error) {
	if err := l.Holds(ctx); err != nil {
		return 0, err
	}
	return l.token, nil
}

// Holds re-reads the lock: nil while it is this Pod's, from the moment Become takes it and
// whether or not the token has been claimed yet (the claim needs etcd), else ErrNotLeader.
// Holding the lock is enough to report what this replica observes; changing anything takes
// the token.
func (l *ForLife) Holds(ctx context.Context) error {
	pod := l.pod.Load()
	if pod == nil {
		return ErrNotLeader
	}
	lock := &corev1.ConfigMap{}
	if err := l.Client.Get(ctx, l.key(), lock); err != nil {
		if apierrors.IsNotFound(err) {
			return ErrNotLeader
		}
		return fmt.Errorf("re-read lock %s/%s: %w", l.Namespace, l.LockName, err)
	}
	if !ownedBy(lock, pod.UID) {
		return ErrNotLeader
	}
	return nil
}
