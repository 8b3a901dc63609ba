package app

import (
	"fmt"
	"net/http"
	"time"
)

// DefaultStallTimeout is how long a leader's control loop may go without finishing a pass
// before /healthz fails. A pass ends within seconds even when etcd or the apiserver is
// unreachable (each call has a timeout of at most 5 s, and every pass is followed by
// another within 10 s), so two minutes means the loop is stuck, not slow.
const DefaultStallTimeout = 2 * time.Minute

// Liveness is the /healthz check. It fails only on the replica that leads, once its control
// loop has finished no pass for Options.StallTimeout (counted from the later of the last
// finished pass and the moment this check first saw it leading), so that the kubelet
// restarts a hung leader's container; under leader-for-life the restarted process finds its
// own lock and carries on. A standby does not run the loop, and its liveness never depends
// on the leader: it always passes.
func (c *Controller) Liveness(*http.Request) error {
	if c.opts.StallTimeout <= 0 || !c.leads() {
		c.leadingSince.Store(0)
		return nil
	}
	now := time.Now()
	c.leadingSince.CompareAndSwap(0, now.UnixNano())
	since := time.Unix(0, c.leadingSince.Load())
	last := c.Reconciler.LastPass()
	if last.Before(since) {
		last = since
	}
	if stalled := now.Sub(last); stalled > c.opts.StallTimeout {
		at := "none has finished yet"
		if p := c.Reconciler.LastPass(); !p.IsZero() {
			at = "the last finished at " + p.UTC().Format(time.RFC3339)
		}
		return fmt.Errorf("this replica leads and its control loop has finished no pass for %s (more than --healthz-stall-timeout %s); %s",
			stalled.Round(time.Second), c.opts.StallTimeout, at)
	}
	return nil
}
