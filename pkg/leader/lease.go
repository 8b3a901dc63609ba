package leader

import (
	"context"
	"fmt"
	"os"
	"sync"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/rand"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Lease is the fencing side of controller-runtime's lease election: the manager runs the
// election over Lock; Token checks that this process still holds the Lease and returns the
// token this holding claimed from Store, claiming it on the first call of each holding (the
// controller calls it as soon as it is elected, before it acts).
type Lease struct {
	Client    client.Reader
	Namespace string
	Name      string
	Identity  string
	// Store hands out the fencing token; required.
	Store TokenStore

	mu sync.Mutex
	// token was claimed for the holding that began at transition count held.
	token uint64
	held  int32
}

// NewLease builds the resource lock the manager elects over, with a known identity. Set the
// lock's Retry to the election's retry period, give the manager its Tick as the retry
// period, and run it (Start) on the manager.
func NewLease(cfg *rest.Config, reader client.Reader, namespace, name string) (*Lease, *WatchedLock, error) {
	host, _ := os.Hostname()
	id := host + "_" + rand.String(8)
	cs, err := coordinationclient.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return nil, nil, err
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1ObjectMeta(namespace, name),
		Client:     cs,
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	return &Lease{Client: reader, Namespace: namespace, Name: name, Identity: id}, newWatchedLock(lock, cs, namespace, name), nil
}

// Holds re-reads the Lease: nil while this process holds it, whether or not it has claimed
// its token yet, else ErrNotLeader. Holding it is enough to report; changing takes the token.
func (l *Lease) Holds(ctx context.Context) error {
	_, err := l.holding(ctx)
	return err
}

// holding re-reads the Lease and returns its transition count while this process holds it.
func (l *Lease) holding(ctx context.Context) (int32, error) {
	lease := &coordinationv1.Lease{}
	if err := l.Client.Get(ctx, client.ObjectKey{Namespace: l.Namespace, Name: l.Name}, lease); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, ErrNotLeader
		}
		return 0, fmt.Errorf("re-read lease %s/%s: %w", l.Namespace, l.Name, err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != l.Identity {
		return 0, ErrNotLeader
	}
	var transitions int32
	if lease.Spec.LeaseTransitions != nil {
		transitions = *lease.Spec.LeaseTransitions
	}
	return transitions, nil
}

// Token returns this holding's token while this process holds the Lease, else ErrNotLeader.
// The first call of a holding claims the token from Store; a failed claim is returned and
// tried again by the next call.
func (l *Lease) Token(ctx context.Context) (uint64, error) {
	transitions, err := l.holding(ctx)
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token != 0 && l.held == transitions {
		return l.token, nil
	}
	if l.Store == nil {
		return 0, ErrNoTokenStore
	}
	token, err := l.Store.ClaimToken(ctx, 0)
	if err != nil {
		return 0, fmt.Errorf("claim a fencing token for lease %s/%s: %w", l.Namespace, l.Name, err)
	}
	l.token, l.held = token, transitions
	return token, nil
}
