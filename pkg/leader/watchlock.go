package leader

import (
	"context"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// WatchedLock is the Lease lock the manager elects over, paced so that a released Lease is
// taken at once. client-go's elector looks at the lock only every retry period (2 s with
// controller-runtime's defaults, 26 s with OpenShift's), so a standby noticed a leader's
// graceful release only at its next look. Here the elector runs with a short Tick, and the
// lock itself paces it: a Get, or an Update that renews, waits until Retry has passed since
// the previous one, so the apiserver sees no more requests than with the retry period alone.
// A watch on the Lease (Start) cuts a standby's wait short the moment the Lease is released
// (no holder) or deleted, and the standby then takes it within a request or two. Only a
// standby's Get and the holder's renewing Update are paced: taking the Lease and releasing
// it (with the Get before it) go at once.
type WatchedLock struct {
	resourcelock.Interface
	// Retry is the election's retry period: the pace of Gets and renewing Updates.
	Retry time.Duration
	// Tick is the retry period to give the elector; it bounds how soon after a wake-up the
	// next look is taken.
	Tick time.Duration

	client    coordinationclient.LeasesGetter
	namespace string
	name      string

	mu   sync.Mutex
	last time.Time
	// held: the last successful write made this process the holder.
	held bool
	wake chan struct{}
}

// DefaultTick is WatchedLock.Tick unless set.
const DefaultTick = 100 * time.Millisecond

func newWatchedLock(lock *resourcelock.LeaseLock, cs coordinationclient.LeasesGetter, namespace, name string) *WatchedLock {
	return &WatchedLock{Interface: lock, Tick: DefaultTick, client: cs, namespace: namespace, name: name, wake: make(chan struct{}, 1)}
}

// pace waits until Retry has passed since the previous paced call, or the Lease was seen
// released, or ctx ends.
func (l *WatchedLock) pace(ctx context.Context) {
	l.mu.Lock()
	wait := l.Retry - time.Since(l.last)
	if l.last.IsZero() {
		wait = 0
	}
	l.mu.Unlock()
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-l.wake:
		case <-ctx.Done():
		}
		t.Stop()
	}
	l.mu.Lock()
	l.last = time.Now()
	l.mu.Unlock()
}

// Get reads the lock. A standby's look is paced; the holder's (before a release, or after a
// renewal was refused) is not.
func (l *WatchedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	if !l.holding() {
		l.pace(ctx)
	}
	rec, raw, err := l.Interface.Get(ctx)
	if err == nil && rec.HolderIdentity != l.Identity() {
		l.setHeld(false)
	}
	return rec, raw, err
}

// Create creates the lock, held by this process.
func (l *WatchedLock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, r)
	if err == nil {
		l.setHeld(r.HolderIdentity == l.Identity())
	}
	return err
}

// Update writes the lock. Only a renewal is paced: taking the Lease after a release, and
// releasing it, go at once.
func (l *WatchedLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	if l.holding() && r.HolderIdentity == l.Identity() {
		l.pace(ctx)
	}
	err := l.Interface.Update(ctx, r)
	if err == nil {
		l.setHeld(r.HolderIdentity == l.Identity())
	}
	return err
}

func (l *WatchedLock) holding() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

func (l *WatchedLock) setHeld(held bool) {
	l.mu.Lock()
	l.held = held
	l.mu.Unlock()
}

// Start watches the Lease until ctx ends and wakes a waiting Get when it is released or
// deleted. It runs on every replica (NeedLeaderElection is false).
func (l *WatchedLock) Start(ctx context.Context) error {
	for ctx.Err() == nil {
		w, err := l.client.Leases(l.namespace).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", l.name).String()})
		if err == nil {
			l.drain(w)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func (l *WatchedLock) drain(w watch.Interface) {
	defer w.Stop()
	for ev := range w.ResultChan() {
		lease, ok := ev.Object.(*coordinationv1.Lease)
		released := ev.Type == watch.Deleted ||
			ok && (ev.Type == watch.Added || ev.Type == watch.Modified) && (lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "")
		if ev.Type == watch.Error {
			return
		}
		if released {
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
	}
}

// NeedLeaderElection is false: the standby is the one that must watch.
func (l *WatchedLock) NeedLeaderElection() bool { return false }
