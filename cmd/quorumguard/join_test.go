package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/quorumguard/quorumguard/pkg/etcdjoin"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

func TestJoinCommandFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--etcd-ca-file=a", "--etcd-cert-file=b", "--etcd-key-file=c"}, "--endpoints is required"},
		{[]string{"--endpoints=https://127.0.0.1:2379"}, "are all required"},
		{[]string{"--endpoints=https://127.0.0.1:2379", "--etcd-ca-file=a", "--etcd-cert-file=b", "--etcd-key-file=c", "--interval=0s"}, "--interval must be positive"},
		{[]string{"--endpoints=https://127.0.0.1:2379", "--etcd-ca-file=a", "--etcd-cert-file=b", "--etcd-key-file=c", "--node-ip=not-an-ip"}, "not an IP address"},
		{[]string{"--endpoints=https://127.0.0.1:2379", "--etcd-ca-file=/nonexistent/ca.crt", "--etcd-cert-file=b", "--etcd-key-file=c", "--peer-url=https://127.0.0.1:2380"}, "/nonexistent/ca.crt"},
	} {
		err := joinCommand(t.Context(), tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("etcd-join %v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestJoinCommandWritesTheEnvFile runs the subcommand as a node would, after the controller
// has added the node's learner.
func TestJoinCommandWritesTheEnvFile(t *testing.T) {
	n, eps := etcdnet.StartSingle(t)
	ip, err := n.AllocateIP()
	if err != nil {
		t.Fatal(err)
	}
	tc, err := n.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := clientv3.New(clientv3.Config{Endpoints: eps, TLS: tc, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	peer := "https://" + net.JoinHostPort(ip.String(), "2380")
	actx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := raw.MemberAddAsLearner(actx, []string{peer}); err != nil {
		t.Fatal(err)
	}
	ca, cert, key := n.ClientFiles()
	dir := t.TempDir()
	envFile := filepath.Join(dir, "join.env")
	var out bytes.Buffer
	err = joinCommand(t.Context(), []string{"--name=node-1", "--node-ip=" + ip.String(), "--endpoints=" + strings.Join(eps, ","),
		"--etcd-ca-file=" + ca, "--etcd-cert-file=" + cert, "--etcd-key-file=" + key, "--data-dir=" + filepath.Join(dir, "data"),
		"--env-file=" + envFile, "--timeout=30s"}, &out)
	if err != nil {
		t.Fatalf("etcd-join: %v\n%s", err, out.String())
	}
	env, err := etcdjoin.ReadEnv(envFile)
	if err != nil {
		t.Fatal(err)
	}
	if env.Name != "node-1" || env.PeerURL != peer || env.State != "existing" || !strings.Contains(env.InitialCluster, "node-1="+peer) {
		t.Fatalf("env file = %+v", env)
	}
	if !strings.Contains(out.String(), "joining") {
		t.Fatalf("output does not say it joins:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Fatalf("etcd-join created the data dir: %v", err)
	}
}

// TestStaticPodSampleRunsTheJoin: the sample static pod's init container runs etcd-join
// with flags the subcommand accepts, writes the env file the etcd container sources, and
// mounts the data dir's parent, so that a stale data dir can be renamed beside it.
func TestStaticPodSampleRunsTheJoin(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "manifests", "node", "etcd-static-pod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(raw, &pod); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.InitContainers) != 1 || len(pod.Spec.Containers) != 1 {
		t.Fatalf("want one init container and one etcd container, got %d and %d", len(pod.Spec.InitContainers), len(pod.Spec.Containers))
	}
	initC, etcdC := pod.Spec.InitContainers[0], pod.Spec.Containers[0]
	if len(initC.Args) == 0 || initC.Args[0] != "etcd-join" {
		t.Fatalf("init container args %v do not run etcd-join", initC.Args)
	}
	args := slices.Clone(initC.Args[1:])
	for i, a := range args {
		args[i] = strings.NewReplacer("$(NODE_NAME)", "master-3", "$(NODE_IP)", "10.0.0.13").Replace(a)
	}
	j, err := parseJoin(args)
	if err != nil {
		t.Fatalf("etcd-join rejects the sample's flags: %v", err)
	}
	if j.peerURL != "https://10.0.0.13:2380" || j.name != "master-3" {
		t.Fatalf("sample join: name %q peer URL %q", j.name, j.peerURL)
	}
	if !strings.Contains(strings.Join(etcdC.Args, " "), ". "+j.envFile) {
		t.Fatalf("the etcd container does not source %s: %v", j.envFile, etcdC.Args)
	}
	if filepath.Dir(j.dataDir) != "/var/lib" {
		t.Fatalf("data dir %s", j.dataDir)
	}
	for _, c := range []corev1.Container{initC, etcdC} {
		mounted := map[string]bool{}
		for _, m := range c.VolumeMounts {
			mounted[m.MountPath] = true
		}
		if !mounted["/var/lib"] || !mounted[filepath.Dir(j.envFile)] {
			t.Errorf("container %s mounts %v; want the data dir's parent /var/lib and %s", c.Name, c.VolumeMounts, filepath.Dir(j.envFile))
		}
	}
	release, err := os.ReadFile(filepath.Join("..", "..", "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	if img, v := initC.Image, strings.TrimSpace(string(release)); !strings.HasSuffix(img, ":"+v) {
		t.Errorf("the join's image %s is not the release in VERSION (%s)", img, v)
	}
}
