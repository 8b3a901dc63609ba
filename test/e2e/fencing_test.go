package e2e_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// TestPausedLeaderIsFenced pauses the leader in the middle of a replacement, right after it
// took its fencing token and before its etcd call; deletes its Pod so the garbage collector
// frees the lock and the standby takes over and finishes the replacement; then resumes the
// old leader. The old leader must step down without changing anything.
func TestPausedLeaderIsFenced(t *testing.T) {
	ctx := t.Context()
	c := newCluster(t, "")
	pods := map[string]*corev1.Pod{}
	for _, name := range []string{"quorumguard-a", "quorumguard-b"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: framework.MachineNamespace},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "quorumguard", Image: "quorumguard"}}}}
		if err := cp.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		pods[name] = p
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), pods["quorumguard-b"]) })
	forLife := func(pod string) app.Options {
		o := e2e.ControllerOptions(c)
		o.LeaderElect, o.PodName, o.ElectionNS, o.ElectionID = "for-life", pod, framework.MachineNamespace, "quorumguard-fencing-lock"
		return o
	}
	paused, release := make(chan quorum.Action, 1), make(chan struct{})
	var once sync.Once
	a, err := e2e.StartControllerWith(ctx, c, forLife("quorumguard-a"), func(ac *app.Controller) error {
		ac.Reconciler.BeforeAct = func(ctx context.Context, act quorum.Action) {
			once.Do(func() {
				paused <- act
				<-release
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	waitHooks(t, c, "cluster-master-0", "cluster-master-1", "cluster-master-2")
	tokenA := a.App.Token.Load()
	b, err := e2e.StartController(ctx, c, forLife("quorumguard-b"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	settle(t, c)

	var stepDown error
	during := func(ctx context.Context) error {
		act := <-paused
		t.Logf("old leader paused before: %s", act)
		if err := cp.Client.Delete(ctx, pods["quorumguard-a"]); err != nil {
			return err
		}
		if err := framework.WaitFor(ctx, time.Minute, "the standby to lead", func() (bool, error) {
			return b.App.Token.Load() > tokenA, nil
		}); err != nil {
			return err
		}
		// Let the new leader make its first membership change, then wake the old one.
		if err := framework.WaitFor(ctx, time.Minute, "a learner from the new leader", func() (bool, error) {
			return hasEvent(t, "cluster-new-0", "LearnerAdded"), nil
		}); err != nil {
			return err
		}
		close(release)
		select {
		case stepDown = <-a.Done():
		case <-time.After(30 * time.Second):
			t.Error("the resumed old leader did not step down")
		}
		return nil
	}
	replace(t, e2e.ReplaceInput{Cluster: c, Delete: []string{"cluster-master-0"}, Replacements: []string{"cluster-new-0"}, MinVoters: 3, DuringReplacement: during})
	if stepDown == nil || !strings.Contains(stepDown.Error(), "stepped down") {
		t.Fatalf("old leader's exit: %v; want a step-down", stepDown)
	}
	t.Logf("old leader (token %d) stepped down: %v; new leader token %d", tokenA, stepDown, b.App.Token.Load())
}
