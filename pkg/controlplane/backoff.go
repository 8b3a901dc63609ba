package controlplane

import (
	"context"
	"time"

	"github.com/go-logr/logr"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// maxActionBackoff bounds how long a failing action waits before it is tried again.
const maxActionBackoff = 30 * time.Second

// actionBackoff is the last action that failed, how often in a row, and when it may be tried
// again. Every attempt at a membership change or a hook release passes the etcd fence, which
// is a write; an action that keeps failing (the apiserver is away, say, and the hook release
// cannot be written) is tried again after PollInterval, then twice that, and so on up to
// maxActionBackoff, instead of on every pass. Any other decision, or a success, starts over.
type actionBackoff struct {
	key      string
	failures int
	at       time.Time
}

func actionKey(a quorum.Action) string {
	a.Reason, a.Until = "", time.Time{}
	return a.String()
}

// actWithBackoff takes the decided action unless the same action failed last time and its
// backoff has not passed; then it waits, and says for how long.
func (r *Reconciler) actWithBackoff(ctx context.Context, st *snapshot, d *quorum.Decision) (time.Duration, error) {
	key := actionKey(d.Action)
	if d.Action.Kind == quorum.None {
		r.backoff = actionBackoff{}
		return 0, nil
	}
	now := r.now()
	if r.backoff.key == key && now.Before(r.backoff.at) {
		wait := r.backoff.at.Sub(now)
		logr.FromContextOrDiscard(ctx).V(1).Info("the action failed last time; it is tried again after its backoff", "action", d.Action.String(), "failures", r.backoff.failures, "in", wait)
		return wait, nil
	}
	err := r.act(ctx, st, d)
	if err == nil || fenced(err) {
		r.backoff = actionBackoff{}
		return 0, err
	}
	if r.backoff.key != key {
		r.backoff = actionBackoff{key: key}
	}
	r.backoff.failures++
	wait := min(r.PollInterval<<min(r.backoff.failures, 16), maxActionBackoff)
	r.backoff.at = now.Add(wait)
	return wait, err
}
