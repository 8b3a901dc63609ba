package app_test

import (
	"testing"
	"time"
)

// TestReleasedLeaseIsTakenAtOnce: with OpenShift's timings (137 s lease, 107 s renew
// deadline, 26 s retry) a standby used to take a released Lease only at its next retry, up to
// 26 s later. It watches the Lease now and takes it as soon as it is released; the bound
// below is only half the retry period (the benchmark measures the time itself).
func TestReleasedLeaseIsTakenAtOnce(t *testing.T) {
	o := options(t)
	o.ElectionNS = newNamespace(t)
	o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 137*time.Second, 107*time.Second, 26*time.Second
	a := start(t, o)
	waitHolder(t, o, a.c.Lease.Identity)
	b := start(t, o)
	// The standby has looked once and now waits for its next retry.
	time.Sleep(time.Second)
	stopped := time.Now()
	a.stop()
	took := waitHolder(t, o, b.c.Lease.Identity).Sub(stopped)
	t.Logf("handover after a graceful stop with a %s retry period: %s", o.RetryPeriod, took.Round(time.Millisecond))
	if took > o.RetryPeriod/2 {
		t.Errorf("the standby took the released Lease after %s, as if at its next retry (%s)", took, o.RetryPeriod)
	}
}
