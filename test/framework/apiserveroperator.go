package framework

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/quorumguard/quorumguard/pkg/endpoints"
)

// Rollout is one list of etcd endpoints the stand-in apiserver operator rolled out.
type Rollout struct {
	Generation int64
	// Digest is what was acknowledged: the list's content (endpoints.Digest).
	Digest    string
	Endpoints []string
	// Restarted says kube-apiserver was restarted for it (the list differed from its own).
	Restarted bool
	// Down is how long the restart kept the API away.
	Down time.Duration
	Err  error
}

// APIServerOperator stands in for an apiserver operator on a protected cluster: it follows
// the endpoints quorumguard publishes (pkg/endpoints), restarts kube-apiserver with each new
// list, and then acknowledges the list's digest as the named consumer, which lets quorumguard
// remove the members the new list left out. It acts whenever its acknowledgement on the
// ConfigMap is not the digest of what is published: a new list, or a recreated ConfigMap
// (then, when the list is the one it runs, it acknowledges without a restart).
type APIServerOperator struct {
	c               *Cluster
	namespace, name string
	consumer        string
	mu              sync.Mutex
	rollouts        []Rollout
	cancel          context.CancelFunc
	done            chan struct{}
}

// StartAPIServerOperator starts the stand-in; Stop it before the cluster.
func (c *Cluster) StartAPIServerOperator(namespace, configMap, consumer string) *APIServerOperator {
	ctx, cancel := context.WithCancel(context.Background())
	o := &APIServerOperator{c: c, namespace: namespace, name: configMap, consumer: consumer, cancel: cancel, done: make(chan struct{})}
	go o.run(ctx)
	return o
}

func (o *APIServerOperator) run(ctx context.Context) {
	defer close(o.done)
	var failed []string // a list whose restart failed: the API is down until it is retried
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		if failed != nil {
			if err := o.c.CP.RestartAPIServerOn(failed); err != nil {
				continue
			}
			failed = nil
		}
		p, err := endpoints.Read(ctx, o.c.Client, o.namespace, o.name)
		if err != nil || len(p.Endpoints) == 0 || p.Acks[o.consumer] == p.Digest() {
			continue
		}
		r := Rollout{Generation: p.Generation, Digest: p.Digest(), Endpoints: p.Endpoints}
		if !slices.Equal(p.Endpoints, o.c.CP.EtcdServers()) {
			start := time.Now()
			r.Restarted, r.Err = true, o.c.CP.RestartAPIServerOn(p.Endpoints)
			r.Down = time.Since(start)
			if r.Err != nil {
				failed = p.Endpoints
				fmt.Fprintf(os.Stderr, "apiserver operator: list %s: %v\n", endpoints.Short(r.Digest), r.Err)
			}
		}
		if r.Err == nil {
			// The API has just come back: try until the acknowledgement is stored.
			r.Err = WaitFor(ctx, time.Minute, "the acknowledgement of the list to be stored", func() (bool, error) {
				err := endpoints.Acknowledge(ctx, o.c.Client, o.namespace, o.name, o.consumer, p.Endpoints)
				return err == nil, err
			})
		}
		o.mu.Lock()
		o.rollouts = append(o.rollouts, r)
		o.mu.Unlock()
	}
}

// Rollouts are the lists rolled out so far, in order.
func (o *APIServerOperator) Rollouts() []Rollout {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.rollouts)
}

// Stop stops following the published endpoints.
func (o *APIServerOperator) Stop() {
	o.cancel()
	<-o.done
}
