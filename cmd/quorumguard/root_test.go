package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorumguard/quorumguard/pkg/app"
)

// TestHelpExitsZero: every command's --help prints its usage and succeeds. `quorumguard
// status --help` used to end with "flag: help requested" and exit 1.
func TestHelpExitsZero(t *testing.T) {
	type helpCase struct {
		args  []string
		usage string
	}
	cases := []helpCase{{[]string{"--help"}, "quorumguard [flags]"}, {[]string{"-h"}, "quorumguard [flags]"},
		{[]string{"help"}, "quorumguard [flags]"}, {[]string{"completion", "--help"}, "quorumguard completion [command]"}}
	for _, name := range []string{"status", "plan", "release", "etcd-join"} {
		cases = append(cases, helpCase{[]string{name, "--help"}, "quorumguard " + name}, helpCase{[]string{"help", name}, "quorumguard " + name})
	}
	for _, tc := range cases {
		var out bytes.Buffer
		if err := execute(t.Context(), tc.args, &out); err != nil {
			t.Errorf("quorumguard %s = %v; want no error", strings.Join(tc.args, " "), err)
		}
		if !strings.Contains(out.String(), "Usage:\n  "+tc.usage) || strings.Contains(out.String(), "help requested") {
			t.Errorf("quorumguard %s printed no usage of %q, or an error:\n%s", strings.Join(tc.args, " "), tc.usage, out.String())
		}
	}
}

// TestCompletion: the shells' completion scripts, and completion of a flag's values.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		var out bytes.Buffer
		if err := execute(t.Context(), []string{"completion", shell}, &out); err != nil || !strings.Contains(out.String(), "quorumguard") {
			t.Errorf("completion %s: %v\n%.200s", shell, err, out.String())
		}
	}
	var out bytes.Buffer
	if err := execute(t.Context(), []string{"__complete", "status", "-o", ""}, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "table\njson\n") {
		t.Errorf("completing status -o: %q; want table and json", got)
	}
}

// TestKubectlFlags: --kubeconfig and --context choose the cluster as kubectl's do, and -n
// is the namespace of the Machines.
func TestKubectlFlags(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
current-context: a
clusters:
- name: a
  cluster: {server: "https://192.0.2.1:6443"}
- name: b
  cluster: {server: "https://192.0.2.2:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: a
  context: {cluster: a, user: u}
- name: b
  context: {cluster: b, user: u}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args     []string
		host, ns string
	}{
		{[]string{"--kubeconfig", kc}, "https://192.0.2.1:6443", app.DefaultOptions().Namespace},
		{[]string{"--kubeconfig", kc, "--context", "b", "-n", "machines"}, "https://192.0.2.2:6443", "machines"},
		{[]string{"--kubeconfig=" + kc, "--context=b", "--machine-namespace=other"}, "https://192.0.2.2:6443", "other"},
	} {
		root, c := newCLI(t.Context(), &bytes.Buffer{})
		status, _, err := root.Find([]string{"status"})
		if err != nil {
			t.Fatal(err)
		}
		if err := status.ParseFlags(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		cfg, err := c.restConfig()
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if cfg.Host != tc.host || c.o.namespace != tc.ns {
			t.Errorf("%v: server %s, namespace %s; want %s, %s", tc.args, cfg.Host, c.o.namespace, tc.host, tc.ns)
		}
	}
}

// TestBadCertificateFileIsACommandError: a missing or unreadable etcd client file fails the
// command (exit 1) before anything is read; it is not "etcd could not be observed" (exit
// 2), which is for an etcd that refuses a certificate that loads.
func TestBadCertificateFileIsACommandError(t *testing.T) {
	cp := controlPlane(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{[]string{missing, junk, junk}, "--etcd-ca-file: open " + missing},
		{[]string{junk, junk, junk}, "--etcd-cert-file " + junk + " and --etcd-key-file " + junk},
	} {
		var out bytes.Buffer
		err := statusCommand(t.Context(), []string{"--kubeconfig", cp.KubeconfigFile, "--etcd-endpoints", "https://127.0.0.1:1",
			"--etcd-ca-file", tc.files[0], "--etcd-cert-file", tc.files[1], "--etcd-key-file", tc.files[2]}, &out)
		var ee *exitError
		if err == nil || errors.As(err, &ee) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("status with %v: %v (printed %d bytes); want a command error (exit 1) containing %q", tc.files, err, out.Len(), tc.want)
		}
	}
}
