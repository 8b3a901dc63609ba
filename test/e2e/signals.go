package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/go-logr/logr"
	configv1 "github.com/openshift/api/config/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/test/framework"
)

// ErrorLog is a logr sink that keeps every Error call and drops the rest. Install it once
// per test binary with ctrl.SetLogger(logr.New(sink)); Take returns what was logged since
// the last Take.
type ErrorLog struct {
	mu     sync.Mutex
	lines  []string
	name   string
	values []any
	root   *ErrorLog
}

var _ logr.LogSink = (*ErrorLog)(nil)

// Init implements logr.LogSink.
func (l *ErrorLog) Init(logr.RuntimeInfo) {}

// Enabled implements logr.LogSink: info lines are dropped.
func (l *ErrorLog) Enabled(int) bool { return false }

// Info implements logr.LogSink.
func (l *ErrorLog) Info(int, string, ...any) {}

// Error implements logr.LogSink.
func (l *ErrorLog) Error(err error, msg string, kv ...any) {
	r := l.rootOf()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf("%s: %s: %v %v", l.name, msg, err, append(slices.Clone(l.values), kv...)))
}

// WithValues implements logr.LogSink.
func (l *ErrorLog) WithValues(kv ...any) logr.LogSink {
	return &ErrorLog{root: l.rootOf(), name: l.name, values: append(slices.Clone(l.values), kv...)}
}

// WithName implements logr.LogSink.
func (l *ErrorLog) WithName(name string) logr.LogSink {
	n := name
	if l.name != "" {
		n = l.name + "." + name
	}
	return &ErrorLog{root: l.rootOf(), name: n, values: l.values}
}

func (l *ErrorLog) rootOf() *ErrorLog {
	if l.root != nil {
		return l.root
	}
	return l
}

// Take returns the error lines logged since the last Take.
func (l *ErrorLog) Take() []string {
	r := l.rootOf()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lines
	r.lines = nil
	return out
}

// ConditionRecorder records every change of a ClusterOperator's conditions from a watch, so
// a condition that was True for a moment is seen even if no poll would have caught it.
type ConditionRecorder struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	// history holds "Type=Status Reason" strings, in the order they were seen.
	history []string
	err     error
}

// RecordClusterOperator watches the named ClusterOperator until Stop.
func RecordClusterOperator(ctx context.Context, cp *framework.ControlPlane, name string) (*ConditionRecorder, error) {
	wc, err := client.NewWithWatch(cp.Config, client.Options{Scheme: cp.Client.Scheme()})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w, err := wc.Watch(ctx, &configv1.ClusterOperatorList{}, client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", name)})
	if err != nil {
		cancel()
		return nil, err
	}
	r := &ConditionRecorder{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer w.Stop()
		last := map[configv1.ClusterStatusConditionType]string{}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				if ctx.Err() != nil {
					return // stopped
				}
				r.mu.Lock()
				r.err = fmt.Errorf("watch of ClusterOperator %s failed: %v", name, ev.Object)
				r.mu.Unlock()
				return
			}
			co, ok := ev.Object.(*configv1.ClusterOperator)
			if !ok {
				continue
			}
			r.mu.Lock()
			for _, c := range co.Status.Conditions {
				s := fmt.Sprintf("%s=%s %s", c.Type, c.Status, c.Reason)
				if last[c.Type] != s {
					last[c.Type] = s
					r.history = append(r.history, s+": "+c.Message)
				}
			}
			r.mu.Unlock()
		}
	}()
	return r, nil
}

// Stop ends the watch and returns every condition state seen, in order.
func (r *ConditionRecorder) Stop() ([]string, error) {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.history, r.err
}

// WarningEvents are the Warning Events whose involved object is one of uids, as
// "object: reason: message".
func WarningEvents(ctx context.Context, cp *framework.ControlPlane, uids map[types.UID]string) ([]string, error) {
	var list corev1.EventList
	if err := cp.Client.List(ctx, &list); err != nil {
		return nil, err
	}
	var out []string
	for _, e := range list.Items {
		if name, ok := uids[e.InvolvedObject.UID]; ok && e.Type == corev1.EventTypeWarning {
			out = append(out, fmt.Sprintf("%s: %s: %s", name, e.Reason, e.Message))
		}
	}
	return out, nil
}
