package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/leader"
	"github.com/quorumguard/quorumguard/test/framework"
)

// takeover measures, per trial and side by side on the same apiserver and garbage collector,
// how long after the leader Pod's deletion a standby leads: quorumguard's leader-for-life
// (watching the lock) and a standby that follows the Operator SDK's documented loop (try to
// create the lock, back off 1 s doubling to 16 s, with 20% jitter). Both standbys have waited
// the same 10 s before the leader goes, as a standby usually has.
//
// The SDK's own package (operator-lib) could not be downloaded on this machine, so its loop is
// re-implemented here from its documentation and source; the figure is labelled accordingly.
func takeover(ctx context.Context, trials int) ([]row, error) {
	cp, _, stop, err := startControlPlane(true)
	if err != nil {
		return nil, err
	}
	defer stop()
	wc, err := client.NewWithWatch(cp.Config, client.Options{Scheme: framework.Scheme()})
	if err != nil {
		return nil, err
	}
	tokens := &counterStore{}
	var ours, sdk []float64
	for trial := range trials {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "takeover-"}}
		if err := cp.Client.Create(ctx, ns); err != nil {
			return nil, err
		}
		mk := func(name string) (*corev1.Pod, error) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "c"}}}}
			return p, cp.Client.Create(ctx, p)
		}
		var leaders [2]*corev1.Pod
		for i, n := range []string{"lead-watch", "lead-poll"} {
			if leaders[i], err = mk(n); err != nil {
				return nil, err
			}
		}
		for _, n := range []string{"standby-watch", "standby-poll"} {
			if _, err := mk(n); err != nil {
				return nil, err
			}
		}
		for i, lock := range []string{"lock-watch", "lock-poll"} {
			l := &leader.ForLife{Client: wc, Namespace: ns.Name, LockName: lock, PodName: leaders[i].Name, Log: logr.Discard(), Store: tokens}
			if _, err := l.Become(ctx); err != nil {
				return nil, err
			}
		}
		watchDone, pollDone := make(chan time.Time, 1), make(chan time.Time, 1)
		tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		go func() {
			l := &leader.ForLife{Client: wc, Namespace: ns.Name, LockName: "lock-watch", PodName: "standby-watch", Log: logr.Discard(), Store: tokens}
			if _, err := l.Become(tctx); err == nil {
				watchDone <- time.Now()
			}
		}()
		go func() {
			if err := sdkStyleBecome(tctx, cp.Client, ns.Name, "lock-poll", "standby-poll"); err == nil {
				pollDone <- time.Now()
			}
		}()
		time.Sleep(10 * time.Second)
		deleted := time.Now()
		for _, p := range leaders {
			if err := cp.Client.Delete(ctx, p); err != nil {
				cancel()
				return nil, err
			}
		}
		var tw, tp time.Time
		for tw.IsZero() || tp.IsZero() {
			select {
			case tw = <-watchDone:
			case tp = <-pollDone:
			case <-tctx.Done():
				cancel()
				return nil, fmt.Errorf("trial %d: a standby did not take over within 2 minutes", trial)
			}
		}
		cancel()
		ours, sdk = append(ours, tw.Sub(deleted).Seconds()), append(sdk, tp.Sub(deleted).Seconds())
		fmt.Printf("trial %d: watch %.2fs, SDK-style polling %.2fs\n", trial, ours[len(ours)-1], sdk[len(sdk)-1])
	}
	return []row{{figure: "leader-for-life takeover after the leader Pod is deleted", value: median(ours), unit: "s",
		comparison: "SDK-style polling standby (1 s doubling to 16 s; reimplemented)", cmpValue: median(sdk),
		note: fmt.Sprintf("%d trials, same apiserver and garbage collector", len(ours))}}, nil
}

// counterStore hands out fencing tokens from memory: this benchmark times the election, and
// the SDK-style standby it is compared with claims no token either.
type counterStore struct {
	mu   sync.Mutex
	last uint64
}

func (s *counterStore) ClaimToken(_ context.Context, floor uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = max(s.last, floor) + 1
	return s.last, nil
}

// sdkStyleBecome follows the Operator SDK's leader.Become loop.
func sdkStyleBecome(ctx context.Context, c client.Client, ns, lock, podName string) error {
	pod := &corev1.Pod{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: podName}, pod); err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: lock, Namespace: ns,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}}}}
	backoff := time.Second
	for {
		err := c.Create(ctx, cm.DeepCopy())
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		jitter := time.Duration(float64(backoff) * (1 + 0.2*rand.Float64()))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(jitter):
		}
		if backoff < 16*time.Second {
			backoff *= 2
		}
	}
}

// lease measures the handover of controller-runtime's lease election with quorumguard's
// options, after a graceful stop (the lease is released) and after a crash (it must expire),
// with controller-runtime's default timings (15 s lease, 10 s renew, 2 s retry).
func lease(ctx context.Context, trials int) ([]row, error) {
	cp, dir, stop, err := startControlPlane(false)
	if err != nil {
		return nil, err
	}
	defer stop()
	files := map[string]string{}
	for _, f := range []string{"ca", "cert", "key"} {
		files[f] = dir + "/" + f
		if err := os.WriteFile(files[f], nil, 0o600); err != nil {
			return nil, err
		}
	}
	type timings struct{ lease, renew, retry time.Duration }
	controllerRuntime := timings{15 * time.Second, 10 * time.Second, 2 * time.Second}
	openShift := timings{137 * time.Second, 107 * time.Second, 26 * time.Second}
	measure := func(crash bool, tm timings) (float64, error) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "lease-"}}
		if err := cp.Client.Create(ctx, ns); err != nil {
			return 0, err
		}
		o := app.Options{Namespace: framework.MachineNamespace, Hook: hooks.Default, DefaultReplicas: 3,
			EtcdCA: files["ca"], EtcdCert: files["cert"], EtcdKey: files["key"], MetricsAddr: "0", ProbeAddr: "0",
			LeaderElect: "lease", ElectionID: "quorumguard-lock", ElectionNS: ns.Name, NoReleaseOnCancel: crash,
			LeaseDuration: tm.lease, RenewDeadline: tm.renew, RetryPeriod: tm.retry}
		start := func() (*app.Controller, context.CancelFunc, chan error, error) {
			c, err := app.New(cp.Config, o)
			if err != nil {
				return nil, nil, nil, err
			}
			cctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- c.Run(cctx) }()
			return c, cancel, done, nil
		}
		holder := func() string {
			l := &coordinationv1.Lease{}
			if cp.Client.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: o.ElectionID}, l) != nil || l.Spec.HolderIdentity == nil {
				return ""
			}
			return *l.Spec.HolderIdentity
		}
		a, stopA, doneA, err := start()
		if err != nil {
			return 0, err
		}
		if err := framework.WaitFor(ctx, time.Minute, "first leader", func() (bool, error) { return holder() == a.Lease.Identity, nil }); err != nil {
			return 0, err
		}
		b, stopB, doneB, err := start()
		if err != nil {
			return 0, err
		}
		defer func() { stopB(); <-doneB }() //nolint:errcheck // how the standby exits after its cancel is not measured
		// The standby has made its first look and waits for its next.
		time.Sleep(time.Second)
		stopped := time.Now()
		stopA()
		err = framework.WaitFor(ctx, 3*time.Minute, "second leader", func() (bool, error) { return holder() == b.Lease.Identity, nil })
		took := time.Since(stopped).Seconds()
		<-doneA //nolint:errcheck // the leader was stopped on purpose
		return took, err
	}
	var graceful, crashed, gracefulOS []float64
	for range trials {
		g, err := measure(false, controllerRuntime)
		if err != nil {
			return nil, err
		}
		cr, err := measure(true, controllerRuntime)
		if err != nil {
			return nil, err
		}
		gos, err := measure(false, openShift)
		if err != nil {
			return nil, err
		}
		graceful, crashed, gracefulOS = append(graceful, g), append(crashed, cr), append(gracefulOS, gos)
		fmt.Printf("lease handover: graceful %.2fs, crash %.2fs (15/10/2 s); graceful %.2fs (137/107/26 s)\n", g, cr, gos)
	}
	return []row{
		{figure: "lease handover after a graceful stop (lease released), controller-runtime timings 15/10/2 s", value: median(graceful), unit: "s",
			comparison: "after a crash (lease must expire, 15 s)", cmpValue: median(crashed), note: fmt.Sprintf("%d trials; the standby watches the Lease", len(graceful))},
		{figure: "lease handover after a graceful stop (lease released), OpenShift timings 137/107/26 s", value: median(gracefulOS), unit: "s",
			comparison: "the retry period a standby used to wait for", cmpValue: openShift.retry.Seconds(), note: fmt.Sprintf("%d trials", len(gracefulOS))},
	}, nil
}
