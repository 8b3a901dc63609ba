package leader_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/leader"
)

// awayClient fails its first n reads of the lock, as an apiserver that is restarting does.
type awayClient struct {
	client.WithWatch
	mu sync.Mutex
	n  int
}

func (a *awayClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.ConfigMap); ok {
		a.mu.Lock()
		away := a.n > 0
		a.n--
		a.mu.Unlock()
		if away {
			return errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
		}
	}
	return a.WithWatch.Get(ctx, key, obj, opts...)
}

// TestLeaderForLifeRetryBackoffStaysShort: a candidate waits out an apiserver that is away
// with a backoff that stops at leader.MaxRetryBackoff. A standby asleep in a longer one when
// the leader's Pod goes, right after an apiserver restart, takes over only when it wakes: with
// the former 16 s cap `make demo` measured takeovers of 7.8 s and 22 s. The waits are read
// from the candidate's own log lines, not timed.
func TestLeaderForLifeRetryBackoffStaysShort(t *testing.T) {
	ns := namespace(t)
	pod(t, ns, "away", "")
	l := candidate(t, fenceStore(t), ns, "away")
	l.Client = &awayClient{WithWatch: l.Client, n: 5}
	var mu sync.Mutex
	var waits []time.Duration
	l.Log = logr.New(&recordSink{record: func(msg string, kv []any) {
		if msg != "leader election: will retry" {
			return
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == "after" {
				if d, ok := kv[i+1].(time.Duration); ok {
					mu.Lock()
					waits = append(waits, d)
					mu.Unlock()
				}
			}
		}
	}})
	tok, err := l.Become(t.Context())
	if err != nil || tok == 0 {
		t.Fatalf("Become: token %d, %v", tok, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(waits) != 5 {
		t.Fatalf("waited %d times (%v), want once per refused read (5)", len(waits), waits)
	}
	for _, w := range waits {
		if w > leader.MaxRetryBackoff {
			t.Fatalf("waited %s between reads (%v): a standby asleep that long takes over that much late; the cap is %s", w, waits, leader.MaxRetryBackoff)
		}
	}
}

// recordSink hands every log line to record.
type recordSink struct{ record func(msg string, kv []any) }

func (r *recordSink) Init(logr.RuntimeInfo)                {}
func (r *recordSink) Enabled(int) bool                     { return true }
func (r *recordSink) Info(_ int, msg string, kv ...any)    { r.record(msg, kv) }
func (r *recordSink) Error(_ error, msg string, kv ...any) { r.record(msg, kv) }
func (r *recordSink) WithValues(...any) logr.LogSink       { return r }
func (r *recordSink) WithName(string) logr.LogSink         { return r }
