// Package plugin_test installs quorumguard as a kubectl plugin with `make install-plugin` and
// drives it through a real kubectl (built by `make tools`) against a real apiserver and a real
// TLS etcd member.
package plugin_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/test/framework"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

var cp *framework.ControlPlane

func TestMain(m *testing.M) {
	var err error
	cp, err = framework.StartControlPlane(framework.ControlPlaneOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = cp.Stop()
	os.Exit(code)
}

// withoutMake is the environment less a calling make's job server (make test runs this test).
func withoutMake(env []string) []string {
	var out []string
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
			out = append(out, kv)
		}
	}
	return out
}

// TestKubectlPlugin installs the plugin into a directory of its own, puts it on PATH, and
// runs `kubectl quorumguard ...`: kubectl finds it, and the status command reads kubectl's
// $KUBECONFIG (kubectl hands a plugin no flags of its own) and reports the etcd member.
func TestKubectlPlugin(t *testing.T) {
	kubectl := filepath.Join(framework.RepoRoot(), "bin", "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Fatalf("%s is missing: run `make tools`", kubectl)
	}
	pluginDir := t.TempDir()
	install := exec.CommandContext(t.Context(), "make", "-s", "-C", framework.RepoRoot(), "install-plugin", "PLUGIN_DIR="+pluginDir)
	install.Env = withoutMake(os.Environ())
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("make install-plugin: %v\n%s", err, out)
	}
	plugin := filepath.Join(pluginDir, "kubectl-quorumguard")

	env := withoutMake(os.Environ())
	for i, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			env[i] = "PATH=" + pluginDir + string(os.PathListSeparator) + strings.TrimPrefix(kv, "PATH=")
		}
	}
	env = append(env, "KUBECONFIG="+cp.KubeconfigFile, "HOME="+t.TempDir())
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), kubectl, args...)
		cmd.Env = env
		out, err := cmd.Output()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &ee):
			// stdout only: the report is all it prints there; the reason for the exit code
			// goes to stderr.
			if len(out) == 0 {
				return string(ee.Stderr), ee.ExitCode()
			}
			return string(out), ee.ExitCode()
		default:
			t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
			return "", -1
		}
	}

	if out, code := run("plugin", "list"); code != 0 || !strings.Contains(out, plugin) {
		t.Fatalf("kubectl plugin list (exit %d) does not list %s:\n%s", code, plugin, out)
	}
	version, err := exec.CommandContext(t.Context(), filepath.Join(framework.RepoRoot(), "bin", "quorumguard"), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if out, code := run("quorumguard", "--version"); code != 0 || out != string(version) {
		t.Errorf("kubectl quorumguard --version = %q (exit %d), want %q", out, code, version)
	}

	// Help exits 0, names the command as kubectl's, and prints no error line.
	for _, args := range [][]string{{"quorumguard", "--help"}, {"quorumguard", "status", "--help"}, {"quorumguard"}} {
		out, code := run(args...)
		if code != 0 || !strings.Contains(out, "Usage:\n  kubectl quorumguard") || strings.Contains(out, "Error:") || strings.Contains(out, "help requested") {
			t.Errorf("kubectl %s: exit %d; want exit 0 and usage naming \"kubectl quorumguard\":\n%s", strings.Join(args, " "), code, out)
		}
	}

	net, urls := etcdnet.StartSingle(t)
	ca, cert, key := net.ClientFiles()
	etcdFlags := []string{"--etcd-endpoints=" + strings.Join(urls, ","), "--etcd-ca-file=" + ca, "--etcd-cert-file=" + cert, "--etcd-key-file=" + key}

	// One voting member: observed, healthy, and no fault tolerance, which is exit 3.
	out, code := run(append([]string{"quorumguard", "status", "-o", "json"}, etcdFlags...)...)
	var rep operatorstatus.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("kubectl quorumguard status -o json (exit %d) printed no report: %v\n%s", code, err, out)
	}
	if code != 3 || rep.EtcdError != "" || len(rep.Members) != 1 || rep.Members[0].Name != "etcd" || rep.Members[0].Health != "healthy" {
		t.Errorf("kubectl quorumguard status: exit %d, etcd error %q, members %+v; want exit 3 (no fault tolerance) and the one healthy member \"etcd\"",
			code, rep.EtcdError, rep.Members)
	}
	if rep.Namespace != framework.MachineNamespace {
		t.Errorf("report for namespace %q, want %q", rep.Namespace, framework.MachineNamespace)
	}
	table, _ := run(append([]string{"quorumguard", "status"}, etcdFlags...)...)
	if !strings.Contains(table, "etcd") || !strings.Contains(table, "NEXT STEP") {
		t.Errorf("kubectl quorumguard status printed no member table:\n%s", table)
	}

	// With no cluster to talk to, the plugin says so and exits 1, as documented.
	for i, kv := range env {
		if strings.HasPrefix(kv, "KUBECONFIG=") {
			env[i] = "KUBECONFIG=" + filepath.Join(t.TempDir(), "missing")
		}
	}
	if out, code := run(append([]string{"quorumguard", "status"}, etcdFlags...)...); code != 1 {
		t.Errorf("kubectl quorumguard status without a cluster: exit %d, want 1:\n%s", code, out)
	}
}
