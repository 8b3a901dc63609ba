package leader_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/leader"
)

func epoch(t *testing.T, ns string) *corev1.ConfigMap {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "quorumguard-lock-epoch"}, cm); err != nil {
		t.Fatal(err)
	}
	return cm
}

// resign deletes the leader's lock, as the garbage collector does once the leader Pod is
// gone, so the next candidate is elected at once.
func resign(t *testing.T, ns string) {
	t.Helper()
	lock := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "quorumguard-lock"}}
	if err := cp.Client.Delete(t.Context(), lock); err != nil {
		t.Fatal(err)
	}
}

// TestForLifeTokenNeverGoesBack: the token is claimed from the etcd fence above the epoch
// ConfigMap, is written to both, and is never counted again from 1.
func TestForLifeTokenNeverGoesBack(t *testing.T) {
	ctx := t.Context()
	ns := namespace(t)
	for _, name := range []string{"a", "b", "c", "d"} {
		pod(t, ns, name, "")
	}
	st := fenceStore(t)
	elect := func(t *testing.T, name string) (uint64, error) {
		t.Helper()
		l := candidate(t, st, ns, name)
		l.Recheck = 500 * time.Millisecond
		tok, err := l.Become(ctx)
		if err == nil {
			resign(t, ns)
		}
		return tok, err
	}

	first, err := elect(t, "a")
	if err != nil {
		t.Fatal(err)
	}
	if stored, err := st.FenceToken(ctx); err != nil || stored != first {
		t.Errorf("etcd fence after the election: %d (%v), want the leader's token %d", stored, err, first)
	}
	if got := epoch(t, ns).Data["token"]; got != strconv.FormatUint(first, 10) {
		t.Errorf("epoch ConfigMap holds %q, want %d", got, first)
	}

	t.Run("a deleted epoch ConfigMap does not restart the count at 1", func(t *testing.T) {
		if err := cp.Client.Delete(ctx, epoch(t, ns)); err != nil {
			t.Fatal(err)
		}
		tok, err := elect(t, "b")
		if err != nil {
			t.Fatal(err)
		}
		if tok <= first {
			t.Fatalf("token %d after the epoch ConfigMap was deleted; want more than the previous %d", tok, first)
		}
		if got := epoch(t, ns).Data["token"]; got != strconv.FormatUint(tok, 10) {
			t.Fatalf("the epoch ConfigMap is written again: holds %q, want %d", got, tok)
		}
		first = tok
	})

	t.Run("an epoch above the etcd fence is claimed over", func(t *testing.T) {
		cm := epoch(t, ns)
		cm.Data["token"] = strconv.FormatUint(first+100, 10)
		if err := cp.Client.Update(ctx, cm); err != nil {
			t.Fatal(err)
		}
		tok, err := elect(t, "c")
		if err != nil {
			t.Fatal(err)
		}
		if tok != first+101 {
			t.Fatalf("token %d, want %d: one more than the larger record", tok, first+101)
		}
	})

	t.Run("a corrupt epoch ConfigMap stops the candidate with an error naming it", func(t *testing.T) {
		cm := epoch(t, ns)
		cm.Data["token"] = "twelve"
		if err := cp.Client.Update(ctx, cm); err != nil {
			t.Fatal(err)
		}
		before, err := st.FenceToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := elect(t, "d")
		var ce *leader.CorruptEpochError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), ns+"/quorumguard-lock-epoch") || !strings.Contains(err.Error(), "twelve") {
			t.Fatalf("Become = %d, %v; want a *CorruptEpochError naming %s/quorumguard-lock-epoch and its value", tok, err, ns)
		}
		if after, err := st.FenceToken(ctx); err != nil || after != before {
			t.Fatalf("nothing may be claimed over a corrupt epoch: fence %d -> %d (%v)", before, after, err)
		}
	})
}

// TestForLifeCorruptFence: a fence key that does not hold a token stops the candidate too.
func TestForLifeCorruptFence(t *testing.T) {
	ctx := t.Context()
	ns := namespace(t)
	pod(t, ns, "a", "")
	st := fenceStore(t)
	const raw = "7" // a token, but not as the fence stores one
	if _, err := st.raw.Put(ctx, etcdmember.DefaultFenceKey, raw); err != nil {
		t.Fatal(err)
	}
	_, err := candidate(t, st, ns, "a").Become(ctx)
	var ce *etcdmember.CorruptFenceError
	if !errors.As(err, &ce) || ce.Value != raw {
		t.Fatalf("want a *CorruptFenceError with value %q, got %v", raw, err)
	}
}
