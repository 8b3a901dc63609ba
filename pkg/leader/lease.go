package leader

import (
	"context"
	"fmt"
	"os"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/rand"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Lease is the fencing side of controller-runtime's lease election: the manager runs the
// election over Lock; Token checks that this process still holds the Lease and returns its
// transition count (which grows at every change of holder) plus one.
type Lease struct {
	Client    client.Reader
	Namespace string
	Name      string
	Identity  string
}

// NewLease builds the resource lock the manager elects over, with a known identity.
func NewLease(cfg *rest.Config, reader client.Reader, namespace, name string) (*Lease, resourcelock.Interface, error) {
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
	return &Lease{Client: reader, Namespace: namespace, Name: name, Identity: id}, lock, nil
}

// Token returns the lease's transitions + 1 while this process holds it, else ErrNotLeader.
func (l *Lease) Token(ctx context.Context) (uint64, error) {
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
	return uint64(transitions) + 1, nil
}
