package app_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/framework"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// withEtcd starts a one-member etcd cluster, points o at it, and returns a client of it that
// plays an older leadership.
func withEtcd(t *testing.T, o app.Options) (app.Options, *etcdmember.Client) {
	t.Helper()
	n, urls := etcdnet.StartSingle(t)
	o.EtcdCA, o.EtcdCert, o.EtcdKey = n.ClientFiles()
	o.EtcdEndpoints = urls
	c, err := etcdmember.NewFromFiles(etcdmember.Config{Endpoints: o.EtcdEndpoints}, etcdmember.TLSFiles{CA: o.EtcdCA, Cert: o.EtcdCert, Key: o.EtcdKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return o, c
}

func leaderPod(t *testing.T, ns, name string) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "quorumguard", Image: "quorumguard"}}}}
	if err := cp.Client.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

// claimed waits until the controller holds a fencing token and returns it.
func claimed(t *testing.T, r *running) uint64 {
	t.Helper()
	var tok uint64
	if err := framework.WaitFor(t.Context(), 30*time.Second, "a claimed fencing token", func() (bool, error) {
		tok = r.c.Token.Load()
		return tok != 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	return tok
}

func refused(t *testing.T, st *etcdmember.Client, old, stored uint64) {
	t.Helper()
	var fe *etcdmember.FencedError
	if err := st.Fence(t.Context(), old); !errors.As(err, &fe) || fe.Stored != stored {
		t.Fatalf("the older token %d: want refused with %d stored, got %v", old, stored, err)
	}
}

// TestElectedLeaderFencesBeforeActing: from the moment a leader is elected, an older
// leadership's token is refused by the etcd fence, before the new leader acts at all.
func TestElectedLeaderFencesBeforeActing(t *testing.T) {
	for _, mode := range []string{"for-life", "lease", "none"} {
		t.Run(mode, func(t *testing.T) {
			o, st := withEtcd(t, options(t))
			o.ElectionNS, o.LeaderElect = newNamespace(t), mode
			if mode == "for-life" {
				o.PodName = "quorumguard-0"
				leaderPod(t, o.ElectionNS, o.PodName)
			}
			const old = 41 // an older leadership that passed the fence
			if err := st.Fence(t.Context(), old); err != nil {
				t.Fatal(err)
			}
			c, err := app.New(cp.Config, o)
			if err != nil {
				t.Fatal(err)
			}
			acted := make(chan struct{}, 1)
			c.Reconciler.BeforeAct = func(context.Context, quorum.Action) { acted <- struct{}{} }
			r := run(t, c)
			tok := claimed(t, r)
			if tok <= old {
				t.Fatalf("token %d, want more than the stored %d", tok, old)
			}
			refused(t, st, old, tok)
			select {
			case <-acted:
				t.Fatal("the controller acted; this test is about the fence written before any action")
			default:
			}
		})
	}
}

// TestTokenNeverLowersAcrossModes: lease, then leader-for-life, then no election, then a
// lease again: every mode claims from the same etcd fence, so each token exceeds the last.
func TestTokenNeverLowersAcrossModes(t *testing.T) {
	o, st := withEtcd(t, options(t))
	o.ElectionNS = newNamespace(t)
	leaderPod(t, o.ElectionNS, "quorumguard-0")
	var last uint64
	for _, mode := range []string{"lease", "for-life", "none", "lease"} {
		o.LeaderElect, o.PodName = mode, ""
		if mode == "for-life" {
			o.PodName = "quorumguard-0"
		}
		r := start(t, o)
		tok := claimed(t, r)
		t.Logf("%s: token %d", mode, tok)
		if tok <= last {
			t.Fatalf("%s after the previous mode's %d: token %d went backwards", mode, last, tok)
		}
		if stored, err := st.FenceToken(t.Context()); err != nil || stored != tok {
			t.Fatalf("%s: etcd fence holds %d (%v), want the claimed %d", mode, stored, err, tok)
		}
		r.stop()
		last = tok
	}
}

// TestForLifeNeedsPodNameInCluster: in a Pod (the service-account namespace file exists) a
// missing POD_NAME stops the start; outside a cluster election is skipped and a token is
// still claimed.
func TestForLifeNeedsPodNameInCluster(t *testing.T) {
	o, _ := withEtcd(t, options(t))
	o.LeaderElect, o.PodName, o.ElectionNS = "for-life", "", ""
	dir := t.TempDir()

	nsFile := filepath.Join(dir, "namespace")
	if err := os.WriteFile(nsFile, []byte("openshift-etcd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	app.SetServiceAccountNamespaceFile(t, nsFile)
	_, err := app.New(cp.Config, o)
	if err == nil || !strings.Contains(err.Error(), "POD_NAME") || !strings.Contains(err.Error(), "downward API") {
		t.Fatalf("in a cluster without POD_NAME: want an error naming POD_NAME and the downward API, got %v", err)
	}

	app.SetServiceAccountNamespaceFile(t, filepath.Join(dir, "absent"))
	c, err := app.New(cp.Config, o)
	if err != nil {
		t.Fatalf("outside a cluster: %v", err)
	}
	claimed(t, run(t, c))
}

func run(t *testing.T, c *app.Controller) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	return r
}
